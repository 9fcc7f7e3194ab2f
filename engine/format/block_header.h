// The header every 4 KiB metadata block starts with, and the checks that make
// a block trustworthy (DESIGN.md invariant 5).
//
// Layout (little-endian), 32 bytes:
//   0  u32 checksum   crc32c of bytes [4, 4096) of the block
//   4  u32 type       BlockType
//   8  u64 location   the block's own address (MBlock) on the metadata device
//   16 u64 lsn        journal sequence number of the last change applied
//   24 u64 reserved   zero
//
// A block is trusted only if its checksum, type and location all match what
// the reader expected: a misdirected or lost write shows up as a wrong
// location or an old checksum, never as wrong data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/base/status.h"
#include "engine/base/units.h"

namespace thinp {

enum class BlockType : uint32_t {
  superblock = 0x53555052,        // "SUPR"
  journal = 0x4a524e4c,           // "JRNL"
  metadata_space_map = 0x4d534d50,  // "MSMP"
  data_space_map = 0x44534d50,    // "DSMP"
  device_details = 0x44455654,    // "DEVT"
  mapping_node = 0x4d415050,      // "MAPP"
  test_page = 0x54455354,         // "TEST": pages written by the journal scenario
};

std::string_view block_type_name(BlockType t);

inline constexpr size_t kBlockHeaderBytes = 32;

struct BlockHeader {
  uint32_t checksum = 0;
  BlockType type = BlockType::test_page;
  MBlock location;
  Lsn lsn;
};

// Little-endian helpers for encoders and decoders.
void put_u16(std::span<std::byte> b, size_t off, uint16_t v);
void put_u32(std::span<std::byte> b, size_t off, uint32_t v);
void put_u64(std::span<std::byte> b, size_t off, uint64_t v);
uint16_t get_u16(std::span<const std::byte> b, size_t off);
uint32_t get_u32(std::span<const std::byte> b, size_t off);
uint64_t get_u64(std::span<const std::byte> b, size_t off);

// Writes the header (type, location, lsn) and then the checksum over the
// rest of the block. `block` must be exactly kMetadataBlockBytes long.
void seal_block(std::span<std::byte> block, BlockType type, MBlock location, Lsn lsn);

// Reads the header without checking anything.
BlockHeader peek_block_header(std::span<const std::byte> block);

// Checks checksum, type and location. Returns corruption with a message that
// names the block and what was wrong; never asserts, since the bytes come
// from a device.
Status verify_block(std::span<const std::byte> block, BlockType expected_type,
                    MBlock expected_location);

}  // namespace thinp
