// Test helpers shared by the space map tests: a per-block reference model of
// the data space map, a log of applied records and a page "disk".
#pragma once

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/journal/record.h"
#include "engine/space_map/data_space_map.h"
#include "engine/space_map/metadata_space_map.h"

namespace thinp::space_map::testing {

// The plain model: block -> count, only nonzero counts stored, and the
// blocks reserved by transactions that have not applied or cancelled yet.
struct BlockModel {
  uint64_t nr_blocks = 0;
  std::map<uint64_t, uint32_t> counts;
  std::set<uint64_t> reserved;

  uint32_t at(uint64_t b) const {
    auto it = counts.find(b);
    return it == counts.end() ? 0 : it->second;
  }
  bool is_free(uint64_t b) const { return !counts.contains(b) && !reserved.contains(b); }
  uint64_t free_blocks() const { return nr_blocks - counts.size() - reserved.size(); }
  bool range_free(uint64_t begin, uint64_t n) const {
    if (begin + n > nr_blocks) return false;
    for (uint64_t b = begin; b < begin + n; ++b) {
      if (!is_free(b)) return false;
    }
    return true;
  }
  void add(uint64_t begin, uint64_t n, int32_t delta) {
    for (uint64_t b = begin; b < begin + n; ++b) {
      const int64_t v = int64_t(at(b)) + delta;
      if (v == 0) {
        counts.erase(b);
      } else {
        counts[b] = static_cast<uint32_t>(v);
      }
    }
  }
  // Lengths of the maximal free runs, longest first.
  std::vector<uint64_t> free_run_lengths() const {
    std::vector<uint64_t> out;
    uint64_t run = 0;
    for (uint64_t b = 0; b < nr_blocks; ++b) {
      if (is_free(b)) {
        ++run;
      } else if (run > 0) {
        out.push_back(run);
        run = 0;
      }
    }
    if (run > 0) out.push_back(run);
    std::sort(out.rbegin(), out.rend());
    return out;
  }
};

// Per-block nonzero counts as the map reports them.
inline std::map<uint64_t, uint32_t> expand(const DataSpaceMap& map) {
  std::map<uint64_t, uint32_t> out;
  map.for_each_extent([&](DBlock begin, uint64_t length, uint32_t count) {
    if (count == 0) return;
    for (uint64_t i = 0; i < length; ++i) out.emplace_hint(out.end(), begin.value() + i, count);
  });
  return out;
}

inline std::vector<std::tuple<uint64_t, uint64_t, uint32_t>> extents_of(const DataSpaceMap& map) {
  std::vector<std::tuple<uint64_t, uint64_t, uint32_t>> out;
  map.for_each_extent([&](DBlock b, uint64_t n, uint32_t c) { out.emplace_back(b.value(), n, c); });
  return out;
}

inline std::vector<std::pair<uint64_t, uint32_t>> used_of(const MetadataSpaceMap& map) {
  std::vector<std::pair<uint64_t, uint32_t>> out;
  map.for_each_used([&](MBlock b, uint32_t c) { out.emplace_back(b.value(), c); });
  return out;
}

// A device of metadata pages: a block never written reads as zeros, as the
// space map regions do after format.
struct PageDisk {
  std::map<uint64_t, std::vector<std::byte>> pages;

  void write(const EncodedPage& p) { pages[p.location.value()] = p.bytes; }
  PageReader reader() const {
    return [this](MBlock at) -> Result<std::vector<std::byte>> {
      auto it = pages.find(at.value());
      if (it == pages.end()) return std::vector<std::byte>(kMetadataBlockBytes, std::byte{0});
      return it->second;
    };
  }
};

// Writes the dirty pages of `map` whose LSN is at most a random durable LSN
// (a random subset of them if `random_subset`), runs `meanwhile` (changes
// made while the writes are in flight), marks the pages written, then moves
// `tail`, the first LSN the journal keeps, as a checkpointer would: up to the
// map's oldest unwritten LSN, or past every record. `next_lsn` is read after
// `meanwhile`.
template <typename Map, typename Encode>
void checkpoint_pages(Map& map, Encode encode, PageDisk& disk, bool random_subset, Lsn& tail,
                      const uint64_t& next_lsn, const std::function<void()>& meanwhile = {}) {
  const Lsn durable(random_subset ? *rc::gen::inRange<uint64_t>(0, next_lsn) : next_lsn - 1);
  std::vector<EncodedPage> written;
  for (EncodedPage& p : encode(map, durable)) {
    RC_ASSERT(p.lsn <= durable);
    if (random_subset && !*rc::gen::arbitrary<bool>()) continue;
    disk.write(p);
    written.push_back(std::move(p));
  }
  if (meanwhile) meanwhile();
  for (const EncodedPage& p : written) map.mark_written(p);
  const Lsn new_tail = map.oldest_unwritten_lsn().value_or(Lsn(next_lsn));
  RC_ASSERT(new_tail >= tail);
  tail = new_tail;
}

// Records in the order they were applied, with their LSNs: the journal.
struct RecordLog {
  uint64_t next_lsn = 1;
  std::vector<std::pair<Lsn, journal::Record>> records;

  template <typename Map, typename R>
  void apply(Map& map, const R& r) {
    const Lsn lsn(next_lsn++);
    map.apply(r, lsn);
    records.emplace_back(lsn, r);
  }

  // Replays the records from LSN `from` on (the journal tail) to the end.
  void replay(DataSpaceMap& map, Lsn from = Lsn(1)) const {
    for (const auto& [lsn, r] : records) {
      if (lsn < from) continue;
      if (auto* a = std::get_if<journal::DataRangeAlloc>(&r)) map.apply(*a, lsn);
      if (auto* d = std::get_if<journal::DataRangeRefDelta>(&r)) map.apply(*d, lsn);
    }
  }
  void replay(MetadataSpaceMap& map, Lsn from = Lsn(1)) const {
    for (const auto& [lsn, r] : records) {
      if (lsn < from) continue;
      if (auto* m = std::get_if<journal::MetaRefDelta>(&r)) map.apply(*m, lsn);
    }
  }
};

// Drives a DataSpaceMap with random operations through the decide / log /
// apply protocol and checks every answer against a BlockModel as it goes.
struct DataHarness {
  DataSpaceMap map;
  BlockModel model;
  RecordLog log;
  std::map<uint64_t, uint64_t> last_end;         // owner -> end of its last reservation
  std::vector<journal::DataRangeAlloc> pending;  // reserved, not yet applied or cancelled

  explicit DataHarness(DataSpaceMap m) : map(std::move(m)) { model.nr_blocks = map.nr_blocks(); }

  void allocate(uint64_t owner, uint64_t n) {
    auto res = map.reserve(ThinId(owner), n);
    if (n > model.free_blocks()) {
      RC_ASSERT(!res.ok());
      RC_ASSERT(res.status().code() == Errc::no_space);
      return;
    }
    RC_ASSERT(res.ok());
    const auto& runs = res.value();
    uint64_t total = 0;
    std::map<uint64_t, uint64_t> seen;
    for (const auto& r : runs) {
      RC_ASSERT(r.length > 0);
      RC_ASSERT(r.owner == ThinId(owner));
      // Never a block in use, never the same block twice.
      RC_ASSERT(model.range_free(r.begin.value(), r.length));
      auto next = seen.lower_bound(r.begin.value());
      RC_ASSERT(next == seen.end() || next->first >= r.begin.value() + r.length);
      if (next != seen.begin()) RC_ASSERT(std::prev(next)->second <= r.begin.value());
      seen[r.begin.value()] = r.begin.value() + r.length;
      total += r.length;
    }
    RC_ASSERT(total == n);
    // Fewest runs: as many as the longest free runs need.
    const std::vector<uint64_t> lengths = model.free_run_lengths();
    size_t fewest = 0;
    for (uint64_t sum = 0; sum < n; ++fewest) sum += lengths[fewest];
    RC_ASSERT(runs.size() == fewest);
    // Locality: continue right after the owner's previous allocation.
    if (auto it = last_end.find(owner); it != last_end.end() && model.range_free(it->second, n)) {
      RC_ASSERT(runs.size() == 1u);
      RC_ASSERT(runs[0].begin == DBlock(it->second));
    }
    last_end[owner] = runs.back().begin.value() + runs.back().length;
    for (const auto& r : runs) {
      for (uint64_t b = r.begin.value(); b < r.begin.value() + r.length; ++b)
        model.reserved.insert(b);
      pending.push_back(r);
    }
    RC_ASSERT(map.count_reserved() == model.reserved.size());
    // Most transactions log and apply at once; some cancel; some stay open
    // while others allocate (settled by a later step).
    const int fate = *rc::gen::inRange(0, 4);
    if (fate == 0) return;
    while (pending.size() > 0 && pending.back().owner == ThinId(owner))
      settle(pending.size() - 1, fate == 1);
  }

  // Applies (or cancels) the open reservation pending[i].
  void settle(size_t i, bool cancel) {
    const journal::DataRangeAlloc r = pending[i];
    pending.erase(pending.begin() + i);
    for (uint64_t b = r.begin.value(); b < r.begin.value() + r.length; ++b) model.reserved.erase(b);
    if (cancel) {
      map.cancel(r);
    } else {
      log.apply(map, r);
      model.add(r.begin.value(), r.length, +1);
    }
    RC_ASSERT(map.count_reserved() == model.reserved.size());
  }

  void settle_all(bool cancel) {
    while (!pending.empty()) settle(0, cancel);
  }

  // The smallest (or largest) model count in [begin, begin + n).
  uint32_t lowest_or_most(uint64_t begin, uint64_t n, bool most) const {
    uint32_t v = most ? 0 : UINT32_MAX;
    for (uint64_t b = begin; b < begin + n; ++b)
      v = most ? std::max(v, model.at(b)) : std::min(v, model.at(b));
    return v;
  }

  // A used stretch starting at a random used block, at most max_len long.
  std::pair<uint64_t, uint64_t> random_used_range(uint64_t max_len) {
    auto it = model.counts.begin();
    std::advance(it, *rc::gen::inRange<size_t>(0, model.counts.size()));
    const uint64_t begin = it->first;
    uint64_t n = 0;
    while (n < max_len && it != model.counts.end() && it->first == begin + n) {
      ++n;
      ++it;
    }
    return {begin, n};
  }

  void change(bool increase) {
    if (model.counts.empty()) return;
    const auto [begin, n] = random_used_range(*rc::gen::inRange<uint64_t>(1, 40));
    uint32_t lowest = UINT32_MAX;
    for (uint64_t b = begin; b < begin + n; ++b) lowest = std::min(lowest, model.at(b));
    const int32_t delta = increase ? int32_t(*rc::gen::inRange(1, 4))
                                   : -int32_t(*rc::gen::inRange<uint32_t>(1, lowest + 1));
    const journal::DataRangeRefDelta r{DBlock(begin), n, delta};
    RC_ASSERT(map.check(r).ok());
    RC_ASSERT(map.max_refcount(DBlock(begin), n) == lowest_or_most(begin, n, true));
    log.apply(map, r);
    model.add(begin, n, delta);
  }

  void probe_invalid() {
    const uint64_t b = *rc::gen::inRange<uint64_t>(0, model.nr_blocks);
    const journal::DataRangeRefDelta r{DBlock(b), 1,
                                       model.at(b) == 0 ? +1 : -int32_t(model.at(b)) - 1};
    RC_ASSERT(map.check(r).code() == Errc::invalid_argument);
  }

  void random_step() {
    const int op = *rc::gen::inRange(0, 11);
    if (op < 4) {
      allocate(*rc::gen::inRange<uint64_t>(0, 4), *rc::gen::inRange<uint64_t>(1, 24));
    } else if (op < 6) {
      change(true);
    } else if (op < 9) {
      change(false);
    } else if (op < 10) {
      probe_invalid();
    } else if (!pending.empty()) {
      settle(*rc::gen::inRange<size_t>(0, pending.size()), *rc::gen::arbitrary<bool>());
    }
  }

  void expect_matches_model() const {
    RC_ASSERT(map.count_used() == model.counts.size());
    RC_ASSERT(map.count_free() == model.free_blocks());
    RC_ASSERT(map.count_reserved() == model.reserved.size());
    RC_ASSERT(expand(map) == model.counts);
    map.check_invariants();
  }
};

}  // namespace thinp::space_map::testing
