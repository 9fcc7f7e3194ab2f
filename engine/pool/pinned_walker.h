// Reading a pinned thin's mappings straight from the metadata device, without
// opening the pool (`thinp mappings`).
//
// Why this is safe while another process has the pool open: Pool::pin()
// returns only once the pinned root is named by the superblock's query area
// and every page of the tree under it is on disk, and the pool neither
// changes nor frees a pinned tree until it is unpinned. So a reader that
// takes the root from the superblock and reads pages directly (no cache, no
// journal, no recovery, no writes) sees one consistent tree.
//
// The one race: the thin is unpinned (and its blocks reused) while the walk
// runs. Pages are verified on every read (checksum, type, location), so the
// walk then fails with corruption rather than returning wrong runs; the
// walker re-reads the superblock and, if the pin has gone, reports conflict
// instead ("unpinned while being read"), which a caller may retry.
//
// Everything here treats the device as untrusted: a page that fails its
// checks, a block outside the tree area, or a tree that reaches a block twice
// (a cycle) is Errc::corruption with a one-line message naming the block.
//
// Task context: task only (device reads suspend).
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/btree/mapping_node.h"
#include "engine/btree/node_store.h"
#include "engine/format/superblock.h"
#include "engine/io/block_device.h"
#include "engine/runtime/runtime.h"

namespace thinp::pool {

// A NodeStore that reads each page straight from the metadata device and
// verifies it; every mutating call fails with read_only. For walks only: it
// remembers each block it has read, and a second read of the same block is
// corruption (a tree walk reads each node once, so a repeat means a cycle).
// ref_count() is unsupported: the store has no reference counts (a walk
// without sharing queries never asks).
class DeviceReadNodeStore final : public NodeStore {
 public:
  // Blocks outside `tree_area` are refused as corruption. `metadata` must
  // outlive the store; its metadata area starts at byte 0.
  DeviceReadNodeStore(BlockDevice& metadata, BlockRange tree_area)
      : metadata_(metadata), tree_area_(tree_area) {}

  Result<MBlock> allocate(MBlock hint) override;
  Result<PageRef> read(MBlock block, BlockType expected) override;
  Status write(MBlock block, BlockType type, std::span<const std::byte> body) override;
  Result<uint32_t> ref_count(MBlock block) override;
  Status inc_ref(MBlock block) override;
  Result<bool> dec_ref(MBlock block) override;

  uint64_t blocks_read() const { return read_.size(); }

 private:
  BlockDevice& metadata_;
  BlockRange tree_area_;
  std::set<MBlock> read_;
};

// The pinned root of `thin` in `sb`'s query area: the most recently pinned
// one if there are several. not_found if the thin is not pinned, with a
// message suggesting `thinp pin`.
Result<PinnedRoot> find_pinned_root(const Superblock& sb, ThinId thin);

// Walks the tree at `root` with reads from `metadata` and returns its runs in
// order. `sb` gives the tree area. Errors: corruption (naming the block),
// io_error.
Result<std::vector<Run>> walk_mapping_tree(BlockDevice& metadata, const Superblock& sb,
                                           MBlock root);

// read_superblock + find_pinned_root + walk_mapping_tree, with the unpin
// race above turned into conflict. `rt` is the runtime `metadata` runs on.
Result<std::vector<Run>> read_pinned_mappings(Runtime& rt, BlockDevice& metadata, ThinId thin);

}  // namespace thinp::pool
