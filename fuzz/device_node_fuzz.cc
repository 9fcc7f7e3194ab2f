// libFuzzer entry point for fuzz_device_node (fuzz/device_node_fuzz_target.cc).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return thinp::fuzz::fuzz_device_node(data, size);
}
