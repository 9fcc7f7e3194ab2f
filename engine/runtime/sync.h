// Locks and signals that suspend the calling task instead of an OS thread.
//
// Built only on Runtime::park()/unpark(), so the same code runs under the
// simulator and the real reactor. All waiting is FIFO, which keeps the
// simulator deterministic and makes starvation impossible.
//
// None of these may be used from outside a task (they would have nothing to
// suspend). None is thread-safe: every task of a Runtime runs on one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>

#include "engine/runtime/runtime.h"

namespace thinp {

// A mutual-exclusion lock held across suspension points.
class Mutex {
 public:
  explicit Mutex(Runtime& rt, std::string_view name = "mutex") : rt_(rt), name_(name) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  ~Mutex();

  void lock();
  bool try_lock();
  void unlock();
  bool locked() const { return owner_ != kNoTask; }
  TaskId owner() const { return owner_; }

 private:
  friend class CondVar;
  Runtime& rt_;
  std::string_view name_;
  TaskId owner_ = kNoTask;
  std::deque<TaskId> waiters_;
};

// RAII holder for a Mutex.
class LockGuard {
 public:
  explicit LockGuard(Mutex& m) : m_(m) { m_.lock(); }
  ~LockGuard() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Mutex& m_;
};

// A condition variable for use with Mutex. As with any condition variable,
// wait() in a loop that re-checks the predicate.
class CondVar {
 public:
  explicit CondVar(Runtime& rt, std::string_view name = "condvar") : rt_(rt), name_(name) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Atomically releases `m` and suspends; re-acquires `m` before returning.
  // The caller must hold `m`.
  void wait(Mutex& m);
  void notify_one();
  void notify_all();
  size_t waiter_count() const { return waiters_.size(); }

 private:
  Runtime& rt_;
  std::string_view name_;
  std::deque<TaskId> waiters_;
};

// A counting semaphore.
class Semaphore {
 public:
  Semaphore(Runtime& rt, uint64_t initial, std::string_view name = "semaphore")
      : rt_(rt), name_(name), count_(initial) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  void acquire(uint64_t n = 1);
  bool try_acquire(uint64_t n = 1);
  void release(uint64_t n = 1);
  uint64_t available() const { return count_; }

 private:
  void wake_eligible();

  struct Waiter {
    TaskId task;
    uint64_t n;
    bool granted = false;
  };
  Runtime& rt_;
  std::string_view name_;
  uint64_t count_;
  std::deque<Waiter*> waiters_;
};

// A one-shot signal: wait() suspends until set() has been called once; after
// that every wait() returns at once. set() may be called from an IO
// completion or timer callback as well as from a task.
class Event {
 public:
  explicit Event(Runtime& rt, std::string_view name = "event") : rt_(rt), name_(name) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void wait();
  void set();
  bool is_set() const { return set_; }

 private:
  Runtime& rt_;
  std::string_view name_;
  bool set_ = false;
  std::deque<TaskId> waiters_;
};

// Counts outstanding tasks; wait() returns when the count is back to zero.
class WaitGroup {
 public:
  explicit WaitGroup(Runtime& rt, std::string_view name = "waitgroup") : rt_(rt), name_(name) {}
  void add(uint64_t n = 1) { count_ += n; }
  void done();
  void wait();
  uint64_t count() const { return count_; }

 private:
  Runtime& rt_;
  std::string_view name_;
  uint64_t count_ = 0;
  std::deque<TaskId> waiters_;
};

}  // namespace thinp
