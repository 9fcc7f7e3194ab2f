#include "engine/real/reactor.h"

#include <liburing.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <sstream>

#include "engine/fiber/task_coroutine.h"
#include "engine/base/assert.h"

namespace thinp::real {

using fiber::Coroutine;

struct Reactor::Task {
  TaskId id;
  std::string name;
  std::string_view park_reason;  // non-empty while parked
  bool parked = false;           // in park() or sleep()
  bool sleeping = false;         // in sleep(): only its timer resumes it
  bool wake_pending = false;     // unpark() arrived while not waiting in park()
  bool queued = false;           // in runnable_
  bool finished = false;
  Coroutine::pull_type* yield_to = nullptr;  // the way back to the loop
  std::unique_ptr<Coroutine::push_type> coroutine;
};

const char* reactor_outcome_name(ReactorOutcome o) {
  switch (o) {
    case ReactorOutcome::idle:
      return "idle";
    case ReactorOutcome::deadlock:
      return "deadlock";
    case ReactorOutcome::stopped:
      return "stopped";
    case ReactorOutcome::task_failed:
      return "task_failed";
  }
  return "?";
}

Reactor::Reactor(const ReactorOptions& options)
    : random_(options.seed),
      stack_bytes_(options.stack_bytes),
      submit_batch_(options.submit_batch),
      start_(std::chrono::steady_clock::now()) {
  TP_ASSERT_GE(submit_batch_, 1u);
  init_ring(options);
}

Reactor::~Reactor() {
  kill_all_tasks();
  if (ring_) io_uring_queue_exit(ring_.get());
}

// THINP_NO_URING=1 exists so that tests (and users on kernels where io_uring
// misbehaves) can force the fallback without recompiling.
void Reactor::init_ring(const ReactorOptions& options) {
  TP_ASSERT_GT(options.ring_entries, 0u);
  if (!options.use_uring) {
    ring_status_ = Status(Errc::unsupported, "io_uring disabled by the caller");
    return;
  }
  const char* env = std::getenv("THINP_NO_URING");
  if (env != nullptr && std::strcmp(env, "1") == 0) {
    ring_status_ = Status(Errc::unsupported, "io_uring disabled by THINP_NO_URING=1");
    return;
  }
  auto ring = std::make_unique<io_uring>();
  // Setup flags, most wanted first; a kernel that lacks one refuses the set
  // with EINVAL and the next, smaller set is tried:
  //   SUBMIT_ALL (5.18): a request the kernel rejects at submission gets its
  //     own error completion instead of stopping the batch behind it;
  //   COOP_TASKRUN (5.19): completions are not signalled by interrupting the
  //     thread, which only ever looks for them when it waits anyway.
  // DEFER_TASKRUN is left out on purpose: with it, completions appear only
  // while the loop waits in the kernel, so tasks that spin on yield() waiting
  // for an IO would never see it complete. It measured no faster here
  // (docs/benchmarks.md).
  const unsigned flag_sets[] = {
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
      IORING_SETUP_SUBMIT_ALL,
      0,
  };
  io_uring_params params{};
  int rc = -EINVAL;
  for (unsigned flags : flag_sets) {
    params = io_uring_params{};
    params.flags = flags;
    rc = io_uring_queue_init_params(options.ring_entries, ring.get(), &params);
    if (rc != -EINVAL) break;
  }
  if (rc < 0) {
    ring_status_ =
        Status(Errc::unsupported, std::string("io_uring_queue_init failed: ") + std::strerror(-rc));
    return;
  }
  cq_entries_ = params.cq_entries;
  ring_ = std::move(ring);
}

void Reactor::kill_all_tasks() {
  TP_ASSERT_EQ(current_, kNoTask);
  tearing_down_ = true;
  // Requests and buffers may live on the stacks about to be unwound: let the
  // kernel finish with them first.
  settle_io();
  runnable_.clear();
  timers_ = {};
  while (!tasks_.empty()) {
    auto node = tasks_.extract(tasks_.begin());
    // Destructors run on the task's own stack and see it as the current task
    // (a LockGuard's unlock checks its owner).
    current_ = node.key();
    current_ptr_ = node.mapped().get();
    node.mapped()->coroutine.reset();
    current_ = kNoTask;
    current_ptr_ = nullptr;
    settle_io();  // a destructor may have submitted IO
  }
}

void Reactor::settle_io() {
  while (ring_in_flight_ > 0 || !ring_ready_.empty() || !later_ready_.empty()) {
    if (ring_in_flight_ > 0 && ring_ready_.empty()) {
      wait_for_ring(nullptr);
    }
    deliver_completions();
  }
}

TaskId Reactor::spawn(std::string name, std::function<void()> body) {
  const TaskId id = next_task_id_++;
  auto task = std::make_unique<Task>();
  task->id = id;
  task->name = std::move(name);
  Task* raw = task.get();
  task->coroutine = fiber::make_task_coroutine(
      stack_bytes_, raw->name, std::move(body), &raw->yield_to, [this, raw](std::string failure) {
        if (!failure.empty()) {
          failure_ = std::move(failure);
          request_stop();
        }
        raw->finished = true;
      });
  tasks_.emplace(id, std::move(task));
  if (!tearing_down_) make_runnable(*raw);
  return id;
}

Nanos Reactor::now() const {
  return std::chrono::duration_cast<Nanos>(std::chrono::steady_clock::now() - start_);
}

void Reactor::make_runnable(Task& t) {
  if (t.queued) return;
  t.queued = true;
  t.parked = false;
  t.park_reason = {};
  runnable_.push_back(&t);
}

void Reactor::resume(Task& t) {
  TP_ASSERT_EQ(current_, kNoTask);
  t.queued = false;
  current_ = t.id;
  current_ptr_ = &t;
  (*t.coroutine)();
  current_ = kNoTask;
  current_ptr_ = nullptr;
  if (t.finished) tasks_.erase(t.id);
}

void Reactor::switch_to_loop() {
  TP_ASSERT(current_ptr_ != nullptr);
  TP_ASSERT_MSG(!tearing_down_, "task " + current_ptr_->name + " suspended while being torn down");
  (*current_ptr_->yield_to)();  // returns when the loop resumes this task
}

void Reactor::yield() {
  TP_ASSERT_NE(current_, kNoTask);
  make_runnable(*current_ptr_);
  switch_to_loop();
}

void Reactor::sleep(Nanos duration) {
  TP_ASSERT_NE(current_, kNoTask);
  TP_ASSERT_GE(duration.count(), 0);
  Task& t = *current_ptr_;
  t.parked = true;
  t.sleeping = true;
  t.park_reason = "sleep";
  timers_.push(Timer{now() + duration, next_timer_seq_++, &t});
  switch_to_loop();
}

void Reactor::park(std::string_view reason) {
  TP_ASSERT_NE(current_, kNoTask);
  Task& t = *current_ptr_;
  if (t.wake_pending) {
    t.wake_pending = false;
    return;
  }
  t.parked = true;
  t.park_reason = reason;
  switch_to_loop();
}

// A wake-up for a task that is not waiting in park() (running, runnable, or
// sleeping) is remembered, as runtime.h's contract says: its next park()
// returns at once. A sleep is not cut short.
void Reactor::unpark(TaskId id) {
  if (tearing_down_) return;
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  Task& t = *it->second;
  if (t.parked && !t.sleeping) {
    make_runnable(t);
  } else {
    t.wake_pending = true;
  }
}

ReactorOutcome Reactor::run() {
  TP_ASSERT_EQ(current_, kNoTask);
  TP_ASSERT(!tearing_down_);
  stop_requested_ = false;
  for (;;) {
    if (!failure_.empty()) return ReactorOutcome::task_failed;
    if (stop_requested_) return ReactorOutcome::stopped;
    deliver_completions();
    fire_due_timers();
    if (!runnable_.empty()) {
      run_round();
      // Tasks that stay runnable (yield loops) must not starve the IO they
      // queued: hand it to the kernel and pick up what has finished.
      if (!runnable_.empty() && ring_in_flight_ > 0) poll_ring();
      continue;
    }
    if (!ring_ready_.empty() || !later_ready_.empty()) continue;
    if (tasks_.empty() && ring_in_flight_ == 0) return ReactorOutcome::idle;
    if (ring_in_flight_ == 0 && timers_.empty()) return ReactorOutcome::deadlock;
    wait_for_events();
  }
}

// Resumes each task that is runnable now once; tasks made runnable during the
// round (by yield() or by another task) wait for the next round, after
// completions and timers have had their turn.
void Reactor::run_round() {
  size_t n = runnable_.size();
  while (n-- > 0 && !runnable_.empty()) {
    Task* t = runnable_.front();
    runnable_.pop_front();
    resume(*t);
    if (stop_requested_ || !failure_.empty()) return;
  }
}

void Reactor::fire_due_timers() {
  if (timers_.empty()) return;
  const Nanos t = now();
  while (!timers_.empty() && timers_.top().deadline <= t) {
    Task* task = timers_.top().task;
    timers_.pop();
    task->sleeping = false;
    make_runnable(*task);
  }
}

// Nothing is runnable: block until a completion arrives or the next timer is
// due, whichever comes first.
void Reactor::wait_for_events() {
  if (ring_in_flight_ > 0) {
    __kernel_timespec ts{};
    __kernel_timespec* timeout = nullptr;
    if (!timers_.empty()) {
      const int64_t ns = std::max<int64_t>(0, (timers_.top().deadline - now()).count());
      ts.tv_sec = ns / 1'000'000'000;
      ts.tv_nsec = ns % 1'000'000'000;
      timeout = &ts;
    }
    wait_for_ring(timeout);
    return;
  }
  if (timers_.empty()) return;
  const int64_t ns = (timers_.top().deadline - now()).count();
  if (ns <= 0) return;
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Submits whatever is queued and waits for at least one completion (or the
// timeout), in one system call; then moves every available CQE to ring_ready_.
void Reactor::wait_for_ring(__kernel_timespec* timeout) {
  TP_ASSERT(ring_);
  TP_ASSERT_GT(ring_in_flight_, 0u);
  io_uring_cqe* cqe = nullptr;
  const int rc = io_uring_submit_and_wait_timeout(ring_.get(), &cqe, 1, timeout, nullptr);
  TP_ASSERT_MSG(rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY,
                std::string("io_uring_submit_and_wait_timeout: ") + std::strerror(-rc));
  if (io_uring_sq_ready(ring_.get()) > 0) submit_pending();
  reap_ring();
}

// Submits queued SQEs and collects finished completions without blocking;
// it also runs the kernel's pending completion work, which COOP_TASKRUN
// otherwise leaves for the next time the thread enters the kernel.
void Reactor::poll_ring() {
  TP_ASSERT(ring_);
  const int rc = io_uring_submit_and_get_events(ring_.get());
  TP_ASSERT_MSG(rc >= 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY,
                std::string("io_uring_submit_and_get_events: ") + std::strerror(-rc));
  if (io_uring_sq_ready(ring_.get()) > 0) submit_pending();
  reap_ring();
}

void Reactor::submit_pending() {
  TP_ASSERT(ring_);
  // Each pass hands the kernel at least one SQE unless it is short of
  // resources (EAGAIN) or of CQ room (EBUSY); both clear as IO completes, so
  // the loop is bounded by the IO already in flight.
  for (int attempt = 0; io_uring_sq_ready(ring_.get()) > 0; ++attempt) {
    const int rc = io_uring_submit(ring_.get());
    if (rc >= 0 || rc == -EINTR) continue;
    TP_ASSERT_MSG(rc == -EAGAIN || rc == -EBUSY,
                  std::string("io_uring_submit: ") + std::strerror(-rc));
    TP_ASSERT_LT(attempt, 1'000'000);
    io_uring_cqe* cqe = nullptr;
    (void)io_uring_wait_cqe(ring_.get(), &cqe);
    reap_ring();
  }
}

void Reactor::reap_ring() {
  if (!ring_) return;
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(ring_.get(), head, cqe) {
    ++seen;
    // liburing's own timeout entry, on kernels without IORING_FEAT_EXT_ARG.
    if (cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;
    auto* target = reinterpret_cast<UringCompletion*>(static_cast<uintptr_t>(cqe->user_data));
    TP_ASSERT(target != nullptr);
    ring_ready_.push_back(RingCompletion{target, cqe->res});
    TP_ASSERT_GT(ring_in_flight_, 0u);
    --ring_in_flight_;
  }
  io_uring_cq_advance(ring_.get(), seen);
}

bool Reactor::deliver_completions() {
  if (ring_ready_.empty() && later_ready_.empty()) return false;
  TP_ASSERT(!delivering_);
  delivering_ = true;
  // Swap into scratch vectors: a callback may submit more IO, whose
  // completions then queue for the next pass.
  ring_delivering_.swap(ring_ready_);
  later_delivering_.swap(later_ready_);
  for (const RingCompletion& c : ring_delivering_) c.target->on_uring_complete(c.res);
  for (LaterCompletion& c : later_delivering_) {
    TP_ASSERT(c.req->on_complete != nullptr);
    c.req->on_complete(std::move(c.status));
  }
  ring_delivering_.clear();
  later_delivering_.clear();
  delivering_ = false;
  return true;
}

io_uring_sqe* Reactor::next_sqe() {
  TP_ASSERT(ring_);
  // Keep the completions the kernel may post within the CQ, so none is ever
  // held back in the kernel's overflow list.
  while (ring_in_flight_ + 1 > cq_entries_) wait_for_ring(nullptr);
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  if (sqe == nullptr) {
    submit_pending();
    sqe = io_uring_get_sqe(ring_.get());
  }
  TP_ASSERT(sqe != nullptr);
  return sqe;
}

void Reactor::track(io_uring_sqe* sqe, UringCompletion* completion) {
  TP_ASSERT(completion != nullptr);
  io_uring_sqe_set_data(sqe, completion);
  ++ring_in_flight_;
  if (io_uring_sq_ready(ring_.get()) >= submit_batch_) submit_pending();
}

void Reactor::complete_later(IoRequest* req, Status status) {
  TP_ASSERT(req != nullptr);
  later_ready_.push_back(LaterCompletion{req, std::move(status)});
}

void Reactor::drain_ring() {
  TP_ASSERT_MSG(!delivering_, "a device was destroyed from inside an IO completion");
  while (ring_in_flight_ > 0) wait_for_ring(nullptr);
  deliver_completions();
}

std::string Reactor::deadlock_report() const {
  std::ostringstream os;
  bool first = true;
  for (const auto& [id, t] : tasks_) {
    if (!first) os << "\n";
    first = false;
    os << t->name << " (#" << id << ") waits for "
       << (t->park_reason.empty() ? std::string_view("nothing (not parked)") : t->park_reason);
  }
  return os.str();
}

}  // namespace thinp::real
