// Journal: the redo log of metadata changes, a ring of journal blocks with
// group commit.
//
// Transactions. A caller collects its changes in a Transaction (page writes
// on pinned cache pages, and logical records for the space maps and device
// details) and calls commit(). commit() gives the records consecutive LSNs,
// appends them and a Commit record to the in-memory tail, applies the page
// writes to the cache (dirty, page LSN = the record's LSN: no uncommitted
// change ever reaches the cache), and suspends the calling task until the
// batch holding its Commit record is durable. A transaction's records are
// contiguous in the log, so recovery needs no transaction ids to group them.
//
// Group commit. No task writes the log on a timer: the first committer that
// finds no journal write in flight becomes the leader, takes every record
// staged so far (its own and everybody else's) as one batch, writes it and
// wakes every committer whose Commit record it held. Commits that arrive
// while a batch is in flight form the next batch. One batch is one write with
// FUA (two if it wraps the ring end), or with use_fua = false the same writes
// followed by one FLUSH. A batch always starts a fresh block, so a durable
// block is never rewritten: a torn batch can only lose records that nobody
// was told were durable.
//
// Torn batches. The blocks of a batch are written at once and may land in
// any order; recovery accepts block n+1 only if block n verified and n+1
// chains to it (seq, LSN continuity, prev_crc), so a Commit record counts
// only if every block before it in the log verified.
//
// Sessions. Each Journal draws a random session id that its blocks carry.
// After a crash, blocks of the crashed session may survive past the end
// recovery found; the new session writes over them starting at that end, its
// first block chained to the last accepted one, so a surviving stale block
// never chains to new ones, and recovery drops a transaction left open when
// the session changes.
//
// Torn pages. The first record that makes a clean page dirty is logged as a
// full-page image, whatever the caller changed, so that a page write-back
// torn by a crash can always be rebuilt by recovery (details in journal.cc).
//
// Space. A commit reserves a bound on the blocks it will take before it gets
// LSNs. When the ring is full it waits: the first waiter runs the space
// reclaimer (normally Checkpointer::checkpoint, see checkpoint.h), the others
// wait for it. The reclaimer needs no journal space, so it can always run.
//
// Failure. A failed journal write leaves the log in an unknown state: the
// journal fails, every waiting and later commit returns the error, and the
// pool must stop writing metadata (read-only or failed).
//
// Tasks. commit(), make_durable() and reserve waits are task only. The
// journal mutex is held only between suspension points, never across IO.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/cache/block_cache.h"
#include "engine/io/block_device.h"
#include "engine/journal/record.h"
#include "engine/journal/record_codec.h"
#include "engine/runtime/sync.h"

namespace thinp::journal {

// A position in the log: an absolute block sequence number (ring slot =
// seq % length) and the LSN of the first record that starts there. The
// superblock stores the tail as one of these.
struct JournalPosition {
  uint64_t seq = 0;
  Lsn lsn{1};
  bool operator==(const JournalPosition&) const = default;
};

// Where an opened journal continues: a fresh one, or what recover() found.
struct JournalResume {
  JournalPosition tail;   // oldest block still needed (from the superblock)
  uint64_t head_seq = 0;  // next block to write
  Lsn next_lsn{1};        // next LSN to hand out
  uint32_t prev_crc = 0;  // checksum of the block before head_seq
  uint64_t last_session = 0;
  uint64_t next_txn = 1;
};

struct JournalOptions {
  bool use_fua = true;  // false: plain writes, then one FLUSH per batch
  // TEST ONLY: acknowledge commits after plain writes, with neither FUA nor
  // FLUSH. Exists so that crash tests can show their checker catches lost
  // acknowledged commits. Never set it outside tests.
  bool unsafe_skip_durability = false;
  // The largest transaction, in blocks (of the bound commit() reserves: a
  // transaction writing one page needs 3); 0 means half the ring.
  uint64_t max_transaction_blocks = 0;
};

struct JournalStats {
  uint64_t commits = 0;
  uint64_t batches = 0;
  uint64_t journal_writes = 0;   // write IOs to the ring
  uint64_t journal_flushes = 0;  // FLUSHes issued by the journal
  uint64_t blocks_written = 0;
  uint64_t records = 0;
  uint64_t space_waits = 0;  // commits that found the ring full
  uint64_t reclaims = 0;     // reclaimer runs
  uint64_t largest_batch_commits = 0;
  uint64_t full_page_images = 0;  // PageWrites widened to the whole page (see commit())
};

// The changes of one transaction, collected before commit. Holds a pin on
// every page it writes until commit (or until it is destroyed uncommitted,
// which discards it: nothing reached the cache or the log).
class Transaction {
 public:
  Transaction() = default;
  Transaction(Transaction&&) = default;
  Transaction& operator=(Transaction&&) = default;

  // Records that payload bytes [offset, offset + bytes.size()) of `page`
  // become `bytes`. With `init`, the rest of the payload becomes zero (a
  // freshly allocated page). The change reaches the cached page at commit.
  void write_page(const cache::PageRef& page, uint16_t offset, std::span<const std::byte> bytes,
                  bool init = false);

  // A logical record (not PageWrite, not Commit).
  void add(Record record);

  size_t record_count() const { return records_.size(); }

 private:
  friend class Journal;
  std::vector<Record> records_;
  std::vector<cache::PageRef> pages_;  // parallel to records_: a pin per PageWrite
};

class Journal final : public cache::WalGate {
 public:
  // The ring is `ring` on `device`; `cache` caches pages of the same device
  // and gets this journal as its WAL gate. Nothing is read or written here.
  Journal(Runtime& rt, BlockDevice& device, RingGeometry ring, cache::BlockCache& cache,
          JournalOptions options, const JournalResume& resume);
  ~Journal() override;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Commits `txn` (left empty afterwards) and returns the LSN of its Commit
  // record once that is durable. On failure (IO error, journal failed, a
  // transaction larger than max_transaction_blocks: invalid_argument)
  // nothing is acknowledged; after an IO error the records may or may not be
  // found by recovery. Task only.
  Result<Lsn> commit(Transaction& txn);
  // commit() in two steps, for a caller that holds a lock of its own while
  // staging and must release it before waiting: stage() does everything up
  // to the wait (it may suspend only while reserving ring space, before any
  // change is applied) and returns the Commit record's LSN, which is then in
  // memory (pages in the cache, records through the applier) but not yet
  // durable; make_durable(lsn) waits for it. On a stage() error nothing was
  // applied. Task only.
  Result<Lsn> stage(Transaction& txn);

  // WalGate.
  Lsn durable_lsn() const override { return durable_lsn_; }
  Status make_durable(Lsn lsn) override;

  // The LSN of the last record given out (durable or not).
  Lsn last_assigned_lsn() const { return next_lsn_ - 1; }

  // Called by commit() for every record of a transaction that is not a
  // PageWrite (its Commit record included), in LSN order, at the record's
  // LSN, inside the section of commit() that never suspends (LSNs handed
  // out, page writes applied to the cache). This is where logical structures
  // (the space maps, the device details) apply their records, so that they
  // see records in LSN order however committers interleave. It must not
  // suspend and cannot fail: a transaction decides before it commits. Runs
  // before the records are durable; write-back of the state it changes must
  // wait for durability like any page (checkpoint.h, CheckpointParticipant).
  using RecordApplier = std::function<void(const Record& record, Lsn lsn)>;
  void set_record_applier(RecordApplier applier) { applier_ = std::move(applier); }

  // --- For the checkpointer ---
  // The runs when the ring is full and a commit must wait; see Space above.
  void set_space_reclaimer(std::function<Status()> reclaimer) { reclaimer_ = std::move(reclaimer); }
  // The earliest log position from which replay covers every record with an
  // LSN >= oldest_needed. Never suspends.
  JournalPosition position_for(Lsn oldest_needed) const;
  // Frees the ring up to `tail`, which the superblock now names durably.
  void release_to(JournalPosition tail);
  JournalPosition tail() const { return tail_; }
  uint64_t used_blocks() const { return head_seq_ + reserved_blocks_ - tail_.seq; }
  uint64_t capacity_blocks() const { return ring_.length_blocks; }

  const Status& failure() const { return failed_; }
  const JournalStats& stats() const { return stats_; }
  const RingGeometry& ring() const { return ring_; }

 private:
  struct Staged {  // one committed-but-not-yet-written transaction
    std::vector<std::byte> encoded;
    std::vector<uint32_t> ends;
    Lsn first;
    Lsn last;
    uint64_t reserved_blocks = 0;
  };
  struct Extent {  // one written batch
    uint64_t first_seq;
    uint64_t end_seq;
    Lsn first_lsn;
    Lsn last_lsn;
  };

  Status reserve_space(uint64_t blocks);
  Status reserve_space_locked(uint64_t blocks);
  Status make_durable_locked(Lsn lsn);
  Status write_batch(std::deque<Staged> batch);
  Status write_blocks(uint64_t first_seq, uint64_t count, AlignedBuffer& buffer);

  Runtime& rt_;
  BlockDevice& device_;
  RingGeometry ring_;
  cache::BlockCache& cache_;
  JournalOptions options_;
  uint64_t session_;
  Mutex mu_;
  CondVar changed_;  // a batch finished, space was freed, or a reclaim ended

  JournalPosition tail_;
  uint64_t head_seq_;  // next block a batch will use
  uint64_t reserved_blocks_ = 0;
  uint32_t prev_crc_;
  Lsn next_lsn_;
  Lsn written_next_lsn_;  // first LSN not yet in any batch
  Lsn durable_lsn_;
  uint64_t next_txn_;
  std::deque<Staged> staged_;
  std::deque<Extent> extents_;
  bool writing_ = false;
  bool reclaiming_ = false;
  Status failed_;
  std::function<Status()> reclaimer_;
  RecordApplier applier_;
  JournalStats stats_;
};

}  // namespace thinp::journal
