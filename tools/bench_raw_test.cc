#include "tools/bench_raw.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace thinp::tools {
namespace {

// A 16 MiB file in /tmp, written in full (so that benchmark writes overwrite
// allocated blocks instead of splitting extents, which makes unlinking it
// slow), removed at the end of the test.
class BenchFile {
 public:
  BenchFile() {
    char name[] = "/tmp/thinp-bench-raw-XXXXXX";
    const int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    const std::string zeroes(kBytes, '\0');
    EXPECT_EQ(::pwrite(fd, zeroes.data(), zeroes.size(), 0), static_cast<ssize_t>(kBytes));
    ::close(fd);
    path_ = name;
  }
  ~BenchFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

  std::string contents() const {
    std::string data(kBytes, '\0');
    const int fd = ::open(path_.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, data.data(), data.size(), 0), static_cast<ssize_t>(kBytes));
    ::close(fd);
    return data;
  }

 private:
  static constexpr size_t kBytes = 16 << 20;
  std::string path_;
};

RawBenchOptions quick(const std::string& path, const std::string& workload) {
  return RawBenchOptions{
      .path = path, .workload = workload, .block_bytes = 4096, .queue_depth = 4, .seconds = 0.1};
}

void expect_sane(const RawBenchReport& r) {
  EXPECT_GT(r.ios, 0u);
  EXPECT_GT(r.iops, 0);
  EXPECT_GT(r.mib_per_s, 0);
  EXPECT_GT(r.seconds, 0);
  EXPECT_LE(r.lat_us_p50, r.lat_us_p99);
  EXPECT_LE(r.lat_us_p99, r.lat_us_p999);
  EXPECT_LE(r.lat_us_p999, r.lat_us_max);
  EXPECT_GT(r.lat_us_p50, 0);
}

TEST(BenchRawTest, EveryWorkloadRunsOnBothIoPaths) {
  BenchFile f;
  for (bool uring : {true, false}) {
    for (const char* w : {"randwrite", "randread", "write", "read"}) {
      RawBenchOptions o = quick(f.path(), w);
      o.use_uring = uring;
      const std::string before = f.contents();
      auto r = run_raw_bench(o);
      ASSERT_TRUE(r.ok()) << w << ": " << r.status().to_string();
      expect_sane(*r);
      EXPECT_EQ(r->workload, w);
      EXPECT_EQ(r->device_bytes, 16u << 20);
      if (!uring) {
        EXPECT_EQ(r->io_engine, "pread");
      }
      // Writes reach the file; reads leave it as it was.
      const bool writes = std::string(w).find("write") != std::string::npos;
      EXPECT_EQ(f.contents() != before, writes) << w;
    }
  }
}

TEST(BenchRawTest, JsonCarriesTheAgreedKeys) {
  BenchFile f;
  auto r = run_raw_bench(quick(f.path(), "randread"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const std::string json = format_raw_bench(*r, true);
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  for (const char* key :
       {"\"iops\":", "\"mib_per_s\":", "\"lat_us_p50\":", "\"lat_us_p99\":", "\"lat_us_p999\":"}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
  EXPECT_NE(json.find("\"path\":\"" + f.path() + "\""), std::string::npos);
  const std::string text = format_raw_bench(*r, false);
  EXPECT_EQ(text.rfind("randread " + f.path() + " bs=4096 qd=4 ", 0), 0u) << text;
  EXPECT_NE(text.find(" IOPS, "), std::string::npos);
}

TEST(BenchRawTest, BadOptionsGiveOneLineErrors) {
  BenchFile f;
  auto expect_error = [](RawBenchOptions o, Errc code, const std::string& message) {
    auto r = run_raw_bench(o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code);
    EXPECT_EQ(r.status().message(), message);
  };
  expect_error(quick(f.path(), "randtrim"), Errc::invalid_argument,
               "unknown workload 'randtrim' (expected randread, randwrite, read or write)");
  RawBenchOptions bs = quick(f.path(), "read");
  bs.block_bytes = 1000;
  expect_error(
      bs, Errc::invalid_argument,
      "block size 1000 is not a positive multiple of the 4096-byte sector size of " + f.path());
  RawBenchOptions qd = quick(f.path(), "read");
  qd.queue_depth = 0;
  expect_error(qd, Errc::invalid_argument, "queue depth 0 is not in 1..4096");
  expect_error(quick("/tmp/thinp-bench-no-such-file", "read"), Errc::not_found,
               "/tmp/thinp-bench-no-such-file: no such file or device");
}

}  // namespace
}  // namespace thinp::tools
