#include "sim/scheduler.h"

#include <exception>
#include <sstream>

#include "engine/fiber/task_coroutine.h"
#include "engine/base/assert.h"

namespace thinp::sim {

using fiber::Coroutine;

struct Scheduler::Task {
  TaskId id;
  std::string name;
  std::string_view park_reason;  // non-empty while parked
  bool parked = false;
  bool wake_pending = false;     // unpark() arrived while not parked
  bool resume_queued = false;    // a resume event is in the queue
  bool finished = false;
  Coroutine::pull_type* yield_to = nullptr;  // the way back to the scheduler
  std::unique_ptr<Coroutine::push_type> coroutine;
};

const char* run_outcome_name(RunOutcome o) {
  switch (o) {
    case RunOutcome::idle: return "idle";
    case RunOutcome::deadlock: return "deadlock";
    case RunOutcome::stopped: return "stopped";
    case RunOutcome::time_limit: return "time_limit";
    case RunOutcome::event_limit: return "event_limit";
    case RunOutcome::task_failed: return "task_failed";
  }
  return "?";
}

Scheduler::Scheduler(uint64_t seed, size_t stack_bytes) : random_(seed), stack_bytes_(stack_bytes) {}

Scheduler::~Scheduler() { kill_all_tasks(); }

void Scheduler::kill_all_tasks() {
  // Unwind unfinished tasks in id order. Destructors that run during the
  // unwinding may call unpark() or schedule events; tearing_down_ makes those
  // harmless.
  TP_ASSERT_EQ(current_, kNoTask);
  tearing_down_ = true;
  while (!tasks_.empty()) {
    auto node = tasks_.extract(tasks_.begin());
    // Unwinding runs the task's destructors on its own stack; they see
    // themselves as the current task (a LockGuard's unlock checks its owner).
    current_ = node.key();
    node.mapped()->coroutine.reset();
    current_ = kNoTask;
  }
  while (!events_.empty()) events_.pop();
}

TaskId Scheduler::spawn(std::string name, std::function<void()> body) {
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
  if (!tearing_down_) make_runnable(id);
  return id;
}

void Scheduler::make_runnable(TaskId id) {
  auto it = tasks_.find(id);
  TP_ASSERT(it != tasks_.end());
  Task& t = *it->second;
  if (t.resume_queued) return;
  t.resume_queued = true;
  t.parked = false;
  t.park_reason = {};
  schedule_at(now_, [this, id] { resume(id); });
}

void Scheduler::resume(TaskId id) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;  // finished meanwhile
  Task& t = *it->second;
  t.resume_queued = false;
  TP_ASSERT_EQ(current_, kNoTask);
  current_ = id;
  (*t.coroutine)();
  current_ = kNoTask;
  if (t.finished) tasks_.erase(it);
}

void Scheduler::switch_to_scheduler() {
  auto it = tasks_.find(current_);
  TP_ASSERT(it != tasks_.end());
  Coroutine::pull_type& back = *it->second->yield_to;
  back();  // returns when the scheduler resumes this task
}

void Scheduler::yield() {
  TP_ASSERT_NE(current_, kNoTask);
  make_runnable(current_);
  switch_to_scheduler();
}

void Scheduler::sleep(Nanos duration) {
  TP_ASSERT_NE(current_, kNoTask);
  TP_ASSERT_GE(duration.count(), 0);
  const TaskId me = current_;
  Task& t = *tasks_.at(me);
  t.parked = true;
  t.park_reason = "sleep";
  t.resume_queued = true;
  schedule_at(now_ + duration, [this, me] {
    auto it = tasks_.find(me);
    if (it == tasks_.end()) return;
    it->second->parked = false;
    resume(me);
  });
  switch_to_scheduler();
}

void Scheduler::park(std::string_view reason) {
  TP_ASSERT_NE(current_, kNoTask);
  Task& t = *tasks_.at(current_);
  if (t.wake_pending) {
    t.wake_pending = false;
    return;
  }
  t.parked = true;
  t.park_reason = reason;
  switch_to_scheduler();
}

void Scheduler::unpark(TaskId id) {
  if (tearing_down_) return;
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  Task& t = *it->second;
  if (t.parked && !t.resume_queued) {
    make_runnable(id);
  } else {
    // Running, runnable, or sleeping (its timer will resume it): remember the
    // wake-up so that its next park() returns at once, as runtime.h promises.
    t.wake_pending = true;
  }
}

void Scheduler::schedule_at(Nanos when, std::function<void()> callback) {
  if (tearing_down_) return;
  TP_ASSERT_GE(when.count(), now_.count());
  events_.push(Event{when, next_seq_++, std::move(callback)});
}

RunOutcome Scheduler::run(const RunLimits& limits) {
  TP_ASSERT_EQ(current_, kNoTask);
  stop_requested_ = false;
  for (;;) {
    if (!failure_.empty()) return RunOutcome::task_failed;
    if (stop_requested_) return RunOutcome::stopped;
    if (events_.empty()) return tasks_.empty() ? RunOutcome::idle : RunOutcome::deadlock;
    if (events_run_ >= limits.max_events) return RunOutcome::event_limit;
    if (events_.top().time > limits.max_time) return RunOutcome::time_limit;
    // priority_queue::top() is const; move the callback out before popping.
    Event ev = std::move(const_cast<Event&>(events_.top()));
    events_.pop();
    now_ = ev.time;
    ++events_run_;
    ev.callback();
  }
}

std::string Scheduler::deadlock_report() const {
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

}  // namespace thinp::sim
