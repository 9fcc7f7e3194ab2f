// open_real_device()'s error cases, and block devices (loop devices).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/real/real_device.h"

namespace thinp::real {
namespace {

std::string make_file(uint64_t size_bytes) {
  char name[] = "/tmp/thinp-open-test-XXXXXX";
  const int fd = ::mkstemp(name);
  TP_ASSERT_GE(fd, 0);
  TP_ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size_bytes)), 0);
  ::close(fd);
  return name;
}

// Removes a file made by make_file() at scope exit.
struct Unlinker {
  std::string path;
  ~Unlinker() { ::unlink(path.c_str()); }
};

Status open_error(Reactor& r, const std::string& path, const OpenOptions& o = {}) {
  auto dev = open_real_device(r, path, o);
  return dev.ok() ? ok_status() : dev.status();
}

TEST(RealDeviceOpenTest, MissingPath) {
  Reactor r;
  Status s = open_error(r, "/tmp/thinp-no-such-file");
  EXPECT_EQ(s.code(), Errc::not_found);
  EXPECT_EQ(s.message(), "/tmp/thinp-no-such-file: no such file or device");
}

TEST(RealDeviceOpenTest, DirectoryAndCharacterDeviceAreRefused) {
  Reactor r;
  Status dir = open_error(r, "/tmp");
  EXPECT_EQ(dir.code(), Errc::invalid_argument);
  EXPECT_EQ(dir.message(), "/tmp: not a regular file or block device (it is a directory)");
  Status chr = open_error(r, "/dev/null");
  EXPECT_EQ(chr.code(), Errc::invalid_argument);
  EXPECT_EQ(chr.message(),
            "/dev/null: not a regular file or block device (it is a character device)");
}

TEST(RealDeviceOpenTest, EmptyFileIsRefused) {
  Reactor r;
  Unlinker f{make_file(0)};
  Status s = open_error(r, f.path);
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_EQ(s.message(), f.path + ": size is zero");
}

TEST(RealDeviceOpenTest, SizeNotAMultipleOfTheSectorIsRefused) {
  Reactor r;
  Unlinker f{make_file(10000)};
  Status s = open_error(r, f.path);
  EXPECT_EQ(s.code(), Errc::invalid_argument);
  EXPECT_EQ(s.message(),
            f.path + ": size 10000 bytes is not a multiple of the 4096-byte sector size");
}

// Root ignores file modes, so as root the file is made immutable instead.
TEST(RealDeviceOpenTest, NoWritePermissionIsReadOnly) {
  Reactor r;
  Unlinker f{make_file(8192)};
  bool immutable = false;
  if (::geteuid() == 0) {
    const int fd = ::open(f.path.c_str(), O_RDONLY);
    int flags = 0;
    if (fd >= 0 && ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      flags |= FS_IMMUTABLE_FL;
      immutable = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    if (fd >= 0) ::close(fd);
    if (!immutable) GTEST_SKIP() << "cannot make a file immutable here";
  } else {
    ASSERT_EQ(::chmod(f.path.c_str(), 0400), 0);
  }
  Status s = open_error(r, f.path);
  Status read_only_open = open_error(r, f.path, OpenOptions{.read_only = true});
  if (immutable) {
    const int fd = ::open(f.path.c_str(), O_RDONLY);
    int flags = 0;
    ASSERT_EQ(::ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
    flags &= ~FS_IMMUTABLE_FL;
    ASSERT_EQ(::ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
    ::close(fd);
  }
  EXPECT_EQ(s.code(), Errc::read_only);
  EXPECT_EQ(s.message().rfind(f.path + ": no write permission (", 0), 0u) << s.message();
  EXPECT_TRUE(read_only_open.ok()) << read_only_open.to_string();
}

// --- Loop devices ---------------------------------------------------------------

// A loop device over a file, attached with losetup and detached at scope
// exit. Tests skip when not root or when losetup fails (no loop support).
class LoopDevice {
 public:
  LoopDevice(const std::string& file, bool read_only) {
    if (::geteuid() != 0) return;
    const std::string cmd =
        std::string("losetup -f --show ") + (read_only ? "-r " : "") + file + " 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return;
    char line[256] = {};
    if (std::fgets(line, sizeof line, p) != nullptr) path_ = line;
    ::pclose(p);
    while (!path_.empty() && (path_.back() == '\n' || path_.back() == ' ')) path_.pop_back();
  }
  ~LoopDevice() {
    if (!path_.empty()) (void)std::system(("losetup -d " + path_).c_str());
  }
  bool attached() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

AlignedBuffer filled(size_t bytes, uint8_t value) {
  AlignedBuffer b(bytes);
  std::memset(b.data(), value, bytes);
  return b;
}

void loop_round_trip(bool use_uring) {
  Unlinker f{make_file(4 << 20)};
  LoopDevice loop(f.path, false);
  if (!loop.attached()) GTEST_SKIP() << "needs root and losetup";
  Reactor r;
  auto opened = open_real_device(r, loop.path(), OpenOptions{.use_uring = use_uring});
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  BlockDevice& dev = **opened;
  auto& real = dynamic_cast<RealDevice&>(dev);
  EXPECT_EQ(real.kind(), DeviceKind::block_device);
  EXPECT_EQ(real.uses_uring(), use_uring && r.has_ring());
  EXPECT_EQ(dev.size_bytes(), 4u << 20);
  const uint32_t sector = dev.logical_sector_bytes();
  EXPECT_TRUE(sector == 512 || sector == 4096) << sector;
  r.spawn("io", [&] {
    AlignedBuffer out = filled(64 * 1024, 0xab);
    ASSERT_TRUE(dev.write(sector, out.span(), /*fua=*/true).ok());
    ASSERT_TRUE(dev.flush().ok());
    AlignedBuffer in(64 * 1024);
    ASSERT_TRUE(dev.read(sector, in.span()).ok());
    EXPECT_EQ(std::memcmp(in.data(), out.data(), in.size()), 0);
    Status d = dev.discard(sector, 32 * 1024);
    ASSERT_TRUE(d.ok()) << d.to_string();
    ASSERT_TRUE(dev.read(sector, in.span()).ok());
    AlignedBuffer zeros(32 * 1024);
    EXPECT_EQ(std::memcmp(in.data(), zeros.data(), zeros.size()), 0);
    EXPECT_EQ(std::memcmp(in.data() + 32 * 1024, out.data(), 32 * 1024), 0);
  });
  ASSERT_EQ(r.run(), ReactorOutcome::idle) << r.deadlock_report();
}

TEST(RealDeviceLoopTest, RoundTripThroughUring) { loop_round_trip(true); }
TEST(RealDeviceLoopTest, RoundTripThroughFallback) { loop_round_trip(false); }

TEST(RealDeviceLoopTest, SecondExclusiveOpenIsBusy) {
  Unlinker f{make_file(1 << 20)};
  LoopDevice loop(f.path, false);
  if (!loop.attached()) GTEST_SKIP() << "needs root and losetup";
  Reactor r;
  auto first = open_real_device(r, loop.path());
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  Status second = open_error(r, loop.path());
  EXPECT_EQ(second.code(), Errc::busy);
  EXPECT_EQ(second.message(),
            loop.path() + ": device in use (mounted, or opened exclusively by another program)");
  // Without O_EXCL the caller takes responsibility, and the open succeeds.
  EXPECT_TRUE(open_error(r, loop.path(), OpenOptions{.exclusive = false}).ok());
}

TEST(RealDeviceLoopTest, ReadOnlyDeviceRefusesAWriteOpen) {
  Unlinker f{make_file(1 << 20)};
  LoopDevice loop(f.path, true);
  if (!loop.attached()) GTEST_SKIP() << "needs root and losetup";
  Reactor r;
  Status s = open_error(r, loop.path());
  EXPECT_EQ(s.code(), Errc::read_only);
  EXPECT_EQ(s.message(), loop.path() + ": read-only device, cannot open for writing");
  EXPECT_TRUE(open_error(r, loop.path(), OpenOptions{.read_only = true}).ok());
}

}  // namespace
}  // namespace thinp::real
