// Real block devices: a regular file, a loop device or a block device, opened
// with O_DIRECT and driven through the Reactor's io_uring ring.
//
// How each BlockDevice operation maps onto the OS:
//   read          IORING_OP_READ                       (fallback: pread)
//   write         IORING_OP_WRITE                      (fallback: pwrite)
//   write + FUA   IORING_OP_WRITE with RWF_DSYNC       (fallback: pwritev2 RWF_DSYNC)
//   flush         IORING_OP_FSYNC with DATASYNC        (fallback: fdatasync)
//   discard       file: IORING_OP_FALLOCATE punch-hole (fallback: fallocate)
//                 block device: ioctl(BLKDISCARD), synchronous on the reactor's
//                 thread (io_uring has no discard before Linux 6.12)
// RWF_DSYNC on an O_DIRECT write makes the kernel send it with FUA (or a
// write followed by a cache flush where the device has no FUA), which is the
// device contract's "durable when it completes". fdatasync on a block device
// sends a cache flush; on a file it also writes back the file's allocation
// metadata, which a first write into a hole needs to be durable.
//
// The fallback (pread/pwrite) is used when the Reactor has no ring or when
// OpenOptions::use_uring is false. It does the IO synchronously inside
// submit() and delivers the completion from the reactor's loop, so callers
// see the same ordering rules either way.
//
// Sector size. Block devices report theirs (BLKSSZGET). A regular file has
// none of its own: O_DIRECT needs offsets, lengths and buffers aligned to what
// the file system and the disk under it accept, which is the disk's logical
// block size (512 or 4096) or the file system's block size on some file
// systems. 4096 is accepted by all of them and is the engine's metadata block
// size anyway, so files use 4096 unless statx(STATX_DIOALIGN) reports a
// larger alignment, which is then used instead.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/io/block_device.h"
#include "engine/real/reactor.h"

namespace thinp::real {

inline constexpr uint32_t kFileSectorBytes = 4096;

struct OpenOptions {
  // Open O_RDONLY. Writes and discards then complete with Errc::read_only.
  bool read_only = false;
  // Block devices only: open with O_EXCL, so that a mounted device or one
  // another program holds exclusively is refused with Errc::busy instead of
  // being overwritten.
  bool exclusive = true;
  // False: use the pread/pwrite fallback even when the Reactor has a ring.
  bool use_uring = true;
};

enum class DeviceKind : uint8_t { regular_file, block_device };

// Opens `path` for IO through `reactor`. The device keeps a reference to the
// reactor, which must outlive it. Errors, each a one-line Status naming the
// path:
//   not_found         the path does not exist
//   invalid_argument  not a regular file or block device; size zero or not a
//                     multiple of the sector size
//   read_only         opened for write, but the device is read-only or the
//                     caller lacks write permission
//   busy              a block device in use (mounted, or held exclusively)
//   unsupported       the file system refuses O_DIRECT
//   io_error          any other failure of the system calls involved
// Callable from a task or from outside one.
Result<std::unique_ptr<BlockDevice>> open_real_device(Reactor& reactor, const std::string& path,
                                                      const OpenOptions& options = {});

// The BlockDevice that open_real_device() returns. Engine code sees only
// BlockDevice; the accessors here are for tools and tests.
class RealDevice final : public BlockDevice {
 public:
  // Waits for this device's IO still in the ring, then closes the file.
  // Not callable from inside an IO completion.
  ~RealDevice() override;

  // BlockDevice. submit() is callable from a task or from outside one, on the
  // reactor's thread; completions arrive from Reactor::run().
  void submit(IoRequest* req) override;
  uint64_t size_bytes() const override { return size_bytes_; }
  uint32_t logical_sector_bytes() const override { return sector_bytes_; }
  std::string name() const override { return path_; }

  DeviceKind kind() const { return kind_; }
  bool uses_uring() const { return use_uring_; }
  bool read_only() const { return read_only_; }

 private:
  struct UringIo;
  friend Result<std::unique_ptr<BlockDevice>> open_real_device(Reactor&, const std::string&,
                                                               const OpenOptions&);
  RealDevice(Reactor& reactor, std::string path, int fd, DeviceKind kind, uint64_t size_bytes,
             uint32_t sector_bytes, bool read_only, bool use_uring);

  Status check_request(const IoRequest& req) const;
  void submit_uring(IoRequest* req);
  void finish_uring(UringIo* io, int32_t res);
  Status do_sync(const IoRequest& req);
  Status transfer_sync(const IoRequest& req);
  Status discard_block_device(const IoRequest& req);
  Status error_status(const IoRequest& req, int err) const;

  Reactor& reactor_;
  const std::string path_;
  const int fd_;
  const DeviceKind kind_;
  const uint64_t size_bytes_;
  const uint32_t sector_bytes_;
  const bool read_only_;
  const bool use_uring_;
  uint64_t in_flight_ = 0;  // requests in the ring
  // Completion records for requests in the ring, reused so that the steady
  // state allocates nothing. The pool grows to the peak queue depth.
  std::vector<std::unique_ptr<UringIo>> io_pool_;
  std::vector<UringIo*> free_ios_;
};

}  // namespace thinp::real
