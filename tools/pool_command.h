// Pool administration on real devices: `thinp format`, `thinp status`,
// `thinp check`. Each opens the device(s) with open_real_device, runs the
// engine's Pool as one task on a Reactor, prints its result, and returns the
// process exit code: 0 success (check: clean), 1 failure or findings (one
// line each), with every error one line on stderr prefixed "thinp: error:".
// The thin verbs (thin_command.h) share the runner declared at the end.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "engine/base/status.h"
#include "engine/io/block_device.h"
#include "engine/runtime/runtime.h"

namespace thinp::pool {
class Pool;
}

namespace thinp::tools {

struct PoolDeviceArgs {
  std::string device;       // metadata device (and data, for a one-device pool)
  std::string data_device;  // empty: one-device pool
};

struct FormatArgs {
  PoolDeviceArgs devices;
  uint64_t data_block_bytes = 64 * 1024;
  uint64_t metadata_bytes = 0;  // 0: the default
  bool force = false;
};

int run_format(const FormatArgs& args);
// Geometry and space use, the pool's mode, and one line per thin.
int run_status(const PoolDeviceArgs& args);
int run_check(const PoolDeviceArgs& args);

// --- Shared by the pool and thin verbs ---------------------------------------

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Prints `s` as one "thinp: error:" line (newlines flattened) and returns 1.
int fail(const Status& s);
// The same for a usage error (exit 2).
int usage_fail(const std::string& what);

// The devices of one command, opened on one reactor.
struct Devices {
  std::unique_ptr<BlockDevice> metadata;
  std::unique_ptr<BlockDevice> data;  // null for a one-device pool
};

struct DeviceOpenMode {
  bool read_only = false;
  // Block devices: O_EXCL. Off only for readers that must work while another
  // process holds the pool (thinp mappings).
  bool exclusive = true;
};

// Opens the devices and runs `body` as the only task on a fresh reactor;
// returns its exit code (1 if the devices do not open or the reactor ends
// otherwise than idle).
int run_on_reactor(const PoolDeviceArgs& args, DeviceOpenMode mode,
                   const std::function<int(Runtime&, Devices&)>& body);

// run_on_reactor + Pool::open, `body`, Pool::close. The pool is closed on
// every path; a close error is reported only if `body` succeeded, so a
// command prints at most one error line.
int run_with_pool(const PoolDeviceArgs& args,
                  const std::function<int(pool::Pool&, const Devices&)>& body);

}  // namespace thinp::tools
