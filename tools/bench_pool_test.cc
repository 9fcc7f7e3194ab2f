#include "tools/bench_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "tools/pool_command.h"

namespace thinp::tools {
namespace {

// A sparse 256 MiB file in /tmp, removed at the end of the test.
class PoolBenchFile {
 public:
  PoolBenchFile() {
    char name[] = "/tmp/thinp-bench-pool-XXXXXX";
    const int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, 256 << 20), 0);
    ::close(fd);
    path_ = name;
  }
  ~PoolBenchFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A 16 MiB thin (256 blocks of 64 KiB) keeps the prefills short.
PoolBenchOptions quick(const std::string& path, const std::string& workload) {
  PoolBenchOptions o;
  o.device = path;
  o.workload = workload;
  o.queue_depth = 8;
  o.seconds = 0.3;
  o.thin_bytes = 16 << 20;
  o.force = true;
  return o;
}

void expect_sane(const PoolBenchReport& r) {
  EXPECT_GT(r.ios, 0u);
  EXPECT_GT(r.iops, 0);
  EXPECT_GT(r.mib_per_s, 0);
  EXPECT_GT(r.seconds, 0);
  EXPECT_LE(r.lat_us_p50, r.lat_us_p99);
  EXPECT_LE(r.lat_us_p99, r.lat_us_p999);
  EXPECT_LE(r.lat_us_p999, r.lat_us_max);
  EXPECT_GT(r.lat_us_p50, 0);
}

TEST(BenchPoolTest, EveryWorkloadRunsAndLeavesACleanPool) {
  PoolBenchFile f;
  for (const char* w :
       {"randread", "randwrite", "read", "write", "provision", "overwrite", "break-sharing"}) {
    SCOPED_TRACE(w);
    auto r = run_pool_bench(quick(f.path(), w));
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    expect_sane(*r);
    EXPECT_EQ(r->close_error, "");
    const std::string workload = w;
    if (workload == "randread" || workload == "read") {
      // Every read hits a block the prefill provisioned: no metadata change.
      EXPECT_EQ(r->provisioned_blocks, 0u);
      EXPECT_EQ(r->journal_commits, 0u);
      EXPECT_GT(r->prefill_seconds, 0);
    } else if (workload == "provision") {
      EXPECT_GT(r->provisioned_blocks, 0u);
      EXPECT_EQ(r->provisioned_blocks, r->ios);
      EXPECT_EQ(r->writes_in_place, 0u);
      EXPECT_GT(r->journal_commits, 0u);
    } else if (workload == "overwrite") {
      EXPECT_EQ(r->writes_in_place, r->ios);
      EXPECT_EQ(r->provisioned_blocks, 0u);
    } else if (workload == "break-sharing") {
      EXPECT_EQ(r->shares_broken, r->ios);
      EXPECT_EQ(r->writes_in_place, 0u);
    } else {
      // randwrite and write start on an empty thin: some writes provision.
      EXPECT_GT(r->provisioned_blocks, 0u);
      EXPECT_EQ(r->provisioned_blocks + r->writes_in_place, r->ios);
    }
    EXPECT_EQ(run_check(PoolDeviceArgs{.device = f.path(), .data_device = ""}), 0);
  }
}

TEST(BenchPoolTest, OnceOnlyWorkloadsStopWhenTheyRunOut) {
  PoolBenchFile f;
  PoolBenchOptions o = quick(f.path(), "provision");
  o.thin_bytes = 1 << 20;  // 16 blocks
  o.seconds = 60;
  auto r = run_pool_bench(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stopped, "thin full");
  EXPECT_EQ(r->ios, 16u);
  EXPECT_EQ(r->provisioned_blocks, 16u);

  o.workload = "break-sharing";
  r = run_pool_bench(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stopped, "no shared block left");
  EXPECT_EQ(r->shares_broken, 16u);
  EXPECT_EQ(run_check(PoolDeviceArgs{.device = f.path(), .data_device = ""}), 0);
}

TEST(BenchPoolTest, FlushEveryFlushes) {
  PoolBenchFile f;
  PoolBenchOptions o = quick(f.path(), "overwrite");
  o.flush_every = 4;
  auto r = run_pool_bench(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->flushes, r->ios / 4);
}

TEST(BenchPoolTest, RefusesAnExistingPoolWithoutForce) {
  PoolBenchFile f;
  ASSERT_TRUE(run_pool_bench(quick(f.path(), "provision")).ok());
  PoolBenchOptions o = quick(f.path(), "provision");
  o.force = false;
  auto r = run_pool_bench(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::already_exists);
  EXPECT_NE(r.status().message().find("--force"), std::string::npos);
}

TEST(BenchPoolTest, RejectsBadOptions) {
  PoolBenchFile f;
  auto r = run_pool_bench(quick(f.path(), "sideways"));
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  PoolBenchOptions o = quick(f.path(), "provision");
  o.io_bytes = 128 * 1024;  // larger than a 64 KiB data block
  r = run_pool_bench(o);
  EXPECT_EQ(r.status().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace thinp::tools
