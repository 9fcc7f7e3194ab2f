// Non-cryptographic 64-bit hashing for traces, digests and content tokens.
//
// Digest values are printed and compared across runs and machines, so the
// function is fixed here (FNV-1a over 8-byte words, finished with a
// SplitMix64 mix), independent of std::hash. It is not a checksum for
// on-disk metadata: that is crc32c (engine/format).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace thinp {

uint64_t hash_bytes(std::span<const std::byte> bytes, uint64_t seed = 0);

// A running digest: feed it events, read the value at any time.
class Digest {
 public:
  void add_u64(uint64_t v);
  void add_bytes(std::span<const std::byte> bytes) { add_u64(hash_bytes(bytes)); }
  void add_string(std::string_view s);
  uint64_t value() const { return state_; }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

}  // namespace thinp
