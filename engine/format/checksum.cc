#include "engine/format/checksum.h"

#include <isa-l/crc.h>

namespace thinp {

uint32_t crc32c(std::span<const std::byte> bytes) {
  // ISA-L's crc32_iscsi takes and returns the raw register: seed with ~0 and
  // invert the result for the standard crc32c.
  return ~crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<std::byte*>(bytes.data())),
                      static_cast<int>(bytes.size()), 0xffffffffu);
}

}  // namespace thinp
