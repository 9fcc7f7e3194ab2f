#include "scenarios/disk_scenario.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <string>

#include "sim/trace.h"

namespace thinp::scenarios {
namespace {

ScenarioResult run_seed(uint64_t seed, std::vector<std::string> bugs = {}, uint64_t ops = 0) {
  ScenarioOptions o;
  o.seed = seed;
  o.ops = ops;
  o.bugs = std::move(bugs);
  return run_disk_scenario(o);
}

TEST(DiskScenario, Seeds1To50Pass) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const ScenarioResult r = run_seed(seed);
    EXPECT_TRUE(r.passed) << "seed " << seed << ": " << r.failure << "\n" << r.summary;
    EXPECT_TRUE(r.failure.empty());
    EXPECT_NE(r.summary.find("reads_checked="), std::string::npos);
  }
}

TEST(DiskScenario, RunsActuallyCheckReadsAndCrash) {
  const ScenarioResult r = run_seed(3);
  ASSERT_TRUE(r.passed) << r.failure;
  // The summary is "key=value ..."; pull out a few counts.
  auto count = [&](const std::string& key) -> uint64_t {
    const size_t at = r.summary.find(" " + key + "=");
    if (at == std::string::npos) return 0;
    return std::stoull(r.summary.substr(at + key.size() + 2));
  };
  EXPECT_GT(count("crashes"), 0u) << r.summary;
  EXPECT_GT(count("reads_checked"), 100u) << r.summary;
  EXPECT_GT(count("sectors_checked"), 1000u) << r.summary;
}

TEST(DiskScenario, SameSeedSameDigest) {
  for (uint64_t seed : {1, 7, 42}) {
    const ScenarioResult a = run_seed(seed);
    const ScenarioResult b = run_seed(seed);
    EXPECT_EQ(a.digest, b.digest) << "seed " << seed;
    EXPECT_EQ(a.summary, b.summary);
  }
}

TEST(DiskScenario, DifferentSeedsDiffer) {
  std::set<uint64_t> digests;
  for (uint64_t seed = 1; seed <= 20; ++seed) digests.insert(run_seed(seed).digest);
  EXPECT_EQ(digests.size(), 20u);
}

TEST(DiskScenario, OpsOptionChangesTheRun) {
  const ScenarioResult small = run_seed(5, {}, 100);
  const ScenarioResult big = run_seed(5, {}, 400);
  EXPECT_TRUE(small.passed) << small.failure;
  EXPECT_NE(small.summary.find("ops=100 "), std::string::npos) << small.summary;
  EXPECT_NE(big.summary.find("ops=400 "), std::string::npos) << big.summary;
  EXPECT_NE(small.digest, big.digest);
}

// The checker must be able to fail: with FLUSH broken, some early seed has
// to read back a flushed write that the crash then lost.
TEST(DiskScenario, FlushNoopBugIsCaught) {
  int failures = 0;
  std::string first;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const ScenarioResult r = run_seed(seed, {"disk-flush-noop"});
    if (!r.passed) {
      ++failures;
      if (first.empty()) first = r.failure;
      EXPECT_FALSE(r.failure.empty());
    }
  }
  EXPECT_GT(failures, 0);
  // The message says which seed, and what the model allowed instead.
  EXPECT_NE(first.find("seed "), std::string::npos) << first;
  EXPECT_NE(first.find("allow"), std::string::npos) << first;
}

TEST(DiskScenario, UnknownBugIsAnError) {
  const ScenarioResult r = run_seed(1, {"no-such-bug"});
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.failure.find("unknown bug 'no-such-bug'"), std::string::npos) << r.failure;
}

TEST(DiskScenario, RegisteredInTheRegistry) {
  const ScenarioInfo* info = find_scenario("disk");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->run, &run_disk_scenario);
  EXPECT_EQ(info->default_ops, kDiskScenarioDefaultOps);
}

TEST(DiskScenario, VerboseLogNamesEveryEvent) {
  std::ostringstream log;
  ScenarioOptions o;
  o.seed = 2;
  o.ops = 50;
  o.verbose = true;
  o.log = &log;
  const ScenarioResult r = run_disk_scenario(o);
  ASSERT_TRUE(r.passed) << r.failure;
  const std::string text = log.str();
  EXPECT_NE(text.find(" boot boot=0 "), std::string::npos);
  EXPECT_NE(text.find(" crash boot=0 "), std::string::npos);
  EXPECT_NE(text.find("crash: tear="), std::string::npos);
  EXPECT_NE(text.find("result: pass"), std::string::npos);
}

}  // namespace
}  // namespace thinp::scenarios
