// RangeCounts: reference counts kept per range of 64-bit block numbers.
//
// A map from disjoint half-open ranges [begin, end) to a count > 0. Blocks
// not covered have count 0. Neighbouring ranges with equal counts are always
// merged, so two RangeCounts holding the same counts compare equal.
//
// This is the in-memory shape of the data space map's range refcounts (what
// MemoryDataRefs keeps) and of the counts a reference walk expects (what
// ref_census builds), so the two can be compared with ==.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/base/status.h"

namespace thinp {

class RangeCounts {
 public:
  struct Segment {
    uint64_t begin = 0;
    uint64_t end = 0;  // exclusive
    uint32_t count = 0;
    bool operator==(const Segment&) const = default;
  };

  // Adds `delta` to the count of every block in [begin, begin + length).
  // length > 0 and begin + length must not overflow (asserted). Returns
  // corruption, and changes nothing, if a count would drop below zero or
  // rise above UINT32_MAX.
  Status add(uint64_t begin, uint64_t length, int64_t delta);

  // The count of one block.
  uint32_t count_at(uint64_t block) const;

  // The largest count of any block in [begin, begin + length) (0 if none).
  uint32_t max_count(uint64_t begin, uint64_t length) const;

  // The segments in order of begin.
  std::vector<Segment> segments() const;
  size_t segment_count() const { return map_.size(); }
  bool empty() const { return map_.empty(); }

  // Sum over blocks of their counts.
  uint64_t total() const;

  bool operator==(const RangeCounts& o) const { return map_ == o.map_; }

  // Describes the first few blocks whose counts differ between `expected`
  // and `actual`, e.g. "d:12..d:15 expected 2 found 1"; empty if equal.
  static std::string describe_differences(const RangeCounts& expected, const RangeCounts& actual,
                                          size_t max_lines = 8);

 private:
  struct Value {
    uint64_t end;
    uint32_t count;
    bool operator==(const Value&) const = default;
  };
  // Splits the segment containing `at` (if any) so that a segment begins at `at`.
  void split_at(uint64_t at);
  // Merges the segment beginning at `begin` (if any) with its left neighbour
  // when they touch and have equal counts.
  void merge_left(uint64_t begin);

  std::map<uint64_t, Value> map_;  // begin -> (end, count), count > 0
};

}  // namespace thinp
