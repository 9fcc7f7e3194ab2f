// DataSpaceMap's pages: encode the extents of each page's block range, and
// decode them back with every field bounds-checked (the bytes come from a
// device and are trusted only after verify_block and these checks).
#include <algorithm>
#include <limits>
#include <string>

#include "engine/format/block_header.h"
#include "engine/space_map/data_space_map.h"

namespace thinp::space_map {

namespace {

constexpr size_t kOffVersion = 32;
constexpr size_t kOffExtentCount = 36;
constexpr size_t kOffPageIndex = 40;
constexpr size_t kOffRangeBegin = 48;
constexpr size_t kOffRangeLength = 56;
constexpr size_t kOffBlocksPerPage = 64;
constexpr size_t kOffFreeBlocks = 72;
constexpr size_t kOffPayloadBytes = 80;
constexpr size_t kOffReserved = 84;

}  // namespace

Result<std::vector<std::byte>> DataSpaceMap::encode_page(uint64_t page) const {
  const uint64_t range_begin = page * blocks_per_page_;
  const uint64_t range_end = std::min(nr_blocks_, range_begin + blocks_per_page_);
  std::vector<std::byte> out(kMetadataBlockBytes, std::byte{0});
  size_t offset = kDataPageHeaderEnd;
  uint32_t extent_count = 0;
  uint64_t free_blocks = 0;
  for (auto it = extent_at(range_begin); it != extents_.end() && it->first < range_end; ++it) {
    const uint64_t begin = std::max(it->first, range_begin);
    const uint64_t end = std::min(it->first + it->second.length, range_end);
    const uint32_t count = it->second.count;
    if (offset + varint_bytes(end - begin) + varint_bytes(count) > kMetadataBlockBytes) {
      return Status(Errc::no_space, "data space map page " + std::to_string(page) + " (blocks " +
                                        std::to_string(range_begin) + ".." +
                                        std::to_string(range_end) + ") overflows its " +
                                        std::to_string(kDataPagePayloadBytes) + " bytes at " +
                                        std::to_string(extent_count) + " extents");
    }
    put_varint(out, offset, end - begin);
    put_varint(out, offset, count);
    ++extent_count;
    if (count == 0) free_blocks += end - begin;
  }
  put_u32(out, kOffVersion, kDataSpaceMapVersion);
  put_u32(out, kOffExtentCount, extent_count);
  put_u64(out, kOffPageIndex, page);
  put_u64(out, kOffRangeBegin, range_begin);
  put_u64(out, kOffRangeLength, range_end - range_begin);
  put_u64(out, kOffBlocksPerPage, blocks_per_page_);
  put_u64(out, kOffFreeBlocks, free_blocks);
  put_u32(out, kOffPayloadBytes, static_cast<uint32_t>(offset - kDataPageHeaderEnd));
  put_u32(out, kOffReserved, 0);
  // Into the slot that does not hold the newest durable version.
  seal_block(out, BlockType::data_space_map,
             region_.slot_location(page, 1 - pages_[page].durable_slot), pages_[page].lsn);
  return out;
}

Result<std::vector<EncodedPage>> DataSpaceMap::encode_dirty_pages(Lsn up_to) const {
  std::vector<EncodedPage> out;
  for (uint64_t p = 0; p < pages_.size(); ++p) {
    if (!pages_[p].dirty || pages_[p].lsn > up_to) continue;
    TP_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, encode_page(p));
    const MBlock at = region_.slot_location(p, 1 - pages_[p].durable_slot);
    out.push_back({at, pages_[p].lsn, std::move(bytes), pages_[p].generation});
  }
  return out;
}

void DataSpaceMap::mark_written(const EncodedPage& page) {
  const PageSlot where = page_slot_of(region_, page.location);
  const uint64_t p = where.page;
  TP_ASSERT_LT(p, pages_.size());
  Page& entry = pages_[p];
  // The slot now holds the newest durable version, whatever changed since.
  entry.durable_slot = where.slot;
  if (entry.generation == page.generation) {
    entry.dirty = false;
    entry.rec_lsn.reset();
  } else if (entry.rec_lsn) {
    // Changed since encoded: see MetadataSpaceMap::mark_written.
    entry.rec_lsn = std::max(*entry.rec_lsn, page.lsn + 1);
  }
}

std::optional<Lsn> DataSpaceMap::oldest_unwritten_lsn() const {
  std::optional<Lsn> oldest;
  for (const Page& p : pages_) {
    if (p.rec_lsn && (!oldest || *p.rec_lsn < *oldest)) oldest = p.rec_lsn;
  }
  return oldest;
}

uint64_t DataSpaceMap::dirty_page_count() const {
  uint64_t n = 0;
  for (const Page& p : pages_) n += p.dirty ? 1 : 0;
  return n;
}

// Appends the page's extents to extents_ (which ends where this page begins),
// merging across the page edge.
Status DataSpaceMap::decode_page(uint64_t page, unsigned slot, std::span<const std::byte> bytes) {
  const MBlock location = region_.slot_location(page, slot);
  TP_RETURN_IF_ERROR(verify_block(bytes, BlockType::data_space_map, location));
  const std::string where = "data space map block " + std::to_string(location.value()) + ": ";
  auto bad = [&](const std::string& why) { return Status(Errc::corruption, where + why); };
  const uint32_t version = get_u32(bytes, kOffVersion);
  if (version != kDataSpaceMapVersion) {
    return Status(version > kDataSpaceMapVersion ? Errc::unsupported : Errc::corruption,
                  where + "format version " + std::to_string(version));
  }
  const uint64_t range_begin = page * blocks_per_page_;
  const uint64_t range_length = std::min(nr_blocks_, range_begin + blocks_per_page_) - range_begin;
  if (get_u64(bytes, kOffPageIndex) != page) return bad("page index mismatch");
  if (get_u64(bytes, kOffBlocksPerPage) != blocks_per_page_) {
    return bad("written with " + std::to_string(get_u64(bytes, kOffBlocksPerPage)) +
               " blocks per page, expected " + std::to_string(blocks_per_page_));
  }
  if (get_u64(bytes, kOffRangeBegin) != range_begin ||
      get_u64(bytes, kOffRangeLength) != range_length) {
    return bad("covers the wrong block range");
  }
  if (get_u32(bytes, kOffReserved) != 0) return bad("reserved header field is not zero");
  const uint32_t payload = get_u32(bytes, kOffPayloadBytes);
  const uint32_t extent_count = get_u32(bytes, kOffExtentCount);
  if (payload > kDataPagePayloadBytes)
    return bad("payload of " + std::to_string(payload) + " bytes");
  const size_t end = kDataPageHeaderEnd + payload;
  size_t offset = kDataPageHeaderEnd;
  uint64_t covered = 0;
  uint64_t free_blocks = 0;
  std::optional<uint32_t> prev_count;
  for (uint32_t i = 0; i < extent_count; ++i) {
    uint64_t length = 0;
    uint64_t count = 0;
    const size_t at = offset;
    if (!get_varint(bytes, offset, end, length) || !get_varint(bytes, offset, end, count)) {
      return bad("extent " + std::to_string(i) + " runs past the payload");
    }
    if (offset - at != varint_bytes(length) + varint_bytes(count)) {
      return bad("extent " + std::to_string(i) + " has an over-long varint");
    }
    if (length == 0 || length > range_length - covered) {
      return bad("extent " + std::to_string(i) + " has bad length " + std::to_string(length));
    }
    if (count > std::numeric_limits<uint32_t>::max()) return bad("count out of range");
    if (prev_count && *prev_count == count) return bad("extents not merged");
    prev_count = static_cast<uint32_t>(count);
    const uint64_t begin = range_begin + covered;
    auto last = extents_.empty() ? extents_.end() : std::prev(extents_.end());
    if (last != extents_.end() && last->second.count == count) {
      last->second.length += length;  // the same extent, cut by the page edge
    } else {
      extents_.emplace_hint(extents_.end(), begin, Extent{length, static_cast<uint32_t>(count)});
    }
    covered += length;
    if (count == 0) free_blocks += length;
  }
  if (offset != end) return bad("payload has trailing bytes");
  for (size_t i = end; i < bytes.size(); ++i) {
    if (bytes[i] != std::byte{0}) return bad("non-zero bytes after the payload");
  }
  if (covered != range_length) {
    return bad("extents cover " + std::to_string(covered) + " of " + std::to_string(range_length) +
               " blocks");
  }
  if (free_blocks != get_u64(bytes, kOffFreeBlocks)) return bad("free block count mismatch");
  pages_[page].lsn = peek_block_header(bytes).lsn;
  pages_[page].dirty = false;
  pages_[page].durable_slot = slot;
  return ok_status();
}

Result<DataSpaceMap> DataSpaceMap::load(const DataGeometry& geometry, const PageReader& read_page) {
  TP_ASSIGN_OR_RETURN(DataSpaceMap map, create(geometry));
  map.extents_.clear();
  map.free_.clear();
  for (uint64_t p = 0; p < map.pages_.size(); ++p) {
    // A slot covering more blocks than this page covers at the device size
    // the superblock names was written after a grow that no superblock
    // names yet (a crash between the checkpoint's page writes and its
    // superblock write): the other slot is the one the journal tail needs,
    // and replay grows the map again.
    const uint64_t range_begin = p * map.blocks_per_page_;
    const uint64_t range_length =
        std::min(map.nr_blocks_, range_begin + map.blocks_per_page_) - range_begin;
    auto usable = [&](std::span<const std::byte> bytes) -> std::string {
      if (bytes.size() >= kOffRangeLength + 8 && get_u64(bytes, kOffRangeLength) > range_length) {
        return "slot covers more blocks than the device has (a grow not yet published)";
      }
      return "";
    };
    Result<ChosenSlot> chosen =
        read_newest_slot(geometry.region, p, BlockType::data_space_map, read_page, usable);
    if (!chosen.ok()) {
      return chosen.status().with_context("reading data space map page " + std::to_string(p));
    }
    TP_RETURN_IF_ERROR(map.decode_page(p, chosen->slot, chosen->bytes));
  }
  map.rebuild_free_index();
  return map;
}

}  // namespace thinp::space_map
