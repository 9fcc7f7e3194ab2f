// Fuzz target: the metadata block header checks (engine/format/block_header.h).
//
// The oracle: after the checksum is recomputed, a block must verify against
// the type and location its own header claims exactly when its reserved word
// is zero, and a block that verifies must be exactly what seal_block writes
// for that header. verify_block is also run against every block type with the bytes as
// given, any size.
#include <algorithm>
#include <cstring>

#include "engine/format/block_header.h"
#include "engine/format/checksum.h"
#include "fuzz/fuzz_targets.h"

namespace thinp::fuzz {
namespace {

constexpr BlockType kTypes[] = {
    BlockType::superblock,     BlockType::journal,        BlockType::metadata_space_map,
    BlockType::data_space_map, BlockType::device_details, BlockType::mapping_node,
    BlockType::test_page,      static_cast<BlockType>(0),
};

std::span<const std::byte> as_bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

std::vector<uint8_t> sealed_seed(BlockType type, MBlock location, Lsn lsn, uint8_t fill) {
  std::vector<std::byte> block(kMetadataBlockBytes);
  for (size_t i = kBlockHeaderBytes; i < block.size(); ++i) block[i] = std::byte(fill + i);
  seal_block(block, type, location, lsn);
  std::vector<uint8_t> out(block.size());
  std::memcpy(out.data(), block.data(), block.size());
  return out;
}

}  // namespace

int fuzz_block_header(const uint8_t* data, size_t size) {
  const std::span<const std::byte> raw = as_bytes(data, size);
  for (BlockType t : kTypes) (void)verify_block(raw, t, MBlock(size % 7));
  if (size < kBlockHeaderBytes) return 0;

  const BlockHeader h = peek_block_header(raw);
  if (verify_block(raw, h.type, h.location).ok() && get_u64(raw, 24) == 0) {
    std::vector<std::byte> resealed(raw.begin(), raw.end());
    seal_block(resealed, h.type, h.location, h.lsn);
    fuzz_require(std::equal(resealed.begin(), resealed.end(), raw.begin(), raw.end()),
                 "a verified block differs from its resealed copy");
  }

  std::vector<std::byte> block(kMetadataBlockBytes);
  std::memcpy(block.data(), data, std::min(size, block.size()));
  put_u32(block, 0, crc32c(std::span(block).subspan(4)));
  // With the checksum right, only the reserved word can still be refused.
  fuzz_require(verify_block(block, h.type, h.location).ok() == (get_u64(block, 24) == 0),
               "a block with a correct checksum is judged on more than its reserved word");
  return 0;
}

Status check_block_header(const uint8_t* data, size_t size) {
  const std::span<const std::byte> raw = as_bytes(data, size);
  if (size < kBlockHeaderBytes) return verify_block(raw, BlockType::test_page, MBlock(0));
  const BlockHeader h = peek_block_header(raw);
  return verify_block(raw, h.type, h.location);
}

std::vector<FuzzSeed> seeds_block_header() {
  std::vector<FuzzSeed> seeds;
  seeds.push_back({"valid-journal", sealed_seed(BlockType::journal, MBlock(7), Lsn(99), 0x11)});
  seeds.push_back(
      {"valid-mapping-node", sealed_seed(BlockType::mapping_node, MBlock(123456), Lsn(5), 0x80)});
  std::vector<uint8_t> flipped = sealed_seed(BlockType::device_details, MBlock(3), Lsn(1), 0);
  flipped[2048] ^= 0x01;
  seeds.push_back({"bad-checksum", flipped});
  std::vector<uint8_t> truncated = sealed_seed(BlockType::journal, MBlock(7), Lsn(99), 0x11);
  truncated.resize(kMetadataBlockBytes - 512);
  seeds.push_back({"bad-truncated", truncated});
  return seeds;
}

}  // namespace thinp::fuzz
