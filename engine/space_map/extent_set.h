// ExtentSet: a set of blocks kept as disjoint, maximal half-open runs, indexed
// both by position (to find the run holding a block: locality) and by length
// (to find the largest run, or the smallest run of at least n blocks:
// best fit). The data space map keeps its free index and its reservations in
// ExtentSets.
//
// Every operation is O(log runs) per run it touches. Runs are always maximal:
// inserting next to a run merges with it, so two runs never touch.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

namespace thinp::space_map {

struct Run {
  uint64_t begin = 0;
  uint64_t length = 0;
  uint64_t end() const { return begin + length; }
  bool operator==(const Run&) const = default;
};

class ExtentSet {
 public:
  // Adds [begin, begin + length). None of it may already be in the set
  // (asserted); length must be > 0.
  void insert(uint64_t begin, uint64_t length);

  // Removes whatever part of [begin, begin + length) is in the set and returns
  // how many blocks that was (0 if none).
  uint64_t erase(uint64_t begin, uint64_t length);

  // The run holding `block`, if any.
  std::optional<Run> containing(uint64_t block) const;

  // Number of blocks of [begin, begin + length) that are in the set.
  uint64_t overlap(uint64_t begin, uint64_t length) const;

  std::optional<Run> largest() const;
  // The shortest run with length >= `length`; ties go to the lowest address.
  std::optional<Run> smallest_at_least(uint64_t length) const;

  // Replaces the contents with `runs`, which must be sorted, nonempty each and
  // not touching (asserted). O(n log n) with contiguous sorting instead of n
  // tree searches: this is how load rebuilds the free index.
  void assign_sorted(const std::vector<Run>& runs);

  uint64_t total_blocks() const { return total_blocks_; }
  size_t run_count() const { return by_begin_.size(); }
  bool empty() const { return by_begin_.empty(); }
  void clear();

  // Runs in address order.
  const std::map<uint64_t, uint64_t>& runs() const { return by_begin_; }

 private:
  void add_run(uint64_t begin, uint64_t length);
  void remove_run(std::map<uint64_t, uint64_t>::iterator it);

  std::map<uint64_t, uint64_t> by_begin_;            // begin -> length
  std::set<std::pair<uint64_t, uint64_t>> by_length_;  // (length, begin)
  uint64_t total_blocks_ = 0;
};

}  // namespace thinp::space_map
