#include "engine/journal/checkpoint.h"

namespace thinp::journal {

Checkpointer::Checkpointer(Runtime& rt, Journal& journal, cache::BlockCache& cache,
                           PersistTail persist_tail, PersistLogical persist_logical)
    : journal_(journal),
      cache_(cache),
      persist_tail_(std::move(persist_tail)),
      persist_logical_(std::move(persist_logical)),
      mu_(rt, "checkpoint") {
  TP_ASSERT(persist_tail_ != nullptr);
}

void Checkpointer::install_as_space_reclaimer() {
  journal_.set_space_reclaimer([this] { return checkpoint().status(); });
}

Result<JournalPosition> Checkpointer::checkpoint() {
  // Held across IO deliberately: checkpoints are serial, and a second caller
  // (say a commit short of space) simply waits for the running one. No
  // commit or pin ever waits for this lock.
  LockGuard guard(mu_);
  ++stats_.checkpoints;
  const Lsn target = journal_.last_assigned_lsn();
  if (target > Lsn(0)) TP_RETURN_IF_ERROR(journal_.make_durable(target));
  const Lsn durable = journal_.durable_lsn();
  if (persist_logical_) TP_RETURN_IF_ERROR(persist_logical_(durable));
  TP_ASSIGN_OR_RETURN(const size_t written, cache_.write_back_durable());
  stats_.pages_written += written;
  TP_RETURN_IF_ERROR(cache_.flush_device());

  Lsn needed = durable + 1;
  if (std::optional<Lsn> oldest = cache_.oldest_needed_lsn(); oldest && *oldest < needed) {
    needed = *oldest;
  }
  const JournalPosition tail = journal_.position_for(needed);
  if (tail == journal_.tail()) return tail;
  TP_ASSERT_GT(tail.seq, journal_.tail().seq);
  TP_RETURN_IF_ERROR(persist_tail_(tail));
  journal_.release_to(tail);
  ++stats_.tail_moves;
  return tail;
}

}  // namespace thinp::journal
