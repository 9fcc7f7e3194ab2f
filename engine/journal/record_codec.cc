#include "engine/journal/record_codec.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>

#include "engine/format/block_header.h"

namespace thinp::journal {
namespace {

// Record kinds on disk. Never renumber: they are part of the format.
enum class RecordKind : uint8_t {
  page_write = 1,
  meta_ref_delta = 2,
  data_range_ref_delta = 3,
  data_range_alloc = 4,
  device_details_update = 5,
  commit = 6,
};

// Encoded sizes, kind byte included. PageWrite is variable: fixed part plus
// the bytes.
//   page_write:            kind, u64 block, u32 page_type, u8 init, u16 offset,
//                          u16 length, bytes
//   meta_ref_delta:        kind, u64 block, i32 delta
//   data_range_ref_delta:  kind, u64 begin, u64 length, i32 delta
//   data_range_alloc:      kind, u64 begin, u64 length, u64 owner
//   device_details_update: kind, u64 thin, u64 mapping_root, u64 mapped,
//                          u64 virtual, u64 creation, u64 snapshot, u64 txid,
//                          u32 flags, u8 deleted
//   commit:                kind, u64 txn
constexpr size_t kPageWriteFixed = 1 + 8 + 4 + 1 + 2 + 2;
constexpr size_t kMetaRefDeltaBytes = 1 + 8 + 4;
constexpr size_t kDataRangeRefDeltaBytes = 1 + 8 + 8 + 4;
constexpr size_t kDataRangeAllocBytes = 1 + 8 + 8 + 8;
constexpr size_t kDeviceDetailsBytes = 1 + 8 * 7 + 4 + 1;
constexpr size_t kCommitBytes = 1 + 8;

Status corrupt(const std::string& what) { return Status(Errc::corruption, "journal: " + what); }

bool known_block_type(uint32_t t) {
  switch (static_cast<BlockType>(t)) {
    case BlockType::superblock:
    case BlockType::journal:
    case BlockType::metadata_space_map:
    case BlockType::data_space_map:
    case BlockType::device_details:
    case BlockType::mapping_node:
    case BlockType::test_page:
      return true;
  }
  return false;
}

// A little-endian writer appending to a vector.
class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(std::byte(v)); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void bytes(std::span<const std::byte> b) { out_.insert(out_.end(), b.begin(), b.end()); }

 private:
  void put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(std::byte(v >> (8 * i)));
  }
  std::vector<std::byte>& out_;
};

}  // namespace

void encode_record(const Record& record, std::vector<std::byte>& out) {
  Writer w(out);
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, PageWrite>) {
          TP_ASSERT_LE(size_t(r.offset) + r.bytes.size(), kPagePayloadBytes);
          TP_ASSERT(!r.bytes.empty());
          w.u8(uint8_t(RecordKind::page_write));
          w.u64(r.block.value());
          w.u32(static_cast<uint32_t>(r.page_type));
          w.u8(r.init ? 1 : 0);
          w.u16(r.offset);
          w.u16(static_cast<uint16_t>(r.bytes.size()));
          w.bytes(r.bytes);
        } else if constexpr (std::is_same_v<T, MetaRefDelta>) {
          w.u8(uint8_t(RecordKind::meta_ref_delta));
          w.u64(r.block.value());
          w.u32(static_cast<uint32_t>(r.delta));
        } else if constexpr (std::is_same_v<T, DataRangeRefDelta>) {
          w.u8(uint8_t(RecordKind::data_range_ref_delta));
          w.u64(r.begin.value());
          w.u64(r.length);
          w.u32(static_cast<uint32_t>(r.delta));
        } else if constexpr (std::is_same_v<T, DataRangeAlloc>) {
          w.u8(uint8_t(RecordKind::data_range_alloc));
          w.u64(r.begin.value());
          w.u64(r.length);
          w.u64(r.owner.value());
        } else if constexpr (std::is_same_v<T, DeviceDetailsUpdate>) {
          w.u8(uint8_t(RecordKind::device_details_update));
          w.u64(r.thin.value());
          w.u64(r.mapping_root.value());
          w.u64(r.mapped_blocks);
          w.u64(r.virtual_blocks);
          w.u64(r.creation_time);
          w.u64(r.snapshot_time);
          w.u64(r.transaction_id);
          w.u32(r.flags);
          w.u8(r.deleted ? 1 : 0);
        } else {
          static_assert(std::is_same_v<T, Commit>);
          w.u8(uint8_t(RecordKind::commit));
          w.u64(r.txn);
        }
      },
      record);
}

size_t encoded_record_bytes(const Record& record) {
  return std::visit(
      [](const auto& r) -> size_t {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, PageWrite>) return kPageWriteFixed + r.bytes.size();
        if constexpr (std::is_same_v<T, MetaRefDelta>) return kMetaRefDeltaBytes;
        if constexpr (std::is_same_v<T, DataRangeRefDelta>) return kDataRangeRefDeltaBytes;
        if constexpr (std::is_same_v<T, DataRangeAlloc>) return kDataRangeAllocBytes;
        if constexpr (std::is_same_v<T, DeviceDetailsUpdate>) return kDeviceDetailsBytes;
        if constexpr (std::is_same_v<T, Commit>) return kCommitBytes;
      },
      record);
}

namespace {

Result<Record> decode_page_write(std::span<const std::byte> b) {
  if (b.size() < kPageWriteFixed) return corrupt("page write record too short");
  PageWrite r;
  r.block = MBlock(get_u64(b, 1));
  const uint32_t type = get_u32(b, 9);
  if (!known_block_type(type)) return corrupt("page write names unknown page type");
  r.page_type = static_cast<BlockType>(type);
  const uint8_t init = std::to_integer<uint8_t>(b[13]);
  if (init > 1) return corrupt("page write init flag is not 0 or 1");
  r.init = init == 1;
  r.offset = get_u16(b, 14);
  const uint16_t length = get_u16(b, 16);
  if (length == 0 || size_t(r.offset) + length > kPagePayloadBytes) {
    return corrupt("page write range [" + std::to_string(r.offset) + ", +" +
                   std::to_string(length) + ") is outside the page");
  }
  if (b.size() != kPageWriteFixed + length) return corrupt("page write length mismatch");
  r.bytes.assign(b.begin() + kPageWriteFixed, b.end());
  return Record(std::move(r));
}

Result<Record> decode_device_details(std::span<const std::byte> b) {
  DeviceDetailsUpdate r;
  r.thin = ThinId(get_u64(b, 1));
  r.mapping_root = MBlock(get_u64(b, 9));
  r.mapped_blocks = get_u64(b, 17);
  r.virtual_blocks = get_u64(b, 25);
  r.creation_time = get_u64(b, 33);
  r.snapshot_time = get_u64(b, 41);
  r.transaction_id = get_u64(b, 49);
  r.flags = get_u32(b, 57);
  const uint8_t deleted = std::to_integer<uint8_t>(b[61]);
  if (deleted > 1) return corrupt("device details deleted flag is not 0 or 1");
  r.deleted = deleted == 1;
  return Record(r);
}

}  // namespace

Result<Record> decode_record(std::span<const std::byte> b) {
  if (b.empty()) return corrupt("empty record");
  const auto kind = static_cast<RecordKind>(std::to_integer<uint8_t>(b[0]));
  auto expect_size = [&](size_t n) -> Status {
    if (b.size() != n) {
      return corrupt("record of kind " + std::to_string(uint8_t(kind)) + " has " +
                     std::to_string(b.size()) + " bytes, expected " + std::to_string(n));
    }
    return ok_status();
  };
  switch (kind) {
    case RecordKind::page_write:
      return decode_page_write(b);
    case RecordKind::meta_ref_delta: {
      TP_RETURN_IF_ERROR(expect_size(kMetaRefDeltaBytes));
      return Record(MetaRefDelta{MBlock(get_u64(b, 1)), static_cast<int32_t>(get_u32(b, 9))});
    }
    case RecordKind::data_range_ref_delta: {
      TP_RETURN_IF_ERROR(expect_size(kDataRangeRefDeltaBytes));
      DataRangeRefDelta r{DBlock(get_u64(b, 1)), get_u64(b, 9),
                          static_cast<int32_t>(get_u32(b, 17))};
      if (r.length == 0 || r.begin.value() + r.length < r.begin.value()) {
        return corrupt("data range ref delta has an empty or wrapping range");
      }
      return Record(r);
    }
    case RecordKind::data_range_alloc: {
      TP_RETURN_IF_ERROR(expect_size(kDataRangeAllocBytes));
      DataRangeAlloc r{DBlock(get_u64(b, 1)), get_u64(b, 9), ThinId(get_u64(b, 17))};
      if (r.length == 0 || r.begin.value() + r.length < r.begin.value()) {
        return corrupt("data range alloc has an empty or wrapping range");
      }
      return Record(r);
    }
    case RecordKind::device_details_update:
      TP_RETURN_IF_ERROR(expect_size(kDeviceDetailsBytes));
      return decode_device_details(b);
    case RecordKind::commit:
      TP_RETURN_IF_ERROR(expect_size(kCommitBytes));
      return Record(Commit{get_u64(b, 1)});
  }
  return corrupt("unknown record kind " + std::to_string(uint8_t(kind)));
}

// --- Journal blocks ------------------------------------------------------------

Result<ParsedJournalBlock> parse_journal_block(std::span<const std::byte> block, MBlock location) {
  TP_RETURN_IF_ERROR(verify_block(block, BlockType::journal, location));
  return parse_journal_block_contents(block);
}

Result<ParsedJournalBlock> parse_journal_block_contents(std::span<const std::byte> block) {
  if (block.size() != kMetadataBlockBytes) return corrupt("journal block has the wrong size");
  ParsedJournalBlock p;
  p.crc = get_u32(block, 0);
  p.header.last_lsn = Lsn(get_u64(block, 16));
  p.header.seq = get_u64(block, 32);
  p.header.session = get_u64(block, 40);
  p.header.prev_crc = get_u32(block, 48);
  const uint16_t count = get_u16(block, 52);
  const uint16_t payload = get_u16(block, 54);
  p.header.first_lsn = Lsn(get_u64(block, 56));
  p.header.batch_index = get_u64(block, 64);
  if (p.header.batch_index > p.header.seq) {
    return corrupt("journal block " + std::to_string(p.header.seq) + " claims to be block " +
                   std::to_string(p.header.batch_index) + " of its batch");
  }
  if (count == 0 || payload > kJournalPayloadBytes) {
    return corrupt("journal block has " + std::to_string(count) + " fragments in " +
                   std::to_string(payload) + " bytes");
  }
  if (p.header.first_lsn == Lsn(0)) return corrupt("journal block has first LSN 0");
  const auto frags = block.subspan(kJournalHeaderBytes, payload);
  size_t off = 0;
  uint64_t record_starts = 0;
  p.fragments.reserve(count);
  for (uint16_t i = 0; i < count; ++i) {
    if (frags.size() - off < kFragmentHeaderBytes) return corrupt("fragment header past the end");
    const uint8_t kind = std::to_integer<uint8_t>(frags[off]);
    const uint16_t len = get_u16(frags, off + 2);
    if (kind < 1 || kind > 4 || frags[off + 1] != std::byte{0}) {
      return corrupt("bad fragment kind " + std::to_string(kind));
    }
    off += kFragmentHeaderBytes;
    if (len == 0 || len > frags.size() - off) return corrupt("fragment length past the end");
    const auto k = static_cast<FragmentKind>(kind);
    if ((k == FragmentKind::middle || k == FragmentKind::last) && i != 0) {
      return corrupt("continuation fragment is not first in its block");
    }
    if ((k == FragmentKind::first || k == FragmentKind::middle) && i + 1 != count) {
      return corrupt("unfinished fragment is not last in its block");
    }
    if (k == FragmentKind::full || k == FragmentKind::first) ++record_starts;
    p.fragments.push_back(Fragment{k, frags.subspan(off, len)});
    off += len;
  }
  if (off != payload) return corrupt("fragments do not fill the block's payload exactly");
  // The packer zeroes each block before filling it.
  for (size_t i = kJournalHeaderBytes + payload; i < block.size(); ++i) {
    if (block[i] != std::byte{0}) return corrupt("non-zero bytes after the journal block payload");
  }
  const bool starts_with_record = p.fragments.front().kind == FragmentKind::full ||
                                  p.fragments.front().kind == FragmentKind::first;
  const uint64_t span = record_starts - (starts_with_record ? 1 : 0);
  if (p.header.last_lsn.value() < p.header.first_lsn.value() ||
      p.header.last_lsn - p.header.first_lsn != span) {
    return corrupt("journal block LSN range does not match its fragments");
  }
  return p;
}

// --- Packer ----------------------------------------------------------------------

JournalBlockPacker::JournalBlockPacker(std::span<std::byte> buffer, RingGeometry ring,
                                       uint64_t first_seq, uint64_t session, uint32_t prev_crc,
                                       Lsn first_lsn)
    : buffer_(buffer),
      ring_(ring),
      first_seq_(first_seq),
      session_(session),
      prev_crc_(prev_crc),
      next_lsn_(first_lsn) {
  TP_ASSERT_EQ(buffer.size() % kMetadataBlockBytes, 0u);
  TP_ASSERT_GT(first_lsn, Lsn(0));
  TP_ASSERT_GT(ring.length_blocks, 0u);
}

uint64_t JournalBlockPacker::blocks_needed_bound(uint64_t total_bytes, uint64_t record_count) {
  // Every block but the last loses at most one fragment header's worth of
  // space to padding and holds at most one fragment that does not end a
  // record, so (blocks - 1) * (P - 2h) <= bytes + h * records. blocks - 1 is
  // an integer, so it is at most the floor of the right side over (P - 2h).
  constexpr uint64_t usable = kJournalPayloadBytes - 2 * kFragmentHeaderBytes;
  return (total_bytes + kFragmentHeaderBytes * record_count) / usable + 1;
}

void JournalBlockPacker::open_block() {
  TP_ASSERT(!open_);
  TP_ASSERT_LT((blocks_ + 1) * kMetadataBlockBytes, buffer_.size() + 1);
  auto b = block(blocks_);
  std::memset(b.data(), 0, b.size());
  open_ = true;
  used_ = 0;
  fragments_ = 0;
  ++blocks_;
}

void JournalBlockPacker::close_block() {
  TP_ASSERT(open_);
  TP_ASSERT_GT(fragments_, 0u);
  auto b = block(blocks_ - 1);
  const uint64_t seq = first_seq_ + blocks_ - 1;
  put_u64(b, 32, seq);
  put_u64(b, 40, session_);
  put_u32(b, 48, prev_crc_);
  put_u16(b, 52, fragments_);
  put_u16(b, 54, static_cast<uint16_t>(used_));
  put_u64(b, 56, block_first_lsn_.value());
  put_u64(b, 64, blocks_ - 1);  // batch_index: one packer packs one batch
  seal_block(b, BlockType::journal, ring_.location_of(seq), block_last_lsn_);
  prev_crc_ = get_u32(b, 0);
  open_ = false;
}

void JournalBlockPacker::add(std::span<const std::byte> encoded) {
  TP_ASSERT(!finished_);
  TP_ASSERT(!encoded.empty());
  TP_ASSERT_LE(encoded.size(), kMaxEncodedRecordBytes);
  const Lsn lsn = next_lsn_;
  ++next_lsn_;
  size_t done = 0;
  while (done < encoded.size()) {
    if (open_ && kJournalPayloadBytes - used_ < kFragmentHeaderBytes + 1) close_block();
    if (!open_) {
      open_block();
      block_first_lsn_ = lsn;
    }
    const size_t room = kJournalPayloadBytes - used_ - kFragmentHeaderBytes;
    const size_t n = std::min(room, encoded.size() - done);
    const bool begins = done == 0;
    const bool ends = done + n == encoded.size();
    const FragmentKind kind = begins ? (ends ? FragmentKind::full : FragmentKind::first)
                                     : (ends ? FragmentKind::last : FragmentKind::middle);
    auto frags = block(blocks_ - 1).subspan(kJournalHeaderBytes);
    frags[used_] = std::byte(static_cast<uint8_t>(kind));
    put_u16(frags, used_ + 2, static_cast<uint16_t>(n));
    std::memcpy(frags.data() + used_ + kFragmentHeaderBytes, encoded.data() + done, n);
    used_ += kFragmentHeaderBytes + n;
    ++fragments_;
    block_last_lsn_ = lsn;
    done += n;
    if (!ends) close_block();  // the rest continues in the next block
  }
}

uint64_t JournalBlockPacker::finish() {
  TP_ASSERT(!finished_);
  if (open_) close_block();
  finished_ = true;
  return blocks_;
}

// --- Assembler -------------------------------------------------------------------

void RecordAssembler::restart(Lsn next_lsn) {
  next_lsn_ = next_lsn;
  partial_ = false;
  partial_bytes_.clear();
}

Status RecordAssembler::add_block(const ParsedJournalBlock& block,
                                  std::vector<std::pair<Lsn, Record>>& out) {
  const Lsn expected = partial_ ? partial_lsn_ : next_lsn_;
  if (block.header.first_lsn != expected) {
    return corrupt("block first LSN " + std::to_string(block.header.first_lsn.value()) +
                   " does not continue LSN " + std::to_string(expected.value()));
  }
  for (const Fragment& f : block.fragments) {
    const bool continues = f.kind == FragmentKind::middle || f.kind == FragmentKind::last;
    if (continues != partial_) return corrupt("fragments of a record do not nest");
    if (!partial_) partial_lsn_ = next_lsn_;
    if (partial_bytes_.size() + f.bytes.size() > kMaxEncodedRecordBytes) {
      return corrupt("record longer than the largest record");
    }
    partial_bytes_.insert(partial_bytes_.end(), f.bytes.begin(), f.bytes.end());
    partial_ = f.kind == FragmentKind::first || f.kind == FragmentKind::middle;
    if (partial_) continue;
    Result<Record> r = decode_record(partial_bytes_);
    partial_bytes_.clear();
    if (!r.ok()) return r.status().with_context("LSN " + std::to_string(partial_lsn_.value()));
    out.emplace_back(partial_lsn_, std::move(r).value());
    next_lsn_ = partial_lsn_ + 1;
  }
  return ok_status();
}

Status decode_journal_image(std::span<const std::byte> image, MBlock start,
                            std::vector<std::pair<Lsn, Record>>* out) {
  if (image.size() % kMetadataBlockBytes != 0) return corrupt("image is not whole blocks");
  std::vector<std::pair<Lsn, Record>> sink;
  std::vector<std::pair<Lsn, Record>>& records = out != nullptr ? *out : sink;
  std::optional<RecordAssembler> assembler;
  uint64_t first_seq = 0;
  for (uint64_t i = 0; i < image.size() / kMetadataBlockBytes; ++i) {
    auto bytes = image.subspan(i * kMetadataBlockBytes, kMetadataBlockBytes);
    TP_ASSIGN_OR_RETURN(ParsedJournalBlock p, parse_journal_block(bytes, start + i));
    if (!assembler) {
      assembler.emplace(p.header.first_lsn);
      first_seq = p.header.seq;
    } else if (p.header.seq != first_seq + i) {
      return corrupt("block sequence does not continue");
    }
    TP_RETURN_IF_ERROR(assembler->add_block(p, records));
  }
  return ok_status();
}

}  // namespace thinp::journal
