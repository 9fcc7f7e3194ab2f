// The compressed mapping-tree node: its in-memory form and its encoding in
// the body of a 4 KiB metadata page (docs/format.md, "Mapping node format").
//
// A leaf holds runs: virtual blocks [vbegin, vbegin + length) map to data
// blocks [dbegin, dbegin + length), all written at snapshot epoch `time`.
// An internal node holds (key, child) pairs. Both are packed column-wise
// with frame-of-reference bit packing: each column stores, per entry, the
// difference from the column's minimum in the fewest bits that hold the
// largest difference. Keys are stored as gaps from the previous entry's
// end; data blocks (and child blocks) either as such offsets or as zigzag
// deltas from where the previous run's data ended, whichever is smaller for
// the node. A node holds as many entries as its encoding fits: trees split
// by encoded size (split_leaf / split_internal), never by entry count.
//
// Encoding is pure and asserts its preconditions (the encoder's input comes
// from the engine). Decoding takes untrusted bytes and returns corruption for
// anything malformed; it never asserts, reads out of bounds or overflows
// (decode_mapping_node is the entry point of the node fuzz target).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/btree/node_store.h"

namespace thinp {

// One past the last virtual block any run may cover.
inline constexpr uint64_t kVirtualEnd = UINT64_MAX;

struct Run {
  VBlock vbegin;
  uint64_t length = 0;  // >= 1
  DBlock dbegin;
  SnapTime time;

  VBlock vend() const { return vbegin + length; }
  DBlock dend() const { return dbegin + length; }
  bool operator==(const Run&) const = default;
};

// Whether `b` can be appended to `a` as one run: contiguous in both spaces,
// same time.
inline bool runs_mergeable(const Run& a, const Run& b) {
  return a.vend() == b.vbegin && a.dend() == b.dbegin && a.time == b.time;
}

struct ChildRef {
  VBlock key;  // the lowest virtual block the child may hold (see mapping_tree.h)
  MBlock block;
  bool operator==(const ChildRef&) const = default;
};

struct MappingNode {
  bool leaf = true;
  std::vector<Run> runs;           // leaf: sorted, non-overlapping
  std::vector<ChildRef> children;  // internal: keys strictly increasing, >= 1 child
};

// The most entries a node may hold (the count field is 16 bits).
inline constexpr size_t kMappingNodeEntriesMax = 65535;

// Encoded size in bytes. Runs must be sorted and non-overlapping with
// length >= 1; keys strictly increasing (asserted).
size_t encoded_leaf_bytes(std::span<const Run> runs);
size_t encoded_internal_bytes(std::span<const ChildRef> children);

// Encodes into `body` (normally kPageBodyBytes long), zero-filling the rest.
// The encoded size must fit in body.size() (asserted).
void encode_leaf(std::span<const Run> runs, std::span<std::byte> body);
void encode_internal(std::span<const ChildRef> children, std::span<std::byte> body);

// Encodes as above and returns true if the encoding fits in capacity_bytes
// (and the entry limit); returns false, leaving `body` untouched, otherwise.
// One pass where encoded_*_bytes + encode_* would take two.
bool encode_leaf_if_fits(std::span<const Run> runs, size_t capacity_bytes,
                         std::span<std::byte> body);
bool encode_internal_if_fits(std::span<const ChildRef> children, size_t capacity_bytes,
                             std::span<std::byte> body);

// Decodes a node body of any length. corruption on anything malformed: bad
// kind, flags, widths or count, truncation, runs that overlap, are out of
// order, have length 0 or overflow 64 bits, keys not strictly increasing,
// times above 32 bits, non-zero bytes after the encoding.
Result<MappingNode> decode_mapping_node(std::span<const std::byte> body);

enum class SplitBias {
  balanced,   // halves of about equal encoded size (random inserts)
  pack_left,  // as full as possible from the left (appends at the end)
};

// Cuts entries into consecutive chunks that each encode in at most
// `capacity_bytes` and hold at most kMappingNodeEntriesMax entries (a single
// entry is always a chunk, even if larger). Returns the index of each chunk's
// first entry: {0} when everything fits, {} for no entries.
std::vector<size_t> split_leaf(std::span<const Run> runs, size_t capacity_bytes, SplitBias bias);
std::vector<size_t> split_internal(std::span<const ChildRef> children, size_t capacity_bytes,
                                   SplitBias bias);

}  // namespace thinp
