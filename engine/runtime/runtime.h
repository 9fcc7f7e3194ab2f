// Runtime: the half of the engine's seam that owns tasks, time and randomness.
//
// Engine code never touches threads, the wall clock, rand() or an IO library.
// It receives a Runtime (and BlockDevices, engine/io/block_device.h) and uses
// only these calls. Two implementations exist and the choice is made once, in
// main():
//   - sim/scheduler.h: every task is a coroutine on one thread, time is
//     virtual, events are ordered by (time, sequence number), and all
//     randomness comes from one seed;
//   - engine/real/reactor.h: the same coroutines on one thread, time from the
//     steady clock, IO through io_uring.
//
// Task model. A task is a stackful coroutine. All tasks of one Runtime run on
// one OS thread, one at a time, and switch only where they suspend: yield(),
// sleep(), park(), and every call that waits (locks in sync.h, IO in
// block_device.h). Between two suspension points a task runs alone, so engine
// state needs no atomics; it does need locks (sync.h) across suspension points.
//
// Calls marked "task only" must be made from inside a task; calling them from
// outside one is an assertion failure.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "engine/base/random.h"

namespace thinp {

using Nanos = std::chrono::nanoseconds;

// Identifies a task for park()/unpark(). 0 is never a task.
using TaskId = uint64_t;
inline constexpr TaskId kNoTask = 0;

class Runtime {
 public:
  virtual ~Runtime() = default;

  // Creates a task that will run `body`. The new task does not run inside
  // spawn(); it runs once the caller suspends (or, from outside any task, once
  // the runtime runs). `name` appears in diagnostics such as deadlock reports.
  // Callable from a task or from outside one.
  virtual TaskId spawn(std::string name, std::function<void()> body) = 0;

  // Lets every other runnable task run once before the caller resumes.
  // Task only.
  virtual void yield() = 0;

  // Suspends the caller for `duration` of runtime time. Task only.
  virtual void sleep(Nanos duration) = 0;

  // Runtime time since the runtime started: virtual in the simulator, the
  // steady clock in the real world.
  virtual Nanos now() const = 0;

  // The runtime's seeded random source. Engine code takes all randomness from
  // here (or from a stream forked from it).
  virtual Random& random() = 0;

  // The calling task, or kNoTask when called from outside any task.
  virtual TaskId current_task() const = 0;

  // Suspends the calling task until some other party calls unpark() on it.
  // If unpark() was already called since the task last returned from park(),
  // returns at once (a pending wake-up is remembered, at most one). `reason`
  // is shown in deadlock reports and must outlive the wait. Task only.
  virtual void park(std::string_view reason) = 0;

  // Makes a parked task runnable (or records one pending wake-up if it is not
  // parked). Callable from a task, an IO completion, or a timer callback, on
  // the runtime's thread only.
  virtual void unpark(TaskId task) = 0;
};

}  // namespace thinp
