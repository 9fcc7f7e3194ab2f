// Fuzz target: the metadata space map's chunk page decoder
// (MetadataSpaceMap::decode_chunk, engine/space_map/metadata_space_map.h).
//
// decode_chunk is private: its entry point is MetadataSpaceMap::load, which
// reads each chunk page through a PageReader and decodes it. The target loads
// a map whose last chunk is the input page, with the geometry the page claims
// (its chunk index, up to kChunkIndexMax, its entry count and its location),
// so that the fuzzer gets past the geometry checks to the counts; the chunks
// before it are a fresh map's (all free). The input is decoded as a 4096-byte
// page (truncated or zero-padded), as given, and with its crc32c recomputed.
//
// The oracle, for every page load accepts:
//   - each block's refcount is the page's count word, the used and free totals
//     agree with them, and the chunk's LSN is the page's;
//   - the page is what the map writes: after a +1 and a -1 on one of the
//     chunk's blocks (logged at the two LSNs after the page's, to make the
//     chunk dirty with its counts unchanged), encode_dirty_pages gives back
//     the input's bytes, apart from the LSN and checksum in the block header.
#include <algorithm>
#include <cstring>
#include <limits>

#include "engine/format/block_header.h"
#include "engine/format/checksum.h"
#include "engine/space_map/metadata_space_map.h"
#include "fuzz/fuzz_targets.h"

namespace thinp::fuzz {
namespace {

using space_map::kEntriesPerChunk;
using space_map::kMetadataChunkHeaderEnd;
using space_map::kSlotsPerPage;
using space_map::MetadataSpaceMap;
using space_map::PageRegion;

// Bounds the map the target builds around a page (chunks before it).
constexpr uint64_t kChunkIndexMax = 3;
constexpr size_t kOffEntryCount = 36;
constexpr size_t kOffChunkIndex = 40;

std::vector<std::byte> as_block(const uint8_t* data, size_t size) {
  std::vector<std::byte> block(kMetadataBlockBytes);
  if (size > 0) std::memcpy(block.data(), data, std::min(size, block.size()));
  return block;
}

// The map a chunk page claims to belong to: it is chunk `chunk` (the last),
// holding `entries` counts, in slot 0 of its page: region.first + 2 * chunk.
struct ClaimedMap {
  uint64_t chunk = 0;
  uint64_t entries = kEntriesPerChunk;
  PageRegion region;
  uint64_t nr_blocks() const { return chunk * kEntriesPerChunk + entries; }
};

ClaimedMap claimed_map(std::span<const std::byte> page) {
  ClaimedMap m;
  if (page.size() < kMetadataChunkHeaderEnd) return m;
  MBlock location = peek_block_header(page).location;
  // Both slots of the page must have a block number: a region that wraps past
  // the last one is no map's (validate_layout keeps every region on the device).
  if (location.value() > UINT64_MAX - kSlotsPerPage) location = MBlock(0);
  m.chunk = get_u64(page, kOffChunkIndex);
  if (m.chunk > kChunkIndexMax || location.value() < kSlotsPerPage * m.chunk) m.chunk = 0;
  const uint32_t entries = get_u32(page, kOffEntryCount);
  if (entries >= 1 && entries <= kEntriesPerChunk) m.entries = entries;
  m.region = PageRegion{location - kSlotsPerPage * m.chunk, kSlotsPerPage * (m.chunk + 1)};
  return m;
}

// Loads the claimed map with `page` as its last chunk.
Result<MetadataSpaceMap> load_with(const ClaimedMap& m, std::span<const std::byte> page) {
  std::vector<space_map::EncodedPage> fresh =
      MetadataSpaceMap::create(m.nr_blocks(), m.region).value().encode_dirty_pages();
  return MetadataSpaceMap::load(m.nr_blocks(), m.region,
                                [&](MBlock at) -> Result<std::vector<std::byte>> {
                                  // Slot 1 of every page was never written.
                                  const space_map::PageSlot ps = page_slot_of(m.region, at);
                                  if (ps.slot != 0)
                                    return std::vector<std::byte>(kMetadataBlockBytes);
                                  if (ps.page == m.chunk)
                                    return std::vector<std::byte>(page.begin(), page.end());
                                  return fresh.at(ps.page).bytes;
                                });
}

// Makes the chunk dirty without changing its counts: +1 then -1 on its first
// block (or -1 then +1 on a block at the maximum count), at lsn + 1, lsn + 2.
void touch_first_block(MetadataSpaceMap& map, uint64_t chunk, Lsn lsn) {
  const MBlock b(chunk * kEntriesPerChunk);
  const int32_t first = map.refcount(b) == std::numeric_limits<uint32_t>::max() ? -1 : 1;
  map.apply({b, first}, lsn + 1);
  map.apply({b, -first}, lsn + 2);
}

// Equal apart from the checksum (bytes 0-3), the location (8-15: the other
// slot) and the LSN (16-23).
bool same_but_lsn(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && a.size() >= kBlockHeaderBytes &&
         std::equal(a.begin() + 4, a.begin() + 8, b.begin() + 4) &&
         std::equal(a.begin() + 24, a.end(), b.begin() + 24);
}

void check_counts(const MetadataSpaceMap& map, const ClaimedMap& m,
                  std::span<const std::byte> page) {
  uint64_t used = 0;
  for (uint64_t i = 0; i < m.entries; ++i) {
    const uint32_t count = get_u32(page, kMetadataChunkHeaderEnd + 4 * i);
    fuzz_require(map.refcount(MBlock(m.chunk * kEntriesPerChunk + i)) == count,
                 "a loaded refcount differs from the page's count");
    used += count == 0 ? 0 : 1;
  }
  fuzz_require(map.count_used() == used, "used total differs from the page's counts");
  fuzz_require(map.count_free() == map.nr_blocks() - used, "free total is wrong after load");
  fuzz_require(map.chunk_lsn(m.chunk) == peek_block_header(page).lsn,
               "chunk LSN is not the page's");
  fuzz_require(map.dirty_page_count() == 0, "a loaded chunk is dirty");
}

void load_and_recheck(std::span<const std::byte> page) {
  const ClaimedMap m = claimed_map(page);
  Result<MetadataSpaceMap> r = load_with(m, page);
  if (!r.ok()) {
    const std::string& msg = r.status().message();
    fuzz_require(msg.find('\n') == std::string::npos && !msg.empty(),
                 "load error is not a single non-empty line");
    return;
  }
  MetadataSpaceMap& map = *r;
  check_counts(map, m, page);
  const Lsn lsn = peek_block_header(page).lsn;
  if (lsn.value() > UINT64_MAX - 2) return;
  touch_first_block(map, m.chunk, lsn);
  const std::vector<space_map::EncodedPage> out = map.encode_dirty_pages();
  fuzz_require(out.size() == 1 && out[0].location == m.region.slot_location(m.chunk, 1),
               "touching one chunk dirtied another");
  fuzz_require(same_but_lsn(out[0].bytes, page),
               "accepted chunk page does not re-encode to the same bytes");
}

std::vector<uint8_t> to_seed(std::span<const std::byte> b) {
  std::vector<uint8_t> out(b.size());
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());
  return out;
}

void reseal(std::span<std::byte> block) { put_u32(block, 0, crc32c(block.subspan(4))); }

// The last chunk's page of a map of `nr_blocks` blocks, some in use (counts
// 1, 2, 7 and one at the maximum), its chunk at LSN 41 or later.
std::vector<std::byte> busy_last_chunk(uint64_t nr_blocks, MBlock first) {
  const PageRegion region{first, kSlotsPerPage * MetadataSpaceMap::chunks_for(nr_blocks)};
  MetadataSpaceMap map = MetadataSpaceMap::create(nr_blocks, region).value();
  const uint64_t base = (region.page_capacity() - 1) * kEntriesPerChunk;
  Lsn lsn(40);
  for (uint64_t b = base; b < nr_blocks; b += 3) {
    const int32_t delta = b % 11 == 0 ? 7 : 1 + int32_t(b % 2);
    map.apply({MBlock(b), delta}, ++lsn);
  }
  map.apply({MBlock(base + 1), std::numeric_limits<int32_t>::max()}, ++lsn);
  map.apply({MBlock(base + 1), std::numeric_limits<int32_t>::max()}, ++lsn);
  map.apply({MBlock(base + 1), 1}, ++lsn);  // 2^32 - 1
  return map.encode_dirty_pages().back().bytes;
}

}  // namespace

int fuzz_metadata_space_map_page(const uint8_t* data, size_t size) {
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

Status check_metadata_space_map_page(const uint8_t* data, size_t size) {
  const std::span<const std::byte> raw(reinterpret_cast<const std::byte*>(data), size);
  return load_with(claimed_map(as_block(data, size)), raw).status();
}

std::vector<FuzzSeed> seeds_metadata_space_map_page() {
  std::vector<FuzzSeed> seeds;
  const PageRegion one{MBlock(9), space_map::kSlotsPerPage};
  const std::vector<std::byte> fresh =
      MetadataSpaceMap::create(kEntriesPerChunk, one).value().encode_dirty_pages()[0].bytes;
  const std::vector<std::byte> short_chunk =
      busy_last_chunk(2 * kEntriesPerChunk + 300, MBlock(20));
  const std::vector<std::byte> full_chunk = busy_last_chunk(2 * kEntriesPerChunk, MBlock(500));
  seeds.push_back({"valid-fresh", to_seed(fresh)});
  seeds.push_back({"valid-busy-last-chunk", to_seed(short_chunk)});
  seeds.push_back({"valid-busy-full-chunk", to_seed(full_chunk)});

  std::vector<std::byte> flipped = full_chunk;
  flipped[1000] ^= std::byte{0x10};
  seeds.push_back({"bad-bitflip", to_seed(flipped)});

  std::vector<std::byte> free_count = short_chunk;  // one more zero than the counts hold
  put_u32(free_count, 48, get_u32(free_count, 48) + 1);
  reseal(free_count);
  seeds.push_back({"bad-free-count", to_seed(free_count)});

  std::vector<std::byte> version = fresh;
  put_u32(version, 32, space_map::kMetadataSpaceMapVersion + 1);
  reseal(version);
  seeds.push_back({"bad-newer-version", to_seed(version)});

  // A short last chunk with a byte set after its counts (found by the fuzzer:
  // decode_chunk did not check that the rest of the block is zero).
  std::vector<std::byte> tail = short_chunk;
  tail[kMetadataBlockBytes - 1] = std::byte{1};
  reseal(tail);
  seeds.push_back({"bad-nonzero-tail", to_seed(tail)});

  seeds.push_back({"bad-short", to_seed(std::span(fresh).first(kMetadataBlockBytes - 512))});
  return seeds;
}

}  // namespace thinp::fuzz
