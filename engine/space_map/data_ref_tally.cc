#include "engine/space_map/data_ref_tally.h"

#include <algorithm>
#include <limits>

#include "engine/base/assert.h"
#include "engine/space_map/data_space_map.h"

namespace thinp::space_map {

void DataRefTally::add(DBlock begin, uint64_t length, uint32_t refs) {
  if (length == 0 || refs == 0) return;
  TP_ASSERT_LE(length, std::numeric_limits<uint64_t>::max() - begin.value());
  edges_[begin.value()] += refs;
  edges_[begin.value() + length] -= refs;
}

std::vector<DataExtent> DataRefTally::extents() const {
  std::vector<DataExtent> out;
  int64_t count = 0;
  uint64_t pos = 0;
  for (const auto& [at, change] : edges_) {
    if (count != 0 && at > pos) {
      TP_ASSERT_LE(count, int64_t(std::numeric_limits<uint32_t>::max()));
      if (!out.empty() && out.back().begin + out.back().length == DBlock(pos) &&
          out.back().count == count) {
        out.back().length += at - pos;
      } else {
        out.push_back({DBlock(pos), at - pos, static_cast<uint32_t>(count)});
      }
    }
    count += change;
    TP_ASSERT_GE(count, 0);
    pos = at;
  }
  TP_ASSERT_EQ(count, 0);
  return out;
}

namespace {

void push_mismatch(std::vector<DataRefMismatch>& out, uint64_t begin, uint64_t length,
                   uint32_t expected, uint32_t actual) {
  if (length == 0 || expected == actual) return;
  if (!out.empty()) {
    DataRefMismatch& last = out.back();
    if (last.begin + last.length == DBlock(begin) && last.expected == expected &&
        last.actual == actual) {
      last.length += length;
      return;
    }
  }
  out.push_back({DBlock(begin), length, expected, actual});
}

}  // namespace

// Sweeps the map's extents and the tally's together; each step ends at the
// nearer of the two current extents' ends.
std::vector<DataRefMismatch> DataSpaceMap::diff(const DataRefTally& tally) const {
  const std::vector<DataExtent> want = tally.extents();
  std::vector<DataRefMismatch> out;
  auto w = want.begin();
  for (const auto& [begin, x] : extents_) {
    uint64_t pos = begin;
    const uint64_t end = begin + x.length;
    while (pos < end) {
      while (w != want.end() && w->begin.value() + w->length <= pos) ++w;
      uint64_t step_end = end;
      uint32_t expected = 0;
      if (w != want.end()) {
        if (w->begin.value() <= pos) {
          expected = w->count;
          step_end = std::min(end, w->begin.value() + w->length);
        } else {
          step_end = std::min(end, w->begin.value());
        }
      }
      push_mismatch(out, pos, step_end - pos, expected, x.count);
      pos = step_end;
    }
  }
  // References to blocks beyond the device.
  for (; w != want.end(); ++w) {
    if (w->begin.value() + w->length <= nr_blocks_) continue;
    const uint64_t b = std::max(w->begin.value(), nr_blocks_);
    push_mismatch(out, b, w->begin.value() + w->length - b, w->count, 0);
  }
  return out;
}

}  // namespace thinp::space_map
