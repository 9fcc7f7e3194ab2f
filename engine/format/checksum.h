// crc32c (Castagnoli), the checksum of every metadata block and journal
// record. Computed by ISA-L, which picks the fastest kernel for the CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace thinp {

// crc32c of `bytes`, with the conventional initial value and final xor, so
// crc32c("123456789") == 0xe3069283.
uint32_t crc32c(std::span<const std::byte> bytes);

}  // namespace thinp
