#include "engine/real/real_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "engine/runtime/sync.h"

namespace thinp::real {
namespace {

constexpr uint64_t kFileBytes = 1 << 20;

// A file in /tmp (ext4 on the build machines, so O_DIRECT works), removed at
// the end of the test.
class TempFile {
 public:
  explicit TempFile(uint64_t size_bytes) {
    char name[] = "/tmp/thinp-real-device-XXXXXX";
    const int fd = ::mkstemp(name);
    TP_ASSERT_GE(fd, 0);
    TP_ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size_bytes)), 0);
    ::close(fd);
    path_ = name;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

  // Reads the file behind the device's back, through the page cache.
  std::vector<std::byte> read_back(uint64_t offset, size_t length) const {
    std::vector<std::byte> out(length);
    const int fd = ::open(path_.c_str(), O_RDONLY);
    TP_ASSERT_GE(fd, 0);
    TP_ASSERT_EQ(::pread(fd, out.data(), length, static_cast<off_t>(offset)),
                 static_cast<ssize_t>(length));
    ::close(fd);
    return out;
  }

 private:
  std::string path_;
};

AlignedBuffer pattern(size_t bytes, uint8_t seed) {
  AlignedBuffer b(bytes);
  for (size_t i = 0; i < bytes; ++i)
    b.data()[i] = std::byte(static_cast<uint8_t>(seed + i * 7 + i / 4096));
  return b;
}

bool all_zero(std::span<const std::byte> s) {
  for (std::byte b : s) {
    if (b != std::byte{0}) return false;
  }
  return true;
}

// Runs `body` as the only task of `r` and expects everything to finish.
void run_task(Reactor& r, std::function<void()> body) {
  r.spawn("test", std::move(body));
  ASSERT_EQ(r.run(), ReactorOutcome::idle) << r.deadlock_report() << r.failure();
}

std::unique_ptr<BlockDevice> open_ok(Reactor& r, const std::string& path,
                                     const OpenOptions& o = {}) {
  auto dev = open_real_device(r, path, o);
  TP_ASSERT_MSG(dev.ok(), dev.status().to_string());
  return std::move(dev).value();
}

// --- IO round trips, through io_uring and through the fallback ---------------

class RealDeviceIoTest : public ::testing::TestWithParam<bool> {
 protected:
  bool uring() const { return GetParam(); }
  OpenOptions options() const { return OpenOptions{.use_uring = uring()}; }
  void SetUp() override {
    if (uring() && !reactor_.has_ring()) GTEST_SKIP() << reactor_.ring_status().to_string();
  }
  Reactor reactor_;
  TempFile file_{kFileBytes};
};

TEST_P(RealDeviceIoTest, ReportsSizeSectorAndPath) {
  auto dev = open_ok(reactor_, file_.path(), options());
  EXPECT_EQ(dev->size_bytes(), kFileBytes);
  EXPECT_EQ(dev->logical_sector_bytes(), kFileSectorBytes);
  EXPECT_EQ(dev->name(), file_.path());
  auto* real = dynamic_cast<RealDevice*>(dev.get());
  ASSERT_NE(real, nullptr);
  EXPECT_EQ(real->uses_uring(), uring());
  EXPECT_EQ(real->kind(), DeviceKind::regular_file);
}

TEST_P(RealDeviceIoTest, ConcurrentWritesReadBackAndReachTheFile) {
  auto dev = open_ok(reactor_, file_.path(), options());
  constexpr int kTasks = 16;
  constexpr size_t kBytes = 8192;
  WaitGroup wg(reactor_);
  wg.add(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    reactor_.spawn("io" + std::to_string(i), [&, i] {
      const uint64_t offset = static_cast<uint64_t>(i) * 3 * kBytes;
      AlignedBuffer out = pattern(kBytes, static_cast<uint8_t>(i));
      ASSERT_TRUE(dev->write(offset, out.span()).ok());
      AlignedBuffer in(kBytes);
      ASSERT_TRUE(dev->read(offset, in.span()).ok());
      EXPECT_TRUE(std::equal(in.span().begin(), in.span().end(), out.span().begin()));
      wg.done();
    });
  }
  ASSERT_EQ(reactor_.run(), ReactorOutcome::idle) << reactor_.deadlock_report();
  EXPECT_EQ(wg.count(), 0u);
  for (int i = 0; i < kTasks; ++i) {
    AlignedBuffer expect = pattern(kBytes, static_cast<uint8_t>(i));
    auto got = file_.read_back(static_cast<uint64_t>(i) * 3 * kBytes, kBytes);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), expect.span().begin())) << "task " << i;
  }
}

TEST_P(RealDeviceIoTest, FuaWriteAndFlushComplete) {
  auto dev = open_ok(reactor_, file_.path(), options());
  run_task(reactor_, [&] {
    AlignedBuffer a = pattern(4096, 1);
    AlignedBuffer b = pattern(4096, 2);
    EXPECT_TRUE(dev->write(0, a.span(), /*fua=*/true).ok());
    EXPECT_TRUE(dev->write(kFileBytes - 4096, b.span()).ok());
    EXPECT_TRUE(dev->flush().ok());
    AlignedBuffer in(4096);
    ASSERT_TRUE(dev->read(kFileBytes - 4096, in.span()).ok());
    EXPECT_TRUE(std::equal(in.span().begin(), in.span().end(), b.span().begin()));
  });
  auto got = file_.read_back(0, 4096);
  AlignedBuffer a = pattern(4096, 1);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), a.span().begin()));
}

TEST_P(RealDeviceIoTest, DiscardReadsBackAsZeroesAndSparesItsNeighbours) {
  auto dev = open_ok(reactor_, file_.path(), options());
  run_task(reactor_, [&] {
    AlignedBuffer data = pattern(64 * 1024, 9);
    ASSERT_TRUE(dev->write(0, data.span()).ok());
    ASSERT_TRUE(dev->discard(16 * 1024, 16 * 1024).ok());
    AlignedBuffer in(64 * 1024);
    ASSERT_TRUE(dev->read(0, in.span()).ok());
    EXPECT_TRUE(all_zero(in.span().subspan(16 * 1024, 16 * 1024)));
    EXPECT_TRUE(std::equal(in.data(), in.data() + 16 * 1024, data.data()));
    EXPECT_TRUE(std::equal(in.data() + 32 * 1024, in.data() + 64 * 1024, data.data() + 32 * 1024));
  });
}

TEST_P(RealDeviceIoTest, BadRequestsCompleteWithInvalidArgument) {
  auto dev = open_ok(reactor_, file_.path(), options());
  run_task(reactor_, [&] {
    AlignedBuffer buf(8192);
    Status misaligned = dev->read(512, buf.span().first(4096));
    EXPECT_EQ(misaligned.code(), Errc::invalid_argument);
    EXPECT_EQ(misaligned.message(),
              "read of 4096 bytes at 512 is not aligned to 4096-byte sectors on " + file_.path());
    Status past_end = dev->write(kFileBytes - 4096, buf.span());
    EXPECT_EQ(past_end.code(), Errc::invalid_argument);
    EXPECT_EQ(past_end.message(), "write of 8192 bytes at 1044480 is past the end of " +
                                      file_.path() + " (1048576 bytes)");
  });
}

TEST_P(RealDeviceIoTest, CompletionNeverRunsInsideSubmit) {
  auto dev = open_ok(reactor_, file_.path(), options());
  run_task(reactor_, [&] {
    AlignedBuffer buf(4096);
    Event done(reactor_);
    bool completed = false;
    IoRequest req;
    req.op = IoOp::read;
    req.length_bytes = 4096;
    req.data = buf.data();
    req.on_complete = [&](Status s) {
      EXPECT_TRUE(s.ok()) << s.to_string();
      completed = true;
      done.set();
    };
    dev->submit(&req);
    EXPECT_FALSE(completed);
    done.wait();
    EXPECT_TRUE(completed);
  });
}

// A task that polls with yield() instead of parking must still see its IO
// complete: the loop keeps collecting completions while tasks stay runnable.
TEST_P(RealDeviceIoTest, YieldLoopSeesItsIoComplete) {
  auto dev = open_ok(reactor_, file_.path(), options());
  run_task(reactor_, [&] {
    AlignedBuffer buf(4096);
    bool completed = false;
    IoRequest req;
    req.op = IoOp::write;
    req.fua = true;
    req.length_bytes = 4096;
    req.data = buf.data();
    req.on_complete = [&](Status s) {
      EXPECT_TRUE(s.ok()) << s.to_string();
      completed = true;
    };
    dev->submit(&req);
    uint64_t spins = 0;
    while (!completed) {
      reactor_.yield();
      ASSERT_LT(++spins, uint64_t{100'000'000});
    }
  });
}

TEST_P(RealDeviceIoTest, ManyMoreRequestsThanRingEntries) {
  // submit_batch 8 > ring_entries 4: the full SQ forces the submissions.
  Reactor small(ReactorOptions{.ring_entries = 4, .submit_batch = 8});
  if (uring() && !small.has_ring()) GTEST_SKIP();
  auto dev = open_ok(small, file_.path(), options());
  constexpr int kTasks = 64;
  int ok = 0;
  for (int i = 0; i < kTasks; ++i) {
    small.spawn("io", [&, i] {
      AlignedBuffer buf = pattern(4096, static_cast<uint8_t>(i));
      if (dev->write(static_cast<uint64_t>(i) * 4096, buf.span(), i % 2 == 0).ok()) ++ok;
    });
  }
  ASSERT_EQ(small.run(), ReactorOutcome::idle);
  EXPECT_EQ(ok, kTasks);
  auto got = file_.read_back(63 * 4096, 4096);
  AlignedBuffer expect = pattern(4096, 63);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), expect.span().begin()));
}

TEST_P(RealDeviceIoTest, ReadOnlyOpenRefusesWritesAndDiscards) {
  OpenOptions o = options();
  o.read_only = true;
  auto dev = open_ok(reactor_, file_.path(), o);
  run_task(reactor_, [&] {
    AlignedBuffer buf(4096);
    EXPECT_TRUE(dev->read(0, buf.span()).ok());
    Status w = dev->write(0, buf.span());
    EXPECT_EQ(w.code(), Errc::read_only);
    EXPECT_EQ(w.message(), "write refused: " + file_.path() + " is open read-only");
    EXPECT_EQ(dev->discard(0, 4096).code(), Errc::read_only);
  });
}

TEST_P(RealDeviceIoTest, DestroyingTheReactorWithIoInFlightWaitsForIt) {
  auto dev = open_ok(reactor_, file_.path(), options());
  AlignedBuffer buf = pattern(4096, 5);
  for (int i = 0; i < 8; ++i) {
    reactor_.spawn("writer",
                   [&, i] { (void)dev->write(static_cast<uint64_t>(i) * 4096, buf.span()); });
  }
  reactor_.spawn("stopper", [&] { reactor_.request_stop(); });
  EXPECT_EQ(reactor_.run(), ReactorOutcome::stopped);  // the writers' IO is still queued
  reactor_.kill_all_tasks();
  EXPECT_EQ(reactor_.uring_ios_in_flight(), 0u);
}

INSTANTIATE_TEST_SUITE_P(RealDevice, RealDeviceIoTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "uring" : "fallback";
                         });

TEST(RealDeviceTest, EnvironmentVariableForcesTheFallback) {
  TempFile file(kFileBytes);
  ::setenv("THINP_NO_URING", "1", 1);
  Reactor r;
  ::unsetenv("THINP_NO_URING");
  auto dev = open_ok(r, file.path());
  EXPECT_FALSE(dynamic_cast<RealDevice&>(*dev).uses_uring());
  run_task(r, [&] {
    AlignedBuffer out = pattern(4096, 3);
    AlignedBuffer in(4096);
    ASSERT_TRUE(dev->write(4096, out.span(), true).ok());
    ASSERT_TRUE(dev->read(4096, in.span()).ok());
    EXPECT_TRUE(std::equal(in.span().begin(), in.span().end(), out.span().begin()));
  });
}

}  // namespace
}  // namespace thinp::real
