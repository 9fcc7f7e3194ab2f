// MetadataSpaceMap: one reference count per 4 KiB metadata block.
//
// Unlike thinp1's, this map lives outside every tree: it is a plain array of
// counts, kept whole in memory, checkpointed in chunks of kEntriesPerChunk
// counts, one chunk per metadata_space_map page (see space_map_page.h for
// where the pages live, and for the decide / log / apply protocol and
// idempotent replay that this class implements).
//
// # Count width
//
// Counts are 32 bits. A metadata block is referenced once by each tree that
// shares it, and a mapping-tree node near the root of a long snapshot chain is
// shared by every snapshot: 16 bits would cap a pool at 65535 snapshots of one
// origin. 32 bits cost one page per 1010 blocks, 0.1% of the device.
//
// # Page format (after the 32-byte block header, little-endian)
//
//   32 u32 version        kMetadataSpaceMapVersion
//   36 u32 entry_count    counts in this chunk (kEntriesPerChunk except last)
//   40 u64 chunk_index    == page index in the region
//   48 u32 free_count     entries equal to zero, a cross-check
//   52 u32 reserved       zero
//   56 u32 counts[entry_count], then zeros to the end of the block
//
// The block header's LSN is the chunk's LSN: the newest record reflected.
//
// # Allocation
//
// Next-fit from a hint: `reserve(hint)` returns the first free block at or
// after the hint (wrapping around), so a tree's new node lands next to the
// node it was copied from; without a hint it continues after the previous
// allocation. Chunks with no free block are skipped whole.
//
// Threading: not synchronised. All calls come from the pool's tasks, which the
// Runtime runs one at a time; none of these calls suspends, except load
// through its PageReader.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/journal/record.h"
#include "engine/space_map/space_map_page.h"

namespace thinp::space_map {

inline constexpr uint32_t kMetadataSpaceMapVersion = 1;
inline constexpr size_t kMetadataChunkHeaderEnd = 56;
inline constexpr uint64_t kEntriesPerChunk = (kMetadataBlockBytes - kMetadataChunkHeaderEnd) / 4;

// A block whose count differs from what a checker expected.
struct MetaRefMismatch {
  MBlock block;
  uint32_t expected = 0;
  uint32_t actual = 0;  // actual > expected: leaked; actual < expected: over-shared
};

class MetadataSpaceMap {
 public:
  // Number of pages a map of `nr_blocks` blocks needs.
  static uint64_t chunks_for(uint64_t nr_blocks);

  // A map of `nr_blocks` free blocks whose pages are all dirty. Fails with
  // invalid_argument if nr_blocks is 0 or the pages do not fit in `region`.
  static Result<MetadataSpaceMap> create(uint64_t nr_blocks, PageRegion region);

  // Reads and verifies chunks_for(nr_blocks) pages from `region`. A page that
  // fails verify_block or whose contents are inconsistent gives corruption
  // naming the page; a reader error is passed on with context.
  static Result<MetadataSpaceMap> load(uint64_t nr_blocks, PageRegion region,
                                       const PageReader& read_page);

  // Format-time only (before any apply): gives blocks [begin, begin + count)
  // (superblock, journal, the space maps' own pages) a count of 1 without a
  // record. Their chunks become dirty.
  void mark_used_at_format(MBlock begin, uint64_t count);

  // Grows the map to `new_nr_blocks`; the new blocks are free. The caller must
  // write the new pages (encode_dirty_pages) before it publishes the new size
  // in the superblock. invalid_argument if shrinking, no_space if the pages
  // would not fit in the region.
  Status grow(uint64_t new_nr_blocks);

  // Decide: picks a free block, next-fit from `hint` (or after the previous
  // allocation), and reserves it. Returns the record to log: {block, +1}.
  // no_space when no block is free; nothing changes then.
  Result<journal::MetaRefDelta> reserve(std::optional<MBlock> hint);

  // Gives back a reservation that will not be logged.
  void cancel(MBlock block);

  // Live-path check of a record before it is logged: invalid_argument if the
  // block is out of range, delta is 0, the count would go below zero or past
  // 2^32-1, or it raises a free block that is not reserved.
  Status check(const journal::MetaRefDelta& r) const;

  // Applies (or, if the chunk already reflects `lsn`, skips) the record. LSNs
  // must strictly increase across calls. A broken precondition (count below
  // zero, block out of range) is an assertion: validate with check() first.
  void apply(const journal::MetaRefDelta& r, Lsn lsn);

  uint32_t refcount(MBlock block) const;
  bool is_reserved(MBlock block) const;
  uint64_t nr_blocks() const { return nr_blocks_; }
  uint64_t count_used() const { return used_; }  // count > 0
  uint64_t count_reserved() const { return reserved_count_; }
  uint64_t count_free() const { return nr_blocks_ - used_ - reserved_count_; }  // allocatable
  Lsn chunk_lsn(uint64_t chunk) const;

  // For the checker: every block with a nonzero count, in block order.
  void for_each_used(const std::function<void(MBlock, uint32_t)>& fn) const;
  // Blocks whose count differs from `expected` (blocks absent there expect 0).
  std::vector<MetaRefMismatch> diff(const std::map<MBlock, uint32_t>& expected) const;

  // Pages of every chunk changed since it was last written whose LSN is at
  // most `up_to` (the durable LSN: the others may not be written yet). Does
  // not clear anything: call mark_written once each page's write is durable.
  std::vector<EncodedPage> encode_dirty_pages(Lsn up_to = kAnyLsn) const;
  // The page encoded as `page` is durably on the device: its chunk is clean
  // unless it changed since it was encoded.
  void mark_written(const EncodedPage& page);
  uint64_t dirty_page_count() const;
  // The smallest recovery LSN of a dirty chunk (see space_map_page.h): the
  // journal tail may not pass it. Empty when no chunk holds it.
  std::optional<Lsn> oldest_unwritten_lsn() const;

 private:
  struct Chunk {
    Lsn lsn;
    uint32_t allocatable = 0;  // count == 0 and not reserved
    bool dirty = true;
    uint64_t generation = 0;     // bumped by every change, to match mark_written
    std::optional<Lsn> rec_lsn;  // first record applied since last written
    // The slot holding the newest durable version (space_map_page.h); the
    // next write goes to the other one. 1 for a chunk never written.
    unsigned durable_slot = 1;
  };

  MetadataSpaceMap(uint64_t nr_blocks, PageRegion region);
  uint64_t entries_in_chunk(uint64_t chunk) const;
  void touch(uint64_t chunk);
  std::optional<uint64_t> find_free(uint64_t from, uint64_t to) const;
  std::vector<std::byte> encode_chunk(uint64_t chunk) const;
  Status decode_chunk(uint64_t chunk, unsigned slot, std::span<const std::byte> page);

  uint64_t nr_blocks_ = 0;
  PageRegion region_;
  std::vector<uint32_t> counts_;
  std::vector<bool> reserved_;
  std::vector<Chunk> chunks_;
  uint64_t used_ = 0;
  uint64_t reserved_count_ = 0;
  uint64_t cursor_ = 0;  // next-fit position
  Lsn last_applied_;
};

}  // namespace thinp::space_map
