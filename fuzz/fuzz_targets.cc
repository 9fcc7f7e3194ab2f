#include "fuzz/fuzz_targets.h"

#include <cstdio>
#include <cstdlib>

namespace thinp::fuzz {

std::span<const FuzzTarget> fuzz_targets() {
  // One line per target, in name order.
  static constexpr FuzzTarget kTargets[] = {
      {"block_header", fuzz_block_header, check_block_header, seeds_block_header},
      {"data_space_map_page", fuzz_data_space_map_page, check_data_space_map_page,
       seeds_data_space_map_page},
      {"device_node", fuzz_device_node, check_device_node, seeds_device_node},
      {"journal_block", fuzz_journal_block, check_journal_block, seeds_journal_block},
      {"mapping_node", fuzz_mapping_node, check_mapping_node, seeds_mapping_node},
      {"metadata_space_map_page", fuzz_metadata_space_map_page, check_metadata_space_map_page,
       seeds_metadata_space_map_page},
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
