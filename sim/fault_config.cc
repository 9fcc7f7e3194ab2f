#include "sim/fault_config.h"

#include <cstdio>
#include <iterator>

#include "engine/base/assert.h"

namespace thinp::sim {

std::string_view fault_kind_name(FaultKind f) {
  switch (f) {
    case FaultKind::none: return "none";
    case FaultKind::read_error: return "read_error";
    case FaultKind::write_error: return "write_error";
    case FaultKind::bit_flip: return "bit_flip";
    case FaultKind::misdirect: return "misdirect";
    case FaultKind::lost_write: return "lost_write";
    case FaultKind::slow: return "slow";
    case FaultKind::device_full: return "device_full";
  }
  return "?";
}

std::optional<FaultKind> fault_kind_from_name(std::string_view name) {
  for (uint8_t i = 0; i <= static_cast<uint8_t>(FaultKind::device_full); ++i) {
    const auto f = static_cast<FaultKind>(i);
    if (fault_kind_name(f) == name) return f;
  }
  return std::nullopt;
}

bool FaultConfig::any() const {
  return read_error > 0 || write_error > 0 || bit_flip > 0 || misdirect > 0 || lost_write > 0 ||
         slow > 0 || full_limit_bytes.has_value();
}

std::string FaultConfig::to_string() const {
  std::string s;
  auto add = [&](const char* name, double p) {
    if (p <= 0) return;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s=%.4f", s.empty() ? "" : " ", name, p);
    s += buf;
  };
  add("read_error", read_error);
  add("write_error", write_error);
  add("bit_flip", bit_flip);
  add("misdirect", misdirect);
  add("lost_write", lost_write);
  add("slow", slow);
  if (slow > 0) s += "x" + std::to_string(slow_factor);
  if (full_limit_bytes) s += std::string(s.empty() ? "" : " ") + "full@" + std::to_string(*full_limit_bytes);
  return s.empty() ? "none" : s;
}

FaultConfig random_swarm_faults(Random& rng, uint64_t size_bytes, uint32_t sector_bytes) {
  TP_ASSERT_GT(sector_bytes, 0u);
  TP_ASSERT_EQ(size_bytes % sector_bytes, 0u);
  // Roughly log-uniform in [0.001, 0.05]: most enabled faults are rare, a
  // few are frequent enough to pile up on each other. A table, not pow(),
  // because libm results may differ in the last bit between machines.
  static constexpr double kRates[] = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05};
  auto rate = [&]() -> double {
    const bool on = rng.chance(0.5);
    const double r = kRates[rng.uniform(std::size(kRates))];
    return on ? r : 0.0;
  };
  FaultConfig f;
  // One draw per class in a fixed order, whatever the outcome, so that the
  // stream position (and so every later draw) does not depend on earlier results.
  f.read_error = rate();
  f.write_error = rate();
  f.bit_flip = rate();
  f.misdirect = rate();
  f.lost_write = rate();
  f.slow = rate();
  f.slow_factor = static_cast<uint32_t>(rng.range(10, 100));
  const bool full = rng.chance(0.25);
  const uint64_t sectors = size_bytes / sector_bytes;
  const uint64_t limit_sector = rng.range(sectors / 2, sectors);
  if (full) f.full_limit_bytes = limit_sector * sector_bytes;
  return f;
}

}  // namespace thinp::sim
