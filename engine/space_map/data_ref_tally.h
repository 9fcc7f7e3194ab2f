// DataRefTally: the data-block reference counts a checker finds by walking
// every mapping tree, kept per range, so that a walk over a thin that maps a
// million contiguous blocks adds one range, not a million blocks.
//
// `thinp check` (and the simulator's invariant 4 check) adds one range per
// mapping run it finds, then asks DataSpaceMap::diff for the ranges whose
// recorded count differs: a recorded count above the tally is a leak, below it
// a block that is referenced more often than the map knows (or referenced
// while free: the dangerous case).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "engine/base/units.h"

namespace thinp::space_map {

struct DataExtent {
  DBlock begin;
  uint64_t length = 0;
  uint32_t count = 0;
  bool operator==(const DataExtent&) const = default;
};

class DataRefTally {
 public:
  // Counts `refs` more references to every block of [begin, begin + length).
  // length 0 adds nothing.
  void add(DBlock begin, uint64_t length, uint32_t refs = 1);

  // The tally as maximal extents of equal nonzero count, in address order.
  // O(ranges added * log).
  std::vector<DataExtent> extents() const;

 private:
  std::map<uint64_t, int64_t> edges_;  // position -> change of count there
};

// A range whose count in the map differs from the tally.
struct DataRefMismatch {
  DBlock begin;
  uint64_t length = 0;
  uint32_t expected = 0;  // from the tally
  uint32_t actual = 0;    // from the space map (0 beyond the device)
  bool operator==(const DataRefMismatch&) const = default;
};

}  // namespace thinp::space_map
