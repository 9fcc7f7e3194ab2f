// The isolation benchmark (bench_isolation.h): it runs, it is deterministic,
// B's ops all complete and read back B's own data, and B never waits on
// anything but the device. Latency figures are virtual time and are not
// asserted here (docs/benchmarks.md records them).
#include "tools/bench_isolation.h"

#include <gtest/gtest.h>

namespace thinp::tools {
namespace {

// Smaller than the command's defaults, to keep the test quick.
IsolationBenchOptions small_options(uint64_t seed) {
  IsolationBenchOptions o;
  o.seed = seed;
  o.b_ops_per_task = 150;
  o.a_max_writes_per_task = 1024;
  return o;
}

TEST(IsolationBench, SameSeedSameReport) {
  auto first = run_isolation_bench(small_options(3));
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  auto second = run_isolation_bench(small_options(3));
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(format_isolation_bench(*first, true), format_isolation_bench(*second, true));
  auto other = run_isolation_bench(small_options(4));
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  EXPECT_NE(format_isolation_bench(*first, true), format_isolation_bench(*other, true))
      << "the seed must reach the run";
}

TEST(IsolationBench, BCompletesWhileTheStormRuns) {
  const IsolationBenchOptions o = small_options(1);
  auto r = run_isolation_bench(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // Every B op completed ok (a failed op or a read of the wrong bytes makes
  // the run fail), in both runs.
  EXPECT_EQ(r->alone.b_ops, uint64_t(o.b_tasks) * o.b_ops_per_task);
  EXPECT_EQ(r->storm.b_ops, uint64_t(o.b_tasks) * o.b_ops_per_task);
  EXPECT_EQ(r->alone.a_writes, 0u);
  // The storm really ran alongside B, and did not run out of blocks first.
  EXPECT_GT(r->storm.a_writes, uint64_t(o.a_tasks) * 10);
  EXPECT_GT(r->storm.a_flushes, 0u);
  EXPECT_LT(r->storm.a_writes, uint64_t(o.a_tasks) * o.a_max_writes_per_task);
  EXPECT_GT(r->storm.b_p99_us, 0);
  EXPECT_GE(r->storm.b_max_us, r->storm.b_p99_us);
  EXPECT_GE(r->storm.b_p99_us, r->storm.b_p50_us);
}

// The design property behind the ratio (pool.h, "Locks"): nothing is
// pool-wide across IO, so B's reads and in-place overwrites take only B's
// cell lock and B's tree lock (held for an in-memory lookup) and never wait
// on A's provisioning, commits or flushes. In the simulator CPU is free, so
// every microsecond of B's latency must then be B's own IO (queued for or
// served by the device): the time outside IO is exactly zero, storm or not.
// The device queue A shares with B is the only way A may slow B.
TEST(IsolationBench, BNeverWaitsOutsideItsOwnIo) {
  auto r = run_isolation_bench(small_options(2));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->alone.b_non_io_max_us, 0);
  EXPECT_EQ(r->storm.b_non_io_max_us, 0) << format_isolation_bench(*r, false);
}

TEST(IsolationBench, RejectsZeroCounts) {
  IsolationBenchOptions o;
  o.b_tasks = 0;
  EXPECT_EQ(run_isolation_bench(o).status().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace thinp::tools
