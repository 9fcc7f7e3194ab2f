#include "engine/pool/pinned_walker.h"

#include <memory>
#include <string>

#include "engine/btree/mapping_tree.h"
#include "engine/format/block_header.h"

namespace thinp::pool {
namespace {

std::string block_name(MBlock b) { return "m:" + std::to_string(b.value()); }

Status refuse_change(const char* what) {
  return Status(Errc::read_only, std::string("read-only walk of a pinned tree cannot ") + what);
}

}  // namespace

Result<MBlock> DeviceReadNodeStore::allocate(MBlock) { return refuse_change("allocate"); }

Result<PageRef> DeviceReadNodeStore::read(MBlock block, BlockType expected) {
  if (!tree_area_.contains(block)) {
    return Status(Errc::corruption,
                  "tree points at " + block_name(block) +
                      ", outside the tree area [m:" + std::to_string(tree_area_.begin.value()) +
                      ", m:" + std::to_string(tree_area_.end().value()) + ")");
  }
  if (!read_.insert(block).second) {
    return Status(Errc::corruption,
                  "tree reaches " + block_name(block) + " twice (a cycle or a shared child)");
  }
  AlignedBuffer buf(kMetadataBlockBytes);
  Status s = metadata_.read(block.value() * kMetadataBlockBytes, buf.span());
  if (!s.ok()) return s.with_context("reading " + block_name(block));
  TP_RETURN_IF_ERROR(verify_block(buf.span(), expected, block));
  auto page = std::make_shared<Page>();
  std::copy(buf.span().begin(), buf.span().end(), page->begin());
  return PageRef(std::move(page));
}

Status DeviceReadNodeStore::write(MBlock, BlockType, std::span<const std::byte>) {
  return refuse_change("write");
}

Result<uint32_t> DeviceReadNodeStore::ref_count(MBlock) {
  return Status(Errc::unsupported, "a pinned-tree walk has no metadata reference counts");
}

Status DeviceReadNodeStore::inc_ref(MBlock) { return refuse_change("take references"); }

Result<bool> DeviceReadNodeStore::dec_ref(MBlock) { return refuse_change("drop references"); }

Result<PinnedRoot> find_pinned_root(const Superblock& sb, ThinId thin) {
  const PinnedRoot* found = nullptr;
  for (const PinnedRoot& p : sb.pinned_roots) {
    if (p.thin == thin && (found == nullptr || p.pinned_lsn >= found->pinned_lsn)) found = &p;
  }
  if (found == nullptr) {
    return Status(Errc::not_found, "thin " + std::to_string(thin.value()) +
                                       " is not pinned (run `thinp pin --thin " +
                                       std::to_string(thin.value()) + "` first)");
  }
  return *found;
}

Result<std::vector<Run>> walk_mapping_tree(BlockDevice& metadata, const Superblock& sb,
                                           MBlock root) {
  DeviceReadNodeStore store(metadata, sb.layout.tree_pool);
  NoDataRefs data("a read-only walk of a pinned tree");
  // open() takes over a root reference it never drops: the walk neither
  // destroys nor writes the tree.
  MappingTree tree = MappingTree::open(store, data, root);
  std::vector<Run> runs;
  Status s = tree.for_each([&](const Run& r) -> Status {
    runs.push_back(r);
    return ok_status();
  });
  if (!s.ok()) return s.with_context("mapping tree at " + block_name(root));
  return runs;
}

Result<std::vector<Run>> read_pinned_mappings(Runtime& rt, BlockDevice& metadata, ThinId thin) {
  TP_ASSERT(&metadata.runtime() == &rt);
  TP_ASSIGN_OR_RETURN(Superblock sb, read_superblock(metadata));
  TP_ASSIGN_OR_RETURN(PinnedRoot pin, find_pinned_root(sb, thin));
  Result<std::vector<Run>> runs = walk_mapping_tree(metadata, sb, pin.root);
  if (runs.ok() || runs.status().code() != Errc::corruption) return runs;
  // Corruption or a race with unpin: if the pin is gone now, say so.
  Result<Superblock> again = read_superblock(metadata);
  if (again.ok()) {
    Result<PinnedRoot> now = find_pinned_root(*again, thin);
    if (!now.ok() || now->root != pin.root) {
      return Status(Errc::conflict, "thin " + std::to_string(thin.value()) +
                                        " was unpinned while its tree was being read; retry");
    }
  }
  return runs;
}

}  // namespace thinp::pool
