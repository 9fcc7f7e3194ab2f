// RangeLock: locks over ranges of virtual blocks of one thin ("cells").
//
// A request for [begin, end) is granted when no request that came before it
// (granted or still waiting) overlaps it, unless both are shared. Waiting
// requests count, so a stream of readers cannot starve a writer, and
// requests are granted in arrival order among those that overlap.
//
// Task only. The lock never does IO; a waiter is woken by every unlock and
// re-checks (the number of requests on one thin at once is small: the
// IOs in flight on it).
#pragma once

#include <cstdint>
#include <list>

#include "engine/runtime/runtime.h"
#include "engine/runtime/sync.h"

namespace thinp::pool {

class RangeLock {
 public:
  explicit RangeLock(Runtime& rt) : mu_(rt, "cells"), cv_(rt, "cells") {}
  RangeLock(const RangeLock&) = delete;
  RangeLock& operator=(const RangeLock&) = delete;

  struct Request {
    uint64_t begin = 0, end = 0;
    bool shared = false;
  };
  using Handle = std::list<Request>::iterator;

  Handle lock(uint64_t begin, uint64_t end, bool shared);
  void unlock(Handle h);
  size_t requests() const { return requests_.size(); }

 private:
  bool grantable(Handle h) const;

  Mutex mu_;
  CondVar cv_;
  std::list<Request> requests_;  // arrival order
};

// Holds a RangeLock range for a scope.
class RangeGuard {
 public:
  RangeGuard(RangeLock& lock, uint64_t begin, uint64_t end, bool shared)
      : lock_(lock), handle_(lock.lock(begin, end, shared)) {}
  ~RangeGuard() { lock_.unlock(handle_); }
  RangeGuard(const RangeGuard&) = delete;
  RangeGuard& operator=(const RangeGuard&) = delete;

 private:
  RangeLock& lock_;
  RangeLock::Handle handle_;
};

}  // namespace thinp::pool
