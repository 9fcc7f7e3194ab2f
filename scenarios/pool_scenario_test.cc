#include "scenarios/pool_scenario.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/base/build_info.h"

namespace thinp::scenarios {
namespace {

ScenarioResult run_seed(uint64_t seed, std::vector<std::string> bugs = {}) {
  ScenarioOptions o;
  o.seed = seed;
  o.bugs = std::move(bugs);
  return run_pool_scenario(o);
}

uint64_t count(const std::string& summary, const std::string& key) {
  const std::string padded = " " + summary;
  const size_t at = padded.find(" " + key + "=");
  if (at == std::string::npos) return 0;
  return std::stoull(padded.substr(at + key.size() + 2));
}

// 40 seeds (10 in a sanitizer build).
TEST(PoolScenario, SeedsPass) {
  const uint64_t n = kSanitizedBuild ? 10 : 40;
  uint64_t writes = 0, snapshots = 0, deletes = 0, crashes = 0, checked = 0;
  for (uint64_t seed = 1; seed <= n; ++seed) {
    const ScenarioResult r = run_seed(seed);
    EXPECT_TRUE(r.passed) << r.failure << "\n" << r.summary;
    writes += count(r.summary, "writes");
    snapshots += count(r.summary, "snapshots");
    deletes += count(r.summary, "deletes");
    crashes += count(r.summary, "crashes");
    checked += count(r.summary, "sectors_checked");
  }
  // The runs did what they claim, on every seed.
  EXPECT_GT(writes, n * 100);
  EXPECT_GT(snapshots, n);
  EXPECT_GT(deletes, n);
  EXPECT_GE(crashes, n);
  EXPECT_GT(checked, n * 1000);
}

TEST(PoolScenario, SameSeedSameDigest) {
  for (uint64_t seed : {3, 11}) {
    const ScenarioResult a = run_seed(seed);
    const ScenarioResult b = run_seed(seed);
    EXPECT_EQ(a.digest, b.digest) << "seed " << seed;
    EXPECT_EQ(a.summary, b.summary);
  }
}

// New data blocks written without FUA: a durable mapping can point at data
// the crash lost. The checker must see it.
TEST(PoolScenario, CatchesNewBlocksWrittenWithoutFua) {
  int failed = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const ScenarioResult r = run_seed(seed, {"pool-data-no-fua"});
    if (!r.passed) {
      ++failed;
      EXPECT_NE(r.failure.find("after recovery"), std::string::npos) << r.failure;
    }
  }
  EXPECT_GE(failed, 10) << "the checker missed the bug on most seeds";
}

// Crash points (thinp sim crash-sweep): an uncut run counts them, and a run
// cut at any of them recovers to an allowed state. The bug is caught at some.
TEST(PoolScenario, CrashPointsRecover) {
  ScenarioOptions uncut;
  uncut.seed = 5;
  uncut.ops = 200;
  uncut.crash_after_events = UINT64_MAX;
  const ScenarioResult r = run_pool_scenario(uncut);
  ASSERT_TRUE(r.passed) << r.failure;
  ASSERT_GT(r.crash_points, 100u);
  int buggy_failures = 0;
  for (uint64_t i = 1; i <= 24; ++i) {
    ScenarioOptions cut = uncut;
    cut.crash_after_events = i * r.crash_points / 24;
    cut.crash_state = i;
    const ScenarioResult c = run_pool_scenario(cut);
    EXPECT_TRUE(c.passed) << "crash point " << cut.crash_after_events << ": " << c.failure;
    EXPECT_EQ(c.crash_points, cut.crash_after_events);
    cut.bugs = {"pool-data-no-fua"};
    if (!run_pool_scenario(cut).passed) ++buggy_failures;
  }
  EXPECT_GT(buggy_failures, 0) << "no crash point caught new blocks written without FUA";
}

TEST(PoolScenario, UnknownBugIsAnError) {
  const ScenarioResult r = run_seed(1, {"no-such-bug"});
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.failure.find("unknown bug"), std::string::npos);
}

}  // namespace
}  // namespace thinp::scenarios
