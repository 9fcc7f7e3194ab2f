#include "engine/pool/range_lock.h"

#include "engine/base/assert.h"

namespace thinp::pool {

bool RangeLock::grantable(Handle h) const {
  for (auto it = requests_.begin(); it != h; ++it) {
    const bool overlap = it->begin < h->end && h->begin < it->end;
    if (overlap && !(it->shared && h->shared)) return false;
  }
  return true;
}

RangeLock::Handle RangeLock::lock(uint64_t begin, uint64_t end, bool shared) {
  TP_ASSERT(begin < end);
  mu_.lock();
  Handle h = requests_.insert(requests_.end(), Request{begin, end, shared});
  while (!grantable(h)) cv_.wait(mu_);
  mu_.unlock();
  return h;
}

void RangeLock::unlock(Handle h) {
  mu_.lock();
  requests_.erase(h);
  cv_.notify_all();
  mu_.unlock();
}

}  // namespace thinp::pool
