#include "engine/btree/device_tree.h"

#include <algorithm>
#include <array>
#include <string>

#include "engine/format/block_header.h"

namespace thinp {
namespace {

constexpr uint8_t kKindLeaf = 1;
constexpr uint8_t kKindInternal = 2;

Status corrupt(const std::string& what) {
  return Status(Errc::corruption, "device details node: " + what);
}

size_t child_index(const std::vector<DeviceChild>& ch, ThinId thin) {
  auto it = std::upper_bound(ch.begin(), ch.end(), thin,
                             [](ThinId t, const DeviceChild& c) { return t < c.key; });
  return it == ch.begin() ? 0 : size_t(it - ch.begin()) - 1;
}

std::string thin_name(ThinId t) { return "thin " + std::to_string(t.value()); }

}  // namespace

void encode_device_node(const DeviceNode& node, std::span<std::byte> body) {
  TP_ASSERT_EQ(body.size(), kPageBodyBytes);
  std::fill(body.begin(), body.end(), std::byte{0});
  const size_t count = node.leaf ? node.entries.size() : node.children.size();
  TP_ASSERT_LE(count, node.leaf ? kDeviceLeafEntriesMax : kDeviceInternalEntriesMax);
  body[0] = std::byte(node.leaf ? kKindLeaf : kKindInternal);
  put_u16(body, 2, uint16_t(count));
  size_t off = kDeviceNodeHeaderBytes;
  if (node.leaf) {
    for (const DeviceDetails& d : node.entries) {
      put_u64(body, off + 0, d.thin.value());
      put_u64(body, off + 8, d.mapping_root.value());
      put_u64(body, off + 16, d.mapped_blocks);
      put_u64(body, off + 24, d.virtual_blocks);
      put_u64(body, off + 32, d.transaction_id.value());
      put_u32(body, off + 40, d.creation_time.value());
      put_u32(body, off + 44, d.snapshot_time.value());
      put_u32(body, off + 48, d.flags);
      off += kDeviceLeafEntryBytes;
    }
  } else {
    for (const DeviceChild& c : node.children) {
      put_u64(body, off, c.key.value());
      put_u64(body, off + 8, c.block.value());
      off += kDeviceInternalEntryBytes;
    }
  }
}

Result<DeviceNode> decode_device_node(std::span<const std::byte> body) {
  if (body.size() < kDeviceNodeHeaderBytes) return corrupt("body too short");
  const uint8_t kind = std::to_integer<uint8_t>(body[0]);
  if (kind != kKindLeaf && kind != kKindInternal) return corrupt("bad kind");
  if (body[1] != std::byte{0} || get_u32(body, 4) != 0) return corrupt("bad header padding");
  DeviceNode node;
  node.leaf = kind == kKindLeaf;
  const size_t count = get_u16(body, 2);
  const size_t entry = node.leaf ? kDeviceLeafEntryBytes : kDeviceInternalEntryBytes;
  const size_t max = node.leaf ? kDeviceLeafEntriesMax : kDeviceInternalEntriesMax;
  if (count > max || count * entry > body.size() - kDeviceNodeHeaderBytes) {
    return corrupt("count " + std::to_string(count) + " too large");
  }
  if (!node.leaf && count == 0) return corrupt("internal node with no children");
  size_t off = kDeviceNodeHeaderBytes;
  for (size_t i = 0; i < count; ++i, off += entry) {
    const ThinId key(get_u64(body, off));
    if (i > 0) {
      const ThinId prev = node.leaf ? node.entries.back().thin : node.children.back().key;
      if (!(prev < key)) return corrupt("keys not increasing at entry " + std::to_string(i));
    }
    if (node.leaf) {
      if (get_u32(body, off + 52) != 0) return corrupt("bad entry padding");
      node.entries.push_back(DeviceDetails{
          key, MBlock(get_u64(body, off + 8)), get_u64(body, off + 16), get_u64(body, off + 24),
          SnapTime(get_u32(body, off + 40)), SnapTime(get_u32(body, off + 44)),
          TransactionId(get_u64(body, off + 32)), get_u32(body, off + 48)});
    } else {
      node.children.push_back(DeviceChild{key, MBlock(get_u64(body, off + 8))});
    }
  }
  for (; off < body.size(); ++off) {
    if (body[off] != std::byte{0}) return corrupt("non-zero bytes after the entries");
  }
  return node;
}

Result<DeviceTree> DeviceTree::create(NodeStore& store, DeviceTreeOptions options) {
  TP_ASSERT_GE(options.leaf_entries_max, 2u);
  TP_ASSERT_GE(options.internal_entries_max, 3u);
  TP_ASSERT_LE(options.leaf_entries_max, kDeviceLeafEntriesMax);
  TP_ASSERT_LE(options.internal_entries_max, kDeviceInternalEntriesMax);
  TP_ASSIGN_OR_RETURN(MBlock root, store.allocate(MBlock(0)));
  DeviceTree t(store, root, options);
  TP_RETURN_IF_ERROR(t.write_node(root, DeviceNode{}));
  return t;
}

DeviceTree DeviceTree::open(NodeStore& store, MBlock root, DeviceTreeOptions options) {
  return DeviceTree(store, root, options);
}

Result<DeviceNode> DeviceTree::read_node(MBlock block) {
  TP_ASSIGN_OR_RETURN(PageRef page, store_->read(block, BlockType::device_details));
  Result<DeviceNode> node = decode_device_node(page_body(*page));
  if (!node.ok()) return node.status().with_context("m:" + std::to_string(block.value()));
  return node;
}

Status DeviceTree::write_node(MBlock block, const DeviceNode& node) {
  std::array<std::byte, kPageBodyBytes> body;
  encode_device_node(node, body);
  return store_->write(block, BlockType::device_details, body);
}

Result<DeviceDetails> DeviceTree::lookup(ThinId thin) {
  MBlock block = root_;
  while (true) {
    TP_ASSIGN_OR_RETURN(DeviceNode node, read_node(block));
    if (!node.leaf) {
      block = node.children[child_index(node.children, thin)].block;
      continue;
    }
    auto it = std::lower_bound(node.entries.begin(), node.entries.end(), thin,
                               [](const DeviceDetails& d, ThinId t) { return d.thin < t; });
    if (it == node.entries.end() || it->thin != thin) {
      return Status(Errc::not_found, thin_name(thin) + " has no device details");
    }
    return *it;
  }
}

Status DeviceTree::insert(const DeviceDetails& details) {
  TP_ASSIGN_OR_RETURN(std::optional<DeviceChild> right, put(root_, details, PutMode::insert, true));
  if (!right) return ok_status();
  // The root split: grow a level.
  DeviceNode root;
  root.leaf = false;
  root.children = {DeviceChild{ThinId(0), root_}, *right};
  TP_ASSIGN_OR_RETURN(MBlock b, store_->allocate(root_));
  TP_RETURN_IF_ERROR(write_node(b, root));
  root_ = b;
  return ok_status();
}

Status DeviceTree::update(const DeviceDetails& details) {
  TP_ASSIGN_OR_RETURN(std::optional<DeviceChild> right, put(root_, details, PutMode::update, true));
  TP_ASSERT(!right);  // an update never adds an entry
  return ok_status();
}

// Inserts or replaces `d` in the subtree at `block`. Returns the new right
// sibling if the node split. `rightmost`: no key above this subtree, so an
// insert at its end is an append and the split leaves the left node full.
Result<std::optional<DeviceChild>> DeviceTree::put(MBlock block, const DeviceDetails& d,
                                                   PutMode mode, bool rightmost) {
  TP_ASSIGN_OR_RETURN(DeviceNode node, read_node(block));
  if (node.leaf) {
    auto it = std::lower_bound(node.entries.begin(), node.entries.end(), d.thin,
                               [](const DeviceDetails& e, ThinId t) { return e.thin < t; });
    const bool exists = it != node.entries.end() && it->thin == d.thin;
    if (mode == PutMode::insert && exists) {
      return Status(Errc::already_exists, thin_name(d.thin) + " already has device details");
    }
    if (mode == PutMode::update && !exists) {
      return Status(Errc::not_found, thin_name(d.thin) + " has no device details");
    }
    if (exists) {
      *it = d;
      TP_RETURN_IF_ERROR(write_node(block, node));
      return std::optional<DeviceChild>();
    }
    const bool appended = rightmost && it == node.entries.end();
    node.entries.insert(it, d);
    if (node.entries.size() > options_.leaf_entries_max) return split(block, node, appended);
    TP_RETURN_IF_ERROR(write_node(block, node));
    return std::optional<DeviceChild>();
  }
  const size_t i = child_index(node.children, d.thin);
  const bool last = i + 1 == node.children.size();
  TP_ASSIGN_OR_RETURN(std::optional<DeviceChild> right,
                      put(node.children[i].block, d, mode, rightmost && last));
  if (!right) return right;
  node.children.insert(node.children.begin() + i + 1, *right);
  if (node.children.size() > options_.internal_entries_max) {
    return split(block, node, rightmost && last);
  }
  TP_RETURN_IF_ERROR(write_node(block, node));
  return std::optional<DeviceChild>();
}

// Writes an over-full node as two: `block` keeps the left part.
Result<std::optional<DeviceChild>> DeviceTree::split(MBlock block, DeviceNode& node,
                                                     bool appended) {
  const size_t n = node.leaf ? node.entries.size() : node.children.size();
  const size_t cut = appended ? n - 1 : n / 2;
  DeviceNode right;
  right.leaf = node.leaf;
  if (node.leaf) {
    right.entries.assign(node.entries.begin() + cut, node.entries.end());
    node.entries.resize(cut);
  } else {
    right.children.assign(node.children.begin() + cut, node.children.end());
    node.children.resize(cut);
  }
  TP_ASSIGN_OR_RETURN(MBlock rb, store_->allocate(block));
  TP_RETURN_IF_ERROR(write_node(block, node));
  TP_RETURN_IF_ERROR(write_node(rb, right));
  const ThinId key = right.leaf ? right.entries.front().thin : right.children.front().key;
  return std::optional<DeviceChild>(DeviceChild{key, rb});
}

Status DeviceTree::remove(ThinId thin) {
  TP_ASSIGN_OR_RETURN(bool emptied, erase(root_, thin));
  TP_ASSERT(!emptied);  // the root is never freed by erase
  // Shrink while the root is an internal node with one child.
  while (true) {
    TP_ASSIGN_OR_RETURN(DeviceNode node, read_node(root_));
    if (node.leaf || node.children.size() != 1) return ok_status();
    const MBlock old = root_;
    root_ = node.children[0].block;
    TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(old));
    TP_ASSERT(freed);
  }
}

// Removes `thin` from the subtree at `block`. Returns true if the node became
// empty and was freed (never the root: an emptied root becomes an empty leaf).
Result<bool> DeviceTree::erase(MBlock block, ThinId thin) {
  TP_ASSIGN_OR_RETURN(DeviceNode node, read_node(block));
  if (node.leaf) {
    auto it = std::lower_bound(node.entries.begin(), node.entries.end(), thin,
                               [](const DeviceDetails& e, ThinId t) { return e.thin < t; });
    if (it == node.entries.end() || it->thin != thin) {
      return Status(Errc::not_found, thin_name(thin) + " has no device details");
    }
    node.entries.erase(it);
  } else {
    const size_t i = child_index(node.children, thin);
    TP_ASSIGN_OR_RETURN(bool emptied, erase(node.children[i].block, thin));
    if (!emptied) return false;
    const ThinId first_key = node.children[0].key;
    node.children.erase(node.children.begin() + i);
    if (!node.children.empty()) node.children[0].key = first_key;
    if (node.children.empty()) node = DeviceNode{};  // becomes an empty leaf
  }
  const bool empty = node.leaf && node.entries.empty();
  if (empty && block != root_) {
    TP_ASSIGN_OR_RETURN(bool freed, store_->dec_ref(block));
    TP_ASSERT(freed);
    return true;
  }
  TP_RETURN_IF_ERROR(write_node(block, node));
  return false;
}

Status DeviceTree::for_each(const std::function<Status(const DeviceDetails&)>& fn) {
  return walk(root_, fn);
}

Status DeviceTree::walk(MBlock block, const std::function<Status(const DeviceDetails&)>& fn) {
  TP_ASSIGN_OR_RETURN(DeviceNode node, read_node(block));
  for (const DeviceDetails& d : node.entries) TP_RETURN_IF_ERROR(fn(d));
  for (const DeviceChild& c : node.children) TP_RETURN_IF_ERROR(walk(c.block, fn));
  return ok_status();
}

Status DeviceTree::destroy() { return free_all(root_); }

Status DeviceTree::free_all(MBlock block) {
  TP_ASSIGN_OR_RETURN(DeviceNode node, read_node(block));
  for (const DeviceChild& c : node.children) TP_RETURN_IF_ERROR(free_all(c.block));
  return store_->dec_ref(block).status();
}

}  // namespace thinp
