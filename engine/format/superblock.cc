#include "engine/format/superblock.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "engine/format/block_header.h"

namespace thinp {
namespace {

// Byte offsets in the superblock block (docs/format.md keeps the same table).
// Bytes 0-31 are the block header; every byte not listed is reserved, written
// as zero and refused by the decoder if it is not.
namespace off {
constexpr size_t magic = 32;                  // u64
constexpr size_t format_version = 40;         // u32
constexpr size_t flags = 44;                  // u32
constexpr size_t sequence = 48;               // u64
constexpr size_t uuid = 56;                   // 16 bytes
constexpr size_t metadata_block_bytes = 72;   // u32, always 4096
constexpr size_t data_block_bytes = 76;       // u32
constexpr size_t metadata_blocks = 80;        // u64
constexpr size_t data_blocks = 88;            // u64
constexpr size_t data_offset_bytes = 96;      // u64
constexpr size_t data_on_metadata_device = 104;  // u8
constexpr size_t out_of_data_space_mode = 105;   // u8
constexpr size_t zero_new_blocks = 106;          // u8
// 107: u8 reserved
constexpr size_t pinned_root_count = 108;     // u32
constexpr size_t metadata_blocks_max = 112;   // u64
constexpr size_t journal = 120;               // u64 begin, u64 blocks
constexpr size_t metadata_space_map = 136;    // u64 begin, u64 blocks
constexpr size_t data_space_map = 152;        // u64 begin, u64 blocks
constexpr size_t tree_pool = 168;             // u64 begin, u64 blocks
constexpr size_t journal_tail_lsn = 184;      // u64
constexpr size_t journal_tail_block = 192;    // u64
constexpr size_t checkpoint_lsn = 200;        // u64
constexpr size_t device_details_root = 208;   // u64
constexpr size_t time = 216;                  // u32
// 220: u32 reserved
constexpr size_t transaction_id = 224;        // u64
constexpr size_t data_blocks_max = 232;       // u64
constexpr size_t data_blocks_per_space_map_page = 240;  // u64
constexpr size_t fields_end = 248;            // 248-255 reserved
constexpr size_t query_area = 256;            // kQueryAreaCapacity entries
constexpr size_t query_entry_bytes = 32;      // u64 thin, u64 root, u64 lsn, u32 time, u32 0
constexpr size_t query_area_end = query_area + kQueryAreaCapacity * query_entry_bytes;  // 2304
}  // namespace off

static_assert(off::query_area_end <= kMetadataBlockBytes);

constexpr uint32_t kFlagCleanShutdown = 1u << 0;
constexpr uint32_t kFlagNeedsCheck = 1u << 1;
constexpr uint32_t kFlagsKnown = kFlagCleanShutdown | kFlagNeedsCheck;

Status corrupt(std::string message) { return Status(Errc::corruption, std::move(message)); }

void put_range(std::span<std::byte> b, size_t at, const BlockRange& r) {
  put_u64(b, at, r.begin.value());
  put_u64(b, at + 8, r.blocks);
}

BlockRange get_range(std::span<const std::byte> b, size_t at) {
  return {MBlock(get_u64(b, at)), get_u64(b, at + 8)};
}

// The reserved byte ranges [begin, end) of the block.
struct ByteRange {
  size_t begin, end;
};
constexpr ByteRange kReserved[] = {
    {107, 108}, {220, 224}, {off::fields_end, off::query_area}, {off::query_area_end, 4096}};

Status check_zero(std::span<const std::byte> b, size_t begin, size_t end, const char* what) {
  for (size_t i = begin; i < end; ++i) {
    if (b[i] != std::byte{0}) {
      return corrupt(std::string(what) + " byte " + std::to_string(i) + " is not zero");
    }
  }
  return ok_status();
}

Result<bool> get_bool(std::span<const std::byte> b, size_t at, const char* name) {
  const uint8_t v = std::to_integer<uint8_t>(b[at]);
  if (v > 1) return corrupt(std::string(name) + " is " + std::to_string(v) + ", not 0 or 1");
  return v == 1;
}

void encode_query_area(const Superblock& sb, std::span<std::byte> b) {
  for (size_t i = 0; i < sb.pinned_roots.size(); ++i) {
    const PinnedRoot& p = sb.pinned_roots[i];
    const size_t at = off::query_area + i * off::query_entry_bytes;
    put_u64(b, at, p.thin.value());
    put_u64(b, at + 8, p.root.value());
    put_u64(b, at + 16, p.pinned_lsn.value());
    put_u32(b, at + 24, p.pinned_time.value());
  }
}

// Decodes the query area; `count` was bounds-checked by the caller. Entries
// past `count` must be zero.
Status decode_query_area(std::span<const std::byte> b, uint32_t count, Superblock& sb) {
  TP_ASSERT_LE(count, kQueryAreaCapacity);
  sb.pinned_roots.clear();
  for (size_t i = 0; i < count; ++i) {
    const size_t at = off::query_area + i * off::query_entry_bytes;
    PinnedRoot p;
    p.thin = ThinId(get_u64(b, at));
    p.root = MBlock(get_u64(b, at + 8));
    p.pinned_lsn = Lsn(get_u64(b, at + 16));
    p.pinned_time = SnapTime(get_u32(b, at + 24));
    TP_RETURN_IF_ERROR(check_zero(b, at + 28, at + 32, "pinned root reserved"));
    sb.pinned_roots.push_back(p);
  }
  return check_zero(b, off::query_area + count * off::query_entry_bytes, off::query_area_end,
                    "unused query area");
}

Status check_version(uint32_t version) {
  if (version > kFormatVersion) {
    return Status(Errc::unsupported, "created by a newer thinp (format version " +
                                         std::to_string(version) + ", this build reads up to " +
                                         std::to_string(kFormatVersion) + ")");
  }
  if (version == 0) return corrupt("format version 0 is not a thinp format version");
  return ok_status();
}

// Decodes the fields after the header checks passed. `sb` gets every field;
// validity is checked afterwards by validate_superblock().
Status decode_fields(std::span<const std::byte> b, Superblock& sb) {
  for (const ByteRange& r : kReserved) TP_RETURN_IF_ERROR(check_zero(b, r.begin, r.end, "reserved"));
  const uint32_t flags = get_u32(b, off::flags);
  if ((flags & ~kFlagsKnown) != 0) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", flags & ~kFlagsKnown);
    return Status(Errc::unsupported,
                  std::string("unknown superblock flags ") + hex + " (written by a newer thinp?)");
  }
  sb.clean_shutdown = (flags & kFlagCleanShutdown) != 0;
  sb.needs_check = (flags & kFlagNeedsCheck) != 0;
  sb.sequence = get_u64(b, off::sequence);
  for (size_t i = 0; i < sb.uuid.size(); ++i) sb.uuid[i] = std::to_integer<uint8_t>(b[off::uuid + i]);
  const uint32_t metadata_block_bytes = get_u32(b, off::metadata_block_bytes);
  if (metadata_block_bytes != kMetadataBlockBytes) {
    return corrupt("metadata block size " + std::to_string(metadata_block_bytes) + " is not 4096");
  }
  sb.geometry.data_block_bytes = get_u32(b, off::data_block_bytes);
  sb.geometry.metadata_blocks = get_u64(b, off::metadata_blocks);
  sb.geometry.data_blocks = get_u64(b, off::data_blocks);
  sb.geometry.data_offset_bytes = get_u64(b, off::data_offset_bytes);
  TP_ASSIGN_OR_RETURN(sb.geometry.data_on_metadata_device,
                      get_bool(b, off::data_on_metadata_device, "data-on-metadata-device"));
  const uint8_t mode = std::to_integer<uint8_t>(b[off::out_of_data_space_mode]);
  if (mode > static_cast<uint8_t>(OutOfDataSpaceMode::error)) {
    return corrupt("out-of-data-space mode " + std::to_string(mode) + " is unknown");
  }
  sb.out_of_data_space_mode = static_cast<OutOfDataSpaceMode>(mode);
  TP_ASSIGN_OR_RETURN(sb.zero_new_blocks, get_bool(b, off::zero_new_blocks, "zero-new-blocks"));
  sb.layout.metadata_blocks_max = get_u64(b, off::metadata_blocks_max);
  sb.layout.data_blocks_max = get_u64(b, off::data_blocks_max);
  sb.layout.data_blocks_per_space_map_page = get_u64(b, off::data_blocks_per_space_map_page);
  sb.layout.journal = get_range(b, off::journal);
  sb.layout.metadata_space_map = get_range(b, off::metadata_space_map);
  sb.layout.data_space_map = get_range(b, off::data_space_map);
  sb.layout.tree_pool = get_range(b, off::tree_pool);
  sb.journal_tail_lsn = Lsn(get_u64(b, off::journal_tail_lsn));
  sb.journal_tail_block = MBlock(get_u64(b, off::journal_tail_block));
  sb.checkpoint_lsn = Lsn(get_u64(b, off::checkpoint_lsn));
  sb.device_details_root = MBlock(get_u64(b, off::device_details_root));
  sb.time = SnapTime(get_u32(b, off::time));
  sb.transaction_id = TransactionId(get_u64(b, off::transaction_id));
  const uint32_t count = get_u32(b, off::pinned_root_count);
  if (count > kQueryAreaCapacity) {
    return corrupt("pinned root count " + std::to_string(count) + " exceeds the capacity of " +
                   std::to_string(kQueryAreaCapacity));
  }
  return decode_query_area(b, count, sb);
}

std::string slot_name(MBlock slot) { return "slot " + std::to_string(slot.value()); }

}  // namespace

std::string uuid_string(const Uuid& uuid) {
  std::string s;
  char hex[3];
  for (size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    std::snprintf(hex, sizeof hex, "%02x", uuid[i]);
    s += hex;
  }
  return s;
}

Superblock new_superblock(const Geometry& geometry, const Layout& layout, Random& random) {
  Superblock sb;
  sb.geometry = geometry;
  sb.layout = layout;
  for (size_t half = 0; half < 2; ++half) {
    const uint64_t r = random.next_u64();
    for (size_t i = 0; i < 8; ++i) sb.uuid[half * 8 + i] = static_cast<uint8_t>(r >> (8 * i));
  }
  sb.uuid[6] = static_cast<uint8_t>((sb.uuid[6] & 0x0f) | 0x40);  // version 4: random
  sb.uuid[8] = static_cast<uint8_t>((sb.uuid[8] & 0x3f) | 0x80);  // RFC 4122 variant
  sb.journal_tail_lsn = Lsn(1);
  sb.journal_tail_block = layout.journal.begin;
  sb.checkpoint_lsn = Lsn(0);
  return sb;
}

Status validate_superblock(const Superblock& sb) {
  TP_RETURN_IF_ERROR(check_version(sb.format_version));
  if (std::all_of(sb.uuid.begin(), sb.uuid.end(), [](uint8_t v) { return v == 0; })) {
    return corrupt("uuid is all zeroes");
  }
  Status s = validate_geometry(sb.geometry);
  if (!s.ok()) return corrupt("geometry: " + s.message());
  s = validate_layout(sb.geometry, sb.layout);
  if (!s.ok()) return corrupt("layout: " + s.message());
  const Layout& l = sb.layout;
  if (!l.journal.contains(sb.journal_tail_block)) {
    return corrupt("journal tail block " + std::to_string(sb.journal_tail_block.value()) +
                   " is outside the journal");
  }
  if (sb.journal_tail_lsn.value() == 0 ||
      sb.journal_tail_lsn.value() - 1 > sb.checkpoint_lsn.value()) {
    return corrupt("journal tail LSN " + std::to_string(sb.journal_tail_lsn.value()) +
                   " does not follow checkpoint LSN " +
                   std::to_string(sb.checkpoint_lsn.value()) +
                   " (records in between would be lost)");
  }
  if (sb.device_details_root != kNoRoot && !l.tree_pool.contains(sb.device_details_root)) {
    return corrupt("device details root " + std::to_string(sb.device_details_root.value()) +
                   " is outside the tree pool");
  }
  if (static_cast<uint8_t>(sb.out_of_data_space_mode) > 1) {
    return corrupt("out-of-data-space mode is unknown");
  }
  if (sb.pinned_roots.size() > kQueryAreaCapacity) {
    return corrupt(std::to_string(sb.pinned_roots.size()) + " pinned roots exceed the capacity of " +
                   std::to_string(kQueryAreaCapacity));
  }
  for (const PinnedRoot& p : sb.pinned_roots) {
    if (!l.tree_pool.contains(p.root)) {
      return corrupt("pinned root " + std::to_string(p.root.value()) + " of thin " +
                     std::to_string(p.thin.value()) + " is outside the tree pool");
    }
  }
  return ok_status();
}

void encode_superblock(const Superblock& sb, MBlock slot, std::span<std::byte> b) {
  TP_ASSERT_EQ(b.size(), kMetadataBlockBytes);
  TP_ASSERT_EQ(slot.value(), sb.sequence % kSuperblockSlots);
  const Status valid = validate_superblock(sb);
  TP_ASSERT_MSG(valid.ok(), valid.to_string());
  std::fill(b.begin(), b.end(), std::byte{0});
  put_u64(b, off::magic, kSuperblockMagic);
  put_u32(b, off::format_version, sb.format_version);
  put_u32(b, off::flags, (sb.clean_shutdown ? kFlagCleanShutdown : 0) |
                             (sb.needs_check ? kFlagNeedsCheck : 0));
  put_u64(b, off::sequence, sb.sequence);
  for (size_t i = 0; i < sb.uuid.size(); ++i) b[off::uuid + i] = std::byte{sb.uuid[i]};
  put_u32(b, off::metadata_block_bytes, kMetadataBlockBytes);
  put_u32(b, off::data_block_bytes, static_cast<uint32_t>(sb.geometry.data_block_bytes));
  put_u64(b, off::metadata_blocks, sb.geometry.metadata_blocks);
  put_u64(b, off::data_blocks, sb.geometry.data_blocks);
  put_u64(b, off::data_offset_bytes, sb.geometry.data_offset_bytes);
  b[off::data_on_metadata_device] = std::byte{sb.geometry.data_on_metadata_device ? uint8_t(1) : uint8_t(0)};
  b[off::out_of_data_space_mode] = std::byte{static_cast<uint8_t>(sb.out_of_data_space_mode)};
  b[off::zero_new_blocks] = std::byte{sb.zero_new_blocks ? uint8_t(1) : uint8_t(0)};
  put_u32(b, off::pinned_root_count, static_cast<uint32_t>(sb.pinned_roots.size()));
  put_u64(b, off::metadata_blocks_max, sb.layout.metadata_blocks_max);
  put_u64(b, off::data_blocks_max, sb.layout.data_blocks_max);
  put_u64(b, off::data_blocks_per_space_map_page, sb.layout.data_blocks_per_space_map_page);
  put_range(b, off::journal, sb.layout.journal);
  put_range(b, off::metadata_space_map, sb.layout.metadata_space_map);
  put_range(b, off::data_space_map, sb.layout.data_space_map);
  put_range(b, off::tree_pool, sb.layout.tree_pool);
  put_u64(b, off::journal_tail_lsn, sb.journal_tail_lsn.value());
  put_u64(b, off::journal_tail_block, sb.journal_tail_block.value());
  put_u64(b, off::checkpoint_lsn, sb.checkpoint_lsn.value());
  put_u64(b, off::device_details_root, sb.device_details_root.value());
  put_u32(b, off::time, sb.time.value());
  put_u64(b, off::transaction_id, sb.transaction_id.value());
  encode_query_area(sb, b);
  seal_block(b, BlockType::superblock, slot, sb.checkpoint_lsn);
}

Result<Superblock> decode_superblock(std::span<const std::byte> b, MBlock slot) {
  if (b.size() != kMetadataBlockBytes) {
    return corrupt("superblock of " + std::to_string(b.size()) + " bytes instead of 4096");
  }
  if (get_u64(b, off::magic) != kSuperblockMagic) {
    return Status(Errc::not_found, "no superblock magic");
  }
  // The version is checked before the checksum: a newer format may checksum
  // or lay out its header differently, and must still be refused as newer.
  Superblock sb;
  sb.format_version = get_u32(b, off::format_version);
  TP_RETURN_IF_ERROR(check_version(sb.format_version));
  TP_RETURN_IF_ERROR(verify_block(b, BlockType::superblock, slot));
  TP_RETURN_IF_ERROR(check_zero(b, 24, kBlockHeaderBytes, "block header reserved"));
  TP_RETURN_IF_ERROR(decode_fields(b, sb));
  if (sb.sequence == 0 || sb.sequence % kSuperblockSlots != slot.value()) {
    return corrupt("sequence number " + std::to_string(sb.sequence) + " does not belong in " +
                   slot_name(slot));
  }
  if (peek_block_header(b).lsn != sb.checkpoint_lsn) {
    return corrupt("header LSN differs from the checkpoint LSN " +
                   std::to_string(sb.checkpoint_lsn.value()));
  }
  TP_RETURN_IF_ERROR(validate_superblock(sb));
  return sb;
}

Status write_superblock(BlockDevice& dev, Superblock& sb) {
  sb.sequence += 1;
  const MBlock slot(sb.sequence % kSuperblockSlots);
  AlignedBuffer buf(kMetadataBlockBytes);
  encode_superblock(sb, slot, buf.span());
  const Status s = dev.write(slot.value() * kMetadataBlockBytes, buf.span(), /*fua=*/true);
  if (!s.ok()) {
    sb.sequence -= 1;
    return s.with_context("writing superblock " + slot_name(slot) + " of " + dev.name());
  }
  return ok_status();
}

Status erase_superblocks(BlockDevice& dev) {
  AlignedBuffer zeroes(kSuperblockSlots * kMetadataBlockBytes);
  const Status s = dev.write(0, zeroes.span(), /*fua=*/true);
  if (!s.ok()) return s.with_context("erasing the superblocks of " + dev.name());
  return ok_status();
}

Result<Superblock> read_superblock(BlockDevice& dev) {
  if (dev.size_bytes() < kSuperblockSlots * kMetadataBlockBytes) {
    return Status(Errc::not_found, dev.name() + " is not a thinp pool (" +
                                       std::to_string(dev.size_bytes()) +
                                       " bytes is too small to hold one)");
  }
  Status why[kSuperblockSlots];
  std::optional<Superblock> best;
  for (uint64_t i = 0; i < kSuperblockSlots; ++i) {
    const MBlock slot(i);
    AlignedBuffer buf(kMetadataBlockBytes);
    why[i] = dev.read(i * kMetadataBlockBytes, buf.span());
    if (!why[i].ok()) {
      why[i] = Status(Errc::io_error, "read failed: " + why[i].to_string());
      continue;
    }
    Result<Superblock> r = decode_superblock(buf.span(), slot);
    if (r.status().code() == Errc::unsupported) {
      return r.status().with_context(dev.name() + " " + slot_name(slot));
    }
    if (!r.ok()) {
      why[i] = r.status();
      continue;
    }
    if (!best || r->sequence > best->sequence) best = std::move(r).value();
  }
  if (best) return std::move(*best);
  const std::string detail =
      "slot 0: " + why[0].message() + "; slot 1: " + why[1].message();
  if (why[0].code() == Errc::not_found && why[1].code() == Errc::not_found) {
    return Status(Errc::not_found,
                  dev.name() + " is not a thinp pool (no superblock magic in slot 0 or slot 1)");
  }
  if (why[0].code() == Errc::io_error && why[1].code() == Errc::io_error) {
    return Status(Errc::io_error, "cannot read the superblock of " + dev.name() + ": " + detail);
  }
  return Status(Errc::corruption, "no valid superblock on " + dev.name() + ": " + detail);
}

Status pin_root(Superblock& sb, const PinnedRoot& pin) {
  for (const PinnedRoot& p : sb.pinned_roots) {
    if (p.thin == pin.thin && p.root == pin.root) {
      return Status(Errc::already_exists, "root " + std::to_string(pin.root.value()) + " of thin " +
                                              std::to_string(pin.thin.value()) + " is already pinned");
    }
  }
  if (sb.pinned_roots.size() >= kQueryAreaCapacity) {
    return Status(Errc::no_space, "the query area is full (" + std::to_string(kQueryAreaCapacity) +
                                      " pinned roots); unpin one first");
  }
  sb.pinned_roots.push_back(pin);
  return ok_status();
}

Status unpin_root(Superblock& sb, ThinId thin, MBlock root) {
  auto it = std::find_if(sb.pinned_roots.begin(), sb.pinned_roots.end(),
                         [&](const PinnedRoot& p) { return p.thin == thin && p.root == root; });
  if (it == sb.pinned_roots.end()) {
    return Status(Errc::not_found, "root " + std::to_string(root.value()) + " of thin " +
                                       std::to_string(thin.value()) + " is not pinned");
  }
  sb.pinned_roots.erase(it);
  return ok_status();
}

}  // namespace thinp
