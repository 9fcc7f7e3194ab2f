#include "engine/space_map/space_map_page.h"

#include <optional>
#include <string>

#include "engine/base/assert.h"

namespace thinp::space_map {

PageSlot page_slot_of(const PageRegion& region, MBlock location) {
  TP_ASSERT_GE(location, region.first);
  const uint64_t offset = location - region.first;
  TP_ASSERT_LT(offset, region.capacity);
  return PageSlot{offset / kSlotsPerPage, static_cast<unsigned>(offset % kSlotsPerPage)};
}

Result<ChosenSlot> read_newest_slot(const PageRegion& region, uint64_t page, BlockType type,
                                    const PageReader& read_page, const SlotFilter& usable) {
  std::optional<ChosenSlot> best;
  Lsn best_lsn;
  std::string failures;
  for (unsigned slot = 0; slot < kSlotsPerPage; ++slot) {
    const MBlock at = region.slot_location(page, slot);
    Result<std::vector<std::byte>> bytes = read_page(at);
    if (!bytes.ok()) return bytes.status();
    if (Status s = verify_block(bytes.value(), type, at); !s.ok()) {
      failures += (failures.empty() ? "" : "; ") + s.message();
      continue;  // a torn write, or never written
    }
    if (usable) {
      if (std::string why = usable(bytes.value()); !why.empty()) {
        failures += (failures.empty() ? "" : "; ") + why;
        continue;
      }
    }
    const Lsn lsn = peek_block_header(bytes.value()).lsn;
    // Equal LSNs mean the same state: either slot will do.
    if (!best || lsn > best_lsn) {
      best = ChosenSlot{std::move(bytes).value(), slot};
      best_lsn = lsn;
    }
  }
  if (!best) {
    return Status(Errc::corruption,
                  "neither slot of page " + std::to_string(page) + " verifies: " + failures);
  }
  return std::move(*best);
}

size_t varint_bytes(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::span<std::byte> out, size_t& offset, uint64_t v) {
  TP_ASSERT_LE(offset + varint_bytes(v), out.size());
  while (v >= 0x80) {
    out[offset++] = std::byte((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out[offset++] = std::byte(v);
}

bool get_varint(std::span<const std::byte> in, size_t& offset, size_t end, uint64_t& v) {
  TP_ASSERT_LE(end, in.size());
  v = 0;
  for (size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (offset >= end) return false;
    const uint64_t b = std::to_integer<uint64_t>(in[offset++]);
    const uint64_t bits = b & 0x7f;
    // The tenth byte may only hold the top bit of a 64-bit value.
    if (i == kMaxVarintBytes - 1 && bits > 1) return false;
    v |= bits << (7 * i);
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace thinp::space_map
