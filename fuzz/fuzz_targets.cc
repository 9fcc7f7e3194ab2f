#include "fuzz/fuzz_targets.h"

#include <cstdio>
#include <cstdlib>

namespace thinp::fuzz {

std::span<const FuzzTarget> fuzz_targets() {
  // One line per target, in name order.
  static constexpr FuzzTarget kTargets[] = {
      {"block_header", fuzz_block_header, check_block_header, seeds_block_header},
      {"superblock", fuzz_superblock, check_superblock, seeds_superblock},
  };
  return kTargets;
}

void fuzz_require(bool cond, const char* what) {
  if (cond) return;
  std::fprintf(stderr, "fuzz finding: %s\n", what);
  std::abort();
}

}  // namespace thinp::fuzz
