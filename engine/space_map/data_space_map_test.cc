#include "engine/space_map/data_space_map.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdio>
#include <string>

#include "engine/space_map/space_map_test_util.h"

namespace thinp::space_map {
namespace {

using testing::DataHarness;
using testing::RecordLog;

DataSpaceMap make_map(uint64_t nr_blocks, uint64_t blocks_per_page = kDefaultDataBlocksPerPage) {
  const uint64_t pages = DataSpaceMap::pages_for(nr_blocks, blocks_per_page);
  auto map = DataSpaceMap::create(
      {nr_blocks, blocks_per_page, PageRegion{MBlock(100), kSlotsPerPage * pages}});
  TP_ASSERT(map.ok());
  return std::move(map).value();
}

RC_GTEST_PROP(DataSpaceMap, RandomOperationsMatchPerBlockModel, ()) {
  const uint64_t nr = *rc::gen::inRange<uint64_t>(1, 400);
  const uint64_t per_page = *rc::gen::inRange<uint64_t>(1, 80);
  DataHarness h(make_map(nr, per_page));
  const int steps = *rc::gen::inRange(1, 150);
  for (int i = 0; i < steps; ++i) {
    h.random_step();
    h.expect_matches_model();
  }
}

TEST(DataSpaceMap, ConsecutiveSingleBlockAllocationsOfAnOwnerAreConsecutive) {
  DataSpaceMap map = make_map(10000);
  RecordLog log;
  // Two owners interleave; each still gets a contiguous stretch.
  std::vector<uint64_t> a, b;
  for (int i = 0; i < 50; ++i) {
    for (auto [owner, out] : {std::pair{1, &a}, std::pair{2, &b}}) {
      auto r = map.reserve(ThinId(owner), 1);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->size(), 1u);
      out->push_back(r->front().begin.value());
      log.apply(map, r->front());
    }
  }
  for (size_t i = 1; i < a.size(); ++i) {
    EXPECT_EQ(a[i], a[i - 1] + 1);
    EXPECT_EQ(b[i], b[i - 1] + 1);
  }
  // New owners start in fresh regions, far apart.
  const uint64_t gap = a.front() > b.front() ? a.front() - b.front() : b.front() - a.front();
  EXPECT_GE(gap, 1000u);
  EXPECT_EQ(map.count_used(), 100u);
  EXPECT_EQ(map.extent_count(), 5u);  // free, b's run, free, a's run, free
}

TEST(DataSpaceMap, AllocationUsesFewestRunsAndBestFitForTheLastPiece) {
  DataSpaceMap map = make_map(100);
  RecordLog log;
  auto all = map.reserve(ThinId(1), 100);
  ASSERT_TRUE(all.ok());
  for (const auto& r : *all) log.apply(map, r);
  // Free holes of 10 at [10,20), 30 at [40,70), 5 at [80,85).
  for (auto [b, n] : {std::pair{10, 10}, std::pair{40, 30}, std::pair{80, 5}}) {
    log.apply(map, journal::DataRangeRefDelta{DBlock(b), uint64_t(n), -1});
  }
  ASSERT_EQ(map.count_free(), 45u);
  auto r = map.reserve(ThinId(2), 34);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(r->at(0).begin, DBlock(40));  // the largest hole, whole
  EXPECT_EQ(r->at(0).length, 30u);
  EXPECT_EQ(r->at(1).begin, DBlock(80));  // 4 more: the 5-hole fits best
  EXPECT_EQ(r->at(1).length, 4u);
  for (const auto& run : *r) map.cancel(run);
  EXPECT_EQ(map.count_free(), 45u);
  auto full = map.reserve(ThinId(3), 46);
  EXPECT_EQ(full.status().code(), Errc::no_space);
  EXPECT_EQ(map.count_free(), 45u);
}

TEST(DataSpaceMap, ReservedBlocksAreNotHandedOutTwice) {
  DataSpaceMap map = make_map(64);
  auto first = map.reserve(ThinId(1), 40);
  ASSERT_TRUE(first.ok());
  auto second = map.reserve(ThinId(2), 24);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(map.count_free(), 0u);
  EXPECT_EQ(map.count_reserved(), 64u);
  EXPECT_EQ(map.reserve(ThinId(3), 1).status().code(), Errc::no_space);
  RecordLog log;
  for (const auto& r : *second) log.apply(map, r);
  for (const auto& r : *first) log.apply(map, r);
  EXPECT_EQ(map.count_used(), 64u);
  EXPECT_EQ(map.extent_count(), 1u);
  map.check_invariants();
}

TEST(DataSpaceMap, CheckRejectsWhatApplyWouldAssertOn) {
  DataSpaceMap map = make_map(100);
  RecordLog log;
  auto r = map.reserve(ThinId(1), 10);
  ASSERT_TRUE(r.ok());
  const DBlock b = r->front().begin;
  log.apply(map, r->front());
  EXPECT_TRUE(map.check({b, 10, +5}).ok());
  EXPECT_TRUE(map.check({b, 10, -1}).ok());
  const Status below = map.check({b, 10, -2});
  EXPECT_EQ(below.code(), Errc::invalid_argument);
  EXPECT_NE(below.message().find("below zero"), std::string::npos);
  EXPECT_NE(map.check({b, 11, +1}).message().find("free"), std::string::npos);
  EXPECT_NE(map.check({DBlock(95), 10, +1}).message().find("outside"), std::string::npos);
  EXPECT_EQ(map.check({b, 1, 0}).code(), Errc::invalid_argument);
}

TEST(DataSpaceMap, GrowAddsFreeBlocksAtTheEnd) {
  auto map = DataSpaceMap::create({100, 64, PageRegion{MBlock(10), 4 * kSlotsPerPage}});
  ASSERT_TRUE(map.ok());
  RecordLog log;
  auto r = map->reserve(ThinId(1), 100);
  ASSERT_TRUE(r.ok());
  for (const auto& run : *r) log.apply(*map, run);
  EXPECT_EQ(map->grow(90).code(), Errc::invalid_argument);
  EXPECT_EQ(map->grow(257).code(), Errc::no_space);  // 5 pages, region holds 4
  ASSERT_TRUE(map->grow(256).ok());
  EXPECT_EQ(map->count_free(), 156u);
  EXPECT_EQ(map->page_count(), 4u);
  EXPECT_EQ(map->refcount(DBlock(200)), 0u);
  map->check_invariants();
}

RC_GTEST_PROP(DataSpaceMap, DiffAgainstATallyFindsExactlyTheWrongBlocks, ()) {
  const uint64_t nr = *rc::gen::inRange<uint64_t>(1, 300);
  DataHarness h(make_map(nr, *rc::gen::inRange<uint64_t>(1, 64)));
  const int steps = *rc::gen::inRange(0, 80);
  for (int i = 0; i < steps; ++i) h.random_step();
  // A "walk" that found random ranges (some past the end of the device).
  DataRefTally tally;
  std::map<uint64_t, uint32_t> walked;  // per block
  const int ranges = *rc::gen::inRange(0, 20);
  for (int i = 0; i < ranges; ++i) {
    const uint64_t b = *rc::gen::inRange<uint64_t>(0, nr + 10);
    const uint64_t n = *rc::gen::inRange<uint64_t>(0, 30);
    tally.add(DBlock(b), n);
    for (uint64_t x = b; x < b + n; ++x) ++walked[x];
  }
  // Mostly the truth, so that diffs are sparse.
  if (*rc::gen::arbitrary<bool>()) {
    for (const auto& [b, c] : h.model.counts) {
      tally.add(DBlock(b), 1, c);
      walked[b] += c;
    }
  }
  std::map<uint64_t, std::pair<uint32_t, uint32_t>> want;  // block -> (expected, actual)
  for (uint64_t b = 0; b < nr + 40; ++b) {
    const uint32_t expected = walked.contains(b) ? walked[b] : 0;
    const uint32_t actual = b < nr ? h.model.at(b) : 0;
    if (expected != actual) want[b] = {expected, actual};
  }
  std::map<uint64_t, std::pair<uint32_t, uint32_t>> got;
  const std::vector<DataRefMismatch> mismatches = h.map.diff(tally);
  for (size_t i = 0; i < mismatches.size(); ++i) {
    const DataRefMismatch& m = mismatches[i];
    RC_ASSERT(m.length > 0u);
    if (i > 0) {  // maximal: a touching neighbour differs in what it reports
      const DataRefMismatch& p = mismatches[i - 1];
      RC_ASSERT(p.begin + p.length <= m.begin);
      RC_ASSERT(p.begin + p.length < m.begin || p.expected != m.expected || p.actual != m.actual);
    }
    for (uint64_t x = 0; x < m.length; ++x) got[m.begin.value() + x] = {m.expected, m.actual};
  }
  RC_ASSERT(got == want);
}

TEST(DataSpaceMap, TallyKeepsRangesNotBlocks) {
  DataRefTally tally;
  tally.add(DBlock(0), 1'000'000);
  tally.add(DBlock(500'000), 1'000'000);
  const std::vector<DataExtent> want = {
      {DBlock(0), 500'000, 1}, {DBlock(500'000), 500'000, 2}, {DBlock(1'000'000), 500'000, 1}};
  EXPECT_EQ(tally.extents(), want);
}

// The figure the range design exists for: changing the counts of a range of
// a million blocks is one record, whatever the page size.
TEST(DataSpaceMapBench, MillionBlockRangeChangeIsOneRecord) {
  DataSpaceMap map = make_map(4'000'000);
  RecordLog log;
  auto alloc = map.reserve(ThinId(7), 1'000'000);
  ASSERT_TRUE(alloc.ok());
  EXPECT_EQ(alloc->size(), 1u);
  for (const auto& r : *alloc) log.apply(map, r);
  const DBlock begin = alloc->front().begin;
  const size_t before = log.records.size();
  log.apply(map, journal::DataRangeRefDelta{begin, 1'000'000, +1});  // a snapshot shares it
  EXPECT_EQ(log.records.size() - before, 1u);
  EXPECT_EQ(map.refcount(begin), 2u);
  EXPECT_EQ(map.refcount(begin + 999'999), 2u);
  EXPECT_EQ(map.extent_count(), 3u);
  log.apply(map, journal::DataRangeRefDelta{begin, 1'000'000, -2});  // both released
  EXPECT_EQ(log.records.size() - before, 2u);
  EXPECT_EQ(map.count_free(), 4'000'000u);
  EXPECT_EQ(map.extent_count(), 1u);
  std::printf("records to change the refcount of a 1,000,000-block range: %zu\n",
              log.records.size() - before - 1);
}

}  // namespace
}  // namespace thinp::space_map
