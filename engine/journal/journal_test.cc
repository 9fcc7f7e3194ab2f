#include "engine/journal/journal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "engine/journal/journal_test_world.h"

namespace thinp::journal::testing {
namespace {

using namespace std::chrono_literals;
using Mode = CrashTestDisk::CrashMode;

// The LSNs of the Commit records a crash right now would keep (no wrap: the
// ring is read from its first block).
std::set<Lsn> durable_commit_lsns(World& w) {
  const auto ring = w.disk.durable_bytes(kRingStart * kMetadataBlockBytes,
                                         w.ring().length_blocks * kMetadataBlockBytes);
  std::vector<std::pair<Lsn, Record>> records;
  (void)decode_journal_image(ring, MBlock(kRingStart),
                             &records);  // stops at the first unwritten block
  std::set<Lsn> out;
  for (const auto& [lsn, r] : records) {
    if (std::holds_alternative<Commit>(r)) out.insert(lsn);
  }
  return out;
}

uint64_t ring_writes(const World& w) {
  return w.disk.count(IoOp::write, kRingStart * kMetadataBlockBytes,
                      (kRingStart + w.ring().length_blocks) * kMetadataBlockBytes);
}

TEST(Journal, CommitIsDurableOnReturnAndReachesTheCacheWithItsLsn) {
  World w(WorldConfig{});
  w.open_fresh();
  w.run_task([&] {
    Transaction txn;
    ASSERT_TRUE(w.write_test_page(txn, 0, 1, 1, true).ok());
    txn.add(DataRangeAlloc{DBlock(10), 4, ThinId(1)});
    Result<Lsn> lsn = w.journal->commit(txn);
    ASSERT_TRUE(lsn.ok()) << lsn.status().to_string();
    EXPECT_EQ(*lsn, Lsn(3));  // page write 1, alloc 2, commit 3
    EXPECT_EQ(w.journal->durable_lsn(), Lsn(3));
    EXPECT_TRUE(durable_commit_lsns(w).count(Lsn(3)));
    cache::PageRef page = w.cache.pin(MBlock(kPageBase), BlockType::test_page).value();
    EXPECT_TRUE(page.dirty());
    EXPECT_EQ(page.page_lsn(), Lsn(1));
    EXPECT_EQ(ring_writes(w), 1u);
    EXPECT_EQ(w.disk.trace.back().fua, true);
  });
}

// However much metadata a transaction dirties, its commit costs one journal
// write (a single multi-block FUA write) and no page write.
// stage() applies in memory and returns without writing; make_durable()
// then writes the batch. Two staged transactions share one journal write.
TEST(Journal, StageAppliesWithoutWritingAndMakeDurableWritesOneBatch) {
  World w(WorldConfig{});
  w.open_fresh();
  w.run_task([&] {
    Transaction a;
    ASSERT_TRUE(w.write_test_page(a, 0, 1, 1, true).ok());
    Result<Lsn> first = w.journal->stage(a);
    ASSERT_TRUE(first.ok()) << first.status().to_string();
    EXPECT_EQ(*first, Lsn(2));  // page write 1, commit 2
    Transaction b;
    b.add(DataRangeAlloc{DBlock(10), 4, ThinId(1)});
    Result<Lsn> second = w.journal->stage(b);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(*second, Lsn(4));
    EXPECT_EQ(w.journal->durable_lsn(), Lsn(0));
    EXPECT_EQ(ring_writes(w), 0u);
    cache::PageRef page = w.cache.pin(MBlock(kPageBase), BlockType::test_page).value();
    EXPECT_EQ(page.page_lsn(), Lsn(1));  // in the cache already
    page.reset();
    ASSERT_TRUE(w.journal->make_durable(*second).ok());
    EXPECT_EQ(w.journal->durable_lsn(), Lsn(4));
    EXPECT_EQ(ring_writes(w), 1u);
    EXPECT_TRUE(durable_commit_lsns(w).count(Lsn(2)));
    EXPECT_TRUE(durable_commit_lsns(w).count(Lsn(4)));
  });
}

TEST(Journal, OneJournalWritePerCommitHoweverManyPagesAreDirty) {
  WorldConfig cfg;
  cfg.ring_blocks = 512;
  World w(cfg);
  w.open_fresh();
  w.run_task([&] {
    for (int round = 0; round < 3; ++round) {
      const uint64_t writes_before = w.disk.count(IoOp::write);
      Transaction txn;
      for (int p = 0; p < 24; ++p) {
        ASSERT_TRUE(w.write_test_page(txn, p, p, round, round == 0, round == 0 ? 4064 : 100).ok());
      }
      txn.add(DataRangeRefDelta{DBlock(100), 1u << 20, 1});
      ASSERT_TRUE(w.journal->commit(txn).ok());
      EXPECT_EQ(w.disk.count(IoOp::write) - writes_before, 1u) << "round " << round;
    }
    EXPECT_EQ(w.disk.count(IoOp::flush), 0u);
    EXPECT_EQ(w.cache.dirty_pages(), 24u);
    // The first round logged whole pages; later rounds, on pages already
    // dirty, only the changed bytes.
    EXPECT_EQ(w.journal->stats().full_page_images, 24u);
  });
}

// N committers at once, each transaction dirtying several pages: far fewer
// journal writes than commits, and each committer returns only once its
// Commit record is durable (checked against what a crash at that instant
// would keep). `txns_each` > 1 is a sustained load with think time.
void run_concurrent_committers(bool use_fua, int committers, int pages_each, int txns_each) {
  WorldConfig cfg;
  cfg.ring_blocks = 1536;
  cfg.cache_pages = 512;
  cfg.journal.use_fua = use_fua;
  World w(cfg);
  w.open_fresh();
  int durable_on_return = 0;
  for (int t = 0; t < committers; ++t) {
    w.sched.spawn("committer", [&, t] {
      for (int i = 0; i < txns_each; ++i) {
        w.sched.sleep(Nanos(w.sched.random().uniform(i == 0 ? 5000 : 40000)));
        Transaction txn;
        for (int p = 0; p < pages_each; ++p) {
          ASSERT_TRUE(w.write_test_page(txn, t * pages_each + p, t, i, i == 0, 512).ok());
        }
        Result<Lsn> lsn = w.journal->commit(txn);
        ASSERT_TRUE(lsn.ok()) << lsn.status().to_string();
        if (durable_commit_lsns(w).count(*lsn)) ++durable_on_return;
      }
    });
  }
  ASSERT_EQ(w.sched.run(), sim::RunOutcome::idle) << w.sched.deadlock_report() << w.sched.failure();
  const uint64_t commits = uint64_t(committers) * txns_each;
  EXPECT_EQ(durable_on_return, int(commits));
  const JournalStats& s = w.journal->stats();
  EXPECT_EQ(s.commits, commits);
  EXPECT_LE(s.batches * 4, commits) << "commits did not batch";
  EXPECT_EQ(ring_writes(w), s.journal_writes);
  EXPECT_EQ(w.disk.count(IoOp::flush), use_fua ? 0 : s.batches);
  // No page was written back: write-back is lazy (checkpoint).
  EXPECT_EQ(w.disk.count(IoOp::write, kPageBase * kMetadataBlockBytes), 0u);
  std::printf(
      "[measure] %d committers x %d txns x %d pages (%s): %llu commits in %llu batches, "
      "%llu journal writes, %llu flushes, %.3f metadata IOs per commit, %.2f blocks "
      "per commit, largest batch %llu commits, virtual time %.1f us\n",
      committers, txns_each, pages_each, use_fua ? "FUA" : "write+FLUSH",
      (unsigned long long)commits, (unsigned long long)s.batches,
      (unsigned long long)s.journal_writes, (unsigned long long)w.disk.count(IoOp::flush),
      double(s.journal_writes + w.disk.count(IoOp::flush)) / double(commits),
      double(s.blocks_written) / double(commits), (unsigned long long)s.largest_batch_commits,
      w.sched.now().count() / 1000.0);
}

TEST(Journal, GroupCommitBatchesConcurrentCommittersWithFua) {
  run_concurrent_committers(true, 32, 6, 1);
}

TEST(Journal, GroupCommitBatchesConcurrentCommittersWithWriteThenFlush) {
  run_concurrent_committers(false, 32, 6, 1);
}

TEST(Journal, GroupCommitUnderSustainedConcurrentLoad) {
  run_concurrent_committers(true, 32, 6, 10);
}

TEST(Journal, RingWrapsThroughCheckpointsAndRecoversAfterWrapping) {
  WorldConfig cfg;
  cfg.ring_blocks = 8;  // the smallest ring the layout makes
  World w(cfg);
  w.open_fresh();
  constexpr int kTxns = 200;
  w.run_task([&] {
    for (int i = 0; i < kTxns; ++i) {
      Transaction txn;
      ASSERT_TRUE(w.write_test_page(txn, i % 5, i % 5, i, i < 5).ok());
      ASSERT_TRUE(w.journal->commit(txn).ok());
    }
  });
  // About 2 blocks per transaction through an 8-block ring: many laps.
  EXPECT_GT(w.journal->stats().blocks_written, 20 * cfg.ring_blocks);
  EXPECT_GT(w.checkpointer->stats().tail_moves, 10u);
  EXPECT_GT(w.journal->stats().space_waits, 0u);
  EXPECT_LE(w.journal->used_blocks(), cfg.ring_blocks);
  EXPECT_GT(w.superblock_tail.seq, cfg.ring_blocks);

  Random rng(3);
  World after(cfg, w.disk.crash_image(Mode::drop_unflushed, rng));
  // The superblock keeps (block, LSN); the sequence number comes back from
  // the ring.
  after.run_task([&] {
    Result<JournalPosition> located =
        locate_tail(after.disk, after.ring(), after.ring().location_of(w.superblock_tail.seq),
                    w.superblock_tail.lsn);
    ASSERT_TRUE(located.ok()) << located.status().to_string();
    EXPECT_EQ(*located, w.superblock_tail);
    EXPECT_EQ(locate_tail(after.disk, after.ring(), MBlock(kRingStart + cfg.ring_blocks), Lsn(5))
                  .status()
                  .code(),
              Errc::corruption);
  });
  Result<RecoveryResult> r = after.open_recovering(w.superblock_tail);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->last_committed_lsn, w.journal->durable_lsn());
  after.run_task([&] {
    for (int p = 0; p < 5; ++p) {
      auto v = after.read_test_page(p);
      ASSERT_TRUE(v.ok()) << v.status().to_string();
      EXPECT_EQ(v->second, uint64_t(kTxns - 5 + p));
    }
  });
}

TEST(Journal, RecordApplierSeesLogicalRecordsInLsnOrderBeforeCommitReturns) {
  World w(WorldConfig{});
  w.open_fresh();
  std::vector<Lsn> applied;
  uint64_t commits_seen = 0;
  w.journal->set_record_applier([&](const Record& r, Lsn lsn) {
    if (!applied.empty()) {
      EXPECT_GT(lsn, applied.back());
    }
    EXPECT_GT(lsn, w.journal->durable_lsn());  // applied before it is durable
    applied.push_back(lsn);
    commits_seen += std::holds_alternative<Commit>(r) ? 1 : 0;
  });
  for (int t = 0; t < 16; ++t) {
    w.sched.spawn("committer", [&, t] {
      for (int i = 0; i < 5; ++i) {
        w.sched.sleep(Nanos(w.sched.random().uniform(30000)));
        Transaction txn;
        ASSERT_TRUE(w.write_test_page(txn, t, t, i, i == 0, 64).ok());
        txn.add(DataRangeAlloc{DBlock(uint64_t(t) * 100 + i), 1, ThinId(t)});
        const size_t before = applied.size();
        Result<Lsn> lsn = w.journal->commit(txn);
        ASSERT_TRUE(lsn.ok());
        EXPECT_GE(applied.size(), before + 2);
        EXPECT_NE(std::find(applied.begin(), applied.end(), *lsn), applied.end());
      }
    });
  }
  ASSERT_EQ(w.sched.run(), sim::RunOutcome::idle) << w.sched.deadlock_report();
  EXPECT_EQ(applied.size(), 160u);
  EXPECT_EQ(commits_seen, 80u);
}

// A structure outside the cache that still needs an old record keeps the
// tail there; once it has written its pages the tail moves on.
class HoldingParticipant final : public CheckpointParticipant {
 public:
  Status write_pages(Lsn durable) override {
    last_durable = durable;
    return ok_status();
  }
  void pages_durable() override { ++durable_calls; }
  std::optional<Lsn> oldest_needed_lsn() const override { return hold; }
  std::optional<Lsn> hold;
  Lsn last_durable;
  int durable_calls = 0;
};

TEST(Journal, CheckpointParticipantHoldsTheTail) {
  World w(WorldConfig{});
  w.open_fresh();
  HoldingParticipant participant;
  participant.hold = Lsn(3);
  Checkpointer checkpointer(w.sched, *w.journal, w.cache,
                            [&](const JournalPosition& tail) {
                              w.superblock_tail = tail;
                              return ok_status();
                            },
                            {&participant});
  w.run_task([&] {
    std::vector<JournalPosition> starts;
    for (int i = 0; i < 4; ++i) {
      starts.push_back(w.journal->position_for(w.journal->last_assigned_lsn() + 1));
      Transaction txn;
      txn.add(MetaRefDelta{MBlock(100 + i), 1});
      ASSERT_TRUE(w.journal->commit(txn).ok());  // LSNs 2i+1, 2i+2
    }
    Result<JournalPosition> tail = checkpointer.checkpoint();
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(*tail, starts[1]);  // the batch holding LSN 3
    EXPECT_EQ(participant.last_durable, Lsn(8));
    EXPECT_EQ(participant.durable_calls, 1);
    participant.hold.reset();
    tail = checkpointer.checkpoint();
    ASSERT_TRUE(tail.ok());
    EXPECT_EQ(tail->lsn, Lsn(9));
    EXPECT_EQ(w.journal->used_blocks(), 0u);
    EXPECT_EQ(w.superblock_tail, *tail);
  });
}

TEST(Journal, WriteErrorFailsTheJournalAndNothingIsAcknowledged) {
  World w(WorldConfig{});
  w.open_fresh();
  w.run_task([&] {
    Transaction first;
    ASSERT_TRUE(w.write_test_page(first, 0, 0, 1, true).ok());
    ASSERT_TRUE(w.journal->commit(first).ok());
    w.disk.fail_writes = 1;
    Transaction second;
    ASSERT_TRUE(w.write_test_page(second, 0, 0, 2, false).ok());
    Result<Lsn> failed = w.journal->commit(second);
    EXPECT_EQ(failed.status().code(), Errc::io_error);
    Transaction third;
    third.add(DataRangeAlloc{DBlock(1), 1, ThinId(1)});
    EXPECT_EQ(w.journal->commit(third).status().code(), Errc::io_error);
    EXPECT_EQ(w.journal->durable_lsn(), Lsn(2));
  });
}

TEST(Journal, OversizedTransactionIsRejected) {
  WorldConfig cfg;
  cfg.ring_blocks = 16;  // transactions up to 8 blocks
  World w(cfg);
  w.open_fresh();
  w.run_task([&] {
    Transaction txn;
    for (int p = 0; p < 9; ++p) ASSERT_TRUE(w.write_test_page(txn, p, p, 1, true).ok());
    EXPECT_EQ(w.journal->commit(txn).status().code(), Errc::invalid_argument);
    Transaction small;
    ASSERT_TRUE(w.write_test_page(small, 0, 0, 1, true).ok());
    EXPECT_TRUE(w.journal->commit(small).ok());
  });
}

}  // namespace
}  // namespace thinp::journal::testing
