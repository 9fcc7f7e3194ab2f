// Fuzz target: the mapping-tree node decoder (engine/btree/mapping_node.h).
//
// The input is a node body: the bytes after the 32-byte block header. The
// node store verifies the header and its checksum before a tree decodes the
// body, so there is no checksum to get past here; the body is decoded as given
// (any length) and as a kPageBodyBytes body, truncated or zero-padded, which
// is what the trees read.
//
// The oracle, for every body the decoder accepts:
//   - the node is one the encoder takes: re-encoding asserts that runs are
//     sorted, non-overlapping, of length >= 1 and do not overflow, that keys
//     strictly increase, and that there are at most kMappingNodeEntriesMax;
//   - decode(encode(node)) == node: nothing is lost or invented;
//   - the encoding is canonical: encoding the node decoded from it gives the
//     same bytes again.
// The decoder may accept bodies the encoder would not write (wider columns, a
// base below the minimum, the larger of the two modes), so the input itself
// need not re-encode to the same bytes; the seeds (encoder output) do.
#include <algorithm>
#include <cstring>

#include "engine/base/random.h"
#include "engine/btree/mapping_node.h"
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

bool same_node(const MappingNode& a, const MappingNode& b) {
  return a.leaf == b.leaf && a.runs == b.runs && a.children == b.children;
}

// The node's encoding in a buffer exactly its encoded size (which may exceed
// a page: the decoder accepts any body length). Asserts the node is valid.
std::vector<std::byte> encode(const MappingNode& node) {
  if (node.leaf) {
    std::vector<std::byte> out(encoded_leaf_bytes(node.runs));
    encode_leaf(node.runs, out);
    return out;
  }
  std::vector<std::byte> out(encoded_internal_bytes(node.children));
  encode_internal(node.children, out);
  return out;
}

void decode_and_recheck(std::span<const std::byte> body) {
  Result<MappingNode> r = decode_mapping_node(body);
  if (!r.ok()) {
    const std::string& m = r.status().message();
    fuzz_require(r.status().code() == Errc::corruption, "decoder error is not corruption");
    fuzz_require(!m.empty() && m.find('\n') == std::string::npos,
                 "decoder error is not a single non-empty line");
    return;
  }
  const MappingNode& node = *r;
  fuzz_require(node.leaf ? node.children.empty() : node.runs.empty(),
               "a node holds both runs and children");
  fuzz_require(node.leaf || !node.children.empty(), "an internal node without children");
  fuzz_require(std::max(node.runs.size(), node.children.size()) <= kMappingNodeEntriesMax,
               "more entries than the count field holds");
  const std::vector<std::byte> once = encode(node);
  Result<MappingNode> again = decode_mapping_node(once);
  fuzz_require(again.ok(), "the re-encoding of an accepted node does not decode");
  fuzz_require(same_node(*again, node), "decode(encode(node)) differs from node");
  const std::vector<std::byte> twice = encode(*again);
  fuzz_require(once == twice, "the encoding is not a fixed point");
}

std::vector<uint8_t> to_seed(std::span<const std::byte> b) {
  std::vector<uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

std::vector<std::byte> leaf_body(std::span<const Run> runs) {
  std::vector<std::byte> body(kPageBodyBytes);
  encode_leaf(runs, body);
  return body;
}

std::vector<std::byte> internal_body(std::span<const ChildRef> children) {
  std::vector<std::byte> body(kPageBodyBytes);
  encode_internal(children, body);
  return body;
}

// A thin written sequentially: runs follow each other on both devices with
// small holes, so the zigzag-delta data column is the smaller.
std::vector<Run> sequential_runs() {
  std::vector<Run> runs;
  uint64_t v = 1000, d = 50000;
  for (uint32_t i = 0; i < 120; ++i) {
    const uint64_t length = 1 + i % 7;
    runs.push_back({VBlock(v), length, DBlock(d), SnapTime(3 + i % 2)});
    v += length + i % 3;
    d += length + (i % 5 == 0 ? 9 : 0);
  }
  return runs;
}

// Random writes after snapshots: data anywhere, many times.
std::vector<Run> scattered_runs() {
  Random random(7);
  std::vector<Run> runs;
  uint64_t v = 0;
  for (int i = 0; i < 150; ++i) {
    v += random.range(0, 40);
    const uint64_t length = 1 + random.range(0, 15);
    runs.push_back({VBlock(v), length, DBlock(random.range(0, uint64_t(1) << 36)),
                    SnapTime(uint32_t(random.range(0, 1000)))});
    v += length;
  }
  return runs;
}

// Values at the edges of the format: 64-bit-wide columns, the top of the
// virtual and data spaces, the largest time.
std::vector<Run> extreme_runs() {
  return {
      {VBlock(0), 1, DBlock(UINT64_MAX - 1), SnapTime(0)},
      {VBlock(1), uint64_t(1) << 40, DBlock(0), SnapTime(UINT32_MAX)},
      {VBlock(kVirtualEnd - 5), 5, DBlock(12345), SnapTime(1)},
  };
}

std::vector<ChildRef> children() {
  std::vector<ChildRef> out;
  uint64_t key = 0, block = 900;
  for (int i = 0; i < 200; ++i) {
    out.push_back({VBlock(key), MBlock(block)});
    key += 3000 + uint64_t(i) * 17;
    block += i % 4 == 0 ? 1 : 250;
  }
  return out;
}

}  // namespace

int fuzz_mapping_node(const uint8_t* data, size_t size) {
  decode_and_recheck(as_bytes(data, size));
  decode_and_recheck(as_body(data, size));
  return 0;
}

Status check_mapping_node(const uint8_t* data, size_t size) {
  return decode_mapping_node(as_bytes(data, size)).status();
}

std::vector<FuzzSeed> seeds_mapping_node() {
  std::vector<FuzzSeed> seeds;
  const std::vector<std::byte> sequential = leaf_body(sequential_runs());
  const std::vector<std::byte> internal = internal_body(children());
  seeds.push_back({"valid-empty-leaf", to_seed(leaf_body({}))});
  seeds.push_back({"valid-leaf-sequential", to_seed(sequential)});
  seeds.push_back({"valid-leaf-scattered", to_seed(leaf_body(scattered_runs()))});
  seeds.push_back({"valid-leaf-extremes", to_seed(leaf_body(extreme_runs()))});
  seeds.push_back({"valid-internal", to_seed(internal)});

  std::vector<std::byte> kind = internal;
  kind[0] = std::byte{3};
  seeds.push_back({"bad-kind", to_seed(kind)});

  std::vector<std::byte> trailing = sequential;
  trailing[kPageBodyBytes - 1] = std::byte{1};
  seeds.push_back({"bad-trailing-byte", to_seed(trailing)});

  // More entries than the body has bits for. (A count only a little too
  // large can be valid: the zero bits past the entries decode as entries.)
  std::vector<std::byte> count = sequential;
  put_u16(count, 2, uint16_t(kMappingNodeEntriesMax));
  seeds.push_back({"bad-count", to_seed(count)});

  seeds.push_back({"bad-truncated", to_seed(std::span(internal).first(40))});
  return seeds;
}

}  // namespace thinp::fuzz
