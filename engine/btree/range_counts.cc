#include "engine/btree/range_counts.h"

#include <algorithm>
#include <limits>

namespace thinp {

void RangeCounts::split_at(uint64_t at) {
  auto it = map_.upper_bound(at);
  if (it == map_.begin()) return;
  --it;
  if (it->first == at || it->second.end <= at) return;
  const Value right{it->second.end, it->second.count};
  it->second.end = at;
  map_.emplace(at, right);
}

void RangeCounts::merge_left(uint64_t begin) {
  auto it = map_.find(begin);
  if (it == map_.end() || it == map_.begin()) return;
  auto prev = std::prev(it);
  if (prev->second.end == begin && prev->second.count == it->second.count) {
    prev->second.end = it->second.end;
    map_.erase(it);
  }
}

Status RangeCounts::add(uint64_t begin, uint64_t length, int64_t delta) {
  TP_ASSERT_GT(length, 0u);
  TP_ASSERT_LE(begin, std::numeric_limits<uint64_t>::max() - length);
  if (delta == 0) return ok_status();
  const uint64_t end = begin + length;

  // Check first, so that a failure changes nothing.
  uint64_t covered = 0;
  auto first = map_.upper_bound(begin);
  if (first != map_.begin() && std::prev(first)->second.end > begin) --first;
  for (auto it = first; it != map_.end() && it->first < end; ++it) {
    const int64_t c = int64_t(it->second.count) + delta;
    if (c < 0 || c > int64_t(std::numeric_limits<uint32_t>::max())) {
      return Status(Errc::corruption,
                    "refcount of d:" + std::to_string(std::max(begin, it->first)) +
                        " would become " + std::to_string(c));
    }
    covered += std::min(end, it->second.end) - std::max(begin, it->first);
  }
  if (delta < 0 && covered != length) {
    return Status(Errc::corruption, "refcount below zero in range d:" + std::to_string(begin) +
                                        "+" + std::to_string(length));
  }

  split_at(begin);
  split_at(end);
  // Walk [begin, end): adjust existing segments, fill gaps with new ones.
  uint64_t pos = begin;
  auto it = map_.lower_bound(begin);
  std::vector<uint64_t> touched;
  while (pos < end) {
    if (it != map_.end() && it->first == pos) {
      it->second.count = uint32_t(int64_t(it->second.count) + delta);
      touched.push_back(pos);
      pos = it->second.end;
      if (it->second.count == 0) {
        it = map_.erase(it);
      } else {
        ++it;
      }
    } else {
      const uint64_t gap_end = (it == map_.end()) ? end : std::min(end, it->first);
      TP_ASSERT_GT(delta, 0);  // checked above
      map_.emplace(pos, Value{gap_end, uint32_t(delta)});
      touched.push_back(pos);
      pos = gap_end;
    }
  }
  touched.push_back(end);
  for (uint64_t b : touched) merge_left(b);
  return ok_status();
}

uint32_t RangeCounts::count_at(uint64_t block) const {
  auto it = map_.upper_bound(block);
  if (it == map_.begin()) return 0;
  --it;
  return it->second.end > block ? it->second.count : 0;
}

uint32_t RangeCounts::max_count(uint64_t begin, uint64_t length) const {
  if (length == 0) return 0;
  const uint64_t end = begin + length;
  auto it = map_.upper_bound(begin);
  if (it != map_.begin() && std::prev(it)->second.end > begin) --it;
  uint32_t m = 0;
  for (; it != map_.end() && it->first < end; ++it) m = std::max(m, it->second.count);
  return m;
}

std::vector<RangeCounts::Segment> RangeCounts::segments() const {
  std::vector<Segment> out;
  out.reserve(map_.size());
  for (const auto& [b, v] : map_) out.push_back(Segment{b, v.end, v.count});
  return out;
}

uint64_t RangeCounts::total() const {
  uint64_t t = 0;
  for (const auto& [b, v] : map_) t += (v.end - b) * v.count;
  return t;
}

std::string RangeCounts::describe_differences(const RangeCounts& expected,
                                              const RangeCounts& actual, size_t max_lines) {
  // Merge the boundaries of both maps and compare piecewise.
  std::vector<uint64_t> cuts;
  for (const auto& [b, v] : expected.map_) cuts.insert(cuts.end(), {b, v.end});
  for (const auto& [b, v] : actual.map_) cuts.insert(cuts.end(), {b, v.end});
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  std::string out;
  size_t lines = 0;
  for (size_t i = 0; i + 1 < cuts.size() && lines < max_lines; ++i) {
    const uint32_t e = expected.count_at(cuts[i]);
    const uint32_t a = actual.count_at(cuts[i]);
    if (e == a) continue;
    out += "d:" + std::to_string(cuts[i]) + "..d:" + std::to_string(cuts[i + 1] - 1) +
           " expected " + std::to_string(e) + " found " + std::to_string(a) + "\n";
    ++lines;
  }
  return out;
}

}  // namespace thinp
