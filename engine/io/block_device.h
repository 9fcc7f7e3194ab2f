// BlockDevice: the other half of the engine's seam (see runtime.h).
//
// The device contract (DESIGN.md section 4), which every implementation keeps
// and the simulator enforces:
//   - A write completes into the device's volatile write cache. It is durable
//     only after a FLUSH that was submitted after the write completed, or if
//     the write carried FUA, in which case it is durable when it completes.
//   - Completion order is not submission order. Two overlapping writes in
//     flight at once may land in either order; the engine must not issue them.
//   - A read returns the newest completed write to each sector (cache or
//     media), or for sectors written by an in-flight write, old or new data.
//   - After a crash, every write that was not durable may be kept, dropped,
//     or torn at sector granularity.
//
// Addresses and lengths are in bytes and must be multiples of
// logical_sector_bytes(); buffers must be aligned to kIoBufferAlignment
// (O_DIRECT needs it; AlignedBuffer provides it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "engine/base/status.h"
#include "engine/runtime/runtime.h"

namespace thinp {

inline constexpr size_t kIoBufferAlignment = 4096;

enum class IoOp : uint8_t { read, write, flush, discard };

const char* io_op_name(IoOp op);

// One asynchronous request. The submitter owns it and must keep it (and the
// buffer it points to) alive until on_complete has run.
struct IoRequest {
  IoOp op = IoOp::read;
  bool fua = false;                // write only: durable on completion
  uint64_t offset_bytes = 0;       // read, write, discard
  uint64_t length_bytes = 0;       // read, write, discard
  std::byte* data = nullptr;       // read: destination; write: source
  // Runs exactly once, on the runtime's thread, never from inside submit().
  std::function<void(Status)> on_complete;
};

class BlockDevice {
 public:
  explicit BlockDevice(Runtime& rt) : rt_(rt) {}
  virtual ~BlockDevice() = default;
  BlockDevice(const BlockDevice&) = delete;
  BlockDevice& operator=(const BlockDevice&) = delete;

  // Starts `req`. A request that breaks the contract above (misaligned, past
  // the end) completes with invalid_argument; it is not an assertion, because
  // sizes come from untrusted metadata.
  virtual void submit(IoRequest* req) = 0;

  virtual uint64_t size_bytes() const = 0;
  virtual uint32_t logical_sector_bytes() const = 0;
  // A short description for messages: the path, or "sim-disk#3".
  virtual std::string name() const = 0;

  Runtime& runtime() const { return rt_; }

  // Suspending forms of submit(): each submits one request and suspends the
  // calling task until it completes. Task only.
  Status read(uint64_t offset_bytes, std::span<std::byte> out);
  Status write(uint64_t offset_bytes, std::span<const std::byte> in, bool fua = false);
  Status flush();
  Status discard(uint64_t offset_bytes, uint64_t length_bytes);

  // Submits and waits for a prepared request. Task only.
  Status submit_and_wait(IoRequest& req);

 protected:
  // Checks `req` against alignment and size; implementations call it first.
  Status validate(const IoRequest& req) const;

 private:
  Runtime& rt_;
};

// A heap buffer aligned to kIoBufferAlignment and zero-filled at allocation,
// so no uninitialised byte ever reaches a device.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size_bytes);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& o) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<std::byte> span() { return {data_, size_}; }
  std::span<const std::byte> span() const { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace thinp
