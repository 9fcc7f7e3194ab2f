// The on-disk encoding of journal records, and of the journal blocks that
// carry them.
//
// Records. Each record is encoded as one byte of kind followed by its fields,
// fixed-width little-endian (layouts in record_codec.cc). A record's LSN is
// not stored in it: LSNs are consecutive, so a record's LSN is its block's
// first LSN plus its position.
//
// Journal blocks. A journal block is a 4 KiB metadata block:
//   0   32-byte block header (engine/format/block_header.h): type journal,
//       location = the block's address, lsn = LSN of the last record that has
//       a fragment in this block
//   32  u64 seq            absolute block sequence number: the ring slot is
//                          seq % ring length and the ring lap ("epoch") is
//                          seq / ring length, so a stale block from an earlier
//                          lap always carries the wrong seq
//   40  u64 session        random per journal open; a change of session marks
//                          the first block written after a recovery
//   48  u32 prev_crc       checksum field of the previous block of the log (a
//                          hash chain: a block left over from a crashed session
//                          never continues a newer one)
//   52  u16 fragment_count >= 1
//   54  u16 payload_bytes  bytes of fragments that follow
//   56  u64 first_lsn      LSN of the record the first fragment belongs to
//   64  u64 batch_index    the block's position in its batch (0 for the
//                          first block of a group-commit batch; <= seq). A
//                          block of a batch that starts after block n proves
//                          n's batch was durable (recovery: corrupt middle
//                          block vs torn tail)
//   72  fragments: u8 kind, u8 zero, u16 length (>= 1), `length` bytes, then
//       zeros to the end of the block
//
// Records span blocks as fragments (kind full, or first / middle* / last), so
// a PageWrite of a whole page payload (4064 bytes) fits although a block
// carries only 4024 bytes of fragments.
//
// Everything here treats its input as untrusted: decoding checks every length
// and count, and malformed bytes give Errc::corruption, never an assertion.
// Fuzz targets: decode_record(), parse_journal_block_contents() (which skips
// the checksum, so the fuzzer reaches the structure checks) and
// decode_journal_image() (whole blocks, reassembly included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/journal/record.h"

namespace thinp::journal {

inline constexpr size_t kPagePayloadBytes = kMetadataBlockBytes - kBlockHeaderBytes;  // 4064
inline constexpr size_t kJournalHeaderBytes = 72;
inline constexpr size_t kJournalPayloadBytes = kMetadataBlockBytes - kJournalHeaderBytes;  // 4024
inline constexpr size_t kFragmentHeaderBytes = 4;
// The largest record: a PageWrite of a whole page payload.
inline constexpr size_t kMaxEncodedRecordBytes = 1 + 8 + 4 + 1 + 2 + 2 + kPagePayloadBytes;

enum class FragmentKind : uint8_t { full = 1, first = 2, middle = 3, last = 4 };

// --- Records -----------------------------------------------------------------

// Appends the encoding of `record` to `out`. The record must be well formed
// (PageWrite within the page payload); a malformed one is a caller bug and
// asserts.
void encode_record(const Record& record, std::vector<std::byte>& out);

// The size encode_record() appends for `record`.
size_t encoded_record_bytes(const Record& record);

// Decodes exactly one record occupying all of `bytes`. Any malformation
// (unknown kind, wrong length, out-of-range field) is Errc::corruption.
Result<Record> decode_record(std::span<const std::byte> bytes);

// --- Journal blocks ------------------------------------------------------------

struct JournalBlockHeader {
  uint64_t seq = 0;
  uint64_t session = 0;
  uint32_t prev_crc = 0;
  Lsn first_lsn;
  Lsn last_lsn;
  uint64_t batch_index = 0;  // position in its batch; seq - batch_index is the batch's first

  uint64_t batch_first_seq() const { return seq - batch_index; }
};

struct Fragment {
  FragmentKind kind = FragmentKind::full;
  std::span<const std::byte> bytes;  // points into the parsed block
};

struct ParsedJournalBlock {
  JournalBlockHeader header;
  uint32_t crc = 0;  // the block's checksum field: the next block's prev_crc
  std::vector<Fragment> fragments;
};

// The ring geometry a journal block's location is derived from.
struct RingGeometry {
  MBlock start;  // first block of the ring on the metadata device
  uint64_t length_blocks = 0;

  MBlock location_of(uint64_t seq) const { return start + seq % length_blocks; }
};

// Checks the block header (checksum, type journal, location) and then the
// journal structure. Does not check seq, session or LSN continuity: that is
// the reader's job (it knows what it expects next).
Result<ParsedJournalBlock> parse_journal_block(std::span<const std::byte> block, MBlock location);

// The structure checks of parse_journal_block() without the block header
// checks. For fuzzing, and for parse_journal_block() itself.
Result<ParsedJournalBlock> parse_journal_block_contents(std::span<const std::byte> block);

// Packs encoded records into consecutive journal blocks in `buffer` (a
// multiple of 4 KiB), starting with block sequence `first_seq`. Each record
// starts a new fragment; a record that does not fit the current block is
// split. finish() seals every block. The caller sizes `buffer` with
// blocks_needed_bound().
class JournalBlockPacker {
 public:
  JournalBlockPacker(std::span<std::byte> buffer, RingGeometry ring, uint64_t first_seq,
                     uint64_t session, uint32_t prev_crc, Lsn first_lsn);

  // Appends one encoded record whose LSN is the next one (first_lsn, +1, ...).
  void add(std::span<const std::byte> encoded);

  // Seals the blocks. Returns the number of blocks used (>= 1 if anything
  // was added). After it, last_crc() is the chain value for the next batch.
  uint64_t finish();
  uint32_t last_crc() const { return prev_crc_; }

  // An upper bound on the blocks `record_count` records of `total_bytes`
  // encoded bytes take when packed starting at a fresh block.
  static uint64_t blocks_needed_bound(uint64_t total_bytes, uint64_t record_count);

 private:
  std::span<std::byte> block(uint64_t i) {
    return buffer_.subspan(i * kMetadataBlockBytes, kMetadataBlockBytes);
  }
  void open_block();
  void close_block();

  std::span<std::byte> buffer_;
  RingGeometry ring_;
  uint64_t first_seq_;
  uint64_t session_;
  uint32_t prev_crc_;
  Lsn next_lsn_;
  uint64_t blocks_ = 0;  // blocks opened so far
  bool open_ = false;
  size_t used_ = 0;         // payload bytes used in the open block
  uint16_t fragments_ = 0;  // fragments in the open block
  Lsn block_first_lsn_;
  Lsn block_last_lsn_;
  bool finished_ = false;
};

// Reassembles records from the fragments of consecutive blocks of one
// session, checking that fragments nest (first, middle*, last) and that each
// block's first_lsn continues the previous one.
class RecordAssembler {
 public:
  explicit RecordAssembler(Lsn next_lsn) : next_lsn_(next_lsn) {}

  // Appends the complete records of `block` to `out` with their LSNs. On
  // corruption, `out` may hold some of the block's records; the caller stops.
  Status add_block(const ParsedJournalBlock& block, std::vector<std::pair<Lsn, Record>>& out);

  // Drops a partial record and continues at `next_lsn` (a session change).
  void restart(Lsn next_lsn);

  bool has_partial() const { return partial_; }
  // One past the highest LSN seen in any fragment (complete or not).
  Lsn next_lsn() const { return partial_ ? partial_lsn_ + 1 : next_lsn_; }

 private:
  Lsn next_lsn_;
  bool partial_ = false;
  Lsn partial_lsn_;
  std::vector<std::byte> partial_bytes_;
};

// Parses `image` as consecutive journal blocks at ring positions 0, 1, ...
// of a ring starting at `start`, and decodes their records, stopping at the
// first error. For fuzzing and tools; recovery reads blocks itself.
Status decode_journal_image(std::span<const std::byte> image, MBlock start,
                            std::vector<std::pair<Lsn, Record>>* out);

}  // namespace thinp::journal
