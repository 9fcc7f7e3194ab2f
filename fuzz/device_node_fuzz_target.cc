// Fuzz target: the device-details node decoder (engine/btree/device_tree.h).
//
// The input is a node body (the bytes after the 32-byte block header, which
// the node store verifies before the tree decodes; no checksum to get past).
// It is decoded as given (any length) and as a kPageBodyBytes body, truncated
// or zero-padded, which is what the tree reads.
//
// The format has a single encoding per node (fixed-size entries, zero
// padding, checked), so the oracle is exact: an accepted body must be the
// node's encoding byte for byte, with any bytes past kPageBodyBytes zero and
// a shorter body reading as if zero-padded. Counts must be within the
// per-kind maxima (encode_device_node asserts them) and keys strictly
// increasing.
#include <algorithm>
#include <cstring>

#include "engine/btree/device_tree.h"
#include "engine/btree/node_store.h"
#include "engine/format/block_header.h"
#include "fuzz/fuzz_targets.h"

namespace thinp::fuzz {
namespace {

std::span<const std::byte> as_bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

std::vector<std::byte> as_body(const uint8_t* data, size_t size) {
  std::vector<std::byte> body(kPageBodyBytes);
  if (size > 0) std::memcpy(body.data(), data, std::min(size, body.size()));
  return body;
}

bool keys_increase(const DeviceNode& node) {
  for (size_t i = 1; i < node.entries.size(); ++i) {
    if (!(node.entries[i - 1].thin < node.entries[i].thin)) return false;
  }
  for (size_t i = 1; i < node.children.size(); ++i) {
    if (!(node.children[i - 1].key < node.children[i].key)) return false;
  }
  return true;
}

// Byte i of `b`, or zero past its end.
std::byte at(std::span<const std::byte> b, size_t i) { return i < b.size() ? b[i] : std::byte{0}; }

void decode_and_recheck(std::span<const std::byte> body) {
  Result<DeviceNode> r = decode_device_node(body);
  if (!r.ok()) {
    const std::string& m = r.status().message();
    fuzz_require(r.status().code() == Errc::corruption, "decoder error is not corruption");
    fuzz_require(!m.empty() && m.find('\n') == std::string::npos,
                 "decoder error is not a single non-empty line");
    return;
  }
  const DeviceNode& node = *r;
  fuzz_require(node.leaf ? node.children.empty() : node.entries.empty(),
               "a node holds both entries and children");
  fuzz_require(node.leaf ? node.entries.size() <= kDeviceLeafEntriesMax
                         : node.children.size() <= kDeviceInternalEntriesMax,
               "more entries than a node holds");
  fuzz_require(node.leaf || !node.children.empty(), "an internal node without children");
  fuzz_require(keys_increase(node), "keys not strictly increasing");
  std::vector<std::byte> again(kPageBodyBytes);
  encode_device_node(node, again);
  const size_t n = std::max(body.size(), again.size());
  for (size_t i = 0; i < n; ++i) {
    fuzz_require(at(body, i) == at(again, i),
                 "accepted device node does not re-encode to the same bytes");
  }
}

std::vector<uint8_t> to_seed(std::span<const std::byte> b) {
  std::vector<uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

std::vector<std::byte> encode(const DeviceNode& node) {
  std::vector<std::byte> body(kPageBodyBytes);
  encode_device_node(node, body);
  return body;
}

DeviceNode leaf(size_t entries) {
  DeviceNode node;
  for (size_t i = 0; i < entries; ++i) {
    node.entries.push_back(DeviceDetails{
        ThinId(i * 3 + 1), MBlock(100 + i), uint64_t(1000) * i, uint64_t(1) << (20 + i % 20),
        SnapTime(uint32_t(i)), SnapTime(uint32_t(i * 2)), TransactionId(50 + i), uint32_t(i % 4)});
  }
  return node;
}

DeviceNode internal(size_t children) {
  DeviceNode node;
  node.leaf = false;
  for (size_t i = 0; i < children; ++i) {
    node.children.push_back(DeviceChild{ThinId(i * 72), MBlock(5000 + i * 11)});
  }
  return node;
}

}  // namespace

int fuzz_device_node(const uint8_t* data, size_t size) {
  decode_and_recheck(as_bytes(data, size));
  decode_and_recheck(as_body(data, size));
  return 0;
}

Status check_device_node(const uint8_t* data, size_t size) {
  return decode_device_node(as_bytes(data, size)).status();
}

std::vector<FuzzSeed> seeds_device_node() {
  std::vector<FuzzSeed> seeds;
  const std::vector<std::byte> some = encode(leaf(5));
  const std::vector<std::byte> full = encode(leaf(kDeviceLeafEntriesMax));
  seeds.push_back({"valid-empty-leaf", to_seed(encode(DeviceNode{}))});
  seeds.push_back({"valid-leaf", to_seed(some)});
  seeds.push_back({"valid-full-leaf", to_seed(full)});
  seeds.push_back({"valid-internal", to_seed(encode(internal(40)))});

  std::vector<std::byte> order = some;  // entry 2's thin id below entry 1's
  put_u64(order, kDeviceNodeHeaderBytes + 2 * kDeviceLeafEntryBytes, 2);
  seeds.push_back({"bad-keys-out-of-order", to_seed(order)});

  std::vector<std::byte> padding = some;
  put_u32(padding, kDeviceNodeHeaderBytes + kDeviceLeafEntryBytes + 52, 1);
  seeds.push_back({"bad-entry-padding", to_seed(padding)});

  std::vector<std::byte> count = full;
  put_u16(count, 2, uint16_t(kDeviceLeafEntriesMax + 1));
  seeds.push_back({"bad-count", to_seed(count)});

  seeds.push_back({"bad-truncated", to_seed(std::span(some).first(kDeviceNodeHeaderBytes + 100))});
  return seeds;
}

}  // namespace thinp::fuzz
