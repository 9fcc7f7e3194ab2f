// The metadata device layout: where each on-disk structure lives, fixed at
// format time and recorded in the superblock (docs/format.md, "Layout").
//
//   block 0, 1             superblock slots (two alternating copies)
//   journal                a ring of journal blocks
//   metadata space map     one u32 refcount per metadata block, 1010 per page,
//                          sized for metadata_blocks_max so the device can grow
//   data space map         pages holding the data device's range-refcount
//                          extents, one page per fixed range of data blocks,
//                          sized for data_blocks_max
//   (each space map page has two slots, two adjacent blocks, so that a
//   checkpoint never overwrites the version the journal tail depends on)
//   tree pool              every other block: device-details and mapping trees
//
// The regions are contiguous and in this order; the tree pool runs to the end
// of the metadata area, so growing the metadata device only grows the pool
// (up to metadata_blocks_max, which the metadata space map already covers).
//
// Two inputs describe the devices (Geometry): either two devices, or one
// device split at format time with the metadata area first and the data area
// after it, aligned to the data block size.
//
// Every function here is pure. Functions that take sizes from a user return
// invalid_argument with a one-line message naming the problem; the validate_*
// functions are also what the superblock decoder runs over untrusted fields.
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/status.h"
#include "engine/base/units.h"

namespace thinp {

inline constexpr uint64_t kDataBlockBytesMin = uint64_t(4) << 10;       // 4 KiB
inline constexpr uint64_t kDataBlockBytesMax = uint64_t(1) << 30;       // 1 GiB
inline constexpr uint64_t kDataBlockBytesDefault = uint64_t(64) << 10;  // 64 KiB

// The two superblock slots.
inline constexpr MBlock kSuperblockSlot0{0};
inline constexpr MBlock kSuperblockSlot1{1};
inline constexpr uint64_t kSuperblockSlots = 2;

// Journal ring size: by default metadata_blocks / 16, clamped to
// [kJournalBlocksMin, kJournalBlocksDefaultMax] (1024 blocks = 4 MiB).
inline constexpr uint64_t kJournalBlocksMin = 8;
inline constexpr uint64_t kJournalBlocksDefaultMax = 1024;

// Metadata space map: one u32 refcount per metadata block, 1010 per page
// after the page's 56-byte header (engine/space_map/metadata_space_map.h owns
// the page format; layout_test checks that the two agree). u32 rather than u16
// because a mapping-tree node can be shared by more than 65535 snapshots.
inline constexpr uint64_t kMetadataRefcountsPerPage = (4096 - 56) / 4;  // 1010
// By default the metadata space map covers 4x the initial metadata size, so
// the metadata device can grow fourfold without moving it (0.4% of metadata).
inline constexpr uint64_t kMetadataGrowthFactorDefault = 4;

// Data space map: page p holds the extents of data blocks [p * B, (p + 1) * B)
// (engine/space_map/data_space_map.h owns the page format). B is chosen at
// format and recorded in the superblock; the region holds a page for every B
// blocks of data_blocks_max, by default 4x the initial data size.
//
// The default B is 668: the largest for which no pattern of counts can
// overflow a page (one extent per block at worst 6 bytes in 4008), so a
// checkpoint can always write every page. Larger B (a format option) costs
// fewer pages but a fragmented enough page then fails the checkpoint, and
// the pool cannot open until the journal replays elsewhere; that was seen
// with B = 16384 after ~1300 share breaks scattered over one page. The price
// of 668: two 4 KiB slots per 668 data blocks, about 0.02% of the data area
// with 64 KiB blocks (x4 for the growth headroom). A spill page per
// overflowing page would allow large B safely; not built.
inline constexpr uint64_t kDataBlocksPerSpaceMapPageDefault = 668;
inline constexpr uint64_t kDataBlocksPerSpaceMapPageMax = uint64_t(1) << 32;
inline constexpr uint64_t kDataGrowthFactorDefault = 4;

// Blocks per space map page: two slots, written alternately (ping-pong, see
// engine/space_map/space_map_page.h). Both regions hold this many blocks per
// page.
inline constexpr uint64_t kSpaceMapSlotsPerPage = 2;

// The pool must leave at least this many blocks for trees.
inline constexpr uint64_t kTreePoolBlocksMin = 16;

// Upper bounds that keep every byte offset computable in 64 bits.
inline constexpr uint64_t kMetadataBlocksMax = uint64_t(1) << 40;  // 4 EiB of metadata

// A range of metadata blocks [begin, begin + blocks).
struct BlockRange {
  MBlock begin;
  uint64_t blocks = 0;

  MBlock end() const { return begin + blocks; }
  bool contains(MBlock b) const { return b >= begin && b < end(); }
  bool operator==(const BlockRange&) const = default;
};

// The devices, as the pool sees them.
struct Geometry {
  uint64_t metadata_blocks = 0;  // 4 KiB blocks in the metadata area
  uint64_t data_blocks = 0;      // data blocks in the data area
  uint64_t data_block_bytes = kDataBlockBytesDefault;
  // True when one device holds both areas; the data area then starts at
  // data_offset_bytes (aligned to data_block_bytes, at or after the end of
  // the metadata area). False: the data device is its own device, offset 0.
  bool data_on_metadata_device = false;
  uint64_t data_offset_bytes = 0;

  uint64_t metadata_bytes() const { return metadata_blocks * kMetadataBlockBytes; }
  uint64_t data_bytes() const { return data_blocks * data_block_bytes; }
  bool operator==(const Geometry&) const = default;
};

// Where each structure lives on the metadata device.
struct Layout {
  uint64_t metadata_blocks_max = 0;  // the metadata space map covers [0, this)
  uint64_t data_blocks_max = 0;      // the data space map covers [0, this)
  uint64_t data_blocks_per_space_map_page = kDataBlocksPerSpaceMapPageDefault;
  BlockRange journal;
  BlockRange metadata_space_map;
  BlockRange data_space_map;
  BlockRange tree_pool;  // always ends at Geometry::metadata_blocks

  bool operator==(const Layout&) const = default;
};

// Optional choices at format time; 0 means "the default" for each.
struct LayoutOptions {
  uint64_t journal_blocks = 0;
  uint64_t metadata_blocks_max = 0;
  uint64_t data_blocks_max = 0;
  uint64_t data_blocks_per_space_map_page = 0;
};

// The geometry of a pool on two devices of the given sizes. A trailing
// partial block of either device is unused. invalid_argument if the data
// block size is not a power of two in [4 KiB, 1 GiB] or a device holds no
// whole block.
Result<Geometry> geometry_for_two_devices(uint64_t metadata_device_bytes,
                                          uint64_t data_device_bytes, uint64_t data_block_bytes);

// The geometry of a pool on one device: metadata in [0, metadata_bytes), data
// from metadata_bytes rounded up to data_block_bytes to the last whole data
// block. invalid_argument if the split leaves no room for data.
Result<Geometry> geometry_for_one_device(uint64_t device_bytes, uint64_t metadata_bytes,
                                         uint64_t data_block_bytes);

// The layout for `geometry`. invalid_argument when the geometry is invalid or
// the metadata area is too small for the regions it must hold; the message
// says how many blocks it needs.
Result<Layout> compute_layout(const Geometry& geometry, const LayoutOptions& options = {});

// Checks a geometry (from a user or from disk). invalid_argument on failure.
Status validate_geometry(const Geometry& geometry);

// Checks that `layout` is exactly what a format could have produced for
// `geometry` (regions in order, contiguous, in bounds, large enough), given
// that `geometry` is valid. invalid_argument on failure.
Status validate_layout(const Geometry& geometry, const Layout& layout);

// Pages of metadata space map needed to hold `metadata_blocks` refcounts.
uint64_t metadata_space_map_pages(uint64_t metadata_blocks);

// Pages of data space map needed for `data_blocks` at `blocks_per_page` (> 0).
uint64_t data_space_map_pages(uint64_t data_blocks, uint64_t blocks_per_page);

}  // namespace thinp
