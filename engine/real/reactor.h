// Reactor: the real world's Runtime. Coroutine tasks on one thread, the steady
// clock, and an io_uring ring that real devices submit to.
//
// It keeps the task model of runtime.h and mirrors the simulator's Scheduler
// (sim/scheduler.h) so that engine code cannot tell the two apart:
//   - every task is a stackful coroutine (Boost.Coroutine2 on a guarded,
//     fixed-size stack) resumed by run() on the calling thread;
//   - now() is std::chrono::steady_clock, measured from construction;
//   - random() is a Random seeded from ReactorOptions::seed, so the *choices*
//     a run makes (offsets, workload mix) replay even though timings do not;
//   - sleep() puts the task in a min-heap of timers ordered by (deadline,
//     sequence number).
//
// The loop. run() repeats: deliver IO completions, wake tasks whose timers
// are due, resume every runnable task once; when nothing is runnable, submit
// the queued SQEs and wait in the kernel for at least one completion, or until
// the next timer is due. Requests reach the kernel as they are made
// (ReactorOptions::submit_batch = 1) or in batches, whatever is left going
// with the io_uring_enter that waits.
//
// Devices. A device submits through next_sqe()/track() and receives each
// completion through UringCompletion::on_uring_complete(), called from the
// loop only. Where io_uring is unavailable (io_uring_queue_init fails, or
// THINP_NO_URING=1 in the environment, or ReactorOptions::use_uring is false)
// has_ring() is false and devices do their IO synchronously, handing the
// result to complete_later(): completions are still delivered from the loop,
// never from inside BlockDevice::submit().
//
// Deadlock (DESIGN.md section 5, liveness): when no task is runnable, no IO is
// in flight, no completion is waiting to be delivered and no timer is set, but
// tasks are still alive, each of them waits for something that can no longer
// happen. run() returns ReactorOutcome::deadlock and deadlock_report() names
// every blocked task and its reason.
//
// Teardown. kill_all_tasks() (and the destructor) first waits for every IO in
// flight and delivers its completion, because buffers and requests may live
// on task stacks; then it unwinds every unfinished task's stack in id order
// (destructors run, each seeing itself as the current task). A task being
// unwound must not park (acquire a contended lock, wait for IO): that is an
// assertion failure. Code under test must not swallow the unwinding exception
// (catch (...) without rethrow).
//
// Threading: a Reactor and everything that uses it belong to the thread that
// constructed it. Devices opened on a Reactor must be destroyed before it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/random.h"
#include "engine/base/status.h"
#include "engine/io/block_device.h"
#include "engine/runtime/runtime.h"

struct io_uring;
struct io_uring_sqe;
struct __kernel_timespec;

namespace thinp::real {

struct ReactorOptions {
  uint64_t seed = 1;
  size_t stack_bytes = 256 * 1024;  // per task, plus one guard page
  uint32_t ring_entries = 256;      // submission queue size; the kernel sizes the CQ at twice that
  // How many prepared SQEs wait before they are handed to the kernel; the
  // loop submits whatever is left before it blocks. 1 submits each request as
  // it is made (one system call each, like fio's default
  // iodepth_batch_submit=1), which on the measured machine gave ~5-10% more
  // IOPS and lower latency than batching a whole round of tasks: the device
  // starts on each request while the next is being prepared
  // (docs/benchmarks.md). Larger values trade that for fewer system calls.
  uint32_t submit_batch = 1;
  bool use_uring = true;  // false: no ring, devices use the pread/pwrite fallback
};

enum class ReactorOutcome : uint8_t {
  idle,         // every task finished and no IO is in flight
  deadlock,     // tasks are alive but none can ever run again (see deadlock_report())
  stopped,      // request_stop() was called
  task_failed,  // a task ended with an exception (see failure())
};

const char* reactor_outcome_name(ReactorOutcome o);

// Receives the completion of one SQE. Implemented by devices (one object per
// request in flight); it must stay alive until on_uring_complete() has run.
class UringCompletion {
 public:
  // `res` is the CQE's result: bytes transferred or 0 on success, -errno on
  // failure. Runs on the reactor's thread, from the loop (or from teardown).
  virtual void on_uring_complete(int32_t res) = 0;

 protected:
  ~UringCompletion() = default;
};

class Reactor final : public Runtime {
 public:
  explicit Reactor(const ReactorOptions& options = {});
  ~Reactor() override;
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Runtime.
  TaskId spawn(std::string name, std::function<void()> body) override;
  void yield() override;
  void sleep(Nanos duration) override;
  Nanos now() const override;
  Random& random() override { return random_; }
  TaskId current_task() const override { return current_; }
  void park(std::string_view reason) override;
  void unpark(TaskId task) override;

  // Runs tasks, timers and IO until one of the ReactorOutcome conditions. May
  // be called again after `stopped` to continue. Not callable from a task.
  ReactorOutcome run();

  // Makes run() return `stopped` after the current task suspends.
  void request_stop() { stop_requested_ = true; }

  // Waits for all IO, then unwinds every unfinished task (see the header
  // comment). The Reactor accepts no new tasks afterwards. Not callable from a
  // task.
  void kill_all_tasks();

  // After `deadlock`: one line per live task, "name (#id) waits for reason".
  std::string deadlock_report() const;
  // After `task_failed`: what the task threw.
  const std::string& failure() const { return failure_; }
  size_t live_tasks() const { return tasks_.size(); }

  // --- For devices (engine/real) ---------------------------------------------

  // True when IO goes through io_uring. When false, ring_status() says why.
  bool has_ring() const { return ring_ != nullptr; }
  const Status& ring_status() const { return ring_status_; }

  // Returns a free SQE for the caller to prepare (io_uring_prep_*). Never
  // null: when the submission queue is full, its entries are submitted first.
  // The caller must then call track() on it before any other Reactor call.
  // Requires has_ring().
  io_uring_sqe* next_sqe();

  // Binds a prepared SQE to the object that receives its completion, and
  // counts it in flight. It is submitted at once when submit_batch SQEs are
  // waiting, else when the loop next waits or polls (or when the queue is
  // full).
  void track(io_uring_sqe* sqe, UringCompletion* completion);

  // Delivers `status` to req->on_complete from the loop, soon. For IO done
  // synchronously (the fallback, block-device discard). `req` must stay
  // alive until then, as for any submitted request.
  void complete_later(IoRequest* req, Status status);

  // Waits in the kernel for ring completions and delivers them until
  // `uring_ios_in_flight()` is zero. For a device's destructor, which must
  // not free completion objects the kernel still holds. Callable from a task
  // or from outside one.
  void drain_ring();
  uint64_t uring_ios_in_flight() const { return ring_in_flight_; }

 private:
  struct Task;
  struct Timer {
    Nanos deadline;
    uint64_t seq;
    Task* task;
  };
  struct TimerLater {
    bool operator()(const Timer& a, const Timer& b) const {
      return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
    }
  };
  struct RingCompletion {
    UringCompletion* target;
    int32_t res;
  };
  struct LaterCompletion {
    IoRequest* req;
    Status status;
  };

  void init_ring(const ReactorOptions& options);
  void make_runnable(Task& t);
  void resume(Task& t);
  void switch_to_loop();
  void run_round();
  void fire_due_timers();
  void wait_for_events();
  void wait_for_ring(__kernel_timespec* timeout);
  void poll_ring();
  void submit_pending();
  void reap_ring();
  bool deliver_completions();
  void settle_io();

  Random random_;
  size_t stack_bytes_;
  uint32_t submit_batch_;
  std::chrono::steady_clock::time_point start_;
  std::unique_ptr<io_uring> ring_;
  Status ring_status_;
  uint64_t next_task_id_ = 1;
  uint64_t next_timer_seq_ = 0;
  uint32_t cq_entries_ = 0;
  uint64_t ring_in_flight_ = 0;  // tracked SQEs whose CQE has not been reaped
  TaskId current_ = kNoTask;
  Task* current_ptr_ = nullptr;
  bool stop_requested_ = false;
  bool tearing_down_ = false;
  bool delivering_ = false;
  std::string failure_;
  std::map<TaskId, std::unique_ptr<Task>> tasks_;  // ordered: reports list tasks by id
  std::deque<Task*> runnable_;
  std::priority_queue<Timer, std::vector<Timer>, TimerLater> timers_;
  // Completions reaped or produced but not yet delivered; reused buffers, so
  // the steady state allocates nothing.
  std::vector<RingCompletion> ring_ready_;
  std::vector<RingCompletion> ring_delivering_;
  std::vector<LaterCompletion> later_ready_;
  std::vector<LaterCompletion> later_delivering_;
};

}  // namespace thinp::real
