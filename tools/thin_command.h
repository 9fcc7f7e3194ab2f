// The thin verbs of `thinp`: create, snapshot, delete, write, read, pin,
// unpin (each opens the pool with Pool::open, does one thing, and closes it),
// and mappings (reads a pinned thin's tree straight from the metadata device
// without opening the pool, so it works while another process has it open).
//
// Exit codes as the pool verbs (pool_command.h): 0 success, 1 an operational
// error, 2 a usage error; every error is one "thinp: error:" line on stderr.
// Byte offsets and lengths may be any value: IO that does not start or end on
// a sector of the data device is done by reading the partial sectors first.
#pragma once

#include <cstdint>
#include <string>

#include "tools/pool_command.h"

namespace thinp::tools {

struct ThinArgs {
  PoolDeviceArgs devices;
  uint64_t thin = 0;
};

int run_create_thin(const ThinArgs& args, uint64_t size_bytes);
int run_snapshot(const PoolDeviceArgs& devices, uint64_t origin, uint64_t snap);
int run_delete_thin(const ThinArgs& args);
int run_pin(const ThinArgs& args);
int run_unpin(const ThinArgs& args);
// Grows the pool's data area to fill its device (after the device, file or
// data device was enlarged). Prints the old and new number of data blocks.
int run_grow(const PoolDeviceArgs& devices);

// Writes the bytes of `input` (a file, or "-" for stdin) at byte `offset` of
// the thin, then flushes: exit 0 means the data is durable. Bytes of a
// partially written sector outside the input are left as they were.
int run_write(const ThinArgs& args, uint64_t offset, const std::string& input);

// Copies `length` bytes at byte `offset` of the thin to `output` (a file,
// truncated first, or "-" for stdout).
int run_read(const ThinArgs& args, uint64_t offset, uint64_t length, const std::string& output);

// One line per mapped run, "<virtual begin> <length> <data begin> <time>"
// in blocks, then a summary line. The thin must be pinned.
int run_mappings(const ThinArgs& args);

}  // namespace thinp::tools
