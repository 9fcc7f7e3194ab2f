// Test harness for the journal tests: a simulated world (scheduler, crash
// test disk, block cache, journal, checkpointer) that can crash and reopen.
//
// The superblock is modelled as a variable that is durable as soon as
// persist_tail sets it (as if written with FUA); the checkpointer has
// flushed the page write-backs before it calls persist_tail.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/cache/block_cache.h"
#include "engine/journal/checkpoint.h"
#include "engine/journal/crash_test_disk.h"
#include "engine/journal/journal.h"
#include "engine/journal/recovery.h"
#include "sim/scheduler.h"

namespace thinp::journal::testing {

using thinp::testing::CrashTestDisk;

inline constexpr uint64_t kRingStart = 8;
inline constexpr uint64_t kPageBase = 2048;  // test pages live at kPageBase + i
inline constexpr uint64_t kDeviceBlocks = 3072;

struct WorldConfig {
  uint64_t seed = 1;
  uint64_t ring_blocks = 256;
  size_t cache_pages = 256;
  JournalOptions journal;
  bool reclaim_with_checkpoints = true;
};

// Remembers every committed logical record replayed by recovery.
class RecordingVisitor final : public RecordVisitor {
 public:
  Status apply(const Record& record, Lsn lsn) override {
    if (const auto* c = std::get_if<Commit>(&record)) commits.push_back(c->txn);
    ++records;
    last_lsn = lsn;
    return ok_status();
  }
  std::vector<uint64_t> commits;
  uint64_t records = 0;
  Lsn last_lsn;
};

class World {
 public:
  // A fresh world (empty journal) over `image` (zeros if empty).
  explicit World(WorldConfig config, std::vector<std::byte> image = {})
      : config_(config),
        sched(config.seed),
        disk(
            sched,
            [this](Nanos d, std::function<void()> f) { sched.schedule_after(d, std::move(f)); },
            kDeviceBlocks * kMetadataBlockBytes, config.seed * 7919 + 1, std::move(image)),
        cache(sched, disk, cache::BlockCacheOptions{config.cache_pages, 32}) {}

  ~World() { sched.kill_all_tasks(); }

  RingGeometry ring() const { return RingGeometry{MBlock(kRingStart), config_.ring_blocks}; }

  // Opens the journal: fresh, or by recovering from `tail`. Runs the
  // scheduler until recovery is done.
  void open_fresh() { start_journal(JournalResume{}); }

  // Goes through what the superblock keeps, (block, LSN), and locate_tail(),
  // as a real open does. The located position may lie laps ahead of `tail`
  // when the log is empty there (never behind).
  Result<RecoveryResult> open_recovering(JournalPosition tail) {
    superblock_tail = tail;
    std::optional<Result<RecoveryResult>> out;
    sched.spawn("recover", [&] {
      Result<JournalPosition> located =
          locate_tail(disk, ring(), ring().location_of(tail.seq), tail.lsn);
      if (!located.ok()) {
        out = located.status();
        return;
      }
      EXPECT_GE(located->seq, tail.seq);
      EXPECT_EQ(located->seq % ring().length_blocks, tail.seq % ring().length_blocks);
      out = recover(disk, ring(), cache, *located, visitor);
    });
    EXPECT_EQ(sched.run(), sim::RunOutcome::idle) << sched.deadlock_report() << sched.failure();
    if (!out.has_value()) return Status(Errc::aborted, "recovery did not finish");
    if (out->ok()) start_journal(out->value().resume);
    return *out;
  }

  // Runs `body` as a task and the scheduler to idle.
  void run_task(std::function<void()> body) {
    sched.spawn("test", std::move(body));
    EXPECT_EQ(sched.run(), sim::RunOutcome::idle) << sched.deadlock_report() << sched.failure();
  }

  // Test pages: payload = [u64 tag][u64 value] then 4048 bytes of a pattern
  // derived from both, so that a torn or mixed page is recognisable.
  static std::vector<std::byte> page_content(uint64_t tag, uint64_t value, size_t bytes = 4064) {
    std::vector<std::byte> b(bytes);
    uint64_t x = tag * 0x9e3779b97f4a7c15ULL ^ value;
    for (size_t i = 0; i < bytes; ++i) {
      if (i % 8 == 0) x = splitmix64(x);
      b[i] = std::byte(x >> (8 * (i % 8)));
    }
    if (bytes >= 16) {
      put_u64(b, 0, tag);
      put_u64(b, 8, value);
    }
    return b;
  }

  // Adds a write of page kPageBase + index holding (tag, value) to `txn`.
  // Task only. `fresh` pins a new page (first write).
  Status write_test_page(Transaction& txn, uint64_t index, uint64_t tag, uint64_t value, bool fresh,
                         size_t bytes = 4064) {
    const MBlock block(kPageBase + index);
    Result<cache::PageRef> page =
        fresh ? cache.pin_new(block, BlockType::test_page) : cache.pin(block, BlockType::test_page);
    if (!page.ok()) return page.status();
    txn.write_page(*page, 0, page_content(tag, value, bytes), fresh);
    return ok_status();
  }

  // Reads page kPageBase + index: its (tag, value), or an error if the page
  // does not verify or its pattern is not intact. Task only.
  Result<std::pair<uint64_t, uint64_t>> read_test_page(uint64_t index, size_t bytes = 4064) {
    TP_ASSIGN_OR_RETURN(cache::PageRef page,
                        cache.pin(MBlock(kPageBase + index), BlockType::test_page));
    auto payload = page.payload();
    const uint64_t tag = get_u64(payload, 0);
    const uint64_t value = get_u64(payload, 8);
    const auto expect = page_content(tag, value, bytes);
    if (!std::equal(expect.begin(), expect.end(), payload.begin())) {
      return Status(Errc::corruption, "page " + std::to_string(index) + " is mixed");
    }
    return std::make_pair(tag, value);
  }

  WorldConfig config_;
  sim::Scheduler sched;
  CrashTestDisk disk;
  cache::BlockCache cache;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Checkpointer> checkpointer;
  JournalPosition superblock_tail;
  RecordingVisitor visitor;

 private:
  void start_journal(const JournalResume& resume) {
    journal = std::make_unique<Journal>(sched, disk, ring(), cache, config_.journal, resume);
    checkpointer =
        std::make_unique<Checkpointer>(sched, *journal, cache, [this](const JournalPosition& tail) {
          superblock_tail = tail;
          return ok_status();
        });
    if (config_.reclaim_with_checkpoints) checkpointer->install_as_space_reclaimer();
  }
};

}  // namespace thinp::journal::testing
