// The in-memory half of DataSpaceMap: extents, free index, allocation and
// apply. Pages (encode, decode, load) are in data_space_map_pages.cc.
#include "engine/space_map/data_space_map.h"

#include <algorithm>
#include <limits>
#include <string>

namespace thinp::space_map {

uint64_t DataSpaceMap::pages_for(uint64_t nr_blocks, uint64_t blocks_per_page) {
  TP_ASSERT_GT(blocks_per_page, 0u);
  return (nr_blocks + blocks_per_page - 1) / blocks_per_page;
}

DataSpaceMap::DataSpaceMap(const DataGeometry& geometry)
    : nr_blocks_(geometry.nr_blocks),
      blocks_per_page_(geometry.blocks_per_page),
      region_(geometry.region),
      pages_(pages_for(geometry.nr_blocks, geometry.blocks_per_page)) {
  extents_.emplace(0, Extent{nr_blocks_, 0});
  free_.insert(0, nr_blocks_);
}

Result<DataSpaceMap> DataSpaceMap::create(const DataGeometry& geometry) {
  if (geometry.nr_blocks == 0 || geometry.blocks_per_page == 0) {
    return Status(Errc::invalid_argument,
                  "data space map needs nonzero nr_blocks (" + std::to_string(geometry.nr_blocks) +
                      ") and blocks_per_page (" + std::to_string(geometry.blocks_per_page) + ")");
  }
  const uint64_t pages = pages_for(geometry.nr_blocks, geometry.blocks_per_page);
  if (pages > geometry.region.page_capacity()) {
    return Status(Errc::invalid_argument,
                  "data space map of " + std::to_string(geometry.nr_blocks) + " blocks needs " +
                      std::to_string(pages) + " pages, region holds " +
                      std::to_string(geometry.region.page_capacity()));
  }
  return DataSpaceMap(geometry);
}

Status DataSpaceMap::grow(uint64_t new_nr_blocks, std::optional<Lsn> lsn) {
  if (new_nr_blocks < nr_blocks_) {
    return Status(Errc::invalid_argument, "data space map cannot shrink from " +
                                              std::to_string(nr_blocks_) + " to " +
                                              std::to_string(new_nr_blocks) + " blocks");
  }
  const uint64_t new_pages = pages_for(new_nr_blocks, blocks_per_page_);
  if (new_pages > region_.page_capacity()) {
    return Status(Errc::no_space, "data space map of " + std::to_string(new_nr_blocks) +
                                      " blocks needs " + std::to_string(new_pages) +
                                      " pages, region holds " +
                                      std::to_string(region_.page_capacity()));
  }
  if (new_nr_blocks == nr_blocks_) return ok_status();
  const uint64_t old_nr = nr_blocks_;
  const uint64_t first_touched = old_nr / blocks_per_page_;
  nr_blocks_ = new_nr_blocks;
  extents_.emplace(old_nr, Extent{new_nr_blocks - old_nr, 0});
  merge_around(old_nr, old_nr);
  free_.insert(old_nr, new_nr_blocks - old_nr);
  pages_.resize(new_pages);
  for (uint64_t p = first_touched; p < new_pages; ++p) {
    touch(p);
    if (lsn.has_value() && *lsn > pages_[p].lsn) {
      pages_[p].lsn = *lsn;
      if (!pages_[p].rec_lsn) pages_[p].rec_lsn = *lsn;
    }
  }
  return ok_status();
}

void DataSpaceMap::touch(uint64_t page) {
  pages_[page].dirty = true;
  ++pages_[page].generation;
}

std::map<uint64_t, DataSpaceMap::Extent>::const_iterator DataSpaceMap::extent_at(
    uint64_t block) const {
  TP_ASSERT_LT(block, nr_blocks_);
  auto it = extents_.upper_bound(block);
  TP_ASSERT(it != extents_.begin());
  return std::prev(it);
}

// Makes `block` the first block of an extent (no-op at 0 and at the end).
void DataSpaceMap::split_at(uint64_t block) {
  if (block == 0 || block >= nr_blocks_) return;
  auto it = std::prev(extents_.upper_bound(block));
  if (it->first == block) return;
  const uint64_t head = block - it->first;
  extents_.emplace_hint(std::next(it), block, Extent{it->second.length - head, it->second.count});
  it->second.length = head;
}

// Merges equal-count neighbours among the extents from the one before `begin`
// to the one starting at `end`: after a change to [begin, end) only those can
// have become equal.
void DataSpaceMap::merge_around(uint64_t begin, uint64_t end) {
  auto it = extents_.lower_bound(begin);
  if (it != extents_.begin()) --it;
  while (it != extents_.end()) {
    auto next = std::next(it);
    if (next == extents_.end() || next->first > end) break;
    if (next->second.count == it->second.count) {
      it->second.length += next->second.length;
      extents_.erase(next);
    } else {
      it = next;
    }
  }
}

// Adds `delta` to every count of [begin, begin + length), keeping the free
// index and used_ in step. Returns how many blocks left the free index (a
// reserved block going 0 -> 1 is not in it).
uint64_t DataSpaceMap::change_counts(uint64_t begin, uint64_t length, int32_t delta) {
  const uint64_t end = begin + length;
  TP_ASSERT_LE(end, nr_blocks_);
  split_at(begin);
  split_at(end);
  uint64_t left_free = 0;
  for (auto it = extents_.find(begin); it != extents_.end() && it->first < end; ++it) {
    Extent& x = it->second;
    const int64_t next = int64_t(x.count) + delta;
    TP_ASSERT_GE(next, 0);  // a count never goes below zero
    TP_ASSERT_LE(next, int64_t(std::numeric_limits<uint32_t>::max()));
    if (x.count == 0 && next > 0) {
      left_free += free_.erase(it->first, x.length);
      used_ += x.length;
    } else if (x.count > 0 && next == 0) {
      free_.insert(it->first, x.length);
      used_ -= x.length;
    }
    x.count = static_cast<uint32_t>(next);
  }
  merge_around(begin, end);
  return left_free;
}

void DataSpaceMap::for_each_page_piece(uint64_t begin, uint64_t length, Lsn lsn,
                                       const std::function<void(uint64_t, uint64_t)>& fn) {
  const uint64_t end = begin + length;
  uint64_t pos = begin;
  while (pos < end) {
    const uint64_t page = pos / blocks_per_page_;
    const uint64_t piece_end = std::min(end, (page + 1) * blocks_per_page_);
    if (lsn > pages_[page].lsn) {  // else the checkpoint already reflects it
      fn(pos, piece_end - pos);
      pages_[page].lsn = lsn;
      if (!pages_[page].rec_lsn) pages_[page].rec_lsn = lsn;
      touch(page);
    }
    pos = piece_end;
  }
}

void DataSpaceMap::apply(const journal::DataRangeAlloc& r, Lsn lsn) {
  TP_ASSERT_GT(lsn, last_applied_);
  last_applied_ = lsn;
  const uint64_t begin = r.begin.value();
  TP_ASSERT_GT(r.length, 0u);
  TP_ASSERT_LE(r.length, nr_blocks_);
  TP_ASSERT_LE(begin, nr_blocks_ - r.length);
  // Replay has no reservations: the record itself is the owner's latest
  // allocation, so it rebuilds the cursor. Live, reserve already moved it.
  if (reserved_.overlap(begin, r.length) == 0) cursors_[r.owner] = begin + r.length;
  for_each_page_piece(begin, r.length, lsn, [&](uint64_t pos, uint64_t n) {
    // Free and reserved together are exactly the count-0 blocks.
    TP_ASSERT_EQ(free_.overlap(pos, n) + reserved_.overlap(pos, n), n);
    const uint64_t was_reserved = reserved_.erase(pos, n);
    const uint64_t was_free = change_counts(pos, n, +1);
    TP_ASSERT_EQ(was_reserved + was_free, n);
  });
}

void DataSpaceMap::apply(const journal::DataRangeRefDelta& r, Lsn lsn) {
  TP_ASSERT_GT(lsn, last_applied_);
  last_applied_ = lsn;
  const uint64_t begin = r.begin.value();
  TP_ASSERT_GT(r.length, 0u);
  TP_ASSERT_LE(r.length, nr_blocks_);
  TP_ASSERT_LE(begin, nr_blocks_ - r.length);
  TP_ASSERT_NE(r.delta, 0);
  for_each_page_piece(begin, r.length, lsn, [&](uint64_t pos, uint64_t n) {
    // A delta changes blocks in use; allocation is DataRangeAlloc's job.
    TP_ASSERT_EQ(free_.overlap(pos, n) + reserved_.overlap(pos, n), 0u);
    const uint64_t left_free = change_counts(pos, n, r.delta);
    TP_ASSERT_EQ(left_free, 0u);
  });
}

Status DataSpaceMap::check(const journal::DataRangeRefDelta& r) const {
  const uint64_t begin = r.begin.value();
  const std::string what = "data ref delta " + std::to_string(r.delta) + " on blocks [" +
                           std::to_string(begin) + ", +" + std::to_string(r.length) + "): ";
  if (r.length == 0 || r.length > nr_blocks_ || begin > nr_blocks_ - r.length) {
    return Status(Errc::invalid_argument, what + "outside [0, " + std::to_string(nr_blocks_) + ")");
  }
  if (r.delta == 0) return Status(Errc::invalid_argument, what + "delta is 0");
  if (free_.overlap(begin, r.length) + reserved_.overlap(begin, r.length) != 0) {
    return Status(Errc::invalid_argument, what + "touches free blocks");
  }
  const uint64_t end = begin + r.length;
  for (auto it = extent_at(begin); it != extents_.end() && it->first < end; ++it) {
    const int64_t next = int64_t(it->second.count) + r.delta;
    if (next < 0) return Status(Errc::invalid_argument, what + "a count would go below zero");
    if (next > int64_t(std::numeric_limits<uint32_t>::max())) {
      return Status(Errc::invalid_argument, what + "a count would overflow");
    }
  }
  return ok_status();
}

void DataSpaceMap::take(Run run, std::vector<Run>& out) {
  const uint64_t erased = free_.erase(run.begin, run.length);
  TP_ASSERT_EQ(erased, run.length);
  reserved_.insert(run.begin, run.length);
  out.push_back(run);
}

// Chooses and takes runs for `blocks` blocks; the caller checked they exist.
std::vector<Run> DataSpaceMap::choose_runs(ThinId owner, uint64_t blocks) {
  std::vector<Run> out;
  if (auto cursor = cursors_.find(owner); cursor != cursors_.end()) {
    const uint64_t at = cursor->second;
    const std::optional<Run> run = at < nr_blocks_ ? free_.containing(at) : std::nullopt;
    if (run && run->end() - at >= blocks) {
      take(Run{at, blocks}, out);
      return out;
    }
  }
  const Run largest = *free_.largest();
  if (largest.length >= blocks) {
    uint64_t start = largest.begin;
    if (largest.length >= kSpreadMinBlocks && largest.length >= 2 * blocks) {
      start += largest.length / 2;
    }
    take(Run{start, blocks}, out);
    return out;
  }
  // Fewest runs: whole runs from the largest down; the last piece best-fit.
  uint64_t remaining = blocks;
  while (remaining > 0) {
    if (std::optional<Run> fit = free_.smallest_at_least(remaining)) {
      take(Run{fit->begin, remaining}, out);
      break;
    }
    const Run next = *free_.largest();
    take(next, out);
    remaining -= next.length;
  }
  return out;
}

Result<std::vector<journal::DataRangeAlloc>> DataSpaceMap::reserve(ThinId owner, uint64_t blocks) {
  if (blocks == 0) return Status(Errc::invalid_argument, "reserve of 0 data blocks");
  if (blocks > free_.total_blocks()) {
    return Status(Errc::no_space, "data device full: asked for " + std::to_string(blocks) +
                                      " blocks, " + std::to_string(free_.total_blocks()) + " free");
  }
  const std::vector<Run> runs = choose_runs(owner, blocks);
  cursors_[owner] = runs.back().end();
  std::vector<journal::DataRangeAlloc> records;
  records.reserve(runs.size());
  for (const Run& run : runs) records.push_back({DBlock(run.begin), run.length, owner});
  return records;
}

void DataSpaceMap::cancel(const journal::DataRangeAlloc& r) {
  const uint64_t erased = reserved_.erase(r.begin.value(), r.length);
  TP_ASSERT_EQ(erased, r.length);  // cancel only what reserve returned
  free_.insert(r.begin.value(), r.length);
}

void DataSpaceMap::set_owner_hint(ThinId owner, DBlock next) { cursors_[owner] = next.value(); }

uint32_t DataSpaceMap::refcount(DBlock block) const {
  return extent_at(block.value())->second.count;
}

uint32_t DataSpaceMap::max_refcount(DBlock begin, uint64_t length) const {
  TP_ASSERT_GT(length, 0u);
  TP_ASSERT_LE(length, nr_blocks_ - begin.value());
  const uint64_t end = begin.value() + length;
  uint32_t most = 0;
  for (auto it = extent_at(begin.value()); it != extents_.end() && it->first < end; ++it) {
    most = std::max(most, it->second.count);
  }
  return most;
}

Lsn DataSpaceMap::page_lsn(uint64_t page) const {
  TP_ASSERT_LT(page, pages_.size());
  return pages_[page].lsn;
}

void DataSpaceMap::for_each_extent(
    const std::function<void(DBlock, uint64_t, uint32_t)>& fn) const {
  for (const auto& [begin, x] : extents_) fn(DBlock(begin), x.length, x.count);
}

void DataSpaceMap::rebuild_free_index() {
  TP_ASSERT(reserved_.empty());
  used_ = 0;
  std::vector<Run> free_runs;
  for (const auto& [begin, x] : extents_) {
    if (x.count == 0) {
      free_runs.push_back({begin, x.length});  // canonical extents: never touching
    } else {
      used_ += x.length;
    }
  }
  free_.assign_sorted(free_runs);
}

void DataSpaceMap::check_invariants() const {
  uint64_t pos = 0;
  uint64_t used = 0;
  uint64_t zero = 0;
  std::optional<uint32_t> prev_count;
  for (const auto& [begin, x] : extents_) {
    TP_ASSERT_EQ(begin, pos);
    TP_ASSERT_GT(x.length, 0u);
    if (prev_count) TP_ASSERT_NE(*prev_count, x.count);  // canonical
    prev_count = x.count;
    if (x.count == 0) {
      TP_ASSERT_EQ(free_.overlap(begin, x.length) + reserved_.overlap(begin, x.length), x.length);
      zero += x.length;
    } else {
      TP_ASSERT_EQ(free_.overlap(begin, x.length) + reserved_.overlap(begin, x.length), 0u);
      used += x.length;
    }
    pos += x.length;
  }
  TP_ASSERT_EQ(pos, nr_blocks_);
  TP_ASSERT_EQ(used, used_);
  TP_ASSERT_EQ(zero, free_.total_blocks() + reserved_.total_blocks());
}

}  // namespace thinp::space_map
