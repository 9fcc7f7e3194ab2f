// Checkpointer: writes back what the journal made durable and advances the
// journal tail, so that the ring can wrap.
//
// A checkpoint, one at a time:
//   1. makes every record handed out so far durable (a journal write if
//      anything is staged) and notes D = the durable LSN;
//   2. lets each CheckpointParticipant (logical structures such as the space
//      maps, which keep their pages themselves) write its pages up to D;
//   3. writes back every dirty cache page whose page LSN is durable (the
//      write-ahead rule holds at each write: BlockCache asserts it), FLUSHes
//      the device, and tells the participants their writes are durable;
//   4. computes the new tail: the earliest batch holding a record that is not
//      yet on disk in a flushed page (the oldest recovery LSN of a dirty or
//      unflushed cache page or of any participant, else D + 1);
//   5. calls persist_tail, which must make the superblock name the new tail
//      durably before it returns (the superblock names only durable journal
//      positions: DESIGN.md invariant 7);
//   6. releases the ring up to the tail, waking commits that wait for space.
//
// Nothing stops the world: commits continue during a checkpoint; a page they
// dirty meanwhile just stays dirty and holds the tail for the next one.
//
// Tasks: checkpoint() is task only. It may run inside a committing task (as
// the journal's space reclaimer), so it never needs journal space itself.
// Failure: an error from any step is returned and the tail does not move;
// the journal keeps working, and a later checkpoint may succeed.
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "engine/base/status.h"
#include "engine/cache/block_cache.h"
#include "engine/journal/journal.h"
#include "engine/runtime/sync.h"

namespace thinp::journal {

// A structure that keeps its own pages outside the block cache and so holds
// the journal tail itself. Called from the checkpointing task, in order:
// write_pages, then (if the FLUSH succeeded) pages_durable, then
// oldest_needed_lsn.
class CheckpointParticipant {
 public:
  virtual ~CheckpointParticipant() = default;
  // Writes (without FLUSH) the pages whose records are all durable:
  // LSN <= `durable`. May suspend.
  virtual Status write_pages(Lsn durable) = 0;
  // The FLUSH after write_pages completed: those writes are durable.
  virtual void pages_durable() = 0;
  // The oldest LSN whose effect is not yet durable in a page, if any.
  virtual std::optional<Lsn> oldest_needed_lsn() const = 0;
};

struct CheckpointStats {
  uint64_t checkpoints = 0;
  uint64_t pages_written = 0;
  uint64_t tail_moves = 0;
};

class Checkpointer {
 public:
  using PersistTail = std::function<Status(const JournalPosition& tail)>;

  // `participants` must outlive the checkpointer.
  Checkpointer(Runtime& rt, Journal& journal, cache::BlockCache& cache, PersistTail persist_tail,
               std::vector<CheckpointParticipant*> participants = {});

  // Makes this checkpointer the journal's space reclaimer (see journal.h).
  void install_as_space_reclaimer();

  // Runs one checkpoint and returns the tail now stored by persist_tail (the
  // old tail if nothing could be released). Task only.
  Result<JournalPosition> checkpoint();

  const CheckpointStats& stats() const { return stats_; }

 private:
  Journal& journal_;
  cache::BlockCache& cache_;
  PersistTail persist_tail_;
  std::vector<CheckpointParticipant*> participants_;
  Mutex mu_;  // one checkpoint at a time; held across its IO on purpose
  CheckpointStats stats_;
};

}  // namespace thinp::journal
