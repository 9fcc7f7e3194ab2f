#include "engine/space_map/extent_set.h"

#include <algorithm>

#include "engine/base/assert.h"

namespace thinp::space_map {

void ExtentSet::add_run(uint64_t begin, uint64_t length) {
  TP_ASSERT_GT(length, 0u);
  by_begin_.emplace(begin, length);
  by_length_.emplace(length, begin);
  total_blocks_ += length;
}

void ExtentSet::remove_run(std::map<uint64_t, uint64_t>::iterator it) {
  const size_t erased = by_length_.erase({it->second, it->first});
  TP_ASSERT_EQ(erased, 1u);
  total_blocks_ -= it->second;
  by_begin_.erase(it);
}

void ExtentSet::insert(uint64_t begin, uint64_t length) {
  TP_ASSERT_GT(length, 0u);
  TP_ASSERT_GE(begin + length, begin);  // no wrap
  uint64_t new_begin = begin;
  uint64_t new_end = begin + length;
  auto next = by_begin_.lower_bound(begin);
  if (next != by_begin_.begin()) {
    auto prev = std::prev(next);
    const uint64_t prev_end = prev->first + prev->second;
    TP_ASSERT_LE(prev_end, begin);  // overlap would be a double free
    if (prev_end == begin) {
      new_begin = prev->first;
      remove_run(prev);
    }
  }
  if (next != by_begin_.end()) {
    TP_ASSERT_GE(next->first, new_end);
    if (next->first == new_end) {
      new_end += next->second;
      remove_run(next);
    }
  }
  add_run(new_begin, new_end - new_begin);
}

uint64_t ExtentSet::erase(uint64_t begin, uint64_t length) {
  const uint64_t end = begin + length;
  auto it = by_begin_.upper_bound(begin);
  if (it != by_begin_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second > begin) it = prev;
  }
  uint64_t removed = 0;
  while (it != by_begin_.end() && it->first < end) {
    const uint64_t run_begin = it->first;
    const uint64_t run_end = it->first + it->second;
    auto next = std::next(it);
    remove_run(it);
    const uint64_t cut_begin = std::max(run_begin, begin);
    const uint64_t cut_end = std::min(run_end, end);
    removed += cut_end - cut_begin;
    if (run_begin < cut_begin) add_run(run_begin, cut_begin - run_begin);
    if (cut_end < run_end) add_run(cut_end, run_end - cut_end);
    it = next;
  }
  return removed;
}

std::optional<Run> ExtentSet::containing(uint64_t block) const {
  auto it = by_begin_.upper_bound(block);
  if (it == by_begin_.begin()) return std::nullopt;
  --it;
  if (it->first + it->second <= block) return std::nullopt;
  return Run{it->first, it->second};
}

uint64_t ExtentSet::overlap(uint64_t begin, uint64_t length) const {
  const uint64_t end = begin + length;
  auto it = by_begin_.upper_bound(begin);
  if (it != by_begin_.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second > begin) it = prev;
  }
  uint64_t n = 0;
  for (; it != by_begin_.end() && it->first < end; ++it) {
    n += std::min(it->first + it->second, end) - std::max(it->first, begin);
  }
  return n;
}

std::optional<Run> ExtentSet::largest() const {
  if (by_length_.empty()) return std::nullopt;
  // Among the longest runs, the lowest address: deterministic and simple.
  const uint64_t longest = by_length_.rbegin()->first;
  auto it = by_length_.lower_bound({longest, 0});
  return Run{it->second, it->first};
}

std::optional<Run> ExtentSet::smallest_at_least(uint64_t length) const {
  auto it = by_length_.lower_bound({length, 0});
  if (it == by_length_.end()) return std::nullopt;
  return Run{it->second, it->first};
}

void ExtentSet::assign_sorted(const std::vector<Run>& runs) {
  clear();
  std::vector<std::pair<uint64_t, uint64_t>> by_length;
  by_length.reserve(runs.size());
  uint64_t prev_end = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    TP_ASSERT_GT(r.length, 0u);
    if (i > 0) TP_ASSERT_GT(r.begin, prev_end);  // sorted and not touching
    prev_end = r.end();
    by_begin_.emplace_hint(by_begin_.end(), r.begin, r.length);
    by_length.emplace_back(r.length, r.begin);
    total_blocks_ += r.length;
  }
  std::sort(by_length.begin(), by_length.end());
  for (const auto& e : by_length) by_length_.emplace_hint(by_length_.end(), e);
}

void ExtentSet::clear() {
  by_begin_.clear();
  by_length_.clear();
  total_blocks_ = 0;
}

}  // namespace thinp::space_map
