// Scheduler: the simulator's Runtime. A discrete-event loop over virtual time.
//
// Every task is a stackful coroutine (Boost.Coroutine2) run on the caller's
// thread. Everything that happens is an event with a virtual time and a
// sequence number; events run in (time, sequence) order, so a run is a pure
// function of the seed: there is no wall clock, no thread and no hash-ordered
// container anywhere on the path from seed to result.
//
// A task becomes runnable by having a "resume" event queued for it; timers
// (sleep(), and the simulated disk's IO completions via schedule_at()) are
// events too. Time only moves when the loop takes the next event, so a task
// that never suspends stops the world: that is a liveness bug in the code
// under test, and max_events bounds it.
//
// Deadlock: when no event is left but tasks are still alive, every live task
// is parked waiting for something that can no longer happen. run() then
// returns a report listing each blocked task and what it waits for.
//
// Teardown (a simulated crash): destroying the Scheduler unwinds every
// unfinished task's stack (destructors run; no event runs again). Code under
// test must not swallow the unwinding exception (catch (...) without
// rethrow).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/random.h"
#include "engine/runtime/runtime.h"

namespace thinp::sim {

struct RunLimits {
  uint64_t max_events = UINT64_MAX;                 // stop (as a livelock) after this many events
  Nanos max_time = Nanos(INT64_MAX);                // stop before any event later than this
};

enum class RunOutcome {
  idle,           // no event left and no task alive: everything finished
  deadlock,       // no event left but tasks are alive and all parked
  stopped,        // request_stop() was called
  time_limit,     // the next event lies past RunLimits::max_time
  event_limit,    // RunLimits::max_events reached
  task_failed,    // a task ended with an exception (see failure())
};

const char* run_outcome_name(RunOutcome o);

class Scheduler final : public Runtime {
 public:
  explicit Scheduler(uint64_t seed, size_t stack_bytes = 256 * 1024);
  ~Scheduler() override;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runtime.
  TaskId spawn(std::string name, std::function<void()> body) override;
  void yield() override;
  void sleep(Nanos duration) override;
  Nanos now() const override { return now_; }
  Random& random() override { return random_; }
  TaskId current_task() const override { return current_; }
  void park(std::string_view reason) override;
  void unpark(TaskId task) override;

  // Queues `callback` to run at virtual time `when` (not before now()), in
  // scheduler context: it may unpark tasks and schedule events, but not park.
  void schedule_at(Nanos when, std::function<void()> callback);
  void schedule_after(Nanos delay, std::function<void()> callback) {
    schedule_at(now_ + delay, std::move(callback));
  }

  // Runs events until one of the RunOutcome conditions. May be called again
  // after stopped/time_limit/event_limit to continue.
  RunOutcome run(const RunLimits& limits = {});

  // Unwinds every unfinished task (a simulated crash) and drops every pending
  // event. Objects that tasks use must outlive this call: call it before
  // destroying them if they are declared after the Scheduler. After it, the
  // Scheduler accepts no new work. Not callable from a task.
  void kill_all_tasks();

  // Makes run() return `stopped` after the current event. Callable anywhere.
  void request_stop() { stop_requested_ = true; }

  // After `deadlock`: one line per blocked task, "name (#id) waits for reason".
  std::string deadlock_report() const;
  // After `task_failed`: what the task threw.
  const std::string& failure() const { return failure_; }

  size_t live_tasks() const { return tasks_.size(); }
  uint64_t events_run() const { return events_run_; }

 private:
  struct Task;
  struct Event {
    Nanos time;
    uint64_t seq;
    std::function<void()> callback;
  };
  struct EventLater {
    bool operator()(const Event& a, const Event& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };

  void make_runnable(TaskId id);
  void resume(TaskId id);
  void switch_to_scheduler();

  Random random_;
  size_t stack_bytes_;
  Nanos now_{0};
  uint64_t next_seq_ = 0;
  uint64_t next_task_id_ = 1;
  uint64_t events_run_ = 0;
  TaskId current_ = kNoTask;
  bool stop_requested_ = false;
  bool tearing_down_ = false;
  std::string failure_;
  std::priority_queue<Event, std::vector<Event>, EventLater> events_;
  std::map<TaskId, std::unique_ptr<Task>> tasks_;  // ordered: reports are deterministic
};

}  // namespace thinp::sim
