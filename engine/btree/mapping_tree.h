// MappingTree: one thin's map from virtual blocks to data blocks, as a btree
// of compressed nodes (mapping_node.h) that snapshots share.
//
// Structure. Leaves hold runs; internal nodes hold (key, child) pairs with
// strictly increasing keys. Child i of a node covering [lo, hi) covers
// [key[i], key[i+1]) (child 0 from lo, the last child up to hi); every run
// of a subtree lies inside the range its parent gives it. key[0] is kept
// equal to the node's lower bound when the node is built, but routing never
// relies on it (a search goes to the last child whose key is <= the block,
// or child 0), so removing a first child never has to rewrite keys below.
//
// References. A node's count in the NodeStore is the number of parents and
// roots that refer to it; a leaf holds one reference on every data block its
// runs map (DataRefs). A MappingTree object holds one reference to its root.
//
// Sharing. clone() gives a second root reference to the same nodes (a
// snapshot). Any write reaching a node whose count is > 1 first copies it
// (shadowing): the copy takes a reference on each child of the node (for a
// leaf: on each run's data range, one DataRefs call per run, never one per
// block) and the original loses the reference the writer's parent held. A
// node with count 1 is written in place (atomicity comes from the journal).
//
// How a write knows a data block is shared: lookup() with a SharingQuery
// (docs/design.md, "Mapping trees"). A run whose time is after the thin's
// snapshot time is exclusive without further ado; otherwise it is shared
// exactly when some node on its path has count > 1 or its data blocks have
// count > 1.
//
// Task context and failure: every call may suspend (see node_store.h) and
// must be made from a task holding this thin's tree lock. On an error the
// tree's blocks are in an unspecified state: the caller must abort the
// journal transaction that held the operation's records.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/btree/mapping_node.h"
#include "engine/btree/node_store.h"

namespace thinp {

// A piece of a looked-up range: mapped (to dbegin.., written at `time`) or a
// hole.
struct Extent {
  VBlock vbegin;
  uint64_t length = 0;
  bool mapped = false;
  DBlock dbegin;        // mapped only
  SnapTime time;        // mapped only
  bool shared = false;  // mapped and SharingQuery::enabled only: see lookup()
  bool operator==(const Extent&) const = default;
};

struct SharingQuery {
  bool enabled = false;
  // The thin's snapshot time: the epoch of its last snapshot (or of its own
  // creation as a snapshot). The pool advances its time after each
  // snapshot, so a run whose time is greater was written since and is
  // exclusive.
  SnapTime snapshot_time;
};

struct MappingTreeOptions {
  // Nodes are split when their encoding exceeds this many bytes. The full
  // page body in production; tests use small nodes to build deep trees.
  // At least kMappingNodeBytesMin.
  size_t node_bytes_max = kPageBodyBytes;
};
// Small enough for tests to build deep trees from small numbers; a tree
// whose values are so wide that two internal entries do not fit stops with
// an assertion (never with production's kPageBodyBytes).
inline constexpr size_t kMappingNodeBytesMin = 48;

class MappingTree {
 public:
  // A new empty tree (one empty leaf).
  static Result<MappingTree> create(NodeStore& store, DataRefs& data,
                                    MappingTreeOptions options = {});
  // The tree at `root`; the new object owns one existing reference to root
  // (e.g. the one clone() returned, or the one a device's details hold).
  static MappingTree open(NodeStore& store, DataRefs& data, MBlock root,
                          MappingTreeOptions options = {});

  // The current root. Changes with every write: the caller persists it
  // (DeviceDetails::mapping_root) in the same transaction.
  MBlock root() const { return root_; }

  // [begin, begin + length) as alternating mapped runs and holes, in order,
  // covering the range exactly (empty for length 0). With `sharing` enabled,
  // each mapped extent says whether any of its blocks is shared with another
  // thin (exact for one-block lookups, conservative for longer ones).
  Result<std::vector<Extent>> lookup(VBlock begin, uint64_t length, SharingQuery sharing = {});

  // Maps run.vbegin.. to run.dbegin.. at run.time, replacing whatever was
  // mapped there (whose data references are dropped). Takes over the
  // caller's one reference on each block of the run's data range. Merges
  // with a neighbouring run in the same leaf when contiguous with the same
  // time. Returns how many blocks of the range were mapped before.
  // invalid_argument for length 0 or a range past kVirtualEnd or 2^64.
  Result<uint64_t> insert(const Run& run);

  // Unmaps [begin, begin + length), splitting runs that straddle its ends
  // and dropping the data references of what is unmapped. Returns how many
  // blocks were mapped (no write happens if none).
  Result<uint64_t> remove(VBlock begin, uint64_t length);

  // Calls `fn` on each stored run overlapping [begin, begin + length),
  // clipped to it, in order; stops at the first error `fn` returns.
  Status for_each(VBlock begin, uint64_t length, const std::function<Status(const Run&)>& fn);
  Status for_each(const std::function<Status(const Run&)>& fn) {
    return for_each(VBlock(0), kVirtualEnd, fn);
  }

  // A second reference to the current root: the root of a snapshot, to be
  // opened as its own MappingTree. Costs one MetaRefDelta.
  Result<MBlock> clone();

  // Releases this tree's root reference; every node that reaches count 0 is
  // freed, and so are the data references of freed leaves. The object must
  // not be used afterwards.
  Status destroy();

 private:
  MappingTree(NodeStore& store, DataRefs& data, MBlock root, MappingTreeOptions options);

  struct Edit;
  struct Replacement;
  using Visitor = std::function<Status(const Run& clipped, bool path_shared)>;

  using NodePtr = std::shared_ptr<const MappingNode>;
  Result<NodePtr> read_node(MBlock block);
  Status write_node(MBlock block, MappingNode node, std::span<const std::byte> body);
  Status visit(MBlock block, uint64_t lo, uint64_t hi, uint64_t begin, uint64_t end,
               bool path_shared, bool want_sharing, const Visitor& fn);
  Result<uint64_t> mapped_in(uint64_t begin, uint64_t end);
  Status apply(const Edit& edit);
  Result<Replacement> edit_node(MBlock block, uint64_t lo, uint64_t hi, const Edit& edit);
  Result<Replacement> edit_leaf(MBlock block, const MappingNode& node, uint64_t hi,
                                const Edit& edit);
  Result<Replacement> edit_internal(MBlock block, const MappingNode& node, uint64_t lo, uint64_t hi,
                                    const Edit& edit);
  Status take_children_refs(const MappingNode& node);
  Status release(MBlock block);
  Result<std::vector<ChildRef>> write_leaves(const std::vector<Run>& runs,
                                             std::optional<MBlock> reuse, SplitBias bias);
  Result<std::vector<ChildRef>> write_internals(const std::vector<ChildRef>& children,
                                                std::optional<MBlock> reuse, SplitBias bias);
  Status set_root(std::vector<ChildRef> nodes);
  static size_t encoded_bytes(const MappingNode& node);
  Status merge_small_children(std::vector<ChildRef>& children, std::vector<bool>& shrunk);
  Result<bool> merge_pair(std::vector<ChildRef>& children, size_t a);
  template <typename Entry>
  Result<std::vector<ChildRef>> write_nodes(const std::vector<Entry>& entries,
                                            std::optional<MBlock> reuse, SplitBias bias);

  NodeStore* store_;
  DataRefs* data_;
  MBlock root_;
  MappingTreeOptions options_;
  bool destroyed_ = false;

  // Decoded nodes of the pages this tree read or wrote last, so that a
  // write does not decode its path twice and the next write does not decode
  // it again. An entry is used only while the store still returns the very
  // same page object (pages are immutable), so it can never be stale.
  struct Cached {
    PageRef page;
    NodePtr node;
  };
  static constexpr size_t kCachedNodesMax = 16;
  std::map<MBlock, Cached> cache_;
  std::deque<MBlock> cache_order_;  // oldest first
  void cache_put(MBlock block, PageRef page, NodePtr node);
};

}  // namespace thinp
