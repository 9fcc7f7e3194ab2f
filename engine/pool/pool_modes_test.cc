// Pool modes (pool.h, "Modes"), each transition driven by a fault on the
// simulated disk and checked by what a user sees: the mode in status(), the
// error code of each IO, the superblock's needs_check after a reopen, and
// the bytes read back.
//
// The pools here are one-device pools: a 4 MiB metadata area at the start of
// the disk, then the data area. Metadata faults come from FaultyRange, a
// decorator over the SimDisk that fails writes to one byte range of it (the
// SimDisk's own FaultConfig draws faults per IO at random, over the whole
// disk; these tests need a fault on the metadata area only, and at a chosen
// moment). Corruption is a sector overwritten on the DiskMedia.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "engine/pool/pool.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"
#include "sim/sim_disk_media.h"
#include "sim/trace.h"

namespace thinp::pool {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kBlock = 64 * 1024;
constexpr uint64_t kMetadataBytes = uint64_t(4) << 20;
constexpr uint64_t kSuperblockBytes = 2 * kMetadataBlockBytes;  // both slots

// Writes (and discards) that overlap [fail_begin, fail_end) complete with
// io_error and change nothing, as SimDisk's write_error does; everything else
// goes to the disk below. The failure completes as a scheduler event, never
// inside submit() (block_device.h).
class FaultyRange final : public BlockDevice {
 public:
  FaultyRange(sim::Scheduler& sched, BlockDevice& inner)
      : BlockDevice(sched), sched_(sched), inner_(inner) {}

  void fail_writes(uint64_t begin, uint64_t end) {
    fail_begin_ = begin;
    fail_end_ = end;
  }
  void heal() { fail_begin_ = fail_end_ = 0; }
  uint64_t writes_failed() const { return writes_failed_; }

  void submit(IoRequest* req) override {
    const bool changes = req->op == IoOp::write || req->op == IoOp::discard;
    const bool hit = changes && req->offset_bytes < fail_end_ &&
                     req->offset_bytes + req->length_bytes > fail_begin_;
    if (!hit) return inner_.submit(req);
    ++writes_failed_;
    const uint64_t at = req->offset_bytes;
    sched_.schedule_after(std::chrono::microseconds(50), [req, at] {
      req->on_complete(
          Status(Errc::io_error, "injected write error at byte " + std::to_string(at)));
    });
  }
  uint64_t size_bytes() const override { return inner_.size_bytes(); }
  uint32_t logical_sector_bytes() const override { return inner_.logical_sector_bytes(); }
  std::string name() const override { return "faulty(" + inner_.name() + ")"; }

 private:
  sim::Scheduler& sched_;
  BlockDevice& inner_;
  uint64_t fail_begin_ = 0, fail_end_ = 0;
  uint64_t writes_failed_ = 0;
};

// One simulated one-device pool: `data_blocks` blocks of 64 KiB after the
// metadata area.
struct ModesWorld {
  explicit ModesWorld(uint64_t data_blocks)
      : media(512, (kMetadataBytes + data_blocks * kBlock) / 512), trace(sim::TraceOptions{}) {
    boot();
  }
  ~ModesWorld() {
    pool.reset();
    sched.kill_all_tasks();
  }
  // A fresh SimDisk over the media (after crash(), the reboot).
  void boot() {
    faulty.reset();
    disk = std::make_unique<sim::SimDisk>(sched, media, trace, sim::SimDiskOptions{},
                                          Random(11 + boots++));
    faulty = std::make_unique<FaultyRange>(sched, *disk);
  }
  void run(std::function<void()> body) {
    sched.spawn("test", std::move(body));
    ASSERT_EQ(sched.run(), sim::RunOutcome::idle) << sched.deadlock_report() << sched.failure();
  }
  void format(FormatOptions f = {}) {
    run([&] {
      f.metadata_bytes = kMetadataBytes;
      ASSERT_TRUE(Pool::format(sched, *faulty, nullptr, f).ok());
    });
  }
  void open(PoolOptions o = {}) {
    run([&] {
      auto r = Pool::open(sched, *faulty, nullptr, o);
      ASSERT_TRUE(r.ok()) << r.status().message();
      pool = std::move(*r);
    });
  }
  // Power cycle that keeps every write (nothing is torn or dropped), then a
  // reopen: the way to see what the media holds after the pool is dropped.
  // Called between runs, when no task is alive.
  void reboot_and_open(PoolOptions o = {}) {
    pool.reset();
    Random rng(5);
    disk->crash(rng, sim::CrashOptions{1, 0.0, 1.0});
    boot();
    open(o);
  }

  sim::Scheduler sched{1};
  sim::DiskMedia media;
  sim::IoTrace trace;
  uint64_t boots = 0;
  std::unique_ptr<sim::SimDisk> disk;
  std::unique_ptr<FaultyRange> faulty;
  std::unique_ptr<Pool> pool;
};

// Block contents that differ per (thin, block, version).
AlignedBuffer block_pattern(uint64_t thin, uint64_t block, uint8_t version) {
  AlignedBuffer b(kBlock);
  for (size_t i = 0; i < kBlock; ++i) {
    b.data()[i] = std::byte(uint8_t(thin * 31 + block * 13 + version * 101 + i * 7 + i / 4096));
  }
  return b;
}

bool block_is(Pool& p, ThinId thin, uint64_t block, const AlignedBuffer& want) {
  AlignedBuffer got(kBlock);
  Status s = p.read(thin, block * kBlock, got.span());
  EXPECT_TRUE(s.ok()) << "read of block " << block << ": " << s.to_string();
  return s.ok() && std::memcmp(got.data(), want.data(), kBlock) == 0;
}

bool block_is_zero(Pool& p, ThinId thin, uint64_t block) {
  return block_is(p, thin, block, AlignedBuffer(kBlock));
}

Status write_block(Pool& p, ThinId thin, uint64_t block, uint8_t version) {
  return p.write(thin, block * kBlock, block_pattern(thin.value(), block, version).span());
}

// --- out_of_data_space ------------------------------------------------------------

TEST(PoolModes, OutOfDataSpaceErrorFailsAtOnceAndRecoversAfterDiscardOrDelete) {
  ModesWorld w(8);
  FormatOptions f;
  f.out_of_data_space = OutOfDataSpaceMode::error;
  w.format(f);
  w.open();
  const ThinId a(1), b(2);
  w.run([&] {
    Pool& p = *w.pool;
    ASSERT_EQ(p.status().store.data_blocks, 8u);
    ASSERT_EQ(p.status().out_of_data_space, OutOfDataSpaceMode::error);
    ASSERT_TRUE(p.create_thin(a, 16 * kBlock).ok());
    ASSERT_TRUE(p.create_thin(b, 16 * kBlock).ok());
    for (uint64_t i = 0; i < 6; ++i) ASSERT_TRUE(write_block(p, a, i, 0).ok());
    for (uint64_t i = 0; i < 2; ++i) ASSERT_TRUE(write_block(p, b, i, 0).ok());
    ASSERT_TRUE(p.flush().ok());
    EXPECT_EQ(p.status().store.data_free, 0u);
    EXPECT_EQ(p.status().mode, PoolMode::write) << "full, but no write has wanted space yet";

    // A write needing a new block fails at once: no virtual time passes.
    const Nanos t0 = w.sched.now();
    Status s = write_block(p, a, 6, 0);
    EXPECT_EQ(s.code(), Errc::no_space) << s.to_string();
    EXPECT_EQ(w.sched.now(), t0) << "error mode must not wait";
    EXPECT_EQ(p.status().mode, PoolMode::out_of_data_space);
    EXPECT_EQ(p.mode(), PoolMode::write) << "the pool itself is healthy";

    // Provisioned blocks: overwritten in place, and everything reads back.
    AlignedBuffer small(4096);
    std::memset(small.data(), 0xab, small.size());
    ASSERT_TRUE(p.write(a, 3 * kBlock + 8192, small.span()).ok());
    AlignedBuffer want3 = block_pattern(1, 3, 0);
    std::memset(want3.data() + 8192, 0xab, 4096);
    EXPECT_TRUE(block_is(p, a, 3, want3));
    for (uint64_t i : {0, 1, 2, 4, 5}) EXPECT_TRUE(block_is(p, a, i, block_pattern(1, i, 0)));
    EXPECT_TRUE(block_is_zero(p, a, 6)) << "the failed write mapped nothing";
    EXPECT_EQ(p.thin_info(a)->mapped_blocks, 6u);

    // Discard frees space (durable at the flush: freed blocks are
    // quarantined until the transaction freeing them is).
    ASSERT_TRUE(p.discard(a, 0, 2 * kBlock).ok());
    ASSERT_TRUE(p.flush().ok());
    EXPECT_EQ(p.status().mode, PoolMode::write);
    ASSERT_TRUE(write_block(p, a, 6, 1).ok());
    ASSERT_TRUE(write_block(p, a, 7, 1).ok());
    EXPECT_TRUE(block_is(p, a, 6, block_pattern(1, 6, 1)));
    EXPECT_TRUE(block_is(p, a, 7, block_pattern(1, 7, 1)));
    EXPECT_TRUE(block_is_zero(p, a, 0));
    EXPECT_EQ(write_block(p, a, 8, 1).code(), Errc::no_space);
    EXPECT_EQ(p.status().mode, PoolMode::out_of_data_space);

    // Deleting a thin frees its blocks too.
    ASSERT_TRUE(p.delete_thin(b).ok());
    ASSERT_TRUE(p.flush().ok());
    EXPECT_EQ(p.status().mode, PoolMode::write);
    ASSERT_TRUE(write_block(p, a, 8, 2).ok());
    EXPECT_TRUE(block_is(p, a, 8, block_pattern(1, 8, 2)));
    EXPECT_TRUE(block_is(p, a, 7, block_pattern(1, 7, 1)));
  });
}

struct QueueWorld : ModesWorld {
  QueueWorld() : ModesWorld(4) {
    format();  // queue is the default
    PoolOptions o;
    o.no_space_timeout = std::chrono::seconds(1);
    open(o);
    run([&] {
      ASSERT_TRUE(pool->create_thin(ThinId(1), 16 * kBlock).ok());
      for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(write_block(*pool, ThinId(1), i, 0).ok());
      ASSERT_TRUE(pool->flush().ok());
      ASSERT_EQ(pool->status().store.data_free, 0u);
    });
  }
};

TEST(PoolModes, OutOfDataSpaceQueueFailsAfterTheTimeout) {
  QueueWorld w;
  w.run([&] {
    Pool& p = *w.pool;
    const Nanos t0 = w.sched.now();
    Status s = write_block(p, ThinId(1), 5, 0);
    const Nanos waited = w.sched.now() - t0;
    EXPECT_EQ(s.code(), Errc::no_space) << s.to_string();
    EXPECT_GE(waited, std::chrono::seconds(1));
    EXPECT_LT(waited, milliseconds(1100)) << "it gives up at the timeout, not much later";
    EXPECT_EQ(p.status().mode, PoolMode::out_of_data_space);
    EXPECT_TRUE(block_is_zero(p, ThinId(1), 5));
    EXPECT_TRUE(block_is(p, ThinId(1), 2, block_pattern(1, 2, 0)));
  });
}

TEST(PoolModes, OutOfDataSpaceQueueWaiterSucceedsWhenSpaceIsFreed) {
  QueueWorld w;
  Nanos waited{0};
  Status waiter_status(Errc::aborted, "not run");
  w.sched.spawn("waiter", [&] {
    const Nanos t0 = w.sched.now();
    waiter_status = write_block(*w.pool, ThinId(1), 5, 0);
    waited = w.sched.now() - t0;
  });
  w.run([&] {
    w.sched.sleep(milliseconds(200));
    EXPECT_EQ(w.pool->status().mode, PoolMode::out_of_data_space) << "the waiter is queued";
    ASSERT_TRUE(w.pool->discard(ThinId(1), 0, kBlock).ok());
    ASSERT_TRUE(w.pool->flush().ok());
  });
  EXPECT_TRUE(waiter_status.ok()) << waiter_status.to_string();
  EXPECT_GE(waited, milliseconds(200));
  EXPECT_LT(waited, std::chrono::seconds(1)) << "it must not wait for the timeout";
  w.run([&] {
    Pool& p = *w.pool;
    EXPECT_EQ(p.status().mode, PoolMode::write);
    EXPECT_TRUE(block_is(p, ThinId(1), 5, block_pattern(1, 5, 0)));
    EXPECT_TRUE(block_is_zero(p, ThinId(1), 0));
    EXPECT_TRUE(block_is(p, ThinId(1), 3, block_pattern(1, 3, 0)));
  });
}

// --- read_only and fail -----------------------------------------------------------

// A pool with thin 1 holding blocks 0..3, durable.
struct MetadataFaultWorld : ModesWorld {
  MetadataFaultWorld() : ModesWorld(64) {
    format();
    open();
    run([&] {
      ASSERT_TRUE(pool->create_thin(ThinId(1), 32 * kBlock).ok());
      for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(write_block(*pool, ThinId(1), i, 0).ok());
      ASSERT_TRUE(pool->flush().ok());
    });
  }
  void expect_old_data_reads_back() {
    for (uint64_t i = 0; i < 4; ++i) {
      EXPECT_TRUE(block_is(*pool, ThinId(1), i, block_pattern(1, i, 0))) << "block " << i;
    }
  }
};

TEST(PoolModes, MetadataWriteErrorMakesThePoolReadOnlyWithNeedsCheck) {
  MetadataFaultWorld w;
  // Every metadata write but the superblock's fails: the journal write of
  // the next commit fails, setting needs_check still works.
  w.faulty->fail_writes(kSuperblockBytes, kMetadataBytes);
  w.run([&] {
    Pool& p = *w.pool;
    ASSERT_TRUE(write_block(p, ThinId(1), 10, 0).ok()) << "committed, not yet durable";
    Status s = p.flush();
    EXPECT_EQ(s.code(), Errc::io_error) << s.to_string();
    EXPECT_GE(w.faulty->writes_failed(), 1u);
    EXPECT_EQ(p.mode(), PoolMode::read_only);
    EXPECT_EQ(p.status().mode, PoolMode::read_only);
    EXPECT_TRUE(p.status().store.needs_check);
    EXPECT_FALSE(p.status().mode_reason.empty());
    EXPECT_EQ(write_block(p, ThinId(1), 0, 1).code(), Errc::read_only) << "in place too";
    EXPECT_EQ(write_block(p, ThinId(1), 11, 1).code(), Errc::read_only);
    EXPECT_EQ(p.discard(ThinId(1), 0, kBlock).code(), Errc::read_only);
    EXPECT_EQ(p.create_thin(ThinId(2), kBlock).code(), Errc::read_only);
    w.expect_old_data_reads_back();
  });
  w.faulty->heal();
  w.reboot_and_open();
  w.run([&] {
    Pool& p = *w.pool;
    EXPECT_TRUE(p.status().store.needs_check) << "needs_check must be on disk";
    EXPECT_EQ(p.status().mode, PoolMode::read_only);
    EXPECT_EQ(write_block(p, ThinId(1), 12, 0).code(), Errc::read_only);
    w.expect_old_data_reads_back();
  });
}

TEST(PoolModes, MetadataDeviceThatCannotBeWrittenFailsThePool) {
  MetadataFaultWorld w;
  // The superblock too: needs_check cannot be recorded.
  w.faulty->fail_writes(0, kMetadataBytes);
  w.run([&] {
    Pool& p = *w.pool;
    ASSERT_TRUE(write_block(p, ThinId(1), 10, 0).ok());
    EXPECT_EQ(p.flush().code(), Errc::io_error);
    EXPECT_EQ(p.mode(), PoolMode::fail);
    EXPECT_EQ(p.status().mode, PoolMode::fail);
    EXPECT_NE(p.status().mode_reason.find("needs_check"), std::string::npos)
        << p.status().mode_reason;
    AlignedBuffer got(kBlock);
    EXPECT_EQ(p.read(ThinId(1), 0, got.span()).code(), Errc::io_error);
    EXPECT_EQ(write_block(p, ThinId(1), 0, 1).code(), Errc::io_error);
    EXPECT_EQ(p.discard(ThinId(1), 0, kBlock).code(), Errc::io_error);
    EXPECT_EQ(p.flush().code(), Errc::io_error);
  });
  // Nothing durable was lost: after the fault heals, a reopen recovers the
  // flushed data (needs_check could not be written, so it is not set).
  w.faulty->heal();
  w.reboot_and_open();
  w.run([&] {
    EXPECT_FALSE(w.pool->status().store.needs_check);
    w.expect_old_data_reads_back();
  });
}

// --- corruption -------------------------------------------------------------------

TEST(PoolModes, CorruptMappingTreeBlockMakesThePoolReadOnlyWithNeedsCheck) {
  ModesWorld w(64);
  w.format();
  w.open();
  MBlock root_a, root_b;
  w.run([&] {
    Pool& p = *w.pool;
    ASSERT_TRUE(p.create_thin(ThinId(1), 32 * kBlock).ok());
    ASSERT_TRUE(p.create_thin(ThinId(2), 32 * kBlock).ok());
    for (uint64_t i = 0; i < 4; ++i) {
      ASSERT_TRUE(write_block(p, ThinId(1), i, 0).ok());
      ASSERT_TRUE(write_block(p, ThinId(2), i, 0).ok());
    }
    root_a = p.thin_info(ThinId(1))->root;
    root_b = p.thin_info(ThinId(2))->root;
    ASSERT_TRUE(p.close().ok());
  });
  ASSERT_NE(root_a, root_b);
  // Scribble over the middle of thin 1's mapping tree root (a leaf here) on
  // the media, behind the pool's back; the reboot empties the cache.
  w.pool.reset();
  Random rng(5);
  w.disk->crash(rng, sim::CrashOptions{1, 0.0, 1.0});
  std::vector<std::byte> junk(512, std::byte{0x5a});
  w.media.write_sector(root_a.value() * (kMetadataBlockBytes / 512) + 3, junk);
  w.boot();
  w.open();
  w.run([&] {
    Pool& p = *w.pool;
    EXPECT_EQ(p.mode(), PoolMode::write) << "open reads only the device tree";
    AlignedBuffer got(kBlock);
    Status s = p.read(ThinId(1), 0, got.span());
    EXPECT_EQ(s.code(), Errc::corruption) << s.to_string();
    EXPECT_EQ(p.status().mode, PoolMode::read_only);
    EXPECT_TRUE(p.status().store.needs_check);
    EXPECT_EQ(write_block(p, ThinId(2), 0, 1).code(), Errc::read_only);
    // The other thin's tree is intact and still reads.
    for (uint64_t i = 0; i < 4; ++i) EXPECT_TRUE(block_is(p, ThinId(2), i, block_pattern(2, i, 0)));
  });
  w.reboot_and_open();
  w.run([&] {
    EXPECT_TRUE(w.pool->status().store.needs_check);
    EXPECT_EQ(w.pool->status().mode, PoolMode::read_only);
    EXPECT_TRUE(block_is(*w.pool, ThinId(2), 1, block_pattern(2, 1, 0)));
  });
}

}  // namespace
}  // namespace thinp::pool
