// libFuzzer entry point for fuzz_superblock (fuzz/superblock_fuzz_target.cc).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return thinp::fuzz::fuzz_superblock(data, size);
}
