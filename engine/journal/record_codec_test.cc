#include "engine/journal/record_codec.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine/base/random.h"
#include "engine/io/block_device.h"

namespace thinp::journal {
namespace {

std::vector<Record> sample_records() {
  PageWrite page;
  page.block = MBlock(77);
  page.offset = 12;
  page.bytes = std::vector<std::byte>(300, std::byte{0xab});
  page.page_type = BlockType::mapping_node;
  page.init = true;
  PageWrite whole;
  whole.block = MBlock(78);
  whole.bytes = std::vector<std::byte>(kPagePayloadBytes, std::byte{0x11});
  DeviceDetailsUpdate details{ThinId(5), MBlock(9), 10, 20, 30, 40, 50, 0xdeadbeef, true};
  return {page,
          whole,
          MetaRefDelta{MBlock(3), -1},
          DataRangeRefDelta{DBlock(1000), 1u << 20, 1},
          DataRangeAlloc{DBlock(4096), 64, ThinId(7)},
          details,
          Commit{42}};
}

bool same(const Record& a, const Record& b) {
  std::vector<std::byte> ea, eb;
  encode_record(a, ea);
  encode_record(b, eb);
  return a.index() == b.index() && ea == eb;
}

TEST(RecordCodec, RoundTripsEveryKind) {
  for (const Record& r : sample_records()) {
    std::vector<std::byte> bytes;
    encode_record(r, bytes);
    EXPECT_EQ(bytes.size(), encoded_record_bytes(r));
    Result<Record> back = decode_record(bytes);
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_TRUE(same(r, *back)) << "kind " << r.index();
  }
  const std::vector<Record> samples = sample_records();  // kept alive: d refers into it
  const auto& d = std::get<DeviceDetailsUpdate>(samples[5]);
  std::vector<std::byte> bytes;
  encode_record(d, bytes);
  const auto back = std::get<DeviceDetailsUpdate>(decode_record(bytes).value());
  EXPECT_EQ(back.thin, ThinId(5));
  EXPECT_EQ(back.flags, 0xdeadbeefu);
  EXPECT_TRUE(back.deleted);
}

TEST(RecordCodec, RejectsMalformedRecords) {
  for (const Record& r : sample_records()) {
    std::vector<std::byte> bytes;
    encode_record(r, bytes);
    // Every truncation and one byte too many.
    for (size_t n = 0; n < bytes.size(); n += (bytes.size() > 64 ? 37 : 1)) {
      EXPECT_EQ(decode_record(std::span(bytes).first(n)).status().code(), Errc::corruption);
    }
    auto longer = bytes;
    longer.push_back(std::byte{0});
    EXPECT_EQ(decode_record(longer).status().code(), Errc::corruption);
  }
  std::vector<std::byte> unknown{std::byte{99}, std::byte{0}};
  EXPECT_EQ(decode_record(unknown).status().code(), Errc::corruption);
  // A page write that would run past the page.
  std::vector<std::byte> bytes;
  PageWrite w{MBlock(1), 4000, std::vector<std::byte>(64, std::byte{1})};
  encode_record(w, bytes);
  put_u16(bytes, 14, 4001);
  EXPECT_EQ(decode_record(bytes).status().code(), Errc::corruption);
  // A boolean that is neither 0 nor 1.
  put_u16(bytes, 14, 0);
  bytes[13] = std::byte{2};
  EXPECT_EQ(decode_record(bytes).status().code(), Errc::corruption);
}

TEST(RecordCodec, RandomBytesNeverCrashTheDecoders) {
  Random rng(5);
  std::vector<std::byte> block(kMetadataBlockBytes);
  for (int i = 0; i < 2000; ++i) {
    const size_t n = rng.uniform(200);
    std::vector<std::byte> bytes(n);
    for (auto& b : bytes) b = std::byte(rng.next_u64());
    if (n > 0) bytes[0] = std::byte(rng.range(1, 6));  // reach the per-kind checks
    (void)decode_record(bytes);
    for (auto& b : block) b = std::byte(rng.uniform(4) == 0 ? rng.next_u64() : 0);
    put_u16(block, 52, uint16_t(rng.uniform(8)));
    put_u16(block, 54, uint16_t(rng.uniform(5000)));
    (void)parse_journal_block_contents(block);
  }
}

// Packs `records` into a buffer of blocks and decodes them back.
std::vector<std::pair<Lsn, Record>> pack_and_decode(const std::vector<Record>& records,
                                                    uint64_t* blocks_out) {
  std::vector<std::vector<std::byte>> encoded(records.size());
  uint64_t total = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    encode_record(records[i], encoded[i]);
    total += encoded[i].size();
  }
  const uint64_t bound = JournalBlockPacker::blocks_needed_bound(total, records.size());
  AlignedBuffer buffer(bound * kMetadataBlockBytes);
  RingGeometry ring{MBlock(100), 1000};
  JournalBlockPacker packer(buffer.span(), ring, 10, 1234, 0, Lsn(50));
  for (const auto& e : encoded) packer.add(e);
  const uint64_t blocks = packer.finish();
  EXPECT_LE(blocks, bound);
  *blocks_out = blocks;
  std::vector<std::pair<Lsn, Record>> out;
  Status s =
      decode_journal_image(buffer.span().first(blocks * kMetadataBlockBytes), MBlock(110), &out);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

TEST(RecordCodec, WholePageRecordsSpanBlocks) {
  std::vector<Record> records;
  for (int i = 0; i < 5; ++i) {
    records.push_back(
        PageWrite{MBlock(uint64_t(i)), 0, std::vector<std::byte>(kPagePayloadBytes, std::byte(i))});
    records.push_back(MetaRefDelta{MBlock(uint64_t(i)), 1});
  }
  records.push_back(Commit{1});
  uint64_t blocks = 0;
  const auto out = pack_and_decode(records, &blocks);
  ASSERT_EQ(out.size(), records.size());
  EXPECT_GE(blocks, 6u);  // five records larger than a block's payload
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].first, Lsn(50 + i));
    EXPECT_TRUE(same(out[i].second, records[i])) << i;
  }
}

TEST(RecordCodec, PackerBoundHoldsForRandomTransactions) {
  Random rng(11);
  for (int round = 0; round < 200; ++round) {
    std::vector<Record> records;
    const uint64_t n = rng.range(1, 40);
    for (uint64_t i = 0; i < n; ++i) {
      if (rng.chance(0.5)) {
        const size_t len = rng.range(1, kPagePayloadBytes);
        records.push_back(PageWrite{MBlock(i), uint16_t(rng.uniform(kPagePayloadBytes - len + 1)),
                                    std::vector<std::byte>(len, std::byte(i))});
      } else {
        records.push_back(MetaRefDelta{MBlock(i), -1});
      }
    }
    records.push_back(Commit{uint64_t(round)});
    uint64_t blocks = 0;
    EXPECT_EQ(pack_and_decode(records, &blocks).size(), records.size());
  }
}

TEST(RecordCodec, DamagedBlocksAreRejected) {
  std::vector<Record> records{MetaRefDelta{MBlock(1), 1}, Commit{1}};
  std::vector<std::byte> a, b;
  encode_record(records[0], a);
  encode_record(records[1], b);
  AlignedBuffer buffer(kMetadataBlockBytes);
  JournalBlockPacker packer(buffer.span(), RingGeometry{MBlock(8), 16}, 3, 1, 0, Lsn(7));
  packer.add(a);
  packer.add(b);
  ASSERT_EQ(packer.finish(), 1u);
  Result<ParsedJournalBlock> ok = parse_journal_block(buffer.span(), MBlock(11));
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->header.seq, 3u);
  EXPECT_EQ(ok->header.first_lsn, Lsn(7));
  EXPECT_EQ(ok->header.last_lsn, Lsn(8));
  EXPECT_EQ(ok->fragments.size(), 2u);
  // Wrong place (a misdirected write) and a flipped bit.
  EXPECT_EQ(parse_journal_block(buffer.span(), MBlock(12)).status().code(), Errc::corruption);
  buffer.data()[200] ^= std::byte{1};
  EXPECT_EQ(parse_journal_block(buffer.span(), MBlock(11)).status().code(), Errc::corruption);
  // A structurally bad block with a valid checksum: count larger than the
  // fragments present.
  buffer.data()[200] ^= std::byte{1};
  put_u16(buffer.span(), 52, 3);
  seal_block(buffer.span(), BlockType::journal, MBlock(11), Lsn(8));
  EXPECT_EQ(parse_journal_block(buffer.span(), MBlock(11)).status().code(), Errc::corruption);
  put_u16(buffer.span(), 52, 2);
  seal_block(buffer.span(), BlockType::journal, MBlock(11), Lsn(8));
  ASSERT_TRUE(parse_journal_block(buffer.span(), MBlock(11)).ok());
}

// The packer records each block's index in its batch, and leaves zeros after
// the payload; a resealed block that breaks either is rejected.
TEST(RecordCodec, BatchIndexAndZeroTailAreChecked) {
  std::vector<std::byte> page;
  PageWrite w;
  w.block = MBlock(40);
  w.bytes.assign(kPagePayloadBytes, std::byte{0x3c});
  w.init = true;
  encode_record(w, page);
  AlignedBuffer buffer(3 * kMetadataBlockBytes);
  const RingGeometry ring{MBlock(8), 16};
  JournalBlockPacker packer(buffer.span(), ring, 5, 1, 0, Lsn(7));
  packer.add(page);
  ASSERT_EQ(packer.finish(), 2u);
  for (uint64_t i = 0; i < 2; ++i) {
    Result<ParsedJournalBlock> p =
        parse_journal_block(buffer.span().subspan(i * kMetadataBlockBytes, kMetadataBlockBytes),
                            ring.location_of(5 + i));
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    EXPECT_EQ(p->header.batch_index, i);
    EXPECT_EQ(p->header.batch_first_seq(), 5u);
  }
  const std::span<std::byte> second =
      buffer.span().subspan(kMetadataBlockBytes, kMetadataBlockBytes);
  const Lsn lsn = peek_block_header(second).lsn;
  second[kMetadataBlockBytes - 1] = std::byte{1};
  seal_block(second, BlockType::journal, ring.location_of(6), lsn);
  Result<ParsedJournalBlock> tail = parse_journal_block(second, ring.location_of(6));
  EXPECT_EQ(tail.status().code(), Errc::corruption);
  EXPECT_NE(tail.status().message().find("after the journal block payload"), std::string::npos);
  second[kMetadataBlockBytes - 1] = std::byte{0};
  put_u64(second, 64, 7);  // block 7 of a batch, at seq 6
  seal_block(second, BlockType::journal, ring.location_of(6), lsn);
  EXPECT_EQ(parse_journal_block(second, ring.location_of(6)).status().code(), Errc::corruption);
}

}  // namespace
}  // namespace thinp::journal
