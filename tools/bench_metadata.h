// `thinp bench metadata`: how much metadata a mapping tree spends per
// mapping, and what breaking the sharing of a big leaf costs.
//
// Runs entirely in memory (MemoryNodeStore / MemoryDataRefs): the figures
// are properties of the node format and tree algorithms, not of a device.
// Deterministic: the random patterns use a fixed seed, so the same arguments
// print the same report.
//
// Patterns (N = mappings, each inserted as its own one-block write, as a
// thin's first writes would):
//   sequential      v:i -> d:i: one run
//   random-virtual  N distinct random virtual blocks of a 4N-block thin, in
//                   random order, -> consecutive data blocks d:0, d:1, ...
//   random-data     v:i -> N distinct random data blocks of a 4N-block pool
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"

namespace thinp::tools {

// The first write to an origin after a snapshot, when the origin's only leaf
// maps `leaf_blocks` contiguous blocks as one run: the leaf is shared, so the
// write copies it (shadowing) and remaps one block.
struct ShareBreakCost {
  uint64_t leaf_blocks = 0;
  uint64_t page_writes = 0;        // node IOs: PageWrite records
  uint64_t page_write_bytes = 0;   // bytes those records carry
  uint64_t meta_ref_deltas = 0;    // MetaRefDelta records
  uint64_t data_range_deltas = 0;  // DataRangeRefDelta records
  uint64_t journal_records = 0;    // all of the above
};

struct MetadataBenchReport {
  std::string pattern;
  uint64_t mappings = 0;
  uint64_t runs = 0;  // runs stored after merging
  uint64_t leaf_nodes = 0;
  uint64_t internal_nodes = 0;
  uint64_t height = 0;          // levels, 1 = the root is a leaf
  uint64_t metadata_bytes = 0;  // live nodes x 4096
  double bytes_per_mapping = 0;
  double runs_per_leaf = 0;
  uint64_t build_page_writes = 0;  // PageWrite records while building
  ShareBreakCost share_break;      // for a leaf of 1,000,000 blocks
};

// invalid_argument for an unknown pattern or mappings outside [1, 2^28].
Result<MetadataBenchReport> run_metadata_bench(uint64_t mappings, std::string pattern);

// The share-break measurement on its own.
Result<ShareBreakCost> run_share_break_bench(uint64_t leaf_blocks);

// One line of text, or one JSON object (keys: pattern, mappings, runs,
// leaf_nodes, internal_nodes, height, metadata_bytes, bytes_per_mapping,
// runs_per_leaf, build_page_writes, share_break{...}).
std::string format_metadata_bench(const MetadataBenchReport& report, bool json);

}  // namespace thinp::tools
