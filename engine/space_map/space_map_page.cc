#include "engine/space_map/space_map_page.h"

#include "engine/base/assert.h"

namespace thinp::space_map {

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
