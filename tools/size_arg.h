// Parsing of size arguments such as "4k", "64K", "1M", "2G", "512", "4KiB".
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/base/status.h"

namespace thinp::tools {

// Binary multiples: k = 1024, M = 1024^2, G = 1024^3, T = 1024^4. A plain
// number is bytes. Rejects empty strings, signs, fractions, unknown suffixes
// and values that overflow 64 bits, each with a message naming the text.
Result<uint64_t> parse_size(std::string_view text);

// Parses "A..B" (inclusive, A <= B) into a seed range.
struct SeedRange {
  uint64_t first = 0;
  uint64_t last = 0;
};
Result<SeedRange> parse_seed_range(std::string_view text);

}  // namespace thinp::tools
