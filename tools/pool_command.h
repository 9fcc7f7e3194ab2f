// Pool administration on real devices: `thinp format`, `thinp status`,
// `thinp check`. Each opens the device(s) with open_real_device, runs the
// engine's MetadataStore as one task on a Reactor, prints its result, and
// returns the process exit code: 0 success (check: clean), 1 failure or
// findings (one line each), with every error one line on stderr prefixed
// "thinp: error:".
#pragma once

#include <cstdint>
#include <string>

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
int run_status(const PoolDeviceArgs& args);
int run_check(const PoolDeviceArgs& args);

}  // namespace thinp::tools
