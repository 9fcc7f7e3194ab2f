// DataSpaceMap: reference counts of data-device blocks, kept per range, and
// the allocator that hands out free data blocks with locality.
//
// # Counts per range
//
// The counts are an ordered map of extents, begin -> (length, count), that
// covers the whole device; neighbouring extents never have equal counts. A
// change of the counts of any range (one DataRangeRefDelta or DataRangeAlloc
// record) splits at most two extents, updates the k extents inside the range
// and re-merges at the edges: O((k + 1) log n), and one journal record,
// whether the range is one block or a million. Breaking the sharing of a leaf
// that maps a million blocks therefore costs a handful of records, not a
// million (thinp1 needed one increment per block and an overflow tree).
//
// # Free index and allocation
//
// Free blocks (count 0) that no transaction has reserved form the free index,
// an ExtentSet that finds the run holding a block, the largest run and the
// best-fit run in O(log n). count_free / count_used / count_reserved are kept
// incrementally. `reserve(owner, n)` chooses, in order:
//
//   1. locality: if the owner's cursor (the block after its previous
//      allocation) starts a free stretch of n blocks, that stretch, so a
//      thin's consecutive writes get consecutive blocks;
//   2. a fresh region: the largest free run, if it holds n; if it is large
//      (>= kSpreadMinBlocks and >= 2n) the allocation starts in its middle,
//      so owners spread across the device and each has room to grow;
//   3. otherwise the fewest runs: whole runs from the largest down, the last
//      piece from the smallest run that holds the remainder (best fit).
//
// Cursors are hints, not state: they are rebuilt by replay and may be seeded
// with set_owner_hint (e.g. from a thin's highest mapping) after open.
//
// # Pages
//
// Page p covers data blocks [p * B, (p + 1) * B) (B = blocks_per_page, fixed
// at format; the last page is shorter) and holds that range's extents, cut at
// the page edges. Fixed page ranges are what make per-page LSNs meaningful:
// a record's range maps to the same pages in replay as it did live. Format
// after the 32-byte block header (little-endian):
//
//   32 u32 version          kDataSpaceMapVersion
//   36 u32 extent_count
//   40 u64 page_index
//   48 u64 range_begin      == page_index * B
//   56 u64 range_length
//   64 u64 blocks_per_page  B, so a reader with the wrong geometry notices
//   72 u64 free_blocks      blocks of the range with count 0, a cross-check
//   80 u32 payload_bytes
//   84 u32 reserved         zero
//   88 extent_count x (varint length, varint count); zeros to the block end
//
// The page area is kDataPagePayloadBytes (4008) bytes. An extent takes 2 to 15
// bytes; typical extents (length < 2^14, count < 128) take 2 to 3, so a page
// holds ~1300-2000 extents. A page whose extents do not fit makes
// encode_dirty_pages fail with no_space naming the page: with B <= 668 (the
// format's default, engine/format/layout.h) that is impossible (one extent
// per block at worst 6 bytes); larger B trades that guarantee for fewer
// pages. (A spill page per overflowing page would lift the limit; not done
// yet.)
//
// Threading: as MetadataSpaceMap (not synchronised; calls come from the pool's
// tasks one at a time; nothing suspends except load's PageReader).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/journal/record.h"
#include "engine/space_map/data_ref_tally.h"
#include "engine/space_map/extent_set.h"
#include "engine/space_map/space_map_page.h"

namespace thinp::space_map {

inline constexpr uint32_t kDataSpaceMapVersion = 1;
inline constexpr size_t kDataPageHeaderEnd = 88;
inline constexpr size_t kDataPagePayloadBytes = kMetadataBlockBytes - kDataPageHeaderEnd;
inline constexpr uint64_t kDefaultDataBlocksPerPage = 668;  // layout.h says why
inline constexpr uint64_t kSpreadMinBlocks = 64;

struct DataGeometry {
  uint64_t nr_blocks = 0;  // data device size in blocks
  uint64_t blocks_per_page = kDefaultDataBlocksPerPage;
  PageRegion region;
};

class DataSpaceMap {
 public:
  static uint64_t pages_for(uint64_t nr_blocks, uint64_t blocks_per_page);

  // A map of free blocks whose pages are all dirty. invalid_argument if a size
  // is 0 or the pages do not fit in the region.
  static Result<DataSpaceMap> create(const DataGeometry& geometry);

  // Reads and verifies every page, then rebuilds the free index. corruption
  // naming the page for anything inconsistent; reader errors with context.
  static Result<DataSpaceMap> load(const DataGeometry& geometry, const PageReader& read_page);

  // Grows the device to `new_nr_blocks` free-at-the-end blocks. As for the
  // metadata map, the caller writes the dirty pages before publishing the size.
  // With `lsn` (a logged grow, applied live or in replay), the pages it
  // touches take that LSN, so a checkpoint writes them only once the grow
  // is durable; a page whose LSN is already past it is not touched again.
  Status grow(uint64_t new_nr_blocks, std::optional<Lsn> lsn = std::nullopt);

  // Decide: chooses `blocks` free blocks for `owner` (policy above), takes
  // them out of the free index and returns one record per run, in the order
  // to use them. no_space (nothing changes) if fewer blocks are free;
  // invalid_argument if blocks is 0.
  Result<std::vector<journal::DataRangeAlloc>> reserve(ThinId owner, uint64_t blocks);

  // Returns a reserved run that will not be logged to the free index.
  void cancel(const journal::DataRangeAlloc& r);

  // Live-path checks before logging; invalid_argument saying what is wrong.
  // A ref delta may touch only blocks in use (count > 0) and must not take a
  // count below zero or past 2^32-1.
  Status check(const journal::DataRangeRefDelta& r) const;

  // Applies the record to every page it touches whose LSN is below `lsn`
  // (skipping the others: replay), raising those pages' LSNs. LSNs must
  // strictly increase across calls. An allocation's blocks must be free or
  // reserved; a delta's blocks must be in use and stay >= 0 (asserted).
  void apply(const journal::DataRangeAlloc& r, Lsn lsn);
  void apply(const journal::DataRangeRefDelta& r, Lsn lsn);

  // Where `owner`'s next allocation should try to continue.
  void set_owner_hint(ThinId owner, DBlock next);

  uint32_t refcount(DBlock block) const;
  // The largest count in [begin, begin + length) (asserted inside the
  // device; length > 0): a mapped range is shared iff this is > 1.
  uint32_t max_refcount(DBlock begin, uint64_t length) const;
  uint64_t nr_blocks() const { return nr_blocks_; }
  uint64_t count_used() const { return used_; }  // count > 0
  uint64_t count_reserved() const { return reserved_.total_blocks(); }
  uint64_t count_free() const { return free_.total_blocks(); }  // allocatable
  size_t extent_count() const { return extents_.size(); }
  size_t free_run_count() const { return free_.run_count(); }
  uint64_t page_count() const { return pages_.size(); }
  Lsn page_lsn(uint64_t page) const;

  // For the checker: every extent in address order (count 0 included), as
  // (begin, length, count); neighbouring extents have different counts.
  void for_each_extent(const std::function<void(DBlock, uint64_t, uint32_t)>& fn) const;
  // Ranges whose count differs from what a walk of the trees found, in
  // address order, each maximal. Empty when the map is right. O(extents +
  // tally ranges).
  std::vector<DataRefMismatch> diff(const DataRefTally& expected) const;

  // Recomputes the free index from the extents, as load does. Reservations
  // must be empty. Public so that the benchmark can time it alone.
  void rebuild_free_index();
  // Whole-structure self check (expensive): extents cover the device and are
  // canonical, the free index equals the count-0 blocks minus reservations,
  // the counters match. Asserts.
  void check_invariants() const;

  // Pages changed since last written whose LSN is at most `up_to` (the
  // durable LSN), or no_space naming a page whose extents overflow it.
  // Changes nothing: call mark_written once each page's write is durable.
  Result<std::vector<EncodedPage>> encode_dirty_pages(Lsn up_to = kAnyLsn) const;
  void mark_written(const EncodedPage& page);
  uint64_t dirty_page_count() const;
  // The smallest recovery LSN of a dirty page (see space_map_page.h): the
  // journal tail may not pass it. Empty when no page holds it.
  std::optional<Lsn> oldest_unwritten_lsn() const;

 private:
  struct Extent {
    uint64_t length = 0;
    uint32_t count = 0;
  };
  struct Page {
    Lsn lsn;
    bool dirty = true;
    uint64_t generation = 0;
    // The slot holding the newest durable version (space_map_page.h); the
    // next write goes to the other one. 1 for a page never written, so that
    // format writes slot 0.
    unsigned durable_slot = 1;
    std::optional<Lsn> rec_lsn;  // first record applied since last written
  };

  explicit DataSpaceMap(const DataGeometry& geometry);
  void touch(uint64_t page);
  std::map<uint64_t, Extent>::const_iterator extent_at(uint64_t block) const;
  void split_at(uint64_t block);
  void merge_around(uint64_t begin, uint64_t end);
  uint64_t change_counts(uint64_t begin, uint64_t length, int32_t delta);
  void take(Run run, std::vector<Run>& out);
  std::vector<Run> choose_runs(ThinId owner, uint64_t blocks);
  void for_each_page_piece(uint64_t begin, uint64_t length, Lsn lsn,
                           const std::function<void(uint64_t, uint64_t)>& fn);
  Result<std::vector<std::byte>> encode_page(uint64_t page) const;
  Status decode_page(uint64_t page, unsigned slot, std::span<const std::byte> bytes);

  uint64_t nr_blocks_ = 0;
  uint64_t blocks_per_page_ = 0;
  PageRegion region_;
  std::map<uint64_t, Extent> extents_;  // begin -> extent; covers [0, nr_blocks_)
  ExtentSet free_;                      // count 0 and not reserved
  ExtentSet reserved_;                  // count 0, chosen by reserve, not yet applied
  uint64_t used_ = 0;
  std::vector<Page> pages_;
  std::map<ThinId, uint64_t> cursors_;  // owner -> block after its last allocation
  Lsn last_applied_;
};

}  // namespace thinp::space_map
