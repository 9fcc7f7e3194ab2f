// Pool on the simulator: the life of a thin and its snapshot, checked
// against expected contents, and the pool's refcounts checked after each
// step. (Random sequences, modes and crashes: pool_property_test.cc and the
// pool scenario.)
#include "engine/pool/pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "sim/scheduler.h"
#include "sim/sim_disk.h"
#include "sim/sim_disk_media.h"
#include "sim/trace.h"

namespace thinp::pool {
namespace {

constexpr uint64_t kDeviceBytes = uint64_t(64) << 20;
constexpr uint64_t kBlock = 64 * 1024;

struct PoolWorld {
  PoolWorld() : media(512, kDeviceBytes / 512), trace(sim::TraceOptions{}) {
    disk = std::make_unique<sim::SimDisk>(sched, media, trace, sim::SimDiskOptions{}, Random(7));
  }
  ~PoolWorld() {
    pool.reset();
    sched.kill_all_tasks();
  }
  void run(std::function<void()> body) {
    sched.spawn("test", std::move(body));
    ASSERT_EQ(sched.run(), sim::RunOutcome::idle) << sched.deadlock_report() << sched.failure();
  }
  void open(FormatOptions f = {}) {
    run([&] {
      f.metadata_bytes = uint64_t(4) << 20;
      ASSERT_TRUE(Pool::format(sched, *disk, nullptr, f).ok());
      auto r = Pool::open(sched, *disk, nullptr, PoolOptions{});
      ASSERT_TRUE(r.ok()) << r.status().message();
      pool = std::move(*r);
    });
  }
  void expect_clean() {
    run([&] {
      auto findings = pool->check();
      ASSERT_TRUE(findings.ok()) << findings.status().message();
      for (const CheckFinding& f : *findings) ADD_FAILURE() << f.what;
    });
  }

  sim::Scheduler sched{1};
  sim::DiskMedia media;
  sim::IoTrace trace;
  std::unique_ptr<sim::SimDisk> disk;
  std::unique_ptr<Pool> pool;
};

AlignedBuffer pattern(size_t bytes, uint8_t seed) {
  AlignedBuffer b(bytes);
  for (size_t i = 0; i < bytes; ++i) b.data()[i] = std::byte(uint8_t(seed + i * 7 + i / 4096));
  return b;
}

bool same(const AlignedBuffer& a, const AlignedBuffer& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

TEST(Pool, SnapshotKeepsOldDataOriginGetsNew) {
  PoolWorld w;
  w.open();
  const AlignedBuffer old_data = pattern(4 << 20, 1);
  const AlignedBuffer new_data = pattern(1 << 20, 2);
  w.run([&] {
    Pool& p = *w.pool;
    ASSERT_TRUE(p.create_thin(ThinId(1), 32 << 20).ok());
    ASSERT_TRUE(p.write(ThinId(1), 0, old_data.span()).ok());
    ASSERT_TRUE(p.create_snapshot(ThinId(1), ThinId(2)).ok());
    // Overwrite 1 MiB of the origin starting in the middle of a block.
    ASSERT_TRUE(p.write(ThinId(1), 512 * 1024 + 4096, new_data.span()).ok());
    AlignedBuffer got(4 << 20);
    ASSERT_TRUE(p.read(ThinId(2), 0, got.span()).ok());
    EXPECT_TRUE(same(got, old_data)) << "the snapshot must keep the old data";
    ASSERT_TRUE(p.read(ThinId(1), 0, got.span()).ok());
    AlignedBuffer want(4 << 20);
    std::memcpy(want.data(), old_data.data(), old_data.size());
    std::memcpy(want.data() + 512 * 1024 + 4096, new_data.data(), new_data.size());
    EXPECT_TRUE(same(got, want)) << "the origin must read old data overlaid with the new";
    AlignedBuffer zeros(1 << 20), tail(1 << 20);
    ASSERT_TRUE(p.read(ThinId(1), 8 << 20, tail.span()).ok());
    EXPECT_TRUE(same(tail, zeros)) << "unwritten blocks read as zeros";
    EXPECT_EQ(p.status().shares_broken, (1 << 20) / kBlock + 1);
  });
  w.expect_clean();
  uint64_t used_before = 0, used_after = 0;
  w.run([&] {
    used_before = w.pool->status().store.data_used;
    ASSERT_TRUE(w.pool->delete_thin(ThinId(2)).ok());
    used_after = w.pool->status().store.data_used;
  });
  EXPECT_EQ(used_before, 64 + 17);
  EXPECT_EQ(used_after, 64) << "deleting the snapshot frees what only it referenced";
  w.expect_clean();
}

TEST(Pool, BoundsUnknownThinAndTransactionId) {
  PoolWorld w;
  w.open();
  w.run([&] {
    Pool& p = *w.pool;
    AlignedBuffer b(4096);
    EXPECT_EQ(p.write(ThinId(9), 0, b.span()).code(), Errc::not_found);
    ASSERT_TRUE(p.create_thin(ThinId(9), 1 << 20).ok());
    EXPECT_EQ(p.create_thin(ThinId(9), 1 << 20).code(), Errc::already_exists);
    EXPECT_EQ(p.write(ThinId(9), (1 << 20) - 2048, b.span()).code(), Errc::invalid_argument);
    EXPECT_EQ(p.read(ThinId(9), 1 << 20, b.span()).code(), Errc::invalid_argument);
    EXPECT_EQ(p.write(ThinId(9), 100, b.span()).code(), Errc::invalid_argument);
    EXPECT_EQ(p.set_transaction_id(5, 6).code(), Errc::conflict);
    ASSERT_TRUE(p.set_transaction_id(0, 6).ok());
    EXPECT_EQ(p.status().store.transaction_id, 6u);
  });
}

// Discarding a range holding more runs than one transaction takes goes
// through several transactions, and unmaps everything.
TEST(Pool, DiscardOfAManyRunRangeUnmapsEverything) {
  PoolWorld w;
  FormatOptions f;
  f.data_block_bytes = 4096;
  w.open(f);
  w.run([&] {
    Pool& p = *w.pool;
    ASSERT_TRUE(p.create_thin(ThinId(1), 16 << 20).ok());
    AlignedBuffer b = pattern(4096, 5);
    for (uint64_t i = 0; i < 1500; ++i) {  // every other block: 1500 runs
      ASSERT_TRUE(p.write(ThinId(1), 2 * i * 4096, b.span()).ok());
    }
    ASSERT_EQ(p.thin_info(ThinId(1))->mapped_blocks, 1500u);
    ASSERT_EQ(p.mappings(ThinId(1))->size(), 1500u);
    ASSERT_TRUE(p.discard(ThinId(1), 4096, (16 << 20) - 4096).ok());
    EXPECT_EQ(p.thin_info(ThinId(1))->mapped_blocks, 1u);
    EXPECT_EQ(p.status().store.data_used, 1u);
    AlignedBuffer got(4096), zeros(4096);
    ASSERT_TRUE(p.read(ThinId(1), 2 * 4096, got.span()).ok());
    EXPECT_TRUE(same(got, zeros));
    ASSERT_TRUE(p.read(ThinId(1), 0, got.span()).ok());
    EXPECT_TRUE(same(got, b));
  });
  w.expect_clean();
}

// A thin with more runs than one transaction should free is deleted in
// pieces behind a durable "deleting" flag. A crash at any point leaves
// either the whole thin or nothing of it (open finishes the delete), and the
// other thin intact.
TEST(Pool, LargeDeleteIsAllOrNothingAcrossCrashes) {
  int cut_short = 0, survived = 0, gone = 0, finished_at_open = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    sim::DiskMedia media(512, kDeviceBytes / 512);
    sim::IoTrace trace{sim::TraceOptions{}};
    AlignedBuffer b = pattern(4096, 5), c = pattern(4096, 6);
    uint64_t used_before = 0;
    bool cut = false;
    {
      sim::Scheduler sched(seed);
      sim::SimDisk disk(sched, media, trace, sim::SimDiskOptions{}, Random(seed));
      std::unique_ptr<Pool> pool;
      sched.spawn("setup", [&] {
        FormatOptions f;
        f.data_block_bytes = 4096;
        f.metadata_bytes = uint64_t(4) << 20;
        ASSERT_TRUE(Pool::format(sched, disk, nullptr, f).ok());
        pool = std::move(Pool::open(sched, disk, nullptr, PoolOptions{}).value());
        ASSERT_TRUE(pool->create_thin(ThinId(1), 16 << 20).ok());
        ASSERT_TRUE(pool->create_thin(ThinId(2), 1 << 20).ok());
        ASSERT_TRUE(pool->write(ThinId(2), 0, c.span()).ok());
        for (uint64_t i = 0; i < 1200; ++i) {
          ASSERT_TRUE(pool->write(ThinId(1), 2 * i * 4096, b.span()).ok());
        }
        ASSERT_TRUE(pool->flush().ok());
        used_before = pool->status().store.data_used;
      });
      ASSERT_EQ(sched.run(), sim::RunOutcome::idle) << sched.failure();
      // Delete, and lose power somewhere inside it (or after it).
      bool deleted = false;
      sched.spawn("delete", [&] {
        Status s = pool->delete_thin(ThinId(1));
        ASSERT_TRUE(s.ok()) << s.to_string();
        deleted = true;
      });
      sim::RunLimits limits;
      // The delete takes 0.1-3 ms of virtual time here.
      limits.max_time = sched.now() + Nanos(Random(seed).uniform(400'000));
      sched.run(limits);
      if (!deleted) ++cut_short;
      cut = !deleted;
      sched.kill_all_tasks();
      pool.reset();
      Random rng(seed * 7);
      disk.crash(rng, sim::CrashOptions{});
    }
    sim::Scheduler sched(100 + seed);
    sim::SimDisk disk(sched, media, trace, sim::SimDiskOptions{}, Random(seed + 50));
    sched.spawn("reopen", [&] {
      auto r = Pool::open(sched, disk, nullptr, PoolOptions{});
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      Pool& p = **r;
      AlignedBuffer got(4096);
      ASSERT_TRUE(p.read(ThinId(2), 0, got.span()).ok());
      EXPECT_TRUE(same(got, c)) << "seed " << seed;
      auto one = p.thin_info(ThinId(1));
      if (one.ok()) {
        ++survived;
        EXPECT_EQ(one->mapped_blocks, 1200u) << "seed " << seed;
        EXPECT_EQ(p.status().store.data_used, used_before);
      } else {
        ++gone;
        if (cut) ++finished_at_open;
        EXPECT_EQ(p.status().store.data_used, 1u) << "seed " << seed;
      }
      auto findings = p.check();
      ASSERT_TRUE(findings.ok());
      for (const CheckFinding& f : *findings) ADD_FAILURE() << "seed " << seed << ": " << f.what;
    });
    ASSERT_EQ(sched.run(), sim::RunOutcome::idle) << sched.failure();
  }
  // Both outcomes happened, and some crashes hit the delete itself.
  EXPECT_GT(cut_short, 0);
  EXPECT_GT(survived, 0);
  EXPECT_GT(gone, 0);
  EXPECT_GT(finished_at_open, 0) << "no crash left a delete for open to finish";
}

// A device that reports fewer bytes than its media holds: a pool formatted
// on it can later grow into the rest.
class ShortDevice final : public BlockDevice {
 public:
  ShortDevice(BlockDevice& inner, uint64_t bytes)
      : BlockDevice(inner.runtime()), inner_(inner), bytes_(bytes) {}
  void submit(IoRequest* req) override { inner_.submit(req); }
  uint64_t size_bytes() const override { return bytes_; }
  uint32_t logical_sector_bytes() const override { return inner_.logical_sector_bytes(); }
  std::string name() const override { return "short-" + inner_.name(); }

 private:
  BlockDevice& inner_;
  uint64_t bytes_;
};

TEST(Pool, GrowDataAfterRunningOutOfSpaceSurvivesACrash) {
  PoolWorld w;
  AlignedBuffer block = pattern(kBlock, 9);
  uint64_t written = 0, blocks_before = 0, blocks_after = 0;
  w.run([&] {
    ShortDevice shrunk(*w.disk, uint64_t(24) << 20);
    FormatOptions f;
    f.metadata_bytes = uint64_t(4) << 20;
    f.out_of_data_space = OutOfDataSpaceMode::error;
    ASSERT_TRUE(Pool::format(w.sched, shrunk, nullptr, f).ok());
    auto r = Pool::open(w.sched, *w.disk, nullptr, PoolOptions{});
    ASSERT_TRUE(r.ok()) << r.status().message();
    w.pool = std::move(*r);
    Pool& p = *w.pool;
    ASSERT_TRUE(p.create_thin(ThinId(1), 60 << 20).ok());
    blocks_before = p.status().store.data_blocks;
    Status s;
    for (; (s = p.write(ThinId(1), written * kBlock, block.span())).ok(); ++written) {
    }
    EXPECT_EQ(s.code(), Errc::no_space) << s.to_string();
    EXPECT_EQ(written, blocks_before);
    EXPECT_EQ(p.status().mode, PoolMode::out_of_data_space);
    EXPECT_EQ(p.grow_data(blocks_before - 1).code(), Errc::invalid_argument);
    EXPECT_EQ(p.grow_data(uint64_t(1) << 40).code(), Errc::invalid_argument);
    ASSERT_TRUE(p.grow_data(blocks_before + 64).ok());
    blocks_after = p.status().store.data_blocks;
    for (int i = 0; i < 8; ++i, ++written) {
      ASSERT_TRUE(p.write(ThinId(1), written * kBlock, block.span()).ok());
    }
    EXPECT_EQ(p.status().mode, PoolMode::write);
    ASSERT_TRUE(p.flush().ok());
  });
  EXPECT_EQ(blocks_after, blocks_before + 64);
  // Power loss with the grow durable only in the journal (no checkpoint
  // since): recovery replays it.
  w.run([&] { w.pool.reset(); });
  w.sched.kill_all_tasks();
  Random rng(3);
  w.disk->crash(rng, sim::CrashOptions{});
  sim::Scheduler sched2(2);
  sim::SimDisk disk2(sched2, w.media, w.trace, sim::SimDiskOptions{}, Random(8));
  std::unique_ptr<Pool> pool;
  sched2.spawn("reopen", [&] {
    auto r = Pool::open(sched2, disk2, nullptr, PoolOptions{});
    ASSERT_TRUE(r.ok()) << r.status().message();
    pool = std::move(*r);
    EXPECT_EQ(pool->status().store.data_blocks, blocks_before + 64);
    EXPECT_EQ(pool->status().store.data_used, written);
    AlignedBuffer got(kBlock);
    ASSERT_TRUE(pool->read(ThinId(1), (written - 1) * kBlock, got.span()).ok());
    EXPECT_TRUE(same(got, block));
    auto findings = pool->check();
    ASSERT_TRUE(findings.ok());
    for (const CheckFinding& f : *findings) ADD_FAILURE() << f.what;
    ASSERT_TRUE(pool->close().ok());
  });
  ASSERT_EQ(sched2.run(), sim::RunOutcome::idle) << sched2.failure();
}

}  // namespace
}  // namespace thinp::pool
