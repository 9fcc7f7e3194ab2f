#include "engine/cache/block_cache.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine/journal/crash_test_disk.h"
#include "sim/scheduler.h"

namespace thinp::cache {
namespace {

using testing::CrashTestDisk;

// A WAL gate the test moves by hand; make_durable() records what it was asked
// for and "makes it durable" after a short virtual delay.
class ManualGate final : public WalGate {
 public:
  explicit ManualGate(Runtime& rt) : rt_(rt) {}
  Lsn durable_lsn() const override { return durable; }
  Status make_durable(Lsn lsn) override {
    asked.push_back(lsn);
    rt_.sleep(std::chrono::microseconds(50));
    if (durable < lsn) durable = lsn;
    return ok_status();
  }
  Lsn durable;
  std::vector<Lsn> asked;

 private:
  Runtime& rt_;
};

constexpr uint64_t kBlocks = 64;

struct CacheWorld {
  explicit CacheWorld(size_t capacity)
      : sched(3),
        disk(
            sched,
            [this](Nanos d, std::function<void()> f) { sched.schedule_after(d, std::move(f)); },
            kBlocks * kMetadataBlockBytes, 99),
        cache(sched, disk, BlockCacheOptions{capacity, 8}),
        gate(sched) {
    cache.set_wal_gate(&gate);
  }
  ~CacheWorld() { sched.kill_all_tasks(); }

  void run(std::function<void()> body) {
    sched.spawn("test", std::move(body));
    ASSERT_EQ(sched.run(), sim::RunOutcome::idle) << sched.deadlock_report() << sched.failure();
  }
  // The page as it is on the device (cache of the disk included).
  std::span<const std::byte> on_disk(uint64_t block) {
    return disk.current().subspan(block * kMetadataBlockBytes, kMetadataBlockBytes);
  }
  uint64_t writes_to(uint64_t block) const {
    return disk.count(IoOp::write, block * kMetadataBlockBytes, (block + 1) * kMetadataBlockBytes);
  }

  sim::Scheduler sched;
  CrashTestDisk disk;
  BlockCache cache;
  ManualGate gate;
};

std::vector<std::byte> bytes_of(uint8_t v, size_t n = 100) {
  return std::vector<std::byte>(n, std::byte(v));
}

TEST(BlockCache, MissReadsAndVerifiesAndCorruptionIsNeverTrusted) {
  CacheWorld w(8);
  w.run([&] {
    // Page 5 written and sealed through the cache, then evicted by pinning
    // others is not needed: a fresh cache over the same disk re-reads it.
    {
      Result<PageRef> p = w.cache.pin_new(MBlock(5), BlockType::test_page);
      ASSERT_TRUE(p.ok());
      w.cache.apply_write(*p, 10, bytes_of(7), Lsn(3), true);
    }
    w.gate.durable = Lsn(3);
    ASSERT_EQ(w.cache.write_back_durable().value(), 1u);
    ASSERT_TRUE(verify_block(w.on_disk(5), BlockType::test_page, MBlock(5)).ok());
    EXPECT_EQ(peek_block_header(w.on_disk(5)).lsn, Lsn(3));

    BlockCache fresh(w.sched, w.disk, BlockCacheOptions{4, 4});
    fresh.set_wal_gate(&w.gate);
    Result<PageRef> again = fresh.pin(MBlock(5), BlockType::test_page);
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ(again->page_lsn(), Lsn(3));
    EXPECT_EQ(again->payload()[10], std::byte{7});
    EXPECT_EQ(again->payload()[9], std::byte{0});
    // Wrong type: corruption, both for the resident page and on a miss.
    EXPECT_EQ(fresh.pin(MBlock(5), BlockType::mapping_node).status().code(), Errc::corruption);
    BlockCache other(w.sched, w.disk, BlockCacheOptions{4, 4});
    EXPECT_EQ(other.pin(MBlock(5), BlockType::mapping_node).status().code(), Errc::corruption);
    // A never-written block (zeros) and a misdirected copy are corrupt too.
    EXPECT_EQ(fresh.pin(MBlock(6), BlockType::test_page).status().code(), Errc::corruption);
    EXPECT_EQ(fresh.resident_pages(), 1u);
  });
}

TEST(BlockCache, WriteAheadRuleHoldsDirtyPagesUntilTheirRecordsAreDurable) {
  CacheWorld w(8);
  w.run([&] {
    {
      PageRef p = w.cache.pin_new(MBlock(9), BlockType::test_page).value();
      w.cache.apply_write(p, 0, bytes_of(1), Lsn(10), true);
    }
    w.gate.durable = Lsn(9);
    EXPECT_EQ(w.cache.write_back_durable().value(), 0u);
    EXPECT_EQ(w.writes_to(9), 0u);
    EXPECT_EQ(w.cache.oldest_needed_lsn(), std::optional<Lsn>(Lsn(10)));
    w.gate.durable = Lsn(10);
    EXPECT_EQ(w.cache.write_back_durable().value(), 1u);
    EXPECT_EQ(w.writes_to(9), 1u);
    // Written but not flushed: still holds the journal tail.
    EXPECT_EQ(w.cache.oldest_needed_lsn(), std::optional<Lsn>(Lsn(10)));
    ASSERT_TRUE(w.cache.flush_device().ok());
    EXPECT_EQ(w.cache.oldest_needed_lsn(), std::nullopt);
    EXPECT_EQ(w.cache.dirty_pages(), 0u);
  });
}

TEST(BlockCache, EvictionOfADirtyPageFirstMakesItsRecordsDurable) {
  CacheWorld w(2);
  w.run([&] {
    for (uint64_t b = 1; b <= 2; ++b) {
      PageRef p = w.cache.pin_new(MBlock(b), BlockType::test_page).value();
      w.cache.apply_write(p, 0, bytes_of(uint8_t(b)), Lsn(b * 10), true);
    }
    // A third page needs a frame: the LRU dirty page (block 1, LSN 10) is
    // written back, after its records were made durable.
    PageRef third = w.cache.pin_new(MBlock(3), BlockType::test_page).value();
    ASSERT_FALSE(w.gate.asked.empty());
    EXPECT_EQ(w.gate.asked.front(), Lsn(10));
    EXPECT_EQ(w.writes_to(1), 1u);
    EXPECT_EQ(w.writes_to(2), 0u);
    EXPECT_EQ(peek_block_header(w.on_disk(1)).lsn, Lsn(10));
    EXPECT_EQ(w.cache.resident_pages(), 2u);
  });
}

TEST(BlockCache, EvictsTheLeastRecentlyUsedCleanUnpinnedPage) {
  CacheWorld w(3);
  w.run([&] {
    for (uint64_t b = 1; b <= 3; ++b) {
      PageRef p = w.cache.pin_new(MBlock(b), BlockType::test_page).value();
      w.cache.apply_write(p, 0, bytes_of(uint8_t(b)), Lsn(b), true);
    }
    w.gate.durable = Lsn(3);
    ASSERT_EQ(w.cache.write_back_durable().value(), 3u);
    PageRef keep = w.cache.pin(MBlock(1), BlockType::test_page).value();  // pinned
    { PageRef touch = w.cache.pin(MBlock(2), BlockType::test_page).value(); }
    // Block 3 is now least recently used (block 1 is pinned anyway).
    PageRef four = w.cache.pin_new(MBlock(4), BlockType::test_page).value();
    EXPECT_EQ(w.cache.stats().evictions, 1u);
    const uint64_t reads = w.cache.stats().reads;
    { PageRef two = w.cache.pin(MBlock(2), BlockType::test_page).value(); }
    EXPECT_EQ(w.cache.stats().reads, reads);                           // still resident
    w.cache.pin_new(MBlock(5), BlockType::test_page).value().reset();  // evicts 2 (3 is gone)
    Result<PageRef> three = w.cache.pin(MBlock(3), BlockType::test_page);
    ASSERT_TRUE(three.ok()) << three.status().to_string();
    EXPECT_EQ(three->payload()[0], std::byte{3});
    EXPECT_GT(w.cache.stats().reads, reads);
  });
}

TEST(BlockCache, ConcurrentMissesShareOneReadAndAllPinnedWaits) {
  CacheWorld w(1);
  w.run([&] {
    PageRef p = w.cache.pin_new(MBlock(1), BlockType::test_page).value();
    w.cache.apply_write(p, 0, bytes_of(1), Lsn(1), true);
    w.gate.durable = Lsn(1);
    ASSERT_EQ(w.cache.write_back_durable().value(), 1u);
    p.reset();
    BlockCache shared(w.sched, w.disk, BlockCacheOptions{1, 1});
    shared.set_wal_gate(&w.gate);
    WaitGroup wg(w.sched);
    int ok = 0;
    for (int i = 0; i < 4; ++i) {
      wg.add();
      w.sched.spawn("reader", [&] {
        Result<PageRef> r = shared.pin(MBlock(1), BlockType::test_page);
        if (r.ok() && r->payload()[0] == std::byte{1}) ++ok;
        w.sched.sleep(std::chrono::microseconds(10));
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(ok, 4);
    EXPECT_EQ(shared.stats().reads, 1u);
    // Capacity 1 and the page pinned: a second page waits for the unpin.
    PageRef held = shared.pin(MBlock(1), BlockType::test_page).value();
    bool got = false;
    w.sched.spawn("second", [&] { got = shared.pin_new(MBlock(2), BlockType::test_page).ok(); });
    w.sched.sleep(std::chrono::microseconds(100));
    EXPECT_FALSE(got);
    held.reset();
    w.sched.sleep(std::chrono::microseconds(100));
    EXPECT_TRUE(got);
  });
}

TEST(BlockCache, PrefetchReadsInParallelAndRebuildsOnlyInitPages) {
  CacheWorld w(16);
  w.run([&] {
    for (uint64_t b = 1; b <= 4; ++b) {
      PageRef p = w.cache.pin_new(MBlock(b), BlockType::test_page).value();
      w.cache.apply_write(p, 0, bytes_of(uint8_t(b)), Lsn(b), true);
    }
    w.gate.durable = Lsn(4);
    ASSERT_EQ(w.cache.write_back_durable().value(), 4u);
    BlockCache fresh(w.sched, w.disk, BlockCacheOptions{16, 4});
    fresh.set_wal_gate(&w.gate);
    std::vector<BlockCache::PrefetchPage> pages;
    for (uint64_t b = 1; b <= 4; ++b) pages.push_back({MBlock(b), BlockType::test_page, false});
    pages.push_back({MBlock(9), BlockType::test_page, true});    // never written: init -> zeros
    pages.push_back({MBlock(10), BlockType::test_page, false});  // never written: not cached
    const Nanos t0 = w.sched.now();
    fresh.prefetch(pages);
    EXPECT_LE(w.sched.now() - t0, w.disk.max_latency);  // one round of parallel reads
    EXPECT_EQ(fresh.resident_pages(), 5u);
    const uint64_t reads = fresh.stats().reads;
    EXPECT_EQ(fresh.pin(MBlock(3), BlockType::test_page).value().payload()[0], std::byte{3});
    EXPECT_EQ(fresh.pin_for_redo(MBlock(9), BlockType::test_page, true).value().page_lsn(), Lsn(0));
    EXPECT_EQ(fresh.stats().reads, reads);
    EXPECT_EQ(fresh.pin(MBlock(10), BlockType::test_page).status().code(), Errc::corruption);
  });
}

}  // namespace
}  // namespace thinp::cache
