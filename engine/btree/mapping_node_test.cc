#include "engine/btree/mapping_node.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <vector>

#include "engine/base/random.h"
#include "engine/format/block_header.h"

namespace thinp {
namespace {

using Body = std::array<std::byte, kPageBodyBytes>;

// Values of a random bit width, so that nodes see every column width.
rc::Gen<uint64_t> gen_bits(int max_bits) {
  return rc::gen::mapcat(rc::gen::inRange(0, max_bits + 1), [](int bits) {
    return rc::gen::map(rc::gen::arbitrary<uint64_t>(), [bits](uint64_t v) {
      return bits == 0 ? 0 : (bits == 64 ? v : v & ((uint64_t(1) << bits) - 1));
    });
  });
}

// Sorted, non-overlapping runs that do not overflow.
std::vector<thinp::Run> gen_runs(size_t max) {
  const size_t n = *rc::gen::inRange<size_t>(0, max + 1);
  const int gap_bits = *rc::gen::inRange(0, 40);
  const int len_bits = *rc::gen::inRange(0, 30);
  const int d_bits = *rc::gen::inRange(0, 64);
  std::vector<thinp::Run> runs;
  uint64_t v = *gen_bits(50);
  uint64_t d = *gen_bits(d_bits);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t gap = *gen_bits(gap_bits);
    const uint64_t len = 1 + *gen_bits(len_bits);
    if (v > kVirtualEnd - gap - len - 1) break;
    v += gap;
    if (*rc::gen::inRange(0, 3) == 0) d = *gen_bits(d_bits);  // else contiguous-ish
    if (d > UINT64_MAX - len) d = 0;
    runs.push_back(thinp::Run{VBlock(v), len, DBlock(d), SnapTime(uint32_t(*gen_bits(32)))});
    v += len;
    d += len + *gen_bits(4);
  }
  return runs;
}

RC_GTEST_PROP(MappingNode, LeafRoundTripsThroughSplitChunks, ()) {
  const std::vector<thinp::Run> runs = gen_runs(600);
  const auto bias = *rc::gen::element(SplitBias::balanced, SplitBias::pack_left);
  const size_t capacity = *rc::gen::inRange<size_t>(48, kPageBodyBytes + 1);
  const std::vector<size_t> cuts = split_leaf(runs, capacity, bias);
  RC_ASSERT(cuts.empty() == runs.empty());
  std::vector<thinp::Run> back;
  for (size_t k = 0; k < cuts.size(); ++k) {
    const size_t end = k + 1 < cuts.size() ? cuts[k + 1] : runs.size();
    std::span<const thinp::Run> chunk(runs.data() + cuts[k], end - cuts[k]);
    const size_t bytes = encoded_leaf_bytes(chunk);
    RC_ASSERT(bytes <= capacity || chunk.size() == 1);
    Body body;
    encode_leaf(chunk, body);
    const Result<MappingNode> node = decode_mapping_node(body);
    RC_ASSERT(node.ok());
    RC_ASSERT(node->leaf);
    back.insert(back.end(), node->runs.begin(), node->runs.end());
  }
  RC_ASSERT(back == runs);
}

RC_GTEST_PROP(MappingNode, InternalRoundTrips, ()) {
  const size_t n = *rc::gen::inRange<size_t>(1, 300);
  const int key_bits = *rc::gen::inRange(0, 50);
  const int block_bits = *rc::gen::inRange(0, 64);
  std::vector<ChildRef> children;
  uint64_t key = *gen_bits(60);
  for (size_t i = 0; i < n; ++i) {
    children.push_back(ChildRef{VBlock(key), MBlock(*gen_bits(block_bits))});
    const uint64_t gap = 1 + *gen_bits(key_bits);
    if (key > UINT64_MAX - gap) break;
    key += gap;
  }
  for (size_t k = 0; k < 1; ++k) {
    const std::vector<size_t> cuts = split_internal(children, kPageBodyBytes, SplitBias::balanced);
    RC_ASSERT(!cuts.empty());
    std::vector<ChildRef> back;
    for (size_t c = 0; c < cuts.size(); ++c) {
      const size_t end = c + 1 < cuts.size() ? cuts[c + 1] : children.size();
      Body body;
      encode_internal(std::span<const ChildRef>(children.data() + cuts[c], end - cuts[c]), body);
      const Result<MappingNode> node = decode_mapping_node(body);
      RC_ASSERT(node.ok());
      RC_ASSERT(!node->leaf);
      back.insert(back.end(), node->children.begin(), node->children.end());
    }
    RC_ASSERT(back == children);
  }
}

// Garbage in: decode must return corruption or a node that survives a
// re-encode; never crash, assert or read out of bounds.
RC_GTEST_PROP(MappingNode, GarbageIsRejectedOrConsistent, ()) {
  Body body{};
  const std::vector<thinp::Run> runs = gen_runs(200);
  const auto cuts = split_leaf(runs, kPageBodyBytes, SplitBias::balanced);
  const size_t first_end = cuts.size() > 1 ? cuts[1] : runs.size();
  encode_leaf(std::span<const thinp::Run>(runs.data(), first_end), body);
  const int flips = *rc::gen::inRange(1, 20);
  for (int i = 0; i < flips; ++i) {
    const size_t at = *rc::gen::inRange<size_t>(0, 64);  // mostly the header and first entries
    body[at] ^= std::byte(*rc::gen::inRange(1, 256));
  }
  const size_t len = *rc::gen::element(size_t(kPageBodyBytes), size_t(0), size_t(7), size_t(40));
  const Result<MappingNode> node = decode_mapping_node(std::span(body).first(len));
  if (!node.ok()) {
    RC_ASSERT(node.status().code() == Errc::corruption);
    return;
  }
  if (node->leaf && encoded_leaf_bytes(node->runs) <= kPageBodyBytes) {
    Body again;
    encode_leaf(node->runs, again);
    RC_ASSERT(decode_mapping_node(again)->runs == node->runs);
  }
}

TEST(MappingNode, RandomBytesNeverCrash) {
  Random rng(42);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    Body body{};
    const size_t n = rng.uniform(64);
    for (size_t j = 0; j < n; ++j) body[j] = std::byte(rng.uniform(256));
    if (rng.chance(0.5)) body[0] = std::byte(1 + rng.uniform(2));
    const Result<MappingNode> node = decode_mapping_node(body);
    if (node.ok())
      ++accepted;
    else
      EXPECT_EQ(node.status().code(), Errc::corruption);
  }
  EXPECT_LT(accepted, 20000);
}

TEST(MappingNode, SpecificCorruptionsAreNamed) {
  const std::vector<thinp::Run> runs = {{VBlock(10), 5, DBlock(100), SnapTime(1)},
                                        {VBlock(20), 3, DBlock(7), SnapTime(2)}};
  Body good;
  encode_leaf(runs, good);
  ASSERT_TRUE(decode_mapping_node(good).ok());
  auto expect_corrupt = [](Body b, const std::string& words) {
    const Result<MappingNode> node = decode_mapping_node(b);
    ASSERT_FALSE(node.ok());
    EXPECT_EQ(node.status().code(), Errc::corruption);
    EXPECT_NE(node.status().message().find(words), std::string::npos) << node.status().message();
  };
  Body b = good;
  b[0] = std::byte(3);
  expect_corrupt(b, "bad kind");
  b = good;
  b[4] = std::byte(65);
  expect_corrupt(b, "width");
  b = good;
  put_u16(b, 2, 60000);
  expect_corrupt(b, "past the end");
  b = good;
  b[kPageBodyBytes - 1] = std::byte(1);
  expect_corrupt(b, "non-zero bytes");
  b = good;
  b[1] = std::byte(0x80);
  expect_corrupt(b, "flags");
  expect_corrupt(Body{}, "bad kind");
}

TEST(MappingNode, LengthZeroAndOverflowAreRejected) {
  // Hand-built leaf: one run with length column base 0 -> length 0.
  Body b{};
  b[0] = std::byte(1);
  put_u16(b, 2, 1);
  size_t pos = 8;
  b[pos++] = std::byte(5);                              // first key
  for (int k = 0; k < 4; ++k) b[pos++] = std::byte(0);  // bases: length 0
  EXPECT_NE(decode_mapping_node(b).status().message().find("length 0"), std::string::npos);
  // Length that runs past 2^64.
  Body c{};
  c[0] = std::byte(1);
  put_u16(c, 2, 1);
  pos = 8;
  for (int i = 0; i < 9; ++i) c[pos++] = std::byte(0xff);
  c[pos++] = std::byte(1);  // first key = 2^64 - 1
  c[pos++] = std::byte(0);  // gap base
  c[pos++] = std::byte(2);  // length base
  c[pos++] = std::byte(0);
  c[pos++] = std::byte(0);
  EXPECT_EQ(decode_mapping_node(c).status().code(), Errc::corruption);
}

// The densities the benchmark relies on: a full leaf of single-block runs
// to random data blocks below 2^22 costs under 3 bytes a run.
TEST(MappingNode, DenseLeafOfRandomDataRuns) {
  Random rng(7);
  std::vector<thinp::Run> runs;
  for (uint64_t v = 0; v < 5000; ++v) {
    runs.push_back(thinp::Run{VBlock(v), 1, DBlock(rng.uniform(uint64_t(1) << 22)), SnapTime(0)});
  }
  const auto cuts = split_leaf(runs, kPageBodyBytes, SplitBias::pack_left);
  ASSERT_GE(cuts.size(), 2u);
  const size_t first = cuts[1];
  EXPECT_GT(first, 1400u);  // 22 bits a run: (4064 - header) * 8 / 22
  EXPECT_LE(encoded_leaf_bytes(std::span<const thinp::Run>(runs.data(), first)), kPageBodyBytes);
  EXPECT_GT(encoded_leaf_bytes(std::span<const thinp::Run>(runs.data(), first + 1)),
            kPageBodyBytes);
}

TEST(MappingNode, EmptyLeafIsEightBytes) {
  EXPECT_EQ(encoded_leaf_bytes({}), 8u);
  Body b;
  encode_leaf({}, b);
  const auto node = decode_mapping_node(b);
  ASSERT_TRUE(node.ok());
  EXPECT_TRUE(node->leaf);
  EXPECT_TRUE(node->runs.empty());
}

}  // namespace
}  // namespace thinp
