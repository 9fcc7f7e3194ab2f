#include "engine/btree/mapping_tree.h"

#include <algorithm>
#include <array>
#include <string>
#include <type_traits>

namespace thinp {

// Make [begin, end) hold exactly `run` (which then covers it exactly), or
// nothing.
struct MappingTree::Edit {
  uint64_t begin = 0;
  uint64_t end = 0;
  std::optional<Run> run;

  Edit clipped(uint64_t lo, uint64_t hi) const {
    Edit e{std::max(begin, lo), std::min(end, hi), std::nullopt};
    if (run) {
      e.run = Run{VBlock(e.begin), e.end - e.begin, run->dbegin + (e.begin - begin), run->time};
    }
    return e;
  }
};

// What replaces a child in its parent: nodes in key order, each carrying one
// reference for the parent to hold. `changed` false: the child is untouched.
struct MappingTree::Replacement {
  std::vector<ChildRef> nodes;
  bool changed = false;
};

MappingTree::MappingTree(NodeStore& store, DataRefs& data, MBlock root, MappingTreeOptions options)
    : store_(&store), data_(&data), root_(root), options_(options) {
  TP_ASSERT_GE(options_.node_bytes_max, kMappingNodeBytesMin);
  TP_ASSERT_LE(options_.node_bytes_max, kPageBodyBytes);
}

Result<MappingTree> MappingTree::create(NodeStore& store, DataRefs& data,
                                        MappingTreeOptions options) {
  MappingTree t(store, data, MBlock(0), options);
  TP_ASSIGN_OR_RETURN(t.root_, store.allocate(MBlock(0)));
  std::array<std::byte, kPageBodyBytes> body;
  encode_leaf({}, body);
  TP_RETURN_IF_ERROR(store.write(t.root_, BlockType::mapping_node, body));
  return t;
}

MappingTree MappingTree::open(NodeStore& store, DataRefs& data, MBlock root,
                              MappingTreeOptions options) {
  return MappingTree(store, data, root, options);
}

Result<MappingTree::NodePtr> MappingTree::read_node(MBlock block) {
  TP_ASSIGN_OR_RETURN(PageRef page, store_->read(block, BlockType::mapping_node));
  auto hit = cache_.find(block);
  if (hit != cache_.end() && hit->second.page == page) return hit->second.node;
  Result<MappingNode> node = decode_mapping_node(page_body(*page));
  if (!node.ok()) return node.status().with_context("m:" + std::to_string(block.value()));
  auto ptr = std::make_shared<const MappingNode>(std::move(node).value());
  cache_put(block, std::move(page), ptr);
  return ptr;
}

void MappingTree::cache_put(MBlock block, PageRef page, NodePtr node) {
  auto [it, fresh] = cache_.insert_or_assign(block, Cached{std::move(page), std::move(node)});
  if (!fresh) return;
  cache_order_.push_back(block);
  if (cache_order_.size() > kCachedNodesMax) {
    cache_.erase(cache_order_.front());
    cache_order_.pop_front();
  }
}

// Writes `body` (the encoding of `node`) and reads it back: the page is
// verified on both sides of the write, and the decoded node is cached.
Status MappingTree::write_node(MBlock block, MappingNode node, std::span<const std::byte> body) {
  TP_RETURN_IF_ERROR(store_->write(block, BlockType::mapping_node, body));
  TP_ASSIGN_OR_RETURN(PageRef page, store_->read(block, BlockType::mapping_node));
  cache_put(block, std::move(page), std::make_shared<const MappingNode>(std::move(node)));
  return ok_status();
}

// ---- reading ----

// Calls fn on every run of the subtree at `block` (covering [lo, hi))
// overlapping [begin, end), clipped. path_shared: some node above (or this
// one, if want_sharing) has count > 1.
Status MappingTree::visit(MBlock block, uint64_t lo, uint64_t hi, uint64_t begin, uint64_t end,
                          bool path_shared, bool want_sharing, const Visitor& fn) {
  TP_ASSIGN_OR_RETURN(NodePtr ptr, read_node(block));
  const MappingNode& node = *ptr;
  if (want_sharing && !path_shared) {
    TP_ASSIGN_OR_RETURN(uint32_t refs, store_->ref_count(block));
    path_shared = refs > 1;
  }
  if (node.leaf) {
    for (const Run& r : node.runs) {
      if (r.vend().value() <= begin || r.vbegin.value() >= end) continue;
      if (r.vbegin.value() < lo || r.vend().value() > hi) {
        return Status(Errc::corruption, "m:" + std::to_string(block.value()) +
                                            " holds a run outside the range its parent gives it");
      }
      const uint64_t b = std::max(begin, r.vbegin.value()), e = std::min(end, r.vend().value());
      TP_RETURN_IF_ERROR(
          fn(Run{VBlock(b), e - b, r.dbegin + (b - r.vbegin.value()), r.time}, path_shared));
    }
    return ok_status();
  }
  const auto& ch = node.children;
  for (size_t i = 0; i < ch.size(); ++i) {
    const uint64_t clo = i == 0 ? lo : ch[i].key.value();
    const uint64_t chi = i + 1 < ch.size() ? ch[i + 1].key.value() : hi;
    if (clo < lo || chi > hi || clo >= chi) {
      return Status(Errc::corruption,
                    "m:" + std::to_string(block.value()) + " has keys outside its range");
    }
    if (chi <= begin || clo >= end) continue;
    TP_RETURN_IF_ERROR(visit(ch[i].block, clo, chi, begin, end, path_shared, want_sharing, fn));
  }
  return ok_status();
}

Result<std::vector<Extent>> MappingTree::lookup(VBlock begin, uint64_t length,
                                                SharingQuery sharing) {
  TP_ASSERT(!destroyed_);
  if (length > kVirtualEnd - begin.value()) {
    return Status(Errc::invalid_argument, "lookup range past the end of the virtual space");
  }
  std::vector<Extent> out;
  uint64_t pos = begin.value();
  const uint64_t end = begin.value() + length;
  Status s =
      visit(root_, 0, kVirtualEnd, pos, end, false, sharing.enabled,
            [&](const Run& r, bool path_shared) -> Status {
              if (r.vbegin.value() > pos) {
                out.push_back(Extent{VBlock(pos), r.vbegin.value() - pos, false, {}, {}, false});
              }
              bool shared = false;
              if (sharing.enabled && r.time <= sharing.snapshot_time) {
                shared = path_shared;
                if (!shared) {
                  TP_ASSIGN_OR_RETURN(uint32_t refs, data_->max_ref_count(r.dbegin, r.length));
                  shared = refs > 1;
                }
              }
              out.push_back(Extent{r.vbegin, r.length, true, r.dbegin, r.time, shared});
              pos = r.vend().value();
              return ok_status();
            });
  TP_RETURN_IF_ERROR(s);
  if (pos < end) out.push_back(Extent{VBlock(pos), end - pos, false, {}, {}, false});
  return out;
}

Status MappingTree::for_each(VBlock begin, uint64_t length,
                             const std::function<Status(const Run&)>& fn) {
  TP_ASSERT(!destroyed_);
  const uint64_t end = length > kVirtualEnd - begin.value() ? kVirtualEnd : begin.value() + length;
  return visit(root_, 0, kVirtualEnd, begin.value(), end, false, false,
               [&](const Run& r, bool) { return fn(r); });
}

Result<uint64_t> MappingTree::mapped_in(uint64_t begin, uint64_t end) {
  uint64_t mapped = 0;
  TP_RETURN_IF_ERROR(
      visit(root_, 0, kVirtualEnd, begin, end, false, false, [&](const Run& r, bool) {
        mapped += r.length;
        return ok_status();
      }));
  return mapped;
}

// ---- writing ----

Result<uint64_t> MappingTree::insert(const Run& run) {
  TP_ASSERT(!destroyed_);
  if (run.length == 0 || run.length > kVirtualEnd - run.vbegin.value() ||
      run.length > UINT64_MAX - run.dbegin.value()) {
    return Status(Errc::invalid_argument, "bad run: length " + std::to_string(run.length));
  }
  const uint64_t end = run.vend().value();
  TP_ASSIGN_OR_RETURN(uint64_t before, mapped_in(run.vbegin.value(), end));
  TP_RETURN_IF_ERROR(apply(Edit{run.vbegin.value(), end, run}));
  return before;
}

Result<uint64_t> MappingTree::remove(VBlock begin, uint64_t length) {
  TP_ASSERT(!destroyed_);
  if (length > kVirtualEnd - begin.value()) {
    return Status(Errc::invalid_argument, "remove range past the end of the virtual space");
  }
  if (length == 0) return uint64_t(0);
  const uint64_t end = begin.value() + length;
  TP_ASSIGN_OR_RETURN(uint64_t before, mapped_in(begin.value(), end));
  if (before > 0) TP_RETURN_IF_ERROR(apply(Edit{begin.value(), end, std::nullopt}));
  return before;
}

Result<MBlock> MappingTree::clone() {
  TP_ASSERT(!destroyed_);
  TP_RETURN_IF_ERROR(store_->inc_ref(root_));
  return root_;
}

Status MappingTree::destroy() {
  TP_ASSERT(!destroyed_);
  destroyed_ = true;
  return release(root_);
}

// Drops one reference to `block`; if that frees it, drops the references it
// held (children, or data ranges for a leaf).
Status MappingTree::release(MBlock block) {
  TP_ASSIGN_OR_RETURN(uint32_t refs, store_->ref_count(block));
  if (refs > 1) return store_->dec_ref(block).status();
  TP_ASSIGN_OR_RETURN(NodePtr ptr, read_node(block));
  const MappingNode& node = *ptr;
  TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(block));
  TP_ASSERT(freed);
  for (const Run& r : node.runs) TP_RETURN_IF_ERROR(data_->dec_range(r.dbegin, r.length));
  for (const ChildRef& c : node.children) TP_RETURN_IF_ERROR(release(c.block));
  return ok_status();
}

// A copy of `node` is about to become a second parent of its children.
Status MappingTree::take_children_refs(const MappingNode& node) {
  for (const Run& r : node.runs) TP_RETURN_IF_ERROR(data_->inc_range(r.dbegin, r.length));
  for (const ChildRef& c : node.children) TP_RETURN_IF_ERROR(store_->inc_ref(c.block));
  return ok_status();
}

Status MappingTree::apply(const Edit& edit) {
  TP_ASSIGN_OR_RETURN(Replacement rep, edit_node(root_, 0, kVirtualEnd, edit));
  if (!rep.changed) return ok_status();
  return set_root(std::move(rep.nodes));
}

// Makes `nodes` (what replaced the root) the tree: grows a level while there
// is more than one, shrinks while the root is an exclusive internal node
// with a single child.
Status MappingTree::set_root(std::vector<ChildRef> nodes) {
  while (nodes.size() > 1) {
    nodes[0].key = VBlock(0);
    const size_t before = nodes.size();
    TP_ASSIGN_OR_RETURN(nodes, write_internals(nodes, std::nullopt, SplitBias::balanced));
    TP_ASSERT_LT(nodes.size(), before);  // each level must hold two entries
  }
  if (nodes.empty()) {  // everything was unmapped: an empty leaf
    TP_ASSIGN_OR_RETURN(MBlock b, store_->allocate(MBlock(0)));
    std::array<std::byte, kPageBodyBytes> body;
    encode_leaf({}, body);
    TP_RETURN_IF_ERROR(store_->write(b, BlockType::mapping_node, body));
    nodes.push_back(ChildRef{VBlock(0), b});
  }
  root_ = nodes[0].block;
  while (true) {
    TP_ASSIGN_OR_RETURN(NodePtr node, read_node(root_));
    if (node->leaf || node->children.size() != 1) break;
    TP_ASSIGN_OR_RETURN(uint32_t refs, store_->ref_count(root_));
    if (refs != 1) break;
    // The tree's reference moves from the old root to its only child.
    TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(root_));
    TP_ASSERT(freed);
    root_ = node->children[0].block;
  }
  return ok_status();
}

Result<MappingTree::Replacement> MappingTree::edit_node(MBlock block, uint64_t lo, uint64_t hi,
                                                        const Edit& edit) {
  TP_ASSERT_LT(edit.begin, edit.end);
  TP_ASSERT_LE(lo, edit.begin);
  TP_ASSERT_LE(edit.end, hi);
  TP_ASSIGN_OR_RETURN(NodePtr node, read_node(block));
  if (node->leaf) return edit_leaf(block, *node, hi, edit);
  return edit_internal(block, *node, lo, hi, edit);
}

Result<MappingTree::Replacement> MappingTree::edit_leaf(MBlock block, const MappingNode& node,
                                                        uint64_t hi, const Edit& edit) {
  // Compute the new runs and the data ranges that lose this leaf's reference
  // first, without side effects: an untouched leaf is not copied.
  std::vector<Run> runs, dropped;
  runs.reserve(node.runs.size() + 2);
  for (const Run& r : node.runs) {
    const uint64_t rb = r.vbegin.value(), re = r.vend().value();
    if (re <= edit.begin || rb >= edit.end) {
      runs.push_back(r);
      continue;
    }
    if (rb < edit.begin) runs.push_back(Run{r.vbegin, edit.begin - rb, r.dbegin, r.time});
    const uint64_t cb = std::max(rb, edit.begin), ce = std::min(re, edit.end);
    dropped.push_back(Run{VBlock(cb), ce - cb, r.dbegin + (cb - rb), r.time});
    if (re > edit.end) {
      runs.push_back(Run{VBlock(edit.end), re - edit.end, r.dbegin + (edit.end - rb), r.time});
    }
  }
  if (dropped.empty() && !edit.run) return Replacement{{ChildRef{VBlock(0), block}}, false};
  if (edit.run) {
    auto at = std::lower_bound(runs.begin(), runs.end(), edit.run->vbegin,
                               [](const Run& r, VBlock v) { return r.vbegin < v; });
    at = runs.insert(at, *edit.run);
    if (at + 1 != runs.end() && runs_mergeable(*at, *(at + 1))) {
      at->length += (at + 1)->length;
      runs.erase(at + 1);
    }
    if (at != runs.begin() && runs_mergeable(*(at - 1), *at)) {
      (at - 1)->length += at->length;
      runs.erase(at);
    }
  }

  TP_ASSIGN_OR_RETURN(uint32_t refs, store_->ref_count(block));
  std::optional<MBlock> own = block;
  if (refs > 1) {  // shadow: the copy references every run the original did
    TP_RETURN_IF_ERROR(take_children_refs(node));
    TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(block));
    TP_ASSERT(!freed);
    own.reset();
  }
  for (const Run& d : dropped) TP_RETURN_IF_ERROR(data_->dec_range(d.dbegin, d.length));
  const bool append =
      hi == kVirtualEnd && !runs.empty() && runs.back().vbegin.value() <= edit.begin;
  TP_ASSIGN_OR_RETURN(std::vector<ChildRef> nodes,
                      write_leaves(runs, own, append ? SplitBias::pack_left : SplitBias::balanced));
  if (nodes.empty() && own) {
    TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(*own));
    TP_ASSERT(freed);
  }
  return Replacement{std::move(nodes), true};
}

Result<MappingTree::Replacement> MappingTree::edit_internal(MBlock block, const MappingNode& node,
                                                            uint64_t lo, uint64_t hi,
                                                            const Edit& edit) {
  // Copy first if shared: the children must see their new parent before
  // they decide whether they are shared themselves.
  TP_ASSIGN_OR_RETURN(uint32_t refs, store_->ref_count(block));
  std::optional<MBlock> own = block;
  if (refs > 1) {
    TP_RETURN_IF_ERROR(take_children_refs(node));
    TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(block));
    TP_ASSERT(!freed);
    own.reset();
  }
  const auto& ch = node.children;
  std::vector<ChildRef> children;
  std::vector<bool> shrunk;  // per entry of `children`: rewritten by a discard
  children.reserve(ch.size() + 2);
  bool changed = !own;
  for (size_t i = 0; i < ch.size(); ++i) {
    const uint64_t clo = i == 0 ? lo : ch[i].key.value();
    const uint64_t chi = i + 1 < ch.size() ? ch[i + 1].key.value() : hi;
    if (chi <= edit.begin || clo >= edit.end) {
      children.push_back(ch[i]);
      shrunk.push_back(false);
      continue;
    }
    const Edit sub = edit.clipped(clo, chi);
    if (!sub.run && sub.begin == clo && sub.end == chi) {  // the whole child goes
      TP_RETURN_IF_ERROR(release(ch[i].block));
      changed = true;
      continue;
    }
    TP_ASSIGN_OR_RETURN(Replacement rep, edit_node(ch[i].block, clo, chi, sub));
    if (!rep.nodes.empty()) rep.nodes[0].key = ch[i].key;
    children.insert(children.end(), rep.nodes.begin(), rep.nodes.end());
    shrunk.resize(children.size(), rep.changed && !edit.run && rep.nodes.size() == 1);
    changed = changed || rep.changed;
  }
  if (!children.empty()) children[0].key = ch[0].key;
  TP_RETURN_IF_ERROR(merge_small_children(children, shrunk));
  // Children rewritten in place leave this node's bytes as they were: no
  // write, and nothing for the parent to change either.
  if (!changed || (own && children == ch)) return Replacement{{ChildRef{VBlock(0), block}}, false};
  const bool append =
      hi == kVirtualEnd && !children.empty() && children.back().key.value() <= edit.begin;
  TP_ASSIGN_OR_RETURN(
      std::vector<ChildRef> nodes,
      write_internals(children, own, append ? SplitBias::pack_left : SplitBias::balanced));
  if (nodes.empty() && own) {
    TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(*own));
    TP_ASSERT(freed);
  }
  return Replacement{std::move(nodes), true};
}

size_t MappingTree::encoded_bytes(const MappingNode& node) {
  return node.leaf ? encoded_leaf_bytes(node.runs) : encoded_internal_bytes(node.children);
}

// After a discard, a child that shrank below a third of a node is merged
// with a neighbour when the two fit in three quarters of a node (leaving room
// for inserts, so that merge and split do not alternate). `children` belong
// to an exclusive node that is about to be written.
Status MappingTree::merge_small_children(std::vector<ChildRef>& children,
                                         std::vector<bool>& shrunk) {
  TP_ASSERT_EQ(children.size(), shrunk.size());
  for (size_t j = 0; j < children.size() && children.size() > 1; ++j) {
    if (!shrunk[j]) continue;
    TP_ASSIGN_OR_RETURN(NodePtr node, read_node(children[j].block));
    if (encoded_bytes(*node) >= options_.node_bytes_max / 3) continue;
    for (const size_t other : {j + 1, j - 1}) {
      if (other >= children.size()) continue;  // j - 1 wraps for j == 0
      const size_t a = std::min(j, other);
      TP_ASSIGN_OR_RETURN(bool merged, merge_pair(children, a));
      if (!merged) continue;
      shrunk.erase(shrunk.begin() + a + 1);
      shrunk[a] = false;
      j = a;
      break;
    }
  }
  return ok_status();
}

// Replaces children[a] and children[a + 1] by one node holding both, if it
// fits in three quarters of a node. A shared one is copied (its children
// gain the merged node as a parent); an exclusive one's references move to
// the merged node, which reuses the first exclusive block.
Result<bool> MappingTree::merge_pair(std::vector<ChildRef>& children, size_t a) {
  const ChildRef ca = children[a], cb = children[a + 1];
  TP_ASSIGN_OR_RETURN(NodePtr na, read_node(ca.block));
  TP_ASSIGN_OR_RETURN(NodePtr nb, read_node(cb.block));
  if (na->leaf != nb->leaf) {
    return Status(Errc::corruption, "m:" + std::to_string(ca.block.value()) +
                                        " and m:" + std::to_string(cb.block.value()) +
                                        " are at different depths");
  }
  MappingNode m;
  m.leaf = na->leaf;
  if (m.leaf) {
    m.runs = na->runs;
    m.runs.insert(m.runs.end(), nb->runs.begin(), nb->runs.end());
  } else {
    m.children = na->children;
    m.children.insert(m.children.end(), nb->children.begin(), nb->children.end());
    m.children[na->children.size()].key = cb.key;  // b's range starts at its key in us
    if (!(na->children.back().key < cb.key)) return false;
  }
  if (encoded_bytes(m) > options_.node_bytes_max * 3 / 4) return false;

  std::optional<MBlock> target;
  for (const auto& [ref, node] : {std::pair{ca, na}, std::pair{cb, nb}}) {
    TP_ASSIGN_OR_RETURN(uint32_t refs, store_->ref_count(ref.block));
    if (refs > 1) {
      TP_RETURN_IF_ERROR(take_children_refs(*node));
      TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(ref.block));
      TP_ASSERT(!freed);
    } else if (!target) {
      target = ref.block;
    } else {
      TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(ref.block));
      TP_ASSERT(freed);
    }
  }
  if (!target) {
    TP_ASSIGN_OR_RETURN(target, store_->allocate(ca.block));
  }
  std::array<std::byte, kPageBodyBytes> body;
  if (m.leaf) {
    encode_leaf(m.runs, body);
  } else {
    encode_internal(m.children, body);
  }
  TP_RETURN_IF_ERROR(write_node(*target, std::move(m), body));
  children[a] = ChildRef{ca.key, *target};
  children.erase(children.begin() + a + 1);
  return true;
}

namespace {
// The codec's leaf and internal entry points, overloaded for write_nodes.
bool encode_if_fits(std::span<const Run> e, size_t cap, std::span<std::byte> body) {
  return encode_leaf_if_fits(e, cap, body);
}
bool encode_if_fits(std::span<const ChildRef> e, size_t cap, std::span<std::byte> body) {
  return encode_internal_if_fits(e, cap, body);
}
std::vector<size_t> split_entries(std::span<const Run> e, size_t cap, SplitBias bias) {
  return split_leaf(e, cap, bias);
}
std::vector<size_t> split_entries(std::span<const ChildRef> e, size_t cap, SplitBias bias) {
  return split_internal(e, cap, bias);
}
void encode_entries(std::span<const Run> e, std::span<std::byte> body) { encode_leaf(e, body); }
void encode_entries(std::span<const ChildRef> e, std::span<std::byte> body) {
  encode_internal(e, body);
}
}  // namespace

// Writes `entries` as one or more nodes (reusing `reuse` for the first), each
// as full as its encoding allows. Returns them with their first keys; none
// for no entries. Shared by leaves (Run) and internal nodes (ChildRef).
template <typename Entry>
Result<std::vector<ChildRef>> MappingTree::write_nodes(const std::vector<Entry>& entries,
                                                       std::optional<MBlock> reuse,
                                                       SplitBias bias) {
  constexpr bool kLeaf = std::is_same_v<Entry, Run>;
  auto first_key = [](const Entry& e) {
    if constexpr (kLeaf)
      return e.vbegin;
    else
      return e.key;
  };
  auto node_of = [](std::span<const Entry> chunk) {
    MappingNode n;
    n.leaf = kLeaf;
    if constexpr (kLeaf)
      n.runs.assign(chunk.begin(), chunk.end());
    else
      n.children.assign(chunk.begin(), chunk.end());
    return n;
  };
  std::array<std::byte, kPageBodyBytes> body;
  std::vector<ChildRef> out;
  if (entries.empty()) return out;
  // Usually everything fits in one node: encode once, no split planning.
  const bool fits = encode_if_fits(std::span<const Entry>(entries), options_.node_bytes_max, body);
  std::vector<size_t> cuts = {0};
  if (!fits) cuts = split_entries(std::span<const Entry>(entries), options_.node_bytes_max, bias);
  for (size_t k = 0; k < cuts.size(); ++k) {
    const size_t end = k + 1 < cuts.size() ? cuts[k + 1] : entries.size();
    const std::span<const Entry> chunk(entries.data() + cuts[k], end - cuts[k]);
    MBlock b;
    if (k == 0 && reuse) {
      b = *reuse;
    } else {
      TP_ASSIGN_OR_RETURN(b, store_->allocate(reuse.value_or(root_)));
    }
    if (!fits) encode_entries(chunk, body);
    TP_RETURN_IF_ERROR(write_node(b, node_of(chunk), body));
    out.push_back(ChildRef{first_key(chunk.front()), b});
  }
  return out;
}

Result<std::vector<ChildRef>> MappingTree::write_leaves(const std::vector<Run>& runs,
                                                        std::optional<MBlock> reuse,
                                                        SplitBias bias) {
  return write_nodes(runs, reuse, bias);
}

Result<std::vector<ChildRef>> MappingTree::write_internals(const std::vector<ChildRef>& children,
                                                           std::optional<MBlock> reuse,
                                                           SplitBias bias) {
  return write_nodes(children, reuse, bias);
}

}  // namespace thinp
