#include "engine/format/layout.h"

#include <algorithm>
#include <bit>
#include <string>

namespace thinp {
namespace {

// "64 KiB", "1 GiB", "12345 bytes": exact, for messages.
std::string bytes_string(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes == 0 || bytes % 1024 != 0) return std::to_string(bytes) + " bytes";
  uint64_t v = bytes / 1024;
  int unit = 0;
  while (v % 1024 == 0 && unit < 5) {
    v /= 1024;
    ++unit;
  }
  return std::to_string(v) + " " + kUnits[unit];
}

Status invalid(std::string message) { return Status(Errc::invalid_argument, std::move(message)); }

Status check_data_block_bytes(uint64_t data_block_bytes) {
  if (data_block_bytes < kDataBlockBytesMin || data_block_bytes > kDataBlockBytesMax ||
      !std::has_single_bit(data_block_bytes)) {
    return invalid("data block size " + bytes_string(data_block_bytes) +
                   " is not a power of two between 4 KiB and 1 GiB");
  }
  return ok_status();
}

// True when [r.begin, r.end()) lies within [0, limit), without overflow.
bool range_within(const BlockRange& r, uint64_t limit) {
  return r.begin.value() <= limit && r.blocks <= limit - r.begin.value();
}

std::string range_string(const BlockRange& r) {
  return "[" + std::to_string(r.begin.value()) + ", +" + std::to_string(r.blocks) + ")";
}

uint64_t div_round_up(uint64_t n, uint64_t d) { return n / d + (n % d != 0 ? 1 : 0); }

}  // namespace

uint64_t metadata_space_map_pages(uint64_t metadata_blocks) {
  return div_round_up(metadata_blocks, kMetadataRefcountsPerPage);
}

uint64_t data_space_map_pages(uint64_t data_blocks, uint64_t blocks_per_page) {
  TP_ASSERT_GT(blocks_per_page, 0u);
  return div_round_up(data_blocks, blocks_per_page);
}

Status validate_geometry(const Geometry& g) {
  TP_RETURN_IF_ERROR(check_data_block_bytes(g.data_block_bytes));
  if (g.metadata_blocks == 0 || g.metadata_blocks > kMetadataBlocksMax) {
    return invalid("metadata area of " + std::to_string(g.metadata_blocks) +
                   " blocks is outside [1, 2^40]");
  }
  if (g.data_blocks == 0) return invalid("data area holds no data block");
  if (g.data_blocks > UINT64_MAX / g.data_block_bytes) {
    return invalid("data area of " + std::to_string(g.data_blocks) + " blocks of " +
                   bytes_string(g.data_block_bytes) + " does not fit in 64 bits of bytes");
  }
  if (!g.data_on_metadata_device) {
    if (g.data_offset_bytes != 0) {
      return invalid("data on its own device but at offset " + std::to_string(g.data_offset_bytes));
    }
    return ok_status();
  }
  if (g.data_offset_bytes % g.data_block_bytes != 0) {
    return invalid("data area offset " + std::to_string(g.data_offset_bytes) +
                   " is not aligned to the data block size " + bytes_string(g.data_block_bytes));
  }
  if (g.data_offset_bytes < g.metadata_bytes()) {
    return invalid("data area at byte " + std::to_string(g.data_offset_bytes) +
                   " overlaps the metadata area, which ends at byte " +
                   std::to_string(g.metadata_bytes()));
  }
  if (g.data_offset_bytes > UINT64_MAX - g.data_bytes()) {
    return invalid("data area end does not fit in 64 bits");
  }
  return ok_status();
}

Result<Geometry> geometry_for_two_devices(uint64_t metadata_device_bytes,
                                          uint64_t data_device_bytes, uint64_t data_block_bytes) {
  TP_RETURN_IF_ERROR(check_data_block_bytes(data_block_bytes));
  Geometry g;
  g.metadata_blocks = metadata_device_bytes / kMetadataBlockBytes;
  g.data_blocks = data_device_bytes / data_block_bytes;
  g.data_block_bytes = data_block_bytes;
  if (g.metadata_blocks == 0) {
    return invalid("metadata device of " + bytes_string(metadata_device_bytes) +
                   " holds no whole 4 KiB block");
  }
  if (g.data_blocks == 0) {
    return invalid("data device of " + bytes_string(data_device_bytes) +
                   " holds no whole data block of " + bytes_string(data_block_bytes));
  }
  // A device larger than the format can address uses only its first part.
  g.metadata_blocks = std::min(g.metadata_blocks, kMetadataBlocksMax);
  TP_RETURN_IF_ERROR(validate_geometry(g));
  return g;
}

Result<Geometry> geometry_for_one_device(uint64_t device_bytes, uint64_t metadata_bytes,
                                         uint64_t data_block_bytes) {
  TP_RETURN_IF_ERROR(check_data_block_bytes(data_block_bytes));
  if (metadata_bytes == 0 || metadata_bytes % kMetadataBlockBytes != 0) {
    return invalid("metadata size " + bytes_string(metadata_bytes) +
                   " is not a positive multiple of 4 KiB");
  }
  if (metadata_bytes / kMetadataBlockBytes > kMetadataBlocksMax) {
    return invalid("metadata size " + bytes_string(metadata_bytes) + " is larger than 4 EiB");
  }
  const uint64_t data_offset = div_round_up(metadata_bytes, data_block_bytes) * data_block_bytes;
  if (metadata_bytes > device_bytes || data_offset > device_bytes ||
      device_bytes - data_offset < data_block_bytes) {
    return invalid("device of " + bytes_string(device_bytes) + " is too small for " +
                   bytes_string(metadata_bytes) + " of metadata and one " +
                   bytes_string(data_block_bytes) + " data block");
  }
  Geometry g;
  g.metadata_blocks = metadata_bytes / kMetadataBlockBytes;
  g.data_blocks = (device_bytes - data_offset) / data_block_bytes;
  g.data_block_bytes = data_block_bytes;
  g.data_on_metadata_device = true;
  g.data_offset_bytes = data_offset;
  TP_RETURN_IF_ERROR(validate_geometry(g));
  return g;
}

Result<Layout> compute_layout(const Geometry& g, const LayoutOptions& options) {
  TP_RETURN_IF_ERROR(validate_geometry(g));
  const uint64_t journal_blocks =
      options.journal_blocks != 0
          ? options.journal_blocks
          : std::clamp(g.metadata_blocks / 16, kJournalBlocksMin, kJournalBlocksDefaultMax);
  if (journal_blocks < kJournalBlocksMin) {
    return invalid("journal of " + std::to_string(journal_blocks) +
                   " blocks is below the minimum of " + std::to_string(kJournalBlocksMin));
  }
  const uint64_t metadata_max =
      options.metadata_blocks_max != 0
          ? options.metadata_blocks_max
          : std::min(g.metadata_blocks * kMetadataGrowthFactorDefault, kMetadataBlocksMax);
  if (metadata_max < g.metadata_blocks || metadata_max > kMetadataBlocksMax) {
    return invalid("maximum metadata size of " + std::to_string(metadata_max) +
                   " blocks is outside [" + std::to_string(g.metadata_blocks) + ", 2^40]");
  }
  const uint64_t data_blocks_limit = UINT64_MAX / g.data_block_bytes;
  const uint64_t per_page = options.data_blocks_per_space_map_page != 0
                                ? options.data_blocks_per_space_map_page
                                : kDataBlocksPerSpaceMapPageDefault;
  // Room to grow the data device: kDataGrowthFactorDefault times its size,
  // or less if the metadata area cannot hold that map (never less than 1x).
  uint64_t data_max = options.data_blocks_max;
  for (uint64_t factor = kDataGrowthFactorDefault; data_max == 0; --factor) {
    const uint64_t candidate =
        g.data_blocks > data_blocks_limit / factor ? data_blocks_limit : g.data_blocks * factor;
    const uint64_t fixed = kSuperblockSlots + journal_blocks +
                           kSpaceMapSlotsPerPage * metadata_space_map_pages(metadata_max) +
                           kTreePoolBlocksMin;
    const uint64_t map =
        per_page == 0 ? 0 : kSpaceMapSlotsPerPage * data_space_map_pages(candidate, per_page);
    if (factor == 1 || (fixed <= g.metadata_blocks && map <= g.metadata_blocks - fixed)) {
      data_max = candidate;
    }
  }
  if (data_max < g.data_blocks || data_max > data_blocks_limit) {
    return invalid("maximum data size of " + std::to_string(data_max) + " blocks is outside [" +
                   std::to_string(g.data_blocks) + ", " + std::to_string(data_blocks_limit) + "]");
  }
  if (per_page > kDataBlocksPerSpaceMapPageMax) {
    return invalid("data space map page of " + std::to_string(per_page) +
                   " data blocks is larger than 2^32");
  }
  // Two slots per space map page (engine/space_map/space_map_page.h).
  const uint64_t dsm_blocks = kSpaceMapSlotsPerPage * data_space_map_pages(data_max, per_page);
  const uint64_t msm_blocks = kSpaceMapSlotsPerPage * metadata_space_map_pages(metadata_max);

  // Each term is at most 2^64 / 4096 or a user's u64: add without overflow.
  const uint64_t parts[] = {kSuperblockSlots, journal_blocks, msm_blocks, dsm_blocks,
                            kTreePoolBlocksMin};
  uint64_t needed = 0;
  for (uint64_t p : parts) needed = p > UINT64_MAX - needed ? UINT64_MAX : needed + p;
  if (g.metadata_blocks < needed) {
    return invalid("metadata area of " + bytes_string(g.metadata_bytes()) + " (" +
                   std::to_string(g.metadata_blocks) + " blocks) is too small: it needs at least " +
                   std::to_string(needed) + " blocks (2 superblock, " +
                   std::to_string(journal_blocks) + " journal, " + std::to_string(msm_blocks) +
                   " metadata space map, " + std::to_string(dsm_blocks) + " data space map, " +
                   std::to_string(kTreePoolBlocksMin) + " trees)");
  }
  Layout l;
  l.metadata_blocks_max = metadata_max;
  l.data_blocks_max = data_max;
  l.data_blocks_per_space_map_page = per_page;
  l.journal = {MBlock(kSuperblockSlots), journal_blocks};
  l.metadata_space_map = {l.journal.end(), msm_blocks};
  l.data_space_map = {l.metadata_space_map.end(), dsm_blocks};
  l.tree_pool = {l.data_space_map.end(), g.metadata_blocks - l.data_space_map.end().value()};
  const Status self_check = validate_layout(g, l);
  TP_ASSERT_MSG(self_check.ok(), self_check.to_string());
  return l;
}

Status validate_layout(const Geometry& g, const Layout& l) {
  const uint64_t n = g.metadata_blocks;
  auto region = [&](const char* name, const BlockRange& r, MBlock expected_begin,
                    uint64_t min_blocks) -> Status {
    if (!range_within(r, n)) {
      return invalid(std::string(name) + " " + range_string(r) +
                     " runs past the end of the metadata area (" + std::to_string(n) + " blocks)");
    }
    if (r.begin != expected_begin) {
      return invalid(std::string(name) + " " + range_string(r) + " should start at block " +
                     std::to_string(expected_begin.value()));
    }
    if (r.blocks < min_blocks) {
      return invalid(std::string(name) + " " + range_string(r) + " is smaller than " +
                     std::to_string(min_blocks) + " blocks");
    }
    return ok_status();
  };
  if (l.metadata_blocks_max < n || l.metadata_blocks_max > kMetadataBlocksMax) {
    return invalid("maximum metadata size of " + std::to_string(l.metadata_blocks_max) +
                   " blocks is outside [" + std::to_string(n) + ", 2^40]");
  }
  TP_RETURN_IF_ERROR(region("journal", l.journal, MBlock(kSuperblockSlots), kJournalBlocksMin));
  TP_RETURN_IF_ERROR(region("metadata space map", l.metadata_space_map, l.journal.end(), 1));
  const uint64_t msm_pages = metadata_space_map_pages(l.metadata_blocks_max);
  if (l.metadata_space_map.blocks != kSpaceMapSlotsPerPage * msm_pages) {
    return invalid("metadata space map of " + std::to_string(l.metadata_space_map.blocks) +
                   " blocks does not hold two slots for each of the " + std::to_string(msm_pages) +
                   " pages that " + std::to_string(l.metadata_blocks_max) + " blocks need");
  }
  if (l.data_blocks_max < g.data_blocks || l.data_blocks_max > UINT64_MAX / g.data_block_bytes) {
    return invalid("maximum data size of " + std::to_string(l.data_blocks_max) +
                   " blocks is below the data size or does not fit in 64 bits of bytes");
  }
  if (l.data_blocks_per_space_map_page == 0 ||
      l.data_blocks_per_space_map_page > kDataBlocksPerSpaceMapPageMax) {
    return invalid("data space map page of " + std::to_string(l.data_blocks_per_space_map_page) +
                   " data blocks is outside [1, 2^32]");
  }
  TP_RETURN_IF_ERROR(region("data space map", l.data_space_map, l.metadata_space_map.end(), 1));
  const uint64_t dsm_pages =
      data_space_map_pages(l.data_blocks_max, l.data_blocks_per_space_map_page);
  if (l.data_space_map.blocks != kSpaceMapSlotsPerPage * dsm_pages) {
    return invalid("data space map of " + std::to_string(l.data_space_map.blocks) +
                   " blocks does not hold two slots for each of the " + std::to_string(dsm_pages) +
                   " pages that " + std::to_string(l.data_blocks_max) + " data blocks need");
  }
  TP_RETURN_IF_ERROR(region("tree pool", l.tree_pool, l.data_space_map.end(), kTreePoolBlocksMin));
  if (l.tree_pool.end().value() != n) {
    return invalid("tree pool " + range_string(l.tree_pool) +
                   " does not end at the end of the metadata area (" + std::to_string(n) +
                   " blocks)");
  }
  return ok_status();
}

}  // namespace thinp
