// Fuzz target: the superblock decoder (engine/format/superblock.h).
//
// Every input is decoded three ways: the bytes exactly as given (any size), as
// a 4096-byte block (truncated or zero-padded), and as that block with its
// checksum recomputed, so that the fuzzer gets past crc32c and exercises the
// field checks. The oracle: whatever the decoder accepts must re-encode to the
// very same bytes (the encoder asserts every field is valid, so an accepted
// value the encoder would refuse aborts too).
#include <algorithm>
#include <cstring>

#include "engine/base/random.h"
#include "engine/format/block_header.h"
#include "engine/format/checksum.h"
#include "engine/format/superblock.h"
#include "fuzz/fuzz_targets.h"

namespace thinp::fuzz {
namespace {

std::span<const std::byte> as_bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

std::vector<std::byte> as_block(const uint8_t* data, size_t size) {
  std::vector<std::byte> block(kMetadataBlockBytes);
  if (size > 0) std::memcpy(block.data(), data, std::min(size, block.size()));
  return block;
}

// The slot a block claims to be in (its header's location), if 0 or 1.
MBlock claimed_slot(std::span<const std::byte> block) {
  if (block.size() < kBlockHeaderBytes) return kSuperblockSlot0;
  const MBlock location = peek_block_header(block).location;
  return location == kSuperblockSlot1 ? kSuperblockSlot1 : kSuperblockSlot0;
}

void decode_and_recheck(std::span<const std::byte> block, MBlock slot) {
  Result<Superblock> r = decode_superblock(block, slot);
  if (!r.ok()) {
    const std::string& m = r.status().message();
    fuzz_require(!m.empty() && m.find('\n') == std::string::npos,
                 "decoder error is not a single non-empty line");
    return;
  }
  std::vector<std::byte> again(kMetadataBlockBytes);
  encode_superblock(*r, slot, again);
  fuzz_require(std::equal(again.begin(), again.end(), block.begin(), block.end()),
               "accepted superblock does not re-encode to the same bytes");
}

std::vector<uint8_t> to_seed(std::span<const std::byte> b) {
  std::vector<uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

void reseal(std::span<std::byte> block) { put_u32(block, 0, crc32c(block.subspan(4))); }

std::vector<std::byte> encode(const Superblock& sb) {
  std::vector<std::byte> block(kMetadataBlockBytes);
  encode_superblock(sb, MBlock(sb.sequence % kSuperblockSlots), block);
  return block;
}

Superblock fresh_superblock() {
  Random random(1);
  const Geometry g = geometry_for_two_devices(16 << 20, uint64_t(1) << 30, 64 << 10).value();
  Superblock sb = new_superblock(g, compute_layout(g).value(), random);
  sb.sequence = 1;
  return sb;
}

// Every field away from its default, `pins` roots pinned.
Superblock busy_superblock(size_t pins) {
  Random random(2);
  const Geometry g = geometry_for_one_device(uint64_t(1) << 30, 8 << 20, 128 << 10).value();
  LayoutOptions o;
  o.journal_blocks = 64;
  const Layout l = compute_layout(g, o).value();
  Superblock sb = new_superblock(g, l, random);
  sb.sequence = 6;
  sb.journal_tail_lsn = Lsn(1000);
  sb.journal_tail_block = l.journal.begin + 17;
  sb.checkpoint_lsn = Lsn(1200);
  sb.device_details_root = l.tree_pool.begin + 5;
  sb.time = SnapTime(42);
  sb.transaction_id = TransactionId(77);
  sb.clean_shutdown = true;
  sb.out_of_data_space_mode = OutOfDataSpaceMode::error;
  sb.zero_new_blocks = false;
  for (size_t i = 0; i < pins; ++i) {
    sb.pinned_roots.push_back({ThinId(i), l.tree_pool.begin + 10 + i, Lsn(900 + i), SnapTime(i)});
  }
  return sb;
}

}  // namespace

int fuzz_superblock(const uint8_t* data, size_t size) {
  (void)decode_superblock(as_bytes(data, size), kSuperblockSlot0);
  (void)decode_superblock(as_bytes(data, size), kSuperblockSlot1);
  std::vector<std::byte> block = as_block(data, size);
  decode_and_recheck(block, claimed_slot(block));
  reseal(block);
  decode_and_recheck(block, claimed_slot(block));
  return 0;
}

Status check_superblock(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes = as_bytes(data, size);
  return decode_superblock(bytes, claimed_slot(bytes)).status();
}

std::vector<FuzzSeed> seeds_superblock() {
  std::vector<FuzzSeed> seeds;
  const std::vector<std::byte> fresh = encode(fresh_superblock());
  const std::vector<std::byte> busy = encode(busy_superblock(3));
  seeds.push_back({"valid-fresh", to_seed(fresh)});
  seeds.push_back({"valid-busy", to_seed(busy)});

  // A write torn after its first sector: new header and checksum over the
  // older copy's query area (the newer one pinned more roots).
  std::vector<std::byte> torn = encode(busy_superblock(20));
  std::copy(busy.begin() + 512, busy.end(), torn.begin() + 512);
  seeds.push_back({"bad-torn", to_seed(torn)});

  std::vector<std::byte> flipped = busy;
  flipped[300] ^= std::byte{0x04};
  seeds.push_back({"bad-bitflip", to_seed(flipped)});

  std::vector<std::byte> newer = fresh;
  put_u32(newer, 40, kFormatVersion + 1);
  reseal(newer);
  seeds.push_back({"bad-newer-version", to_seed(newer)});

  std::vector<std::byte> too_many = busy;
  put_u32(too_many, 108, kQueryAreaCapacity + 1);
  reseal(too_many);
  seeds.push_back({"bad-pinned-count", to_seed(too_many)});

  std::vector<std::byte> overlap = fresh;
  put_u64(overlap, 128, get_u64(overlap, 128) + 1);  // journal runs into the space map
  reseal(overlap);
  seeds.push_back({"bad-layout-overlap", to_seed(overlap)});

  seeds.push_back({"bad-short", to_seed(std::span(fresh).first(100))});
  return seeds;
}

}  // namespace thinp::fuzz
