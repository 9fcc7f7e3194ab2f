#include "engine/base/hash.h"

#include <cstring>

#include "engine/base/random.h"

namespace thinp {
namespace {

constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

inline uint64_t mix(uint64_t h) {
  uint64_t s = h;
  return splitmix64(s);
}

}  // namespace

uint64_t hash_bytes(std::span<const std::byte> bytes, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ mix(seed + bytes.size());
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = (h ^ w) * kFnvPrime;
    h ^= h >> 29;
  }
  for (; i < bytes.size(); ++i) h = (h ^ static_cast<uint8_t>(bytes[i])) * kFnvPrime;
  return mix(h);
}

void Digest::add_u64(uint64_t v) { state_ = mix((state_ ^ v) * kFnvPrime); }

void Digest::add_string(std::string_view s) {
  add_u64(hash_bytes(std::as_bytes(std::span<const char>(s.data(), s.size()))));
}

}  // namespace thinp
