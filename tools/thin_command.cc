#include "tools/thin_command.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "engine/base/assert.h"
#include "engine/pool/pinned_walker.h"
#include "engine/pool/pool.h"

namespace thinp::tools {
namespace {

// IO is done in chunks of this many bytes (unit aligned after the first).
constexpr uint64_t kChunkBytes = uint64_t(1) << 20;

// The granularity of the IO this tool hands the pool: the pool takes
// multiples of 512 bytes, but passes reads and in-place writes of provisioned
// blocks straight to the data device, which may want whole 4 KiB sectors (a
// file opened with O_DIRECT does), so whole sectors of the data device.
uint64_t io_unit_bytes(const Devices& d) {
  const BlockDevice& data = d.data ? *d.data : *d.metadata;
  const uint64_t unit = std::max<uint64_t>(512, data.logical_sector_bytes());
  TP_ASSERT_EQ(kChunkBytes % unit, 0u);
  return unit;
}

uint64_t unit_floor(uint64_t bytes, uint64_t unit) { return bytes / unit * unit; }
// Callers check ranges against a thin's size first, so this cannot overflow.
uint64_t unit_ceil(uint64_t bytes, uint64_t unit) { return unit_floor(bytes + unit - 1, unit); }

std::string thin_name(uint64_t thin) { return "thin " + std::to_string(thin); }

// The thin's size in bytes; not_found with a clear message for an unknown thin.
Result<uint64_t> thin_bytes(pool::Pool& pool, uint64_t thin) {
  Result<pool::ThinInfo> info = pool.thin_info(ThinId(thin));
  if (info.status().code() == Errc::not_found) {
    return Status(Errc::not_found, "no " + thin_name(thin) + " in this pool");
  }
  if (!info.ok()) return info.status();
  return info->virtual_blocks * pool.data_block_bytes();
}

Status check_range(const char* what, uint64_t thin, uint64_t offset, uint64_t length,
                   uint64_t size) {
  if (offset <= size && length <= size - offset) return ok_status();
  return Status(Errc::invalid_argument, std::string(what) + " of " + std::to_string(length) +
                                            " bytes at offset " + std::to_string(offset) +
                                            " goes past the end of " + thin_name(thin) + " (" +
                                            std::to_string(size) + " bytes)");
}

std::string errno_text() { return std::strerror(errno); }

// Writes `bytes` at byte `offset` of the thin. A unit the range covers only
// in part is read first so that its other bytes keep their contents. `buf`
// holds at least the unit-aligned span of the range.
Status write_bytes(pool::Pool& pool, ThinId thin, uint64_t offset, std::span<const std::byte> bytes,
                   uint64_t unit, AlignedBuffer& buf) {
  const uint64_t begin = unit_floor(offset, unit), end = unit_ceil(offset + bytes.size(), unit);
  TP_ASSERT_LE(end - begin, buf.size());
  const std::span<std::byte> span = buf.span().first(end - begin);
  const bool partial_head = offset != begin;
  const bool partial_tail = offset + bytes.size() != end;
  if (partial_head) TP_RETURN_IF_ERROR(pool.read(thin, begin, span.first(unit)));
  if (partial_tail && !(partial_head && span.size() == unit)) {
    // The pool wants aligned buffers: read the tail unit on its own.
    AlignedBuffer tail(unit);
    TP_RETURN_IF_ERROR(pool.read(thin, end - unit, tail.span()));
    std::copy(tail.span().begin(), tail.span().end(), span.end() - unit);
  }
  std::copy(bytes.begin(), bytes.end(), span.begin() + (offset - begin));
  return pool.write(thin, begin, span);
}

// Copies the input into the thin from `offset`; returns the bytes written.
Result<uint64_t> copy_in(pool::Pool& pool, uint64_t thin, uint64_t offset, uint64_t unit,
                         FILE* in) {
  TP_ASSIGN_OR_RETURN(const uint64_t size, thin_bytes(pool, thin));
  AlignedBuffer buf(kChunkBytes);
  std::vector<std::byte> chunk(kChunkBytes);
  uint64_t pos = offset;
  for (;;) {
    // After the first chunk every chunk starts on a unit boundary.
    const size_t want = kChunkBytes - pos % unit;
    const size_t got = std::fread(chunk.data(), 1, want, in);
    if (std::ferror(in)) return Status(Errc::io_error, "reading the input: " + errno_text());
    if (got == 0) break;
    TP_RETURN_IF_ERROR(check_range("write", thin, pos, got, size));
    Status s = write_bytes(pool, ThinId(thin), pos, std::span(chunk).first(got), unit, buf);
    if (!s.ok())
      return s.with_context("writing " + thin_name(thin) + " at offset " + std::to_string(pos));
    pos += got;
    if (got < want) break;
  }
  return pos - offset;
}

// Copies [offset, offset + length) of the thin to `out`.
Status copy_out(pool::Pool& pool, uint64_t thin, uint64_t offset, uint64_t length, uint64_t unit,
                FILE* out) {
  TP_ASSIGN_OR_RETURN(const uint64_t size, thin_bytes(pool, thin));
  TP_RETURN_IF_ERROR(check_range("read", thin, offset, length, size));
  AlignedBuffer buf(kChunkBytes);
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t n = std::min(kChunkBytes - pos % unit, end - pos);
    const uint64_t begin = unit_floor(pos, unit);
    const std::span<std::byte> span = buf.span().first(unit_ceil(pos + n, unit) - begin);
    Status s = pool.read(ThinId(thin), begin, span);
    if (!s.ok()) {
      return s.with_context("reading " + thin_name(thin) + " at offset " + std::to_string(pos));
    }
    if (std::fwrite(span.data() + (pos - begin), 1, n, out) != n) {
      return Status(Errc::io_error, "writing the output: " + errno_text());
    }
    pos += n;
  }
  return ok_status();
}

// Opens a user's file, "-" meaning stdin or stdout.
Result<FILE*> open_stream(const std::string& path, bool for_output) {
  if (path == "-") return for_output ? stdout : stdin;
  FILE* f = std::fopen(path.c_str(), for_output ? "wb" : "rb");
  if (f == nullptr) {
    return Status(errno == ENOENT ? Errc::not_found : Errc::io_error,
                  std::string("cannot open ") + (for_output ? "output " : "input ") + path + ": " +
                      errno_text());
  }
  return f;
}

}  // namespace

int run_create_thin(const ThinArgs& args, uint64_t size_bytes) {
  return run_with_pool(args.devices, [&](pool::Pool& pool, const Devices&) {
    Status s = pool.create_thin(ThinId(args.thin), size_bytes);
    if (!s.ok()) return fail(s.with_context("creating " + thin_name(args.thin)));
    auto size = thin_bytes(pool, args.thin);
    if (!size.ok()) return fail(size.status());
    std::printf("created %s: %llu bytes\n", thin_name(args.thin).c_str(),
                (unsigned long long)*size);
    return 0;
  });
}

int run_snapshot(const PoolDeviceArgs& devices, uint64_t origin, uint64_t snap) {
  return run_with_pool(devices, [&](pool::Pool& pool, const Devices&) {
    Status s = pool.create_snapshot(ThinId(origin), ThinId(snap));
    if (!s.ok()) {
      return fail(s.with_context("snapshotting " + thin_name(origin) + " as " + thin_name(snap)));
    }
    std::printf("created %s as a snapshot of %s\n", thin_name(snap).c_str(),
                thin_name(origin).c_str());
    return 0;
  });
}

int run_delete_thin(const ThinArgs& args) {
  return run_with_pool(args.devices, [&](pool::Pool& pool, const Devices&) {
    Status s = pool.delete_thin(ThinId(args.thin));
    if (!s.ok()) return fail(s.with_context("deleting " + thin_name(args.thin)));
    std::printf("deleted %s\n", thin_name(args.thin).c_str());
    return 0;
  });
}

int run_pin(const ThinArgs& args) {
  return run_with_pool(args.devices, [&](pool::Pool& pool, const Devices&) {
    Status s = pool.pin(ThinId(args.thin));
    if (!s.ok()) return fail(s.with_context("pinning " + thin_name(args.thin)));
    auto info = pool.thin_info(ThinId(args.thin));
    if (!info.ok()) return fail(info.status());
    std::printf("pinned %s (root m:%llu); read it with thinp mappings\n",
                thin_name(args.thin).c_str(), (unsigned long long)info->root.value());
    return 0;
  });
}

int run_grow(const PoolDeviceArgs& devices) {
  return run_with_pool(devices, [&](pool::Pool& pool, const Devices& devs) {
    const pool::PoolStatus before = pool.status();
    const Superblock& sb = pool.superblock();
    const BlockDevice& dev = devs.data != nullptr ? *devs.data : *devs.metadata;
    const uint64_t base = sb.geometry.data_on_metadata_device ? sb.geometry.data_offset_bytes : 0;
    const uint64_t fits =
        dev.size_bytes() > base ? (dev.size_bytes() - base) / sb.geometry.data_block_bytes : 0;
    const uint64_t target = std::min(fits, sb.layout.data_blocks_max);
    if (target <= before.store.data_blocks) {
      std::printf("data blocks: %llu; %s has no room for more\n",
                  (unsigned long long)before.store.data_blocks, dev.name().c_str());
      return 0;
    }
    Status s = pool.grow_data(target);
    if (!s.ok()) return fail(s.with_context("growing the data area"));
    std::printf("data blocks: %llu -> %llu\n", (unsigned long long)before.store.data_blocks,
                (unsigned long long)target);
    return 0;
  });
}

int run_unpin(const ThinArgs& args) {
  return run_with_pool(args.devices, [&](pool::Pool& pool, const Devices&) {
    Status s = pool.unpin(ThinId(args.thin));
    if (!s.ok()) return fail(s.with_context("unpinning " + thin_name(args.thin)));
    std::printf("unpinned %s\n", thin_name(args.thin).c_str());
    return 0;
  });
}

int run_write(const ThinArgs& args, uint64_t offset, const std::string& input) {
  Result<FILE*> in = open_stream(input, false);
  if (!in.ok()) return fail(in.status());
  const int code = run_with_pool(args.devices, [&](pool::Pool& pool, const Devices& d) {
    // A regular file's length is known: refuse a write past the end before
    // anything is written.
    struct stat st;
    if (fstat(fileno(*in), &st) == 0 && S_ISREG(st.st_mode)) {
      auto size = thin_bytes(pool, args.thin);
      if (!size.ok()) return fail(size.status());
      Status s = check_range("write", args.thin, offset, uint64_t(st.st_size), *size);
      if (!s.ok()) return fail(s);
    }
    Result<uint64_t> written = copy_in(pool, args.thin, offset, io_unit_bytes(d), *in);
    if (!written.ok()) return fail(written.status());
    Status flushed = pool.flush();
    if (!flushed.ok()) return fail(flushed.with_context("flushing"));
    std::printf("wrote %llu bytes to %s at offset %llu\n", (unsigned long long)*written,
                thin_name(args.thin).c_str(), (unsigned long long)offset);
    return 0;
  });
  if (*in != stdin) std::fclose(*in);
  return code;
}

int run_read(const ThinArgs& args, uint64_t offset, uint64_t length, const std::string& output) {
  Result<FILE*> out = open_stream(output, true);
  if (!out.ok()) return fail(out.status());
  int code = run_with_pool(args.devices, [&](pool::Pool& pool, const Devices& d) {
    Status s = copy_out(pool, args.thin, offset, length, io_unit_bytes(d), *out);
    return s.ok() ? 0 : fail(s);
  });
  if (*out == stdout) {
    if (std::fflush(stdout) != 0 && code == 0) {
      code = fail(Status(Errc::io_error, "writing the output: " + errno_text()));
    }
  } else if (std::fclose(*out) != 0 && code == 0) {
    code = fail(Status(Errc::io_error, "writing " + output + ": " + errno_text()));
  }
  return code;
}

int run_mappings(const ThinArgs& args) {
  // Only the metadata device, read-only and shared: the pool may be open in
  // another process.
  PoolDeviceArgs metadata_only{args.devices.device, ""};
  const DeviceOpenMode mode{.read_only = true, .exclusive = false};
  return run_on_reactor(metadata_only, mode, [&](Runtime& rt, Devices& d) {
    auto runs = pool::read_pinned_mappings(rt, *d.metadata, ThinId(args.thin));
    if (!runs.ok()) return fail(runs.status());
    uint64_t mapped = 0;
    for (const Run& r : *runs) {
      std::printf("%llu %llu %llu %llu\n", (unsigned long long)r.vbegin.value(),
                  (unsigned long long)r.length, (unsigned long long)r.dbegin.value(),
                  (unsigned long long)r.time.value());
      mapped += r.length;
    }
    std::printf("%s: %zu runs, %llu blocks mapped (pinned tree)\n", thin_name(args.thin).c_str(),
                runs->size(), (unsigned long long)mapped);
    return 0;
  });
}

}  // namespace thinp::tools
