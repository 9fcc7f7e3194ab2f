#include "engine/journal/checkpoint.h"

namespace thinp::journal {

Checkpointer::Checkpointer(Runtime& rt, Journal& journal, cache::BlockCache& cache,
                           PersistTail persist_tail,
                           std::vector<CheckpointParticipant*> participants)
    : journal_(journal),
      cache_(cache),
      persist_tail_(std::move(persist_tail)),
      participants_(std::move(participants)),
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
  for (CheckpointParticipant* p : participants_) TP_RETURN_IF_ERROR(p->write_pages(durable));
  TP_ASSIGN_OR_RETURN(const size_t written, cache_.write_back_durable());
  stats_.pages_written += written;
  TP_RETURN_IF_ERROR(cache_.flush_device());
  for (CheckpointParticipant* p : participants_) p->pages_durable();

  Lsn needed = durable + 1;
  auto hold = [&needed](std::optional<Lsn> oldest) {
    if (oldest && *oldest < needed) needed = *oldest;
  };
  hold(cache_.oldest_needed_lsn());
  for (CheckpointParticipant* p : participants_) hold(p->oldest_needed_lsn());
  const JournalPosition tail = journal_.position_for(needed);
  if (tail == journal_.tail()) return tail;
  TP_ASSERT_GT(tail.seq, journal_.tail().seq);
  TP_RETURN_IF_ERROR(persist_tail_(tail));
  journal_.release_to(tail);
  ++stats_.tail_moves;
  return tail;
}

}  // namespace thinp::journal
