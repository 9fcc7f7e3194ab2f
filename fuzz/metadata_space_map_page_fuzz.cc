// libFuzzer entry point for fuzz_metadata_space_map_page
// (fuzz/metadata_space_map_page_fuzz_target.cc).
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return thinp::fuzz::fuzz_metadata_space_map_page(data, size);
}
