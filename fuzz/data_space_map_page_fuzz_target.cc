// Fuzz target: the data space map's page decoder (DataSpaceMap::decode_page,
// engine/space_map/data_space_map.h; in data_space_map_pages.cc).
//
// decode_page is private: its entry point is DataSpaceMap::load, which reads
// each page through a PageReader, decodes it and rebuilds the free index. The
// target loads a map whose last page is the input page, with the geometry the
// page claims (its page index, up to kPageIndexMax, blocks per page, range
// length and location), so that the fuzzer gets past the geometry checks to
// the extents; the pages before it are a fresh map's (all free, so the input's
// first extent may merge with them across the page edge). The input is
// decoded as a 4096-byte page (truncated or zero-padded), as given, and with
// its crc32c recomputed.
//
// The oracle, for every page load accepts:
//   - the map is whole and canonical (check_invariants: extents cover the
//     device with no equal neighbours, the free index matches), and the page's
//     LSN is the page's;
//   - the page is what the map writes: after a +1 and a -1 on the page's
//     first block (logged at the two LSNs after the page's, so that the page
//     is dirty with its counts unchanged), encode_dirty_pages gives back the
//     input's bytes, apart from the LSN and checksum in the block header.
#include <algorithm>
#include <cstring>
#include <limits>

#include "engine/format/block_header.h"
#include "engine/format/checksum.h"
#include "engine/space_map/data_space_map.h"
#include "fuzz/fuzz_targets.h"

namespace thinp::fuzz {
namespace {

using space_map::DataGeometry;
using space_map::DataSpaceMap;
using space_map::kSlotsPerPage;
using space_map::PageRegion;

// Bounds the map the target builds around a page: pages before it, and
// blocks per page small enough that no block number overflows.
constexpr uint64_t kPageIndexMax = 3;
constexpr uint64_t kBlocksPerPageMax = uint64_t(1) << 48;
constexpr size_t kOffPageIndex = 40;
constexpr size_t kOffRangeLength = 56;
constexpr size_t kOffBlocksPerPage = 64;

std::vector<std::byte> as_block(const uint8_t* data, size_t size) {
  std::vector<std::byte> block(kMetadataBlockBytes);
  if (size > 0) std::memcpy(block.data(), data, std::min(size, block.size()));
  return block;
}

// The map a page claims to belong to: it is page `page` (the last), covering
// `range_length` blocks, in slot 0 of its page: geometry.region.first + 2 * page.
struct ClaimedMap {
  uint64_t page = 0;
  DataGeometry geometry;
};

ClaimedMap claimed_map(std::span<const std::byte> block) {
  ClaimedMap m;
  MBlock location = peek_block_header(block).location;
  // Both slots of the page must have a block number: a region that wraps past
  // the last one is no map's (validate_layout keeps every region on the device).
  if (location.value() > UINT64_MAX - kSlotsPerPage) location = MBlock(0);
  m.page = get_u64(block, kOffPageIndex);
  if (m.page > kPageIndexMax || location.value() < kSlotsPerPage * m.page) m.page = 0;
  uint64_t per_page = get_u64(block, kOffBlocksPerPage);
  if (per_page == 0 || per_page > kBlocksPerPageMax)
    per_page = space_map::kDefaultDataBlocksPerPage;
  uint64_t length = get_u64(block, kOffRangeLength);
  if (length == 0 || length > per_page) length = per_page;
  m.geometry.blocks_per_page = per_page;
  m.geometry.nr_blocks = m.page * per_page + length;
  m.geometry.region = PageRegion{location - kSlotsPerPage * m.page, kSlotsPerPage * (m.page + 1)};
  return m;
}

Result<DataSpaceMap> load_with(const ClaimedMap& m, std::span<const std::byte> page) {
  std::vector<space_map::EncodedPage> fresh =
      DataSpaceMap::create(m.geometry).value().encode_dirty_pages().value();
  return DataSpaceMap::load(m.geometry, [&](MBlock at) -> Result<std::vector<std::byte>> {
    // Slot 1 of every page was never written.
    const space_map::PageSlot ps = page_slot_of(m.geometry.region, at);
    if (ps.slot != 0) return std::vector<std::byte>(kMetadataBlockBytes);
    if (ps.page == m.page) return std::vector<std::byte>(page.begin(), page.end());
    return fresh.at(ps.page).bytes;
  });
}

// Equal apart from the checksum (bytes 0-3), the location (8-15: the other
// slot) and the LSN (16-23).
bool same_but_lsn(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && a.size() >= kBlockHeaderBytes &&
         std::equal(a.begin() + 4, a.begin() + 8, b.begin() + 4) &&
         std::equal(a.begin() + 24, a.end(), b.begin() + 24);
}

void load_and_recheck(std::span<const std::byte> page) {
  const ClaimedMap m = claimed_map(page);
  Result<DataSpaceMap> r = load_with(m, page);
  if (!r.ok()) {
    const std::string& msg = r.status().message();
    fuzz_require(msg.find('\n') == std::string::npos && !msg.empty(),
                 "load error is not a single non-empty line");
    return;
  }
  DataSpaceMap& map = *r;
  map.check_invariants();
  const Lsn lsn = peek_block_header(page).lsn;
  fuzz_require(map.page_lsn(m.page) == lsn, "page LSN is not the page's");
  fuzz_require(map.dirty_page_count() == 0, "a loaded page is dirty");
  fuzz_require(map.count_used() + map.count_free() == map.nr_blocks(),
               "used and free blocks do not add up to the device");
  // Make the page dirty without changing its counts: a +1 and a -1 on its
  // first block (an allocation if it is free), at the next two LSNs.
  if (lsn.value() > UINT64_MAX - 2) return;
  const DBlock first(m.page * m.geometry.blocks_per_page);
  const uint32_t count = map.refcount(first);
  if (count == 0) {
    map.apply(journal::DataRangeAlloc{first, 1, ThinId(0)}, lsn + 1);
    map.apply(journal::DataRangeRefDelta{first, 1, -1}, lsn + 2);
  } else {
    const int32_t delta = count == std::numeric_limits<uint32_t>::max() ? -1 : 1;
    map.apply(journal::DataRangeRefDelta{first, 1, delta}, lsn + 1);
    map.apply(journal::DataRangeRefDelta{first, 1, -delta}, lsn + 2);
  }
  Result<std::vector<space_map::EncodedPage>> out = map.encode_dirty_pages();
  fuzz_require(out.ok(), "an accepted page's extents no longer fit a page");
  fuzz_require(out->size() == 1 && (*out)[0].location == m.geometry.region.slot_location(m.page, 1),
               "touching one page dirtied another");
  fuzz_require(same_but_lsn((*out)[0].bytes, page),
               "accepted data space map page does not re-encode to the same bytes");
}

std::vector<uint8_t> to_seed(std::span<const std::byte> b) {
  std::vector<uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

void reseal(std::span<std::byte> block) { put_u32(block, 0, crc32c(block.subspan(4))); }

// The last page of a map of `nr_blocks` blocks, `per_page` per page, with
// allocations, shared ranges and a count at the maximum on that page.
std::vector<std::byte> busy_last_page(uint64_t nr_blocks, uint64_t per_page, MBlock first) {
  DataGeometry g{nr_blocks, per_page,
                 PageRegion{first, kSlotsPerPage * DataSpaceMap::pages_for(nr_blocks, per_page)}};
  DataSpaceMap map = DataSpaceMap::create(g).value();
  const uint64_t base = (g.region.page_capacity() - 1) * per_page;
  Lsn lsn(70);
  for (uint64_t b = base; b + 5 < nr_blocks; b += 9) {
    map.apply(journal::DataRangeAlloc{DBlock(b), 5, ThinId(b % 3)}, ++lsn);
    if (b % 4 == 0) map.apply(journal::DataRangeRefDelta{DBlock(b + 1), 3, 2}, ++lsn);
  }
  const DBlock top(base);  // allocated above; raise it to 2^32 - 1
  map.apply(journal::DataRangeRefDelta{top, 1, std::numeric_limits<int32_t>::max()}, ++lsn);
  map.apply(journal::DataRangeRefDelta{top, 1, std::numeric_limits<int32_t>::max()}, ++lsn);
  return map.encode_dirty_pages().value().back().bytes;
}

}  // namespace

int fuzz_data_space_map_page(const uint8_t* data, size_t size) {
  const std::span<const std::byte> raw(reinterpret_cast<const std::byte*>(data), size);
  {
    // Any size: a page of the wrong length must be refused, not read past.
    const ClaimedMap m = claimed_map(as_block(data, size));
    fuzz_require(size == kMetadataBlockBytes || !load_with(m, raw).ok(),
                 "a page of the wrong size loads");
  }
  std::vector<std::byte> page = as_block(data, size);
  load_and_recheck(page);
  reseal(page);
  load_and_recheck(page);
  return 0;
}

Status check_data_space_map_page(const uint8_t* data, size_t size) {
  const std::span<const std::byte> raw(reinterpret_cast<const std::byte*>(data), size);
  return load_with(claimed_map(as_block(data, size)), raw).status();
}

std::vector<FuzzSeed> seeds_data_space_map_page() {
  std::vector<FuzzSeed> seeds;
  // One page covering all 5000 blocks (a format option larger than the
  // default of 668 blocks per page).
  const DataGeometry one{5000, 16384, PageRegion{MBlock(30), space_map::kSlotsPerPage}};
  const std::vector<std::byte> fresh =
      DataSpaceMap::create(one).value().encode_dirty_pages().value()[0].bytes;
  const std::vector<std::byte> short_page = busy_last_page(2 * 600 + 250, 600, MBlock(40));
  const std::vector<std::byte> full_page = busy_last_page(3 * 512, 512, MBlock(80));
  seeds.push_back({"valid-fresh", to_seed(fresh)});
  seeds.push_back({"valid-busy-short-page", to_seed(short_page)});
  seeds.push_back({"valid-busy-full-page", to_seed(full_page)});

  std::vector<std::byte> flipped = full_page;
  flipped[100] ^= std::byte{0x01};
  seeds.push_back({"bad-bitflip", to_seed(flipped)});

  std::vector<std::byte> free_blocks = short_page;
  put_u64(free_blocks, 72, get_u64(free_blocks, 72) + 1);
  reseal(free_blocks);
  seeds.push_back({"bad-free-blocks", to_seed(free_blocks)});

  std::vector<std::byte> payload = short_page;  // the last extent runs past the payload
  put_u32(payload, 80, get_u32(payload, 80) - 1);
  reseal(payload);
  seeds.push_back({"bad-payload-bytes", to_seed(payload)});

  // A byte set after the payload (found by the fuzzer: decode_page did not
  // check that the rest of the block is zero).
  std::vector<std::byte> tail = fresh;
  tail[kMetadataBlockBytes - 1] = std::byte{1};
  reseal(tail);
  seeds.push_back({"bad-nonzero-tail", to_seed(tail)});

  // The fresh page's one extent with its count 0 written in two bytes (80 00)
  // instead of one (found by the re-encoding oracle: decode_page took
  // over-long varints).
  std::vector<std::byte> overlong = fresh;
  const uint32_t payload_bytes = get_u32(overlong, 80);
  overlong[space_map::kDataPageHeaderEnd + payload_bytes - 1] = std::byte{0x80};
  overlong[space_map::kDataPageHeaderEnd + payload_bytes] = std::byte{0x00};
  put_u32(overlong, 80, payload_bytes + 1);
  reseal(overlong);
  seeds.push_back({"bad-overlong-varint", to_seed(overlong)});

  seeds.push_back({"bad-short", to_seed(std::span(fresh).first(kMetadataBlockBytes - 512))});
  return seeds;
}

}  // namespace thinp::fuzz
