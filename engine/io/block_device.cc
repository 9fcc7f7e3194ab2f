#include "engine/io/block_device.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "engine/runtime/sync.h"

namespace thinp {

const char* io_op_name(IoOp op) {
  switch (op) {
    case IoOp::read: return "read";
    case IoOp::write: return "write";
    case IoOp::flush: return "flush";
    case IoOp::discard: return "discard";
  }
  return "?";
}

Status BlockDevice::validate(const IoRequest& req) const {
  if (req.op == IoOp::flush) return ok_status();
  const uint64_t sector = logical_sector_bytes();
  if (req.offset_bytes % sector != 0 || req.length_bytes % sector != 0 || req.length_bytes == 0) {
    return Status(Errc::invalid_argument,
                  std::string(io_op_name(req.op)) + " of " + std::to_string(req.length_bytes) +
                      " bytes at " + std::to_string(req.offset_bytes) + " is not aligned to " +
                      std::to_string(sector) + "-byte sectors on " + name());
  }
  if (req.offset_bytes > size_bytes() || req.length_bytes > size_bytes() - req.offset_bytes) {
    return Status(Errc::invalid_argument,
                  std::string(io_op_name(req.op)) + " of " + std::to_string(req.length_bytes) +
                      " bytes at " + std::to_string(req.offset_bytes) + " is past the end of " +
                      name() + " (" + std::to_string(size_bytes()) + " bytes)");
  }
  if (req.op != IoOp::discard &&
      reinterpret_cast<uintptr_t>(req.data) % kIoBufferAlignment != 0) {
    return Status(Errc::invalid_argument, "IO buffer is not 4096-byte aligned");
  }
  return ok_status();
}

Status BlockDevice::submit_and_wait(IoRequest& req) {
  Event done(rt_, "io");
  Status result;
  req.on_complete = [&](Status s) {
    result = std::move(s);
    done.set();
  };
  submit(&req);
  done.wait();
  return result;
}

Status BlockDevice::read(uint64_t offset_bytes, std::span<std::byte> out) {
  IoRequest req;
  req.op = IoOp::read;
  req.offset_bytes = offset_bytes;
  req.length_bytes = out.size();
  req.data = out.data();
  return submit_and_wait(req);
}

Status BlockDevice::write(uint64_t offset_bytes, std::span<const std::byte> in, bool fua) {
  IoRequest req;
  req.op = IoOp::write;
  req.fua = fua;
  req.offset_bytes = offset_bytes;
  req.length_bytes = in.size();
  // The device never writes through `data` for a write request.
  req.data = const_cast<std::byte*>(in.data());
  return submit_and_wait(req);
}

Status BlockDevice::flush() {
  IoRequest req;
  req.op = IoOp::flush;
  return submit_and_wait(req);
}

Status BlockDevice::discard(uint64_t offset_bytes, uint64_t length_bytes) {
  IoRequest req;
  req.op = IoOp::discard;
  req.offset_bytes = offset_bytes;
  req.length_bytes = length_bytes;
  return submit_and_wait(req);
}

// --- AlignedBuffer ------------------------------------------------------------

AlignedBuffer::AlignedBuffer(size_t size_bytes) : size_(size_bytes) {
  if (size_ == 0) return;
  const size_t rounded = (size_ + kIoBufferAlignment - 1) / kIoBufferAlignment * kIoBufferAlignment;
  data_ = static_cast<std::byte*>(std::aligned_alloc(kIoBufferAlignment, rounded));
  if (data_ == nullptr) throw std::bad_alloc();
  std::memset(data_, 0, rounded);
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

}  // namespace thinp
