// DeviceTree: the device-details btree, ThinId -> DeviceDetails.
//
// A plain btree: fixed-size entries, no compression and no sharing (every
// node has reference count 1, so nodes are written in place). It lives on the
// same NodeStore as the mapping trees; its page writes are PageWrite records
// of the caller's journal transaction, like theirs.
//
// Node body (little-endian, after the 32-byte block header, type
// device_details):
//   0 u8 kind (1 leaf, 2 internal)  1 u8 zero  2 u16 count  4 u32 zero
//   8 entries, sorted by thin id, strictly increasing:
//     leaf, 56 bytes: u64 thin, u64 mapping_root, u64 mapped_blocks,
//       u64 virtual_blocks, u64 transaction_id, u32 creation_time,
//       u32 snapshot_time, u32 flags, u32 zero
//     internal, 16 bytes: u64 key, u64 child block
// Child i of an internal node covers thin ids [key[i], key[i+1]); lookups go
// to the last child whose key is <= the id, or child 0.
//
// Task context and failure: as for MappingTree (mapping_tree.h): from a task
// holding the device tree's lock; after an error the caller aborts its
// journal transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/btree/node_store.h"

namespace thinp {

struct DeviceDetails {
  ThinId thin;
  MBlock mapping_root;
  uint64_t mapped_blocks = 0;
  uint64_t virtual_blocks = 0;
  SnapTime creation_time;
  SnapTime snapshot_time;
  TransactionId transaction_id;
  uint32_t flags = 0;
  bool operator==(const DeviceDetails&) const = default;
};

inline constexpr size_t kDeviceNodeHeaderBytes = 8;
inline constexpr size_t kDeviceLeafEntryBytes = 56;
inline constexpr size_t kDeviceInternalEntryBytes = 16;
inline constexpr size_t kDeviceLeafEntriesMax =
    (kPageBodyBytes - kDeviceNodeHeaderBytes) / kDeviceLeafEntryBytes;  // 72
inline constexpr size_t kDeviceInternalEntriesMax =
    (kPageBodyBytes - kDeviceNodeHeaderBytes) / kDeviceInternalEntryBytes;  // 253

struct DeviceChild {
  ThinId key;
  MBlock block;
  bool operator==(const DeviceChild&) const = default;
};

struct DeviceNode {
  bool leaf = true;
  std::vector<DeviceDetails> entries;  // leaf
  std::vector<DeviceChild> children;   // internal, >= 1
};

// Encodes into a kPageBodyBytes body; sizes within the maxima (asserted).
void encode_device_node(const DeviceNode& node, std::span<std::byte> body);
// Decodes untrusted bytes: corruption on a bad kind, count, order, non-zero
// padding or truncation.
Result<DeviceNode> decode_device_node(std::span<const std::byte> body);

struct DeviceTreeOptions {
  // Node fan-out limits; tests use small ones to build deep trees.
  size_t leaf_entries_max = kDeviceLeafEntriesMax;          // >= 2
  size_t internal_entries_max = kDeviceInternalEntriesMax;  // >= 3
};

class DeviceTree {
 public:
  static Result<DeviceTree> create(NodeStore& store, DeviceTreeOptions options = {});
  // Takes over the existing reference to `root` (from the superblock).
  static DeviceTree open(NodeStore& store, MBlock root, DeviceTreeOptions options = {});

  // Changes when the tree grows or shrinks a level: persist it after writes.
  MBlock root() const { return root_; }

  // already_exists if the thin has details already.
  Status insert(const DeviceDetails& details);
  // not_found if the thin has none.
  Status update(const DeviceDetails& details);
  Result<DeviceDetails> lookup(ThinId thin);
  Status remove(ThinId thin);
  // In thin id order; stops at the first error fn returns.
  Status for_each(const std::function<Status(const DeviceDetails&)>& fn);
  // Frees every node. The object must not be used afterwards.
  Status destroy();

 private:
  DeviceTree(NodeStore& store, MBlock root, DeviceTreeOptions options)
      : store_(&store), root_(root), options_(options) {}
  enum class PutMode { insert, update };

  Result<DeviceNode> read_node(MBlock block);
  Status write_node(MBlock block, const DeviceNode& node);
  Result<std::optional<DeviceChild>> put(MBlock block, const DeviceDetails& d, PutMode mode,
                                         bool rightmost);
  Result<bool> erase(MBlock block, ThinId thin);  // true: the node became empty and was freed
  Result<std::optional<DeviceChild>> split(MBlock block, DeviceNode& node, bool appended);
  Status walk(MBlock block, const std::function<Status(const DeviceDetails&)>& fn);
  Status free_all(MBlock block);

  NodeStore* store_;
  MBlock root_;
  DeviceTreeOptions options_;
};

}  // namespace thinp
