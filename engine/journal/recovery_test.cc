#include "engine/journal/recovery.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "engine/journal/journal_test_world.h"

namespace thinp::journal::testing {
namespace {

using namespace std::chrono_literals;
using Mode = CrashTestDisk::CrashMode;

// A workload whose every transaction writes the same value to a task's two
// pages (2t and 2t+1) and logs a data allocation. What the tasks were told
// is remembered, so that a checker can hold recovery to it.
struct Workload {
  explicit Workload(int tasks) : acked(tasks, 0), attempted(tasks, 0), on_disk(tasks, false) {}
  std::vector<uint64_t> acked;      // highest value whose commit returned ok
  std::vector<uint64_t> attempted;  // highest value ever given to commit
  std::vector<bool> on_disk;        // the task's pages exist (pin, not pin_new)

  // Spawns the tasks: each commits `txns` transactions.
  void spawn(World& w, int txns) {
    for (size_t t = 0; t < acked.size(); ++t) {
      w.sched.spawn("writer", [this, &w, t, txns] {
        for (int i = 0; i < txns; ++i) {
          w.sched.sleep(Nanos(w.sched.random().uniform(20000)));
          const uint64_t v = attempted[t] + 1;
          Transaction txn;
          const bool fresh = !on_disk[t];
          if (!w.write_test_page(txn, 2 * t, t, v, fresh).ok()) return;
          if (!w.write_test_page(txn, 2 * t + 1, t, v, fresh, 2000).ok()) return;
          txn.add(DataRangeAlloc{DBlock(t * 100000 + v), 1, ThinId(t)});
          attempted[t] = v;
          on_disk[t] = true;
          if (!w.journal->commit(txn).ok()) return;
          acked[t] = v;
        }
      });
    }
  }

  // Checks a recovered world: every acknowledged value survived, both pages
  // of a task hold the same value (atomicity), nothing was invented. Returns
  // one line per problem. Leaves `acked` = what survived, for the next cycle.
  std::vector<std::string> check(World& w) {
    std::vector<std::string> problems;
    w.run_task([&] {
      for (size_t t = 0; t < acked.size(); ++t) {
        auto a = w.read_test_page(2 * t);
        auto b = w.read_test_page(2 * t + 1, 2000);
        const std::string who = "task " + std::to_string(t) + ": ";
        if (!a.ok() || !b.ok()) {
          if (acked[t] > 0)
            problems.push_back(who + "acknowledged value " + std::to_string(acked[t]) +
                               " lost: " + (a.ok() ? b : a).status().to_string());
          if (a.ok() != b.ok()) problems.push_back(who + "only one of two pages exists");
          on_disk[t] = false;
          attempted[t] = 0;
          acked[t] = 0;
          continue;
        }
        if (a->first != t || b->first != t) problems.push_back(who + "page has another task's tag");
        if (a->second != b->second) {
          problems.push_back(who + "pages disagree: " + std::to_string(a->second) + " vs " +
                             std::to_string(b->second));
        }
        if (a->second < acked[t]) {
          problems.push_back(who + "acknowledged value " + std::to_string(acked[t]) +
                             " lost, found " + std::to_string(a->second));
        }
        if (a->second > attempted[t]) problems.push_back(who + "value never written");
        acked[t] = attempted[t] = a->second;
        on_disk[t] = true;
      }
    });
    return problems;
  }
};

// Runs one crash cycle: the workload in `w` until virtual time `crash_at`,
// then returns the crash image. The superblock tail is read from `w` after.
std::vector<std::byte> run_until_crash(World& w, Workload& load, int txns, Nanos crash_at,
                                       Mode mode, Random& rng) {
  load.spawn(w, txns);
  const sim::RunOutcome out = w.sched.run(sim::RunLimits{UINT64_MAX, crash_at});
  EXPECT_TRUE(out == sim::RunOutcome::idle || out == sim::RunOutcome::time_limit)
      << sim::run_outcome_name(out) << w.sched.deadlock_report() << w.sched.failure();
  return w.disk.crash_image(mode, rng);
}

TEST(JournalRecovery, ReplaysExactlyTheCommittedTransactions) {
  WorldConfig cfg;
  World w(cfg);
  w.open_fresh();
  Workload load(4);
  Random rng(1);
  auto image = run_until_crash(w, load, 5, Nanos::max(), Mode::drop_unflushed, rng);
  EXPECT_EQ(load.acked, std::vector<uint64_t>(4, 5));
  World after(cfg, std::move(image));
  Result<RecoveryResult> r = after.open_recovering(w.superblock_tail);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stats.transactions_replayed, 20u);
  EXPECT_EQ(r->stats.transactions_dropped, 0u);
  EXPECT_EQ(r->stats.pages_redone, 40u);
  EXPECT_EQ(after.visitor.commits.size(), 20u);
  EXPECT_EQ(after.visitor.records, 40u);  // 20 allocations + 20 commits
  EXPECT_EQ(r->last_committed_lsn, w.journal->durable_lsn());
  EXPECT_EQ(load.check(after), std::vector<std::string>{});
}

// Replay through a cache smaller than the set of pages it redoes: redone
// pages are evicted (written back under the recovery WAL gate) and re-read.
TEST(JournalRecovery, ReplaysThroughACacheSmallerThanTheLog) {
  WorldConfig cfg;
  World w(cfg);
  w.open_fresh();
  Workload load(6);
  Random rng(8);
  auto image = run_until_crash(w, load, 5, Nanos::max(), Mode::drop_unflushed, rng);
  WorldConfig small = cfg;
  small.cache_pages = 3;
  World after(small, std::move(image));
  Result<RecoveryResult> r = after.open_recovering(w.superblock_tail);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stats.transactions_replayed, 30u);
  EXPECT_GT(after.cache.stats().write_backs, 0u);
  EXPECT_EQ(load.check(after), std::vector<std::string>{});
}

TEST(JournalRecovery, TornOrCorruptTailIsDetectedAndNeverApplied) {
  WorldConfig cfg;
  World w(cfg);
  w.open_fresh();
  w.run_task([&] {
    Transaction first;
    ASSERT_TRUE(w.write_test_page(first, 0, 0, 1, true).ok());
    ASSERT_TRUE(w.journal->commit(first).ok());
    // The second transaction spans several blocks; its last block, holding
    // the Commit record, will be damaged.
    Transaction second;
    for (int p = 0; p < 3; ++p) ASSERT_TRUE(w.write_test_page(second, 0 + p, 0, 2, p != 0).ok());
    ASSERT_TRUE(w.journal->commit(second).ok());
  });
  const uint64_t head = w.journal->stats().blocks_written;
  ASSERT_GE(head, 4u);
  Random rng(2);
  for (int damage = 0; damage < 3; ++damage) {
    auto image = w.disk.crash_image(Mode::drop_unflushed, rng);
    const uint64_t last = kRingStart + head - 1;
    const uint64_t middle = kRingStart + 3;
    std::byte* block = image.data() + (damage == 1 ? middle : last) * kMetadataBlockBytes;
    if (damage == 2) {
      std::memset(block, 0, 512);  // torn: the first sector never landed
    } else {
      block[500] ^= std::byte{0x40};  // a flipped bit
    }
    World after(cfg, std::move(image));
    Result<RecoveryResult> r = after.open_recovering(JournalPosition{});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->stats.transactions_replayed, 1u) << damage;
    EXPECT_EQ(r->stats.transactions_dropped, 1u) << damage;
    EXPECT_NE(r->stats.end_reason.find("checksum"), std::string::npos) << r->stats.end_reason;
    after.run_task([&] {
      auto v = after.read_test_page(0);
      ASSERT_TRUE(v.ok());
      EXPECT_EQ(v->second, 1u);
    });
  }
}

// Four transactions committed one after another: four batches. Returns the
// block sequence number each batch starts at (and, last, the head).
std::vector<uint64_t> commit_four_batches(World& w) {
  std::vector<uint64_t> starts{0};
  w.run_task([&] {
    for (uint64_t v = 1; v <= 4; ++v) {
      Transaction txn;
      ASSERT_TRUE(w.write_test_page(txn, 0, 0, v, v == 1).ok());
      ASSERT_TRUE(w.journal->commit(txn).ok());
      starts.push_back(w.journal->stats().blocks_written);
    }
  });
  EXPECT_EQ(w.journal->stats().batches, 4u);
  return starts;
}

// A durable block in the middle of the log that goes bad is not a torn
// tail: later batches of the same session were written after it was
// durable, so stopping there would drop acknowledged commits silently.
TEST(JournalRecovery, CorruptBlockInTheMiddleOfTheLogIsACorruptionError) {
  WorldConfig cfg;
  World w(cfg);
  w.open_fresh();
  const std::vector<uint64_t> starts = commit_four_batches(w);
  Random rng(3);
  auto image = w.disk.crash_image(Mode::drop_unflushed, rng);
  const uint64_t bad = starts[1];  // the first block of the second batch
  image[(kRingStart + bad) * kMetadataBlockBytes + 700] ^= std::byte{0x08};
  World after(cfg, std::move(image));
  Result<RecoveryResult> r = after.open_recovering(JournalPosition{});
  ASSERT_FALSE(r.ok()) << "recovered " << r->stats.transactions_replayed
                       << " transactions and stopped at: " << r->stats.end_reason;
  EXPECT_EQ(r.status().code(), Errc::corruption) << r.status().to_string();
  EXPECT_NE(r.status().message().find("journal block " + std::to_string(bad) + " (metadata block " +
                                      std::to_string(kRingStart + bad) + ")"),
            std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
}

// The batch in flight at the crash may be garbage in every block: recovery
// keeps the prefix, the three batches before it, without an error.
TEST(JournalRecovery, TornLastBatchRecoversThePrefix) {
  WorldConfig cfg;
  World w(cfg);
  w.open_fresh();
  const std::vector<uint64_t> starts = commit_four_batches(w);
  Random rng(4);
  auto image = w.disk.crash_image(Mode::drop_unflushed, rng);
  for (uint64_t seq = starts[3]; seq < starts[4]; ++seq) {
    std::byte* block = image.data() + (kRingStart + seq) * kMetadataBlockBytes;
    for (size_t i = 0; i < kMetadataBlockBytes; ++i) block[i] = std::byte(0xa5 ^ (i * 7));
  }
  World after(cfg, std::move(image));
  Result<RecoveryResult> r = after.open_recovering(JournalPosition{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stats.transactions_replayed, 3u);
  EXPECT_EQ(r->stats.blocks_scanned, starts[3]);
  after.run_task([&] {
    auto v = after.read_test_page(0);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->second, 3u);
  });
}

// The crash sweep: random crash times and crash states (writes kept, dropped
// or torn), three crash/recover cycles per seed, a small ring and cache so
// that checkpoints, evictions and wrapping run concurrently with commits,
// journal writes with FUA on even seeds and write + FLUSH on odd ones.
TEST(JournalRecovery, CrashSweepKeepsAcknowledgedCommitsAndAtomicity) {
  int crashes = 0;
  uint64_t replayed = 0;
  uint64_t dropped = 0;
  uint64_t tail_moves = 0;
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    WorldConfig cfg;
    cfg.seed = seed;
    cfg.ring_blocks = 48;
    cfg.cache_pages = 24;
    cfg.journal.use_fua = seed % 2 == 0;  // odd seeds: write, then FLUSH
    Workload load(8);
    Random rng(seed * 31);
    std::vector<std::byte> image;
    JournalPosition tail;
    for (int cycle = 0; cycle < 3; ++cycle) {
      cfg.seed = seed * 10 + cycle;
      World w(cfg, std::move(image));
      if (cycle == 0) {
        w.open_fresh();
      } else {
        Result<RecoveryResult> r = w.open_recovering(tail);
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        replayed += r->stats.transactions_replayed;
        dropped += r->stats.transactions_dropped;
        const auto problems = load.check(w);
        ASSERT_EQ(problems, std::vector<std::string>{}) << "seed " << seed << " cycle " << cycle;
      }
      const Nanos crash_at = w.sched.now() + Nanos(rng.range(50'000, 2'000'000));
      image = run_until_crash(w, load, 40, crash_at, Mode::random, rng);
      tail = w.superblock_tail;
      tail_moves += w.checkpointer->stats().tail_moves;
      ++crashes;
    }
    World last(cfg, std::move(image));
    Result<RecoveryResult> r = last.open_recovering(tail);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(load.check(last), std::vector<std::string>{}) << "seed " << seed;
  }
  // The sweep is not vacuous: it replayed, met torn batches, and crashed
  // around checkpoints that moved the tail.
  EXPECT_EQ(crashes, 72);
  EXPECT_GT(replayed, 100u);
  EXPECT_GT(dropped, 0u);
  EXPECT_GT(tail_moves, 20u);
  std::printf(
      "[sweep] 72 crashes: %llu transactions replayed, %llu torn transactions dropped, "
      "%llu tail moves\n",
      (unsigned long long)replayed, (unsigned long long)dropped, (unsigned long long)tail_moves);
}

// With the durability of commits deliberately broken (journal writes with
// neither FUA nor FLUSH), a crash that drops unflushed writes loses
// acknowledged commits, and the checker says so: it can fail.
TEST(JournalRecovery, BrokenCommitLosesAcknowledgedCommitsAndTheCheckerCatchesIt) {
  for (bool broken : {false, true}) {
    WorldConfig cfg;
    cfg.ring_blocks = 512;
    cfg.journal.unsafe_skip_durability = broken;
    World w(cfg);
    w.open_fresh();
    Workload load(4);
    Random rng(9);
    auto image = run_until_crash(w, load, 4, Nanos::max(), Mode::drop_unflushed, rng);
    ASSERT_EQ(load.acked, std::vector<uint64_t>(4, 4));
    World after(cfg, std::move(image));
    Result<RecoveryResult> r = after.open_recovering(w.superblock_tail);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    const auto problems = load.check(after);
    if (broken) {
      EXPECT_FALSE(problems.empty()) << "the checker missed lost acknowledged commits";
      EXPECT_EQ(r->stats.transactions_replayed, 0u);
    } else {
      EXPECT_EQ(problems, std::vector<std::string>{});
    }
  }
}

// Replay twice (a crash during or right after recovery) gives the same pages:
// page LSNs make replay idempotent, including after a checkpoint wrote some
// of the replayed pages back.
TEST(JournalRecovery, ReplayIsIdempotent) {
  WorldConfig cfg;
  World w(cfg);
  w.open_fresh();
  Workload load(4);
  Random rng(4);
  auto image = run_until_crash(w, load, 6, Nanos::max(), Mode::drop_unflushed, rng);
  const JournalPosition tail = w.superblock_tail;
  std::vector<std::byte> second_image;
  {
    World once(cfg, image);
    ASSERT_TRUE(once.open_recovering(tail).ok());
    // Write back half the replayed pages (as a checkpoint would) but crash
    // before the superblock moves.
    once.run_task([&] { ASSERT_TRUE(once.cache.write_back_durable().ok()); });
    second_image = once.disk.crash_image(Mode::random, rng);
  }
  World twice(cfg, std::move(second_image));
  Result<RecoveryResult> r = twice.open_recovering(tail);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stats.transactions_replayed, 24u);
  EXPECT_EQ(load.check(twice), std::vector<std::string>{});
}

// A page write-back torn by the crash, with older partial records of the
// page still in the log after the tail: recovery skips them and rebuilds the
// page from the full image that began its last dirty period.
TEST(JournalRecovery, TornPageWriteBackIsRebuiltFromItsFullImage) {
  WorldConfig cfg;
  World w(cfg);
  w.open_fresh();
  JournalPosition old_tail;
  w.run_task([&] {
    Transaction first;  // a full image of page 0
    ASSERT_TRUE(w.write_test_page(first, 0, 0, 1, true).ok());
    ASSERT_TRUE(w.journal->commit(first).ok());
    old_tail = w.journal->position_for(w.journal->last_assigned_lsn() + 1);
    Transaction second;  // a partial write of the page, now dirty
    ASSERT_TRUE(w.write_test_page(second, 0, 0, 2, false, 100).ok());
    ASSERT_TRUE(w.journal->commit(second).ok());
    ASSERT_EQ(w.cache.write_back_durable().value(), 1u);
    ASSERT_TRUE(w.cache.flush_device().ok());
    Transaction third;  // the page is clean: this partial write is logged whole
    ASSERT_TRUE(w.write_test_page(third, 0, 0, 3, false, 100).ok());
    ASSERT_TRUE(w.journal->commit(third).ok());
    EXPECT_EQ(w.journal->stats().full_page_images, 2u);
    ASSERT_EQ(w.cache.write_back_durable().value(), 1u);  // not flushed: the crash tears it
  });
  Random rng(6);
  auto image = w.disk.crash_image(Mode::keep_unflushed, rng);
  std::memset(image.data() + kPageBase * kMetadataBlockBytes + 512, 0, 512);
  // An older tail than the checkpoint would pick is always allowed: replay
  // is idempotent.
  World after(cfg, std::move(image));
  Result<RecoveryResult> r = after.open_recovering(old_tail);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stats.transactions_replayed, 2u);
  after.run_task([&] {
    auto v = after.read_test_page(0, 100);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    EXPECT_EQ(v->second, 3u);
  });
}

// The time to open a pool whose journal is full: fill a 1024-block ring with
// transactions that each rewrite four whole pages (no checkpoint), crash, and
// recover. Prints virtual and wall time; asserts only the replay counts.
TEST(JournalRecovery, MeasureOpeningAFullJournal) {
  WorldConfig cfg;
  cfg.ring_blocks = 1024;
  cfg.cache_pages = 512;
  cfg.reclaim_with_checkpoints = false;
  cfg.journal.max_transaction_blocks = 16;
  World w(cfg);
  w.open_fresh();
  uint64_t txns = 0;
  w.run_task([&] {
    for (uint64_t i = 0;; ++i) {
      if (w.journal->used_blocks() + 12 > cfg.ring_blocks) break;
      Transaction txn;
      for (uint64_t p = 0; p < 4; ++p) {
        const uint64_t page = (i * 4 + p) % 400;
        ASSERT_TRUE(w.write_test_page(txn, page, page, i, i * 4 + p < 400).ok());
      }
      ASSERT_TRUE(w.journal->commit(txn).ok());
      ++txns;
    }
  });
  Random rng(5);
  World after(cfg, w.disk.crash_image(Mode::drop_unflushed, rng));
  const auto wall0 = std::chrono::steady_clock::now();
  const Nanos virt0 = after.sched.now();
  Result<RecoveryResult> r = after.open_recovering(JournalPosition{});
  const auto wall = std::chrono::steady_clock::now() - wall0;
  const Nanos virt = after.sched.now() - virt0;
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stats.transactions_replayed, txns);
  EXPECT_EQ(r->stats.pages_redone, txns * 4);
  Nanos checkpoint_virt{0};
  after.run_task([&] {
    const Nanos t0 = after.sched.now();
    ASSERT_TRUE(after.checkpointer->checkpoint().ok());
    checkpoint_virt = after.sched.now() - t0;
  });
  EXPECT_EQ(after.journal->used_blocks(), 0u);
  std::printf(
      "[measure] full journal open: %llu blocks (%llu of %llu used), %llu transactions, "
      "%llu page redos over 400 pages, %llu journal reads; recovery %.2f ms virtual, "
      "%.2f ms wall; first checkpoint %.2f ms virtual\n",
      (unsigned long long)r->stats.blocks_scanned, (unsigned long long)w.journal->used_blocks(),
      (unsigned long long)cfg.ring_blocks, (unsigned long long)txns,
      (unsigned long long)r->stats.pages_redone, (unsigned long long)r->stats.reads,
      virt.count() / 1e6, std::chrono::duration<double, std::milli>(wall).count(),
      checkpoint_virt.count() / 1e6);
}

}  // namespace
}  // namespace thinp::journal::testing
