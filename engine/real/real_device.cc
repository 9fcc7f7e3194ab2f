#include "engine/real/real_device.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "engine/base/assert.h"

namespace thinp::real {
namespace {

// Linux transfers at most this much in one read or write (MAX_RW_COUNT); a
// longer request would come back short.
constexpr uint64_t kMaxTransferBytes = 0x7ffff000;

Status errno_status(Errc code, const std::string& path, const std::string& what, int err) {
  return Status(code, path + ": " + what + ": " + std::strerror(err));
}

// Closes a descriptor on every early return of open_real_device().
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Finds out what `path` is; only regular files and block devices qualify.
Result<DeviceKind> classify(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      return Status(Errc::not_found, path + ": no such file or device");
    return errno_status(Errc::io_error, path, "cannot stat", err);
  }
  if (S_ISREG(st.st_mode)) return DeviceKind::regular_file;
  if (S_ISBLK(st.st_mode)) return DeviceKind::block_device;
  const char* what = S_ISDIR(st.st_mode)   ? "a directory"
                     : S_ISCHR(st.st_mode) ? "a character device"
                                           : "a special file";
  return Status(Errc::invalid_argument,
                path + ": not a regular file or block device (it is " + what + ")");
}

bool block_device_is_read_only(int fd) {
  int ro = 0;
  return ::ioctl(fd, BLKROGET, &ro) == 0 && ro != 0;
}

// Explains a refused write open: a read-only block device, or permissions.
Status write_refused(const std::string& path, DeviceKind kind, int err) {
  if (kind == DeviceKind::block_device) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      FdCloser closer(fd);
      if (block_device_is_read_only(fd)) {
        return Status(Errc::read_only, path + ": read-only device, cannot open for writing");
      }
    }
  }
  return Status(Errc::read_only, path + ": no write permission (" + std::strerror(err) + ")");
}

Result<int> open_fd(const std::string& path, DeviceKind kind, const OpenOptions& options) {
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC;
  if (kind == DeviceKind::block_device && options.exclusive) flags |= O_EXCL;
  const int fd = ::open(path.c_str(), flags);
  if (fd >= 0) return fd;
  const int err = errno;
  switch (err) {
    case ENOENT:
      return Status(Errc::not_found, path + ": no such file or device");
    case EACCES:
    case EPERM:
      if (!options.read_only) return write_refused(path, kind, err);
      return errno_status(Errc::io_error, path, "cannot open", err);
    case EROFS:
      return Status(Errc::read_only,
                    path + ": on a read-only file system, cannot open for writing");
    case EBUSY:
    case ETXTBSY:
      return Status(Errc::busy,
                    path + ": device in use (mounted, or opened exclusively by another program)");
    case EINVAL:
      return Status(Errc::unsupported, path + ": the file system does not support O_DIRECT");
    default:
      return errno_status(Errc::io_error, path, "cannot open", err);
  }
}

Result<uint64_t> query_size(int fd, const std::string& path, DeviceKind kind) {
  if (kind == DeviceKind::block_device) {
    uint64_t bytes = 0;
    if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0)
      return errno_status(Errc::io_error, path, "BLKGETSIZE64", errno);
    return bytes;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_status(Errc::io_error, path, "fstat", errno);
  return static_cast<uint64_t>(st.st_size);
}

// See the header comment for why files use 4096 unless told more.
Result<uint32_t> query_sector(int fd, const std::string& path, DeviceKind kind) {
  if (kind == DeviceKind::block_device) {
    int bytes = 0;
    if (::ioctl(fd, BLKSSZGET, &bytes) != 0)
      return errno_status(Errc::io_error, path, "BLKSSZGET", errno);
    if (bytes < 512 || (bytes & (bytes - 1)) != 0 || bytes > 65536) {
      return Status(Errc::unsupported,
                    path + ": unusable logical sector size " + std::to_string(bytes));
    }
    return static_cast<uint32_t>(bytes);
  }
  struct statx sx {};
  uint32_t align = 0;
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
      (sx.stx_mask & STATX_DIOALIGN) != 0) {
    align = std::max(sx.stx_dio_offset_align, sx.stx_dio_mem_align);
  }
  if (align > kIoBufferAlignment) {
    return Status(Errc::unsupported, path + ": O_DIRECT needs " + std::to_string(align) +
                                         "-byte alignment, more than the engine's " +
                                         std::to_string(kIoBufferAlignment));
  }
  return kFileSectorBytes;
}

}  // namespace

Result<std::unique_ptr<BlockDevice>> open_real_device(Reactor& reactor, const std::string& path,
                                                      const OpenOptions& options) {
  TP_ASSIGN_OR_RETURN(const DeviceKind kind, classify(path));
  TP_ASSIGN_OR_RETURN(const int raw_fd, open_fd(path, kind, options));
  FdCloser fd(raw_fd);
  if (kind == DeviceKind::block_device && !options.read_only && block_device_is_read_only(raw_fd)) {
    return Status(Errc::read_only, path + ": read-only device, cannot open for writing");
  }
  TP_ASSIGN_OR_RETURN(const uint64_t size, query_size(raw_fd, path, kind));
  TP_ASSIGN_OR_RETURN(const uint32_t sector, query_sector(raw_fd, path, kind));
  if (size == 0) return Status(Errc::invalid_argument, path + ": size is zero");
  if (size % sector != 0) {
    return Status(Errc::invalid_argument, path + ": size " + std::to_string(size) +
                                              " bytes is not a multiple of the " +
                                              std::to_string(sector) + "-byte sector size");
  }
  const bool use_uring = options.use_uring && reactor.has_ring();
  return std::unique_ptr<BlockDevice>(new RealDevice(reactor, path, fd.release(), kind, size,
                                                     sector, options.read_only, use_uring));
}

// --- RealDevice ---------------------------------------------------------------

struct RealDevice::UringIo final : UringCompletion {
  RealDevice* device = nullptr;
  IoRequest* req = nullptr;
  void on_uring_complete(int32_t res) override { device->finish_uring(this, res); }
};

RealDevice::RealDevice(Reactor& reactor, std::string path, int fd, DeviceKind kind,
                       uint64_t size_bytes, uint32_t sector_bytes, bool read_only, bool use_uring)
    : BlockDevice(reactor),
      reactor_(reactor),
      path_(std::move(path)),
      fd_(fd),
      kind_(kind),
      size_bytes_(size_bytes),
      sector_bytes_(sector_bytes),
      read_only_(read_only),
      use_uring_(use_uring) {
  TP_ASSERT_GE(fd_, 0);
  TP_ASSERT_GT(size_bytes_, 0u);
  TP_ASSERT_EQ(size_bytes_ % sector_bytes_, 0u);
}

RealDevice::~RealDevice() {
  // The kernel still holds pointers to our UringIo records: wait for them.
  if (in_flight_ > 0) reactor_.drain_ring();
  TP_ASSERT_EQ(in_flight_, 0u);
  ::close(fd_);
}

Status RealDevice::check_request(const IoRequest& req) const {
  TP_RETURN_IF_ERROR(validate(req));
  if (read_only_ && (req.op == IoOp::write || req.op == IoOp::discard)) {
    return Status(Errc::read_only,
                  std::string(io_op_name(req.op)) + " refused: " + path_ + " is open read-only");
  }
  if ((req.op == IoOp::read || req.op == IoOp::write) && req.length_bytes > kMaxTransferBytes) {
    return Status(Errc::invalid_argument,
                  std::string(io_op_name(req.op)) + " of " + std::to_string(req.length_bytes) +
                      " bytes on " + path_ + " exceeds the " + std::to_string(kMaxTransferBytes) +
                      "-byte limit of one transfer");
  }
  return ok_status();
}

void RealDevice::submit(IoRequest* req) {
  TP_ASSERT(req != nullptr);
  TP_ASSERT(req->on_complete != nullptr);
  Status checked = check_request(*req);
  if (!checked.ok()) {
    reactor_.complete_later(req, std::move(checked));
    return;
  }
  // io_uring has no discard for block devices before Linux 6.12's
  // BLOCK_URING_CMD_DISCARD: use the ioctl, whichever path IO takes.
  if (req->op == IoOp::discard && kind_ == DeviceKind::block_device) {
    reactor_.complete_later(req, discard_block_device(*req));
    return;
  }
  if (use_uring_) {
    submit_uring(req);
  } else {
    reactor_.complete_later(req, do_sync(*req));
  }
}

void RealDevice::submit_uring(IoRequest* req) {
  if (free_ios_.empty()) {
    io_pool_.push_back(std::make_unique<UringIo>());
    io_pool_.back()->device = this;
    free_ios_.push_back(io_pool_.back().get());
  }
  UringIo* io = free_ios_.back();
  free_ios_.pop_back();
  io->req = req;
  io_uring_sqe* sqe = reactor_.next_sqe();
  const auto len = static_cast<unsigned>(req->length_bytes);
  switch (req->op) {
    case IoOp::read:
      io_uring_prep_read(sqe, fd_, req->data, len, req->offset_bytes);
      break;
    case IoOp::write:
      io_uring_prep_write(sqe, fd_, req->data, len, req->offset_bytes);
      if (req->fua) sqe->rw_flags = RWF_DSYNC;
      break;
    case IoOp::flush:
      io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
      break;
    case IoOp::discard:
      io_uring_prep_fallocate(sqe, fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              static_cast<off_t>(req->offset_bytes),
                              static_cast<off_t>(req->length_bytes));
      break;
  }
  reactor_.track(sqe, io);
  ++in_flight_;
}

void RealDevice::finish_uring(UringIo* io, int32_t res) {
  IoRequest* req = io->req;
  io->req = nullptr;
  free_ios_.push_back(io);
  TP_ASSERT_GT(in_flight_, 0u);
  --in_flight_;
  Status status;
  if (res < 0) {
    status = error_status(*req, -res);
  } else if ((req->op == IoOp::read || req->op == IoOp::write) &&
             static_cast<uint64_t>(res) != req->length_bytes) {
    status = Status(Errc::io_error, std::string(io_op_name(req->op)) + " of " +
                                        std::to_string(req->length_bytes) + " bytes at " +
                                        std::to_string(req->offset_bytes) + " on " + path_ +
                                        " transferred only " + std::to_string(res));
  }
  req->on_complete(std::move(status));
}

Status RealDevice::do_sync(const IoRequest& req) {
  switch (req.op) {
    case IoOp::read:
    case IoOp::write:
      return transfer_sync(req);
    case IoOp::flush:
      if (::fdatasync(fd_) != 0) return error_status(req, errno);
      return ok_status();
    case IoOp::discard:
      if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      static_cast<off_t>(req.offset_bytes),
                      static_cast<off_t>(req.length_bytes)) != 0) {
        return error_status(req, errno);
      }
      return ok_status();
  }
  TP_UNREACHABLE();
}

// pread/pwrite may transfer less than asked (a signal, a huge request);
// continue from where they stopped. Zero progress is an error, not a loop.
Status RealDevice::transfer_sync(const IoRequest& req) {
  uint64_t done = 0;
  while (done < req.length_bytes) {
    iovec iov{req.data + done, static_cast<size_t>(req.length_bytes - done)};
    const auto offset = static_cast<off_t>(req.offset_bytes + done);
    ssize_t n;
    if (req.op == IoOp::read) {
      n = ::preadv2(fd_, &iov, 1, offset, 0);
    } else {
      n = ::pwritev2(fd_, &iov, 1, offset, req.fua ? RWF_DSYNC : 0);
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error_status(req, errno);
    if (n == 0) {
      return Status(Errc::io_error, std::string(io_op_name(req.op)) + " at " +
                                        std::to_string(offset) + " on " + path_ +
                                        " made no progress");
    }
    done += static_cast<uint64_t>(n);
  }
  return ok_status();
}

Status RealDevice::discard_block_device(const IoRequest& req) {
  uint64_t range[2] = {req.offset_bytes, req.length_bytes};
  if (::ioctl(fd_, BLKDISCARD, &range) != 0) return error_status(req, errno);
  return ok_status();
}

Status RealDevice::error_status(const IoRequest& req, int err) const {
  Errc code = Errc::io_error;
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      code = Errc::no_space;
      break;
    case EROFS:
    case EBADF:
    case EPERM:
      code = Errc::read_only;
      break;
    case EOPNOTSUPP:
      code = Errc::unsupported;
      break;
    case EINVAL:
      code = Errc::invalid_argument;
      break;
    default:
      break;
  }
  std::string what = std::string(io_op_name(req.op));
  if (req.op != IoOp::flush) {
    what +=
        " of " + std::to_string(req.length_bytes) + " bytes at " + std::to_string(req.offset_bytes);
  }
  return Status(code, what + " on " + path_ + " failed: " + std::strerror(err));
}

}  // namespace thinp::real
