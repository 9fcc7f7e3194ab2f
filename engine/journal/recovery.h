// Recovery: replays the journal at open.
//
// recover() scans the ring from the tail the superblock names, block by
// block. A block is accepted only if it verifies (checksum, type journal, its
// own location), carries the expected sequence number (so a block from an
// earlier lap of the ring is rejected), chains to the block before it
// (prev_crc) and continues its LSNs. The first block that fails any check ends
// the log: a torn tail is detected and ignored, never applied.
//
// Torn tail or corrupt middle? Only the batch in flight at the crash can be
// torn, and the journal writes one batch at a time, each durable before the
// next starts. Each block records its index in its batch, so when the scan
// stops at block n, recovery reads on to the end of the lap: a later block
// that verifies, holds its own sequence number, belongs to the session of
// the last accepted block and to a batch starting after n proves that n was
// durable and then damaged. recover() then fails with corruption naming
// block n, instead of silently losing the acknowledged commits after it.
// (A damaged block in the last durable batch, with nothing written after
// it, cannot be told from a torn tail; nor can a damaged tail block.)
//
// Records are replayed one transaction at a time, and only when the
// transaction's Commit record was found in an accepted block (so every block
// before it verified too). Records after the last Commit belong to a
// transaction whose batch was torn; nobody was told it committed, and they
// are dropped. A change of session (the first block written after an earlier
// recovery) drops a transaction left open by the session before it.
//
// Replay is idempotent. A PageWrite is applied through the cache only if its
// LSN is above the page's LSN (the page on disk may already hold it); the
// page is then dirty in the cache and is written back by the next checkpoint.
// A page that does not verify (a write-back torn by the crash) is rebuilt
// from the full-page image that began its last dirty period (journal.cc,
// "Torn pages"); partial records of it that come earlier in the log are
// skipped, and a page with no such image is reported as corrupt.
// Every other record (Commit included) goes to the RecordVisitor with its
// LSN; the visitor (the space maps, the device details) must ignore records
// its checkpointed state already reflects.
//
// Tasks: task only. The cache uses a recovery WAL gate during the replay
// (every accepted record is durable: it was read back from the device) and
// gets its previous gate back afterwards.
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"
#include "engine/cache/block_cache.h"
#include "engine/io/block_device.h"
#include "engine/journal/journal.h"
#include "engine/journal/record.h"
#include "engine/journal/record_codec.h"

namespace thinp::journal {

class RecordVisitor {
 public:
  virtual ~RecordVisitor() = default;
  // Applies a committed logical record (anything but PageWrite) at `lsn`.
  // An error stops recovery and is returned from recover().
  virtual Status apply(const Record& record, Lsn lsn) = 0;
};

struct RecoveryOptions {
  uint64_t read_ahead_blocks = 64;  // journal blocks per read
};

struct RecoveryStats {
  uint64_t blocks_scanned = 0;  // accepted journal blocks
  uint64_t reads = 0;           // journal read IOs
  uint64_t transactions_replayed = 0;
  uint64_t transactions_dropped = 0;  // no intact Commit record
  uint64_t records_replayed = 0;
  uint64_t pages_redone = 0;           // PageWrites applied
  uint64_t pages_already_current = 0;  // PageWrites skipped: page LSN >= record LSN
  std::string end_reason;              // why the scan stopped
};

struct RecoveryResult {
  JournalResume resume;    // hand to the Journal constructor
  Lsn last_committed_lsn;  // 0 if no transaction was found
  RecoveryStats stats;
};

// The superblock stores the tail as a block address and an LSN
// (engine/format/superblock.h: journal_tail_block = ring.location_of(
// tail.seq), journal_tail_lsn = tail.lsn, and checkpoint_lsn = tail.lsn - 1).
// This turns them back into a JournalPosition, whose absolute sequence number
// recovery needs to reject blocks from earlier laps. If the tail block holds
// the tail LSN, its sequence number is taken from it (LSNs never repeat, so
// no block of an earlier lap can hold it). Otherwise the log is empty at the
// tail, and the position gets the smallest sequence number at that slot that
// is above every sequence number found in the ring (one read of the whole
// ring), so that new blocks always outrank stale ones. A tail block outside
// the ring is Errc::corruption. Task only.
Result<JournalPosition> locate_tail(BlockDevice& device, RingGeometry ring, MBlock tail_block,
                                    Lsn tail_lsn);

// Replays the log of `ring` on `device` from `tail` (the superblock's). Read
// errors and replay errors (a page needed for redo is corrupt, the visitor
// fails) are returned; a bad journal block is not an error, it is the end of
// the log. Task only.
Result<RecoveryResult> recover(BlockDevice& device, RingGeometry ring, cache::BlockCache& cache,
                               JournalPosition tail, RecordVisitor& visitor,
                               RecoveryOptions options = {});

}  // namespace thinp::journal
