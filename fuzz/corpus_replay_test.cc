// Replays every corpus file of every fuzz target through its entry point, so
// that the corpus (seeds and the fuzzer's interesting finds) is a regression
// suite that builds with any compiler and runs in CI without libFuzzer.
//
//   - every file of fuzz/corpus/<name>/ goes through fuzz_<name> (no crash);
//   - files named valid-* must decode (check_<name> ok), bad-* must not;
//   - every target has a corpus directory and every directory a target;
//   - the seeds built from today's encoder behave as their names say.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.h"

namespace thinp::fuzz {

// Names the target in test listings instead of dumping its bytes.
void PrintTo(const FuzzTarget& target, std::ostream* os) { *os << target.name; }

namespace {

namespace fs = std::filesystem;

const fs::path kCorpusDir = THINP_FUZZ_CORPUS_DIR;

std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Checks the expectation a seed's name carries.
void expect_verdict(const FuzzTarget& target, const std::string& name,
                    const std::vector<uint8_t>& bytes) {
  const Status s = target.check(bytes.data(), bytes.size());
  if (starts_with(name, "valid-")) {
    EXPECT_TRUE(s.ok()) << target.name << "/" << name << ": " << s.to_string();
  } else if (starts_with(name, "bad-")) {
    EXPECT_FALSE(s.ok()) << target.name << "/" << name << " decoded but should not";
  }
}

class CorpusReplay : public ::testing::TestWithParam<FuzzTarget> {};

TEST_P(CorpusReplay, EveryFileReplaysAndNamedSeedsKeepTheirVerdict) {
  const FuzzTarget& target = GetParam();
  const fs::path dir = kCorpusDir / std::string(target.name);
  ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing: every target needs a corpus";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  size_t valid = 0;
  for (const fs::path& f : files) {
    const std::vector<uint8_t> bytes = read_file(f);
    EXPECT_EQ(target.fuzz(bytes.data(), bytes.size()), 0) << f;
    expect_verdict(target, f.filename().string(), bytes);
    valid += starts_with(f.filename().string(), "valid-") ? 1 : 0;
  }
  EXPECT_GT(valid, 0u) << dir << " holds no valid-* seed";
}

TEST_P(CorpusReplay, GeneratedSeedsKeepTheirVerdict) {
  const FuzzTarget& target = GetParam();
  for (const FuzzSeed& seed : target.seeds()) {
    EXPECT_EQ(target.fuzz(seed.bytes.data(), seed.bytes.size()), 0) << seed.name;
    expect_verdict(target, seed.name, seed.bytes);
  }
}

// Rewrites each target's seed files from today's encoder (files the fuzzer
// added are kept). Run by hand after a format change:
//   fuzz_replay_test --gtest_also_run_disabled_tests --gtest_filter='*RegenerateCorpus*'
TEST_P(CorpusReplay, DISABLED_RegenerateCorpus) {
  const FuzzTarget& target = GetParam();
  const fs::path dir = kCorpusDir / std::string(target.name);
  fs::create_directories(dir);
  for (const FuzzSeed& seed : target.seeds()) {
    std::ofstream out(dir / seed.name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(seed.bytes.data()),
              static_cast<std::streamsize>(seed.bytes.size()));
    ASSERT_TRUE(out.good()) << dir / seed.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, CorpusReplay, ::testing::ValuesIn(fuzz_targets().begin(), fuzz_targets().end()),
                         [](const ::testing::TestParamInfo<FuzzTarget>& info) {
                           return std::string(info.param.name);
                         });

TEST(CorpusReplay, EveryCorpusDirectoryHasATarget) {
  for (const auto& entry : fs::directory_iterator(kCorpusDir)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    const auto targets = fuzz_targets();
    EXPECT_TRUE(std::any_of(targets.begin(), targets.end(),
                            [&](const FuzzTarget& t) { return t.name == name; }))
        << "fuzz/corpus/" << name << " has no target in fuzz_targets()";
  }
}

TEST(CorpusReplay, TargetsAreInNameOrder) {
  const auto targets = fuzz_targets();
  EXPECT_TRUE(std::is_sorted(targets.begin(), targets.end(),
                             [](const FuzzTarget& a, const FuzzTarget& b) { return a.name < b.name; }));
}

}  // namespace
}  // namespace thinp::fuzz
