// The seeded random source: xoshiro256** (Blackman and Vigna, 2018), seeded
// through SplitMix64.
//
// The algorithm is named and implemented here, not taken from <random>'s
// distributions, so that the same seed gives the same numbers with every
// compiler and standard library: a failing simulation seed replays bit for
// bit on any machine.
#pragma once

#include <cstdint>

#include "engine/base/assert.h"

namespace thinp {

class Random {
 public:
  explicit Random(uint64_t seed);

  uint64_t next_u64();

  // Uniform in [0, bound). bound must be > 0. Unbiased (rejection sampling).
  uint64_t uniform(uint64_t bound);

  // Uniform in [lo, hi] inclusive.
  uint64_t range(uint64_t lo, uint64_t hi) {
    TP_ASSERT_LE(lo, hi);
    if (hi - lo == UINT64_MAX) return next_u64();
    return lo + uniform(hi - lo + 1);
  }

  // True with probability p (0 <= p <= 1).
  bool chance(double p);

  // Uniform in [0, 1).
  double unit();

  // A new generator whose stream is independent of this one's future output;
  // used to give a subsystem (a disk, a workload) its own stream so that
  // adding a draw in one place does not shift every other.
  Random fork();

 private:
  uint64_t s_[4];
};

// SplitMix64 step, also useful as a quick 64-bit mixer.
uint64_t splitmix64(uint64_t& state);

}  // namespace thinp
