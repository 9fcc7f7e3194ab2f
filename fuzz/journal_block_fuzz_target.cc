// Fuzz target: the journal's record and block decoders
// (engine/journal/record_codec.h).
//
// An input is either one encoded record (any size that is not a whole number
// of 4 KiB blocks; a record is at most 4082 bytes) or journal blocks. Every
// input goes through the three decoders:
//   - decode_record, the bytes as given. Records have one encoding each
//     (fixed-width fields, flags checked), so an accepted record must
//     re-encode to exactly the input.
//   - parse_journal_block_contents, the first 4096 bytes (truncated or
//     zero-padded); it skips the checksum, so the fuzzer reaches the
//     structure checks. An accepted block's fragments must tile its payload
//     exactly, in order, inside the block, as many as the header says.
//   - decode_journal_image, the input's whole blocks (at most kImageBlocksMax)
//     as given and with each block's location and checksum set to what the
//     image expects, so that the fuzzer reaches reassembly. The records must
//     have consecutive LSNs from the first block's first LSN, and packing
//     them again (JournalBlockPacker) must decode to the same records.
#include <algorithm>
#include <cstring>

#include "engine/format/block_header.h"
#include "engine/format/checksum.h"
#include "engine/journal/record_codec.h"
#include "fuzz/fuzz_targets.h"

namespace thinp::fuzz {
namespace {

using journal::Record;

constexpr size_t kImageBlocksMax = 4;
constexpr size_t kOffFragmentCount = 52;
constexpr size_t kOffPayloadBytes = 54;
constexpr size_t kOffFirstLsn = 56;

std::span<const std::byte> as_bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

std::vector<std::byte> encode(const Record& r) {
  std::vector<std::byte> out;
  journal::encode_record(r, out);
  return out;
}

void require_single_line(const Status& s) {
  fuzz_require(s.code() == Errc::corruption, "decoder error is not corruption");
  fuzz_require(!s.message().empty() && s.message().find('\n') == std::string::npos,
               "decoder error is not a single non-empty line");
}

void decode_record_and_recheck(std::span<const std::byte> bytes) {
  Result<Record> r = journal::decode_record(bytes);
  if (!r.ok()) return require_single_line(r.status());
  const std::vector<std::byte> again = encode(*r);
  fuzz_require(std::equal(again.begin(), again.end(), bytes.begin(), bytes.end()),
               "accepted record does not re-encode to the same bytes");
}

void parse_block_and_recheck(std::span<const std::byte> block) {
  Result<journal::ParsedJournalBlock> r = journal::parse_journal_block_contents(block);
  if (!r.ok()) return require_single_line(r.status());
  fuzz_require(!r->fragments.empty() && r->fragments.size() == get_u16(block, kOffFragmentCount),
               "fragment count differs from the header's");
  size_t off = journal::kJournalHeaderBytes;
  for (const journal::Fragment& f : r->fragments) {
    off += journal::kFragmentHeaderBytes;
    fuzz_require(!f.bytes.empty() && f.bytes.data() == block.data() + off,
                 "a fragment is empty or not where the previous one ends");
    off += f.bytes.size();
  }
  fuzz_require(off == journal::kJournalHeaderBytes + get_u16(block, kOffPayloadBytes) &&
                   off <= kMetadataBlockBytes,
               "fragments do not tile the payload");
}

// Packs `records` afresh and decodes them back; they must survive unchanged.
void repack_and_recheck(const std::vector<std::pair<Lsn, Record>>& records) {
  std::vector<std::vector<std::byte>> encoded;
  uint64_t total = 0;
  for (const auto& [lsn, r] : records) {
    encoded.push_back(encode(r));
    total += encoded.back().size();
  }
  std::vector<std::byte> image(
      journal::JournalBlockPacker::blocks_needed_bound(total, records.size()) *
      kMetadataBlockBytes);
  journal::JournalBlockPacker packer(image, journal::RingGeometry{MBlock(0), 1 << 20}, 0, 1, 0,
                                     records.front().first);
  for (const auto& e : encoded) packer.add(e);
  const uint64_t blocks = packer.finish();
  std::vector<std::pair<Lsn, Record>> again;
  const Status s = journal::decode_journal_image(
      std::span(image).first(blocks * kMetadataBlockBytes), MBlock(0), &again);
  fuzz_require(s.ok() && again.size() == records.size(), "repacked records do not decode");
  for (size_t i = 0; i < again.size(); ++i) {
    fuzz_require(again[i].first == records[i].first && encode(again[i].second) == encoded[i],
                 "repacked records decode differently");
  }
}

void decode_image_and_recheck(std::span<const std::byte> image, MBlock start) {
  std::vector<std::pair<Lsn, Record>> records;
  const Status s = journal::decode_journal_image(image, start, &records);
  if (!s.ok()) require_single_line(s);
  if (records.empty()) return;
  const Lsn first(get_u64(image, kOffFirstLsn));
  for (size_t i = 0; i < records.size(); ++i) {
    fuzz_require(records[i].first == first + i, "record LSNs are not consecutive");
  }
  repack_and_recheck(records);
}

// The input's whole blocks, each with the location the image expects and
// its checksum recomputed.
std::vector<std::byte> resealed_image(std::span<const std::byte> image, MBlock start) {
  std::vector<std::byte> out(image.begin(), image.end());
  for (size_t i = 0; i < out.size() / kMetadataBlockBytes; ++i) {
    const std::span<std::byte> b =
        std::span(out).subspan(i * kMetadataBlockBytes, kMetadataBlockBytes);
    put_u64(b, 8, (start + i).value());
    put_u32(b, 0, crc32c(b.subspan(4)));
  }
  return out;
}

std::vector<uint8_t> to_seed(std::span<const std::byte> b) {
  std::vector<uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

journal::PageWrite page_write(uint16_t offset, size_t length, uint8_t fill) {
  journal::PageWrite w;
  w.block = MBlock(321);
  w.offset = offset;
  w.page_type = BlockType::mapping_node;
  for (size_t i = 0; i < length; ++i) w.bytes.push_back(std::byte(fill + i));
  return w;
}

std::vector<Record> small_records() {
  return {
      journal::MetaRefDelta{MBlock(77), -1},
      journal::DataRangeAlloc{DBlock(4096), 64, ThinId(3)},
      journal::DataRangeRefDelta{DBlock(4100), 8, 2},
      journal::DeviceDetailsUpdate{ThinId(3), MBlock(88), 64, 1 << 20, 1, 2, 9, 0, false},
      page_write(100, 48, 0x30),
      journal::Commit{9},
  };
}

// Packs `records` at ring position 0 of a ring at block 200, from LSN 1000.
std::vector<std::byte> pack(const std::vector<Record>& records) {
  std::vector<std::byte> image(4 * kMetadataBlockBytes);
  journal::JournalBlockPacker packer(image, journal::RingGeometry{MBlock(200), 64}, 64 * 3, 0x5e55,
                                     0xabcdef, Lsn(1000));
  for (const Record& r : records) packer.add(encode(r));
  image.resize(packer.finish() * kMetadataBlockBytes);
  return image;
}

}  // namespace

int fuzz_journal_block(const uint8_t* data, size_t size) {
  const std::span<const std::byte> raw = as_bytes(data, size);
  decode_record_and_recheck(raw);
  std::vector<std::byte> block(kMetadataBlockBytes);
  if (size > 0) std::memcpy(block.data(), data, std::min(size, block.size()));
  parse_block_and_recheck(block);
  const size_t blocks = std::min(size / kMetadataBlockBytes, kImageBlocksMax);
  if (blocks == 0) return 0;
  const std::span<const std::byte> image = raw.first(blocks * kMetadataBlockBytes);
  const MBlock start = peek_block_header(image).location;
  decode_image_and_recheck(image, start);
  decode_image_and_recheck(resealed_image(image, start), start);
  return 0;
}

Status check_journal_block(const uint8_t* data, size_t size) {
  const std::span<const std::byte> raw = as_bytes(data, size);
  if (size == 0 || size % kMetadataBlockBytes != 0) return journal::decode_record(raw).status();
  return journal::decode_journal_image(raw, peek_block_header(raw).location, nullptr);
}

std::vector<FuzzSeed> seeds_journal_block() {
  std::vector<FuzzSeed> seeds;
  const std::vector<std::byte> records = pack(small_records());
  // A whole-page write after a small record spans two blocks: the first ends
  // with its first fragment (a partial record, which decodes to nothing), the
  // second starts with its last (which alone does not nest).
  const std::vector<std::byte> spanning =
      pack({journal::Commit{1}, page_write(0, journal::kPagePayloadBytes, 0x55)});
  const auto first_block = std::span(spanning).first(kMetadataBlockBytes);
  const auto second_block = std::span(spanning).subspan(kMetadataBlockBytes, kMetadataBlockBytes);
  seeds.push_back({"valid-block-records", to_seed(records)});
  seeds.push_back({"valid-block-first-fragment", to_seed(first_block)});
  seeds.push_back({"valid-record-page-write", to_seed(encode(page_write(4000, 64, 0x11)))});
  seeds.push_back({"valid-record-device-details", to_seed(encode(small_records()[3]))});

  seeds.push_back({"bad-block-last-fragment-alone", to_seed(second_block)});

  std::vector<std::byte> flipped = records;
  flipped[300] ^= std::byte{0x02};
  seeds.push_back({"bad-block-bitflip", to_seed(flipped)});

  std::vector<std::byte> payload = records;  // the last fragment runs past the payload
  put_u16(payload, kOffPayloadBytes, uint16_t(get_u16(payload, kOffPayloadBytes) - 1));
  put_u32(payload, 0, crc32c(std::span(payload).subspan(4)));
  seeds.push_back({"bad-block-payload-bytes", to_seed(payload)});

  std::vector<std::byte> init = encode(page_write(0, 16, 0));
  init[13] = std::byte{2};
  seeds.push_back({"bad-record-init-flag", to_seed(init)});

  std::vector<std::byte> outside = encode(page_write(4000, 64, 0));
  put_u16(outside, 14, 4001);  // the write now ends past the page payload
  seeds.push_back({"bad-record-outside-page", to_seed(outside)});
  return seeds;
}

}  // namespace thinp::fuzz
