#include "engine/runtime/sync.h"

#include <algorithm>

#include "engine/base/assert.h"

namespace thinp {

// --- Mutex ------------------------------------------------------------------
// Ownership is handed directly to the first waiter on unlock(), so a task that
// releases and immediately re-locks cannot barge ahead of waiters.

Mutex::~Mutex() {
  // A simulated crash may destroy a world with locks held; that is fine. A
  // waiter left behind would be a bug only if its task were still alive, and
  // then the task itself is being destroyed too.
}

void Mutex::lock() {
  const TaskId me = rt_.current_task();
  TP_ASSERT_NE(me, kNoTask);
  TP_ASSERT_NE(owner_, me);  // not recursive
  if (owner_ == kNoTask) {
    owner_ = me;
    return;
  }
  waiters_.push_back(me);
  while (owner_ != me) rt_.park(name_);
}

bool Mutex::try_lock() {
  if (owner_ != kNoTask) return false;
  owner_ = rt_.current_task();
  TP_ASSERT_NE(owner_, kNoTask);
  return true;
}

void Mutex::unlock() {
  TP_ASSERT_EQ(owner_, rt_.current_task());
  if (waiters_.empty()) {
    owner_ = kNoTask;
    return;
  }
  owner_ = waiters_.front();
  waiters_.pop_front();
  rt_.unpark(owner_);
}

// --- CondVar ----------------------------------------------------------------

void CondVar::wait(Mutex& m) {
  const TaskId me = rt_.current_task();
  TP_ASSERT_EQ(m.owner(), me);
  waiters_.push_back(me);
  m.unlock();
  // Spurious wake-ups are allowed by contract; callers loop on a predicate.
  rt_.park(name_);
  // If we were woken by something other than notify, drop our queue entry.
  auto it = std::find(waiters_.begin(), waiters_.end(), me);
  if (it != waiters_.end()) waiters_.erase(it);
  m.lock();
}

void CondVar::notify_one() {
  if (waiters_.empty()) return;
  const TaskId t = waiters_.front();
  waiters_.pop_front();
  rt_.unpark(t);
}

void CondVar::notify_all() {
  std::deque<TaskId> all;
  all.swap(waiters_);
  for (TaskId t : all) rt_.unpark(t);
}

// --- Semaphore --------------------------------------------------------------
// Grants are FIFO: a large request at the head blocks later small ones, so a
// big acquirer cannot starve.

void Semaphore::acquire(uint64_t n) {
  if (waiters_.empty() && count_ >= n) {
    count_ -= n;
    return;
  }
  Waiter w{rt_.current_task(), n};
  TP_ASSERT_NE(w.task, kNoTask);
  waiters_.push_back(&w);
  while (!w.granted) rt_.park(name_);
}

bool Semaphore::try_acquire(uint64_t n) {
  if (!waiters_.empty() || count_ < n) return false;
  count_ -= n;
  return true;
}

void Semaphore::release(uint64_t n) {
  count_ += n;
  wake_eligible();
}

void Semaphore::wake_eligible() {
  while (!waiters_.empty() && waiters_.front()->n <= count_) {
    Waiter* w = waiters_.front();
    waiters_.pop_front();
    count_ -= w->n;
    w->granted = true;
    rt_.unpark(w->task);
  }
}

// --- Event ------------------------------------------------------------------

void Event::wait() {
  if (set_) return;
  const TaskId me = rt_.current_task();
  TP_ASSERT_NE(me, kNoTask);
  waiters_.push_back(me);
  while (!set_) rt_.park(name_);
}

void Event::set() {
  if (set_) return;
  set_ = true;
  std::deque<TaskId> all;
  all.swap(waiters_);
  for (TaskId t : all) rt_.unpark(t);
}

// --- WaitGroup --------------------------------------------------------------

void WaitGroup::done() {
  TP_ASSERT_GT(count_, 0u);
  if (--count_ > 0) return;
  std::deque<TaskId> all;
  all.swap(waiters_);
  for (TaskId t : all) rt_.unpark(t);
}

void WaitGroup::wait() {
  if (count_ == 0) return;
  const TaskId me = rt_.current_task();
  TP_ASSERT_NE(me, kNoTask);
  waiters_.push_back(me);
  while (count_ != 0) rt_.park(name_);
}

}  // namespace thinp
