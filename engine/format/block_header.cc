#include "engine/format/block_header.h"

#include <cstring>
#include <string>

#include "engine/format/checksum.h"

namespace thinp {

std::string_view block_type_name(BlockType t) {
  switch (t) {
    case BlockType::superblock: return "superblock";
    case BlockType::journal: return "journal";
    case BlockType::metadata_space_map: return "metadata space map";
    case BlockType::data_space_map: return "data space map";
    case BlockType::device_details: return "device details";
    case BlockType::mapping_node: return "mapping node";
    case BlockType::test_page: return "test page";
  }
  return "unknown";
}

void put_u16(std::span<std::byte> b, size_t off, uint16_t v) {
  TP_ASSERT_LE(off + 2, b.size());
  for (int i = 0; i < 2; ++i) b[off + i] = std::byte(v >> (8 * i));
}
void put_u32(std::span<std::byte> b, size_t off, uint32_t v) {
  TP_ASSERT_LE(off + 4, b.size());
  for (int i = 0; i < 4; ++i) b[off + i] = std::byte(v >> (8 * i));
}
void put_u64(std::span<std::byte> b, size_t off, uint64_t v) {
  TP_ASSERT_LE(off + 8, b.size());
  for (int i = 0; i < 8; ++i) b[off + i] = std::byte(v >> (8 * i));
}
uint16_t get_u16(std::span<const std::byte> b, size_t off) {
  TP_ASSERT_LE(off + 2, b.size());
  uint16_t v = 0;
  for (int i = 0; i < 2; ++i) v |= uint16_t(std::to_integer<uint8_t>(b[off + i])) << (8 * i);
  return v;
}
uint32_t get_u32(std::span<const std::byte> b, size_t off) {
  TP_ASSERT_LE(off + 4, b.size());
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(std::to_integer<uint8_t>(b[off + i])) << (8 * i);
  return v;
}
uint64_t get_u64(std::span<const std::byte> b, size_t off) {
  TP_ASSERT_LE(off + 8, b.size());
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(std::to_integer<uint8_t>(b[off + i])) << (8 * i);
  return v;
}

void seal_block(std::span<std::byte> block, BlockType type, MBlock location, Lsn lsn) {
  TP_ASSERT_EQ(block.size(), kMetadataBlockBytes);
  put_u32(block, 4, static_cast<uint32_t>(type));
  put_u64(block, 8, location.value());
  put_u64(block, 16, lsn.value());
  put_u64(block, 24, 0);
  put_u32(block, 0, crc32c(block.subspan(4)));
}

BlockHeader peek_block_header(std::span<const std::byte> block) {
  TP_ASSERT_GE(block.size(), kBlockHeaderBytes);
  BlockHeader h;
  h.checksum = get_u32(block, 0);
  h.type = static_cast<BlockType>(get_u32(block, 4));
  h.location = MBlock(get_u64(block, 8));
  h.lsn = Lsn(get_u64(block, 16));
  return h;
}

Status verify_block(std::span<const std::byte> block, BlockType expected_type,
                    MBlock expected_location) {
  const std::string what = std::string(block_type_name(expected_type)) + " block " +
                           std::to_string(expected_location.value());
  if (block.size() != kMetadataBlockBytes) {
    return Status(Errc::corruption, what + " has size " + std::to_string(block.size()));
  }
  const BlockHeader h = peek_block_header(block);
  if (h.checksum != crc32c(block.subspan(4))) {
    return Status(Errc::corruption, what + ": checksum mismatch");
  }
  if (h.type != expected_type) {
    return Status(Errc::corruption, what + ": holds a block of type " +
                                        std::string(block_type_name(h.type)) + " instead");
  }
  if (h.location != expected_location) {
    return Status(Errc::corruption,
                  what + ": says it belongs at " + std::to_string(h.location.value()) +
                      " (misdirected write?)");
  }
  if (get_u64(block, 24) != 0) {
    return Status(Errc::corruption, what + ": reserved header bytes are not zero");
  }
  return ok_status();
}

}  // namespace thinp
