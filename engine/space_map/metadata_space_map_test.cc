#include "engine/space_map/metadata_space_map.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <set>
#include <string>

#include "engine/format/block_header.h"
#include "engine/space_map/space_map_test_util.h"

namespace thinp::space_map {
namespace {

using testing::PageDisk;
using testing::RecordLog;
using testing::used_of;

constexpr PageRegion kRegion{MBlock(3), 8 * kSlotsPerPage};

MetadataSpaceMap make_map(uint64_t nr_blocks) {
  auto map = MetadataSpaceMap::create(nr_blocks, kRegion);
  TP_ASSERT(map.ok());
  return std::move(map).value();
}

void checkpoint(MetadataSpaceMap& map, PageDisk& disk, bool random_subset) {
  for (const EncodedPage& p : map.encode_dirty_pages()) {
    if (random_subset && !*rc::gen::arbitrary<bool>()) continue;
    disk.write(p);
    map.mark_written(p);
  }
}

// Drives the map with random reserve / cancel / share / release through the
// decide, log, apply protocol and checks each answer against a plain map.
struct MetaHarness {
  explicit MetaHarness(MetadataSpaceMap m) : map(std::move(m)) {}

  MetadataSpaceMap map;
  std::map<uint64_t, uint32_t> model;  // nonzero counts
  std::set<uint64_t> pending;          // reserved, not yet applied or cancelled
  RecordLog log;

  // Next-fit: the first block at or after `from`, wrapping, that is free.
  std::optional<uint64_t> model_next_free(uint64_t from) const {
    for (uint64_t i = 0; i < map.nr_blocks(); ++i) {
      const uint64_t b = (from + i) % map.nr_blocks();
      if (!model.contains(b) && !pending.contains(b)) return b;
    }
    return std::nullopt;
  }

  void settle(uint64_t block, bool cancel) {
    pending.erase(block);
    if (cancel) {
      map.cancel(MBlock(block));
      return;
    }
    const journal::MetaRefDelta r{MBlock(block), +1};
    RC_ASSERT(map.check(r).ok());
    log.apply(map, r);
    model[block] = 1;
  }

  void step() {
    const int op = *rc::gen::inRange(0, 9);
    if (op < 4) {
      const bool hinted = *rc::gen::arbitrary<bool>();
      const uint64_t hint = *rc::gen::inRange<uint64_t>(0, map.nr_blocks());
      const uint64_t cursor_before = next_cursor;
      auto r = map.reserve(hinted ? std::optional(MBlock(hint)) : std::nullopt);
      const auto expected = model_next_free(hinted ? hint : cursor_before % map.nr_blocks());
      if (!expected) {
        RC_ASSERT(r.status().code() == Errc::no_space);
        return;
      }
      RC_ASSERT(r.ok());
      RC_ASSERT(r->block == MBlock(*expected));
      RC_ASSERT(r->delta == 1);
      next_cursor = *expected + 1;
      pending.insert(*expected);
      if (op < 3) settle(*expected, op == 2);  // op 3 leaves it open
    } else if (op == 8) {
      if (pending.empty()) return;
      auto it = pending.begin();
      std::advance(it, *rc::gen::inRange<size_t>(0, pending.size()));
      settle(*it, *rc::gen::arbitrary<bool>());
    } else if (!model.empty()) {
      auto it = model.begin();
      std::advance(it, *rc::gen::inRange<size_t>(0, model.size()));
      const int32_t delta = op < 6 ? +1 : -int32_t(*rc::gen::inRange<uint32_t>(1, it->second + 1));
      const journal::MetaRefDelta r{MBlock(it->first), delta};
      RC_ASSERT(map.check(r).ok());
      log.apply(map, r);
      it->second += delta;
      if (it->second == 0) model.erase(it);
    }
  }

  void expect_matches_model() const {
    std::vector<std::pair<uint64_t, uint32_t>> want(model.begin(), model.end());
    RC_ASSERT(used_of(map) == want);
    RC_ASSERT(map.count_used() == model.size());
    RC_ASSERT(map.count_reserved() == pending.size());
    RC_ASSERT(map.count_free() == map.nr_blocks() - model.size() - pending.size());
  }

  uint64_t next_cursor = 0;
};

RC_GTEST_PROP(MetadataSpaceMap, RandomOperationsMatchModelAndAllocateNextFit, ()) {
  MetaHarness h{make_map(*rc::gen::inRange<uint64_t>(1, 3000))};
  const int steps = *rc::gen::inRange(1, 200);
  for (int i = 0; i < steps; ++i) {
    h.step();
    h.expect_matches_model();
  }
}

RC_GTEST_PROP(MetadataSpaceMap, ReplayOfAllRecordsOverAnyCheckpointIsIdempotent, ()) {
  const uint64_t nr = *rc::gen::inRange<uint64_t>(1, 3000);
  MetaHarness h{make_map(nr)};
  PageDisk disk;
  Lsn tail(1);
  auto encode = [](const MetadataSpaceMap& m, Lsn durable) {
    return m.encode_dirty_pages(durable);
  };
  checkpoint(h.map, disk, false);
  const int steps = *rc::gen::inRange(0, 200);
  for (int i = 0; i < steps; ++i) {
    h.step();
    if (*rc::gen::inRange(0, 10) == 0) {
      const int busy = *rc::gen::inRange(0, 3);  // steps while the writes are in flight
      testing::checkpoint_pages(h.map, encode, disk, true, tail, h.log.next_lsn, [&] {
        for (int j = 0; j < busy; ++j) h.step();
      });
    }
  }
  // First from the journal tail, then (crashed again) every record.
  for (int crash = 0; crash < 2; ++crash) {
    auto recovered = MetadataSpaceMap::load(nr, kRegion, disk.reader());
    RC_ASSERT(recovered.ok());
    h.log.replay(*recovered, crash == 0 ? tail : Lsn(1));
    RC_ASSERT(used_of(*recovered) == used_of(h.map));
    RC_ASSERT(recovered->count_free() == h.map.count_free() + h.map.count_reserved());
    testing::checkpoint_pages(*recovered, encode, disk, true, tail, h.log.next_lsn);
  }
}

TEST(MetadataSpaceMap, FormatGrowEncodeAndLoad) {
  MetadataSpaceMap map = make_map(1500);                     // two chunks, the second partial
  map.mark_used_at_format(MBlock(0), 3 + kRegion.capacity);  // superblock etc.
  EXPECT_EQ(map.count_used(), 19u);                          // 3 + 8 pages * 2 slots
  EXPECT_EQ(map.dirty_page_count(), 2u);
  RecordLog log;
  auto r = map.reserve(MBlock(1000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->block, MBlock(1000));
  log.apply(map, *r);
  log.apply(map, journal::MetaRefDelta{MBlock(1000), +4});
  EXPECT_EQ(map.refcount(MBlock(1000)), 5u);

  EXPECT_EQ(map.grow(1000).code(), Errc::invalid_argument);
  EXPECT_EQ(map.grow(kEntriesPerChunk * 8 + 1).code(), Errc::no_space);
  ASSERT_TRUE(map.grow(kEntriesPerChunk * 3 + 5).ok());
  EXPECT_EQ(map.count_free(), kEntriesPerChunk * 3 + 5 - 20);

  PageDisk disk;
  for (const EncodedPage& p : map.encode_dirty_pages()) {
    disk.write(p);
    map.mark_written(p);
  }
  EXPECT_EQ(disk.pages.size(), 4u);
  EXPECT_EQ(map.dirty_page_count(), 0u);
  auto loaded = MetadataSpaceMap::load(map.nr_blocks(), kRegion, disk.reader());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(used_of(*loaded), used_of(map));
  EXPECT_EQ(loaded->count_free(), map.count_free());
  EXPECT_EQ(loaded->chunk_lsn(0), Lsn(2));
  EXPECT_EQ(loaded->chunk_lsn(1), Lsn(0));
}

TEST(MetadataSpaceMap, ChangedAfterEncodeStaysDirty) {
  MetadataSpaceMap map = make_map(100);
  RecordLog log;
  const std::vector<EncodedPage> pages = map.encode_dirty_pages();
  ASSERT_EQ(pages.size(), 1u);
  auto r = map.reserve(std::nullopt);
  ASSERT_TRUE(r.ok());
  log.apply(map, *r);  // while the page write is in flight
  map.mark_written(pages[0]);
  EXPECT_EQ(map.dirty_page_count(), 1u);
  EXPECT_EQ(map.oldest_unwritten_lsn(), Lsn(1));
  // Written at LSN 1, then changed again at 2 and 3 during that write.
  const std::vector<EncodedPage> second = map.encode_dirty_pages();
  log.apply(map, journal::MetaRefDelta{r->block, +1});
  log.apply(map, journal::MetaRefDelta{r->block, +1});
  map.mark_written(second[0]);
  EXPECT_EQ(map.oldest_unwritten_lsn(), Lsn(2));  // not stuck at 1
  map.mark_written(map.encode_dirty_pages()[0]);
  EXPECT_EQ(map.oldest_unwritten_lsn(), std::nullopt);
  EXPECT_EQ(map.dirty_page_count(), 0u);
}

TEST(MetadataSpaceMap, CorruptPagesAreRejected) {
  MetadataSpaceMap map = make_map(2000);
  PageDisk disk;
  for (const EncodedPage& p : map.encode_dirty_pages()) disk.write(p);
  auto load = [&](const PageDisk& d) { return MetadataSpaceMap::load(2000, kRegion, d.reader()); };
  ASSERT_TRUE(load(disk).ok());

  // Page 1's slot 0 is block 5 (slot 1, block 6, was never written).
  PageDisk flipped = disk;
  flipped.pages.at(5)[1000] ^= std::byte{1};
  auto a = load(flipped);
  EXPECT_EQ(a.status().code(), Errc::corruption);
  EXPECT_NE(a.status().message().find("checksum"), std::string::npos);

  PageDisk lying = disk;
  auto& bytes = lying.pages.at(5);
  put_u32(bytes, 48, 7);  // free count
  seal_block(bytes, BlockType::metadata_space_map, MBlock(5), Lsn(0));
  auto b = load(lying);
  EXPECT_EQ(b.status().code(), Errc::corruption);
  EXPECT_NE(b.status().message().find("metadata space map block 5: free count 7"),
            std::string::npos)
      << b.status().to_string();

  PageDisk newer = disk;
  put_u32(newer.pages.at(3), 32, 9);  // version
  seal_block(newer.pages.at(3), BlockType::metadata_space_map, MBlock(3), Lsn(0));
  EXPECT_EQ(load(newer).status().code(), Errc::unsupported);

  auto c = MetadataSpaceMap::load(1500, kRegion, disk.reader());
  EXPECT_NE(c.status().message().find("entries, expected"), std::string::npos);
}

TEST(MetadataSpaceMap, CheckAndDiffForTheChecker) {
  MetadataSpaceMap map = make_map(50);
  RecordLog log;
  EXPECT_NE(map.check({MBlock(5), +1}).message().find("not reserved"), std::string::npos);
  EXPECT_NE(map.check({MBlock(50), +1}).message().find("beyond"), std::string::npos);
  auto r = map.reserve(MBlock(5));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(map.is_reserved(MBlock(5)));
  EXPECT_EQ(map.refcount(MBlock(5)), 0u);
  log.apply(map, *r);
  EXPECT_FALSE(map.is_reserved(MBlock(5)));
  EXPECT_NE(map.check({MBlock(5), -2}).message().find("below zero"), std::string::npos);
  log.apply(map, journal::MetaRefDelta{MBlock(5), +1});
  // A walk that finds block 5 once and block 9 once: 5 is leaked by one, 9 is
  // referenced but free.
  const auto mismatches = map.diff({{MBlock(5), 1}, {MBlock(9), 1}, {MBlock(70), 1}});
  ASSERT_EQ(mismatches.size(), 3u);
  EXPECT_EQ(mismatches[0].block, MBlock(5));
  EXPECT_EQ(mismatches[0].actual, 2u);
  EXPECT_EQ(mismatches[1].block, MBlock(9));
  EXPECT_EQ(mismatches[1].actual, 0u);
  EXPECT_EQ(mismatches[2].block, MBlock(70));
}

}  // namespace
}  // namespace thinp::space_map
