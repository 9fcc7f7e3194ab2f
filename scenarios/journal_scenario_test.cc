#include "scenarios/journal_scenario.h"

#include <gtest/gtest.h>

#include <iostream>
#include <set>
#include <sstream>
#include <string>

#include "engine/base/build_info.h"
#include "scenarios/journal_model.h"

namespace thinp::scenarios {
namespace {

ScenarioResult run_seed(uint64_t seed, std::vector<std::string> bugs = {}, uint64_t ops = 0) {
  ScenarioOptions o;
  o.seed = seed;
  o.ops = ops;
  o.bugs = std::move(bugs);
  return run_journal_scenario(o);
}

// "key=value" out of a summary line (0 if absent).
uint64_t count(const std::string& summary, const std::string& key) {
  const std::string padded = " " + summary;
  const size_t at = padded.find(" " + key + "=");
  if (at == std::string::npos) return 0;
  return std::stoull(padded.substr(at + key.size() + 2));
}

// 30 seeds (8 in a sanitizer build).
TEST(JournalScenario, SeedsPass) {
  const uint64_t n = kSanitizedBuild ? 8 : 30;
  uint64_t acknowledged = 0, crashes = 0, recoveries = 0, checks = 0;
  for (uint64_t seed = 1; seed <= n; ++seed) {
    const ScenarioResult r = run_seed(seed);
    EXPECT_TRUE(r.passed) << "seed " << seed << ": " << r.failure << "\n" << r.summary;
    acknowledged += count(r.summary, "acknowledged");
    crashes += count(r.summary, "crashes");
    recoveries += count(r.summary, "recoveries");
    checks += count(r.summary, "checks");
  }
  // The runs did what they claim: commits, crashes, recoveries judged and
  // checks run, on every seed.
  EXPECT_GT(acknowledged, n * 50);
  EXPECT_GE(crashes, n * 3);
  EXPECT_GE(recoveries, n * 3);
  EXPECT_GE(checks, n * 3);
}

TEST(JournalScenario, SameSeedSameDigest) {
  for (uint64_t seed : {1, 7, 42}) {
    const ScenarioResult a = run_seed(seed);
    const ScenarioResult b = run_seed(seed);
    EXPECT_EQ(a.digest, b.digest) << "seed " << seed;
    EXPECT_EQ(a.summary, b.summary);
  }
}

TEST(JournalScenario, DifferentSeedsDiffer) {
  std::set<uint64_t> digests;
  for (uint64_t seed = 1; seed <= 12; ++seed) digests.insert(run_seed(seed, {}, 80).digest);
  EXPECT_EQ(digests.size(), 12u);
}

TEST(JournalScenario, OpsOptionChangesTheRun) {
  const ScenarioResult small = run_seed(5, {}, 60);
  const ScenarioResult big = run_seed(5, {}, 200);
  EXPECT_TRUE(small.passed) << small.failure;
  EXPECT_TRUE(big.passed) << big.failure;
  EXPECT_LT(count(small.summary, "ops"), count(big.summary, "ops"));
  EXPECT_NE(small.digest, big.digest);
}

TEST(JournalScenario, UnknownBugIsRefused) {
  const ScenarioResult r = run_seed(1, {"no-such-bug"});
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.failure.find("unknown bug 'no-such-bug'"), std::string::npos) << r.failure;
}

// The checker must be able to fail: with commits acknowledged before they
// are durable, some early seed must lose an acknowledged commit in a crash,
// and the oracle must say so.
TEST(JournalScenario, NoDurabilityBugIsCaught) {
  // Recovery may also refuse the torn journal outright (corruption); at
  // least one seed must show the oracle naming a lost acknowledged commit.
  std::string lost;
  int failures = 0;
  for (uint64_t seed = 1; seed <= 50 && lost.empty(); ++seed) {
    const ScenarioResult r = run_seed(seed, {"journal-no-durability"});
    if (r.passed) continue;
    ++failures;
    if (r.failure.find("after recovery") != std::string::npos &&
        r.failure.find("; lost commit #") != std::string::npos) {
      lost = r.failure;
    }
  }
  EXPECT_GT(failures, 0) << "no seed in 1..50 caught commits that skip FUA and FLUSH";
  EXPECT_FALSE(lost.empty()) << "no seed in 1..50 reported a lost acknowledged commit";
  std::cout << "the bug caught: " << lost << "\n";
}

// The oracle on its own: prefixes, acknowledgements, and what it refuses.
TEST(CommitOracle, AcceptsOnlyPrefixesHoldingAcknowledgedCommits) {
  PoolModel base;
  CommitOracle oracle(base);
  PoolModel a = base;
  a.transaction_id = 1;
  a.thins[ThinId(3)].details.thin = ThinId(3);
  const size_t ia = oracle.stage(a, "create thin:3");
  PoolModel b = a;
  b.transaction_id = 2;
  b.thins[ThinId(3)].map(thinp::Run{VBlock(10), 4, DBlock(100), SnapTime(1)});
  b.thins[ThinId(3)].details.mapped_blocks = 4;
  const size_t ib = oracle.stage(b, "map thin:3");
  ASSERT_TRUE(oracle.acknowledge(ia, Lsn(5)).ok());

  // The base state lost the acknowledged commit.
  Result<RecoveredPrefix> lost = oracle.recover(base, 0);
  ASSERT_FALSE(lost.ok());
  EXPECT_NE(lost.status().message().find("lost commit #1"), std::string::npos)
      << lost.status().message();
  // Transaction id 2 but the state of 1: refused, and the message names the
  // prefix it does equal.
  Result<RecoveredPrefix> torn = oracle.recover(a, 2);
  ASSERT_FALSE(torn.ok());
  EXPECT_NE(torn.status().message().find("equals the state after prefix 1"), std::string::npos)
      << torn.status().message();
  // The in-flight commit may be in (here acknowledged, with an LSN out of
  // commit order, which is refused first).
  EXPECT_FALSE(oracle.acknowledge(ib, Lsn(4)).ok()) << "LSN order must follow commit order";
  Result<RecoveredPrefix> full = oracle.recover(b, 2);
  ASSERT_TRUE(full.ok()) << full.status().to_string();
  EXPECT_EQ(full->prefix, 2u);
  EXPECT_EQ(full->required, 2u);
  EXPECT_EQ(oracle.staged_count(), 0u) << "the recovered state is the new base";
}

TEST(ThinModel, MapAndUnmapStayCanonical) {
  ThinModel t;
  EXPECT_EQ(t.map(thinp::Run{VBlock(0), 4, DBlock(10), SnapTime(1)}), 0u);
  EXPECT_EQ(t.map(thinp::Run{VBlock(4), 4, DBlock(14), SnapTime(1)}), 0u);
  ASSERT_EQ(t.runs.size(), 1u) << "contiguous runs with one time merge";
  EXPECT_EQ(t.runs.begin()->second.length, 8u);
  EXPECT_EQ(t.unmap(VBlock(2), 3), 3u);
  ASSERT_EQ(t.runs.size(), 2u);
  EXPECT_EQ(t.runs.at(VBlock(5)).dbegin, DBlock(15));
  EXPECT_EQ(t.map(thinp::Run{VBlock(1), 6, DBlock(50), SnapTime(2)}), 3u);
  EXPECT_EQ(t.mapped_blocks(), 8u);
  EXPECT_EQ(t.mapped_in(VBlock(0), 2), 2u);
  ThinModel split;
  split.map(thinp::Run{VBlock(0), 1, DBlock(10), SnapTime(1)});
  split.map(thinp::Run{VBlock(1), 1, DBlock(50), SnapTime(2)});
  split.map(thinp::Run{VBlock(2), 5, DBlock(51), SnapTime(2)});
  split.map(thinp::Run{VBlock(7), 1, DBlock(17), SnapTime(1)});
  EXPECT_EQ(split.runs, t.runs) << "the same mappings compare equal however they were built";
}

}  // namespace
}  // namespace thinp::scenarios
