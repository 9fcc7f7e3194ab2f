#include "engine/space_map/extent_set.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <set>
#include <vector>

#include "engine/space_map/space_map_page.h"

namespace thinp::space_map {
namespace {

// The set as plain blocks, for comparison with a std::set model.
std::set<uint64_t> blocks_of(const ExtentSet& s) {
  std::set<uint64_t> out;
  for (const auto& [b, n] : s.runs()) {
    for (uint64_t i = 0; i < n; ++i) out.insert(b + i);
  }
  return out;
}

RC_GTEST_PROP(SpaceMapExtentSet, InsertEraseAndQueriesMatchABlockSet, ()) {
  ExtentSet set;
  std::set<uint64_t> model;
  const int steps = *rc::gen::inRange(1, 100);
  for (int i = 0; i < steps; ++i) {
    const uint64_t b = *rc::gen::inRange<uint64_t>(0, 200);
    const uint64_t n = *rc::gen::inRange<uint64_t>(1, 20);
    uint64_t present = 0;
    for (uint64_t x = b; x < b + n; ++x) present += model.count(x);
    RC_ASSERT(set.overlap(b, n) == present);
    if (*rc::gen::arbitrary<bool>() && present == 0) {
      set.insert(b, n);
      for (uint64_t x = b; x < b + n; ++x) model.insert(x);
    } else {
      RC_ASSERT(set.erase(b, n) == present);
      for (uint64_t x = b; x < b + n; ++x) model.erase(x);
    }
    RC_ASSERT(blocks_of(set) == model);
    RC_ASSERT(set.total_blocks() == model.size());
    // Runs are maximal: no two touch.
    uint64_t prev_end = 0;
    bool first = true;
    uint64_t longest = 0;
    for (const auto& [rb, rn] : set.runs()) {
      RC_ASSERT(first || rb > prev_end);
      first = false;
      prev_end = rb + rn;
      longest = std::max(longest, rn);
    }
    const uint64_t probe = *rc::gen::inRange<uint64_t>(0, 220);
    const auto c = set.containing(probe);
    RC_ASSERT(c.has_value() == model.contains(probe));
    if (c) RC_ASSERT(c->begin <= probe && probe < c->end());
    RC_ASSERT((set.largest() ? set.largest()->length : 0) == longest);
    const uint64_t want = *rc::gen::inRange<uint64_t>(1, 30);
    const auto fit = set.smallest_at_least(want);
    RC_ASSERT(fit.has_value() == (longest >= want));
    if (fit) {
      RC_ASSERT(fit->length >= want);
      for (const auto& [rb, rn] : set.runs()) RC_ASSERT(rn < want || rn >= fit->length);
    }
  }
  std::vector<Run> runs;
  for (const auto& [rb, rn] : set.runs()) runs.push_back({rb, rn});
  ExtentSet rebuilt;
  rebuilt.assign_sorted(runs);
  RC_ASSERT(blocks_of(rebuilt) == model);
  RC_ASSERT(rebuilt.largest() == set.largest());
}

TEST(SpaceMapVarint, RoundTripsAndRejectsTruncatedOrOverlongValues) {
  std::vector<std::byte> buf(64);
  size_t off = 0;
  const std::vector<uint64_t> values = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX};
  for (uint64_t v : values) put_varint(buf, off, v);
  size_t in = 0;
  for (uint64_t v : values) {
    uint64_t got = 0;
    ASSERT_TRUE(get_varint(buf, in, off, got));
    EXPECT_EQ(got, v);
  }
  EXPECT_EQ(in, off);
  uint64_t v = 0;
  size_t at = 0;
  EXPECT_FALSE(get_varint(buf, at, 0, v));  // nothing to read
  std::vector<std::byte> overlong(11, std::byte{0x80});
  at = 0;
  EXPECT_FALSE(get_varint(overlong, at, overlong.size(), v));
  std::vector<std::byte> too_big(10, std::byte{0xff});
  too_big[9] = std::byte{0x02};  // bit 64 set
  at = 0;
  EXPECT_FALSE(get_varint(too_big, at, too_big.size(), v));
  std::vector<std::byte> cut = {std::byte{0x80}, std::byte{0x80}};
  at = 0;
  EXPECT_FALSE(get_varint(cut, at, cut.size(), v));
}

}  // namespace
}  // namespace thinp::space_map
