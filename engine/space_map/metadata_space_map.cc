#include "engine/space_map/metadata_space_map.h"

#include <algorithm>
#include <limits>
#include <string>

#include "engine/format/block_header.h"

namespace thinp::space_map {

namespace {

constexpr size_t kOffVersion = 32;
constexpr size_t kOffEntryCount = 36;
constexpr size_t kOffChunkIndex = 40;
constexpr size_t kOffFreeCount = 48;
constexpr size_t kOffReserved = 52;

}  // namespace

uint64_t MetadataSpaceMap::chunks_for(uint64_t nr_blocks) {
  return (nr_blocks + kEntriesPerChunk - 1) / kEntriesPerChunk;
}

MetadataSpaceMap::MetadataSpaceMap(uint64_t nr_blocks, PageRegion region)
    : nr_blocks_(nr_blocks),
      region_(region),
      counts_(nr_blocks, 0),
      reserved_(nr_blocks, false),
      chunks_(chunks_for(nr_blocks)) {
  for (uint64_t c = 0; c < chunks_.size(); ++c) {
    chunks_[c].allocatable = static_cast<uint32_t>(entries_in_chunk(c));
  }
}

Result<MetadataSpaceMap> MetadataSpaceMap::create(uint64_t nr_blocks, PageRegion region) {
  if (nr_blocks == 0) return Status(Errc::invalid_argument, "metadata space map of 0 blocks");
  if (chunks_for(nr_blocks) > region.page_capacity()) {
    return Status(Errc::invalid_argument,
                  "metadata space map of " + std::to_string(nr_blocks) + " blocks needs " +
                      std::to_string(chunks_for(nr_blocks)) + " pages, region holds " +
                      std::to_string(region.page_capacity()));
  }
  return MetadataSpaceMap(nr_blocks, region);
}

uint64_t MetadataSpaceMap::entries_in_chunk(uint64_t chunk) const {
  TP_ASSERT_LT(chunk, chunks_.size());
  const uint64_t begin = chunk * kEntriesPerChunk;
  return std::min(kEntriesPerChunk, nr_blocks_ - begin);
}

void MetadataSpaceMap::touch(uint64_t chunk) {
  chunks_[chunk].dirty = true;
  ++chunks_[chunk].generation;
}

void MetadataSpaceMap::mark_used_at_format(MBlock begin, uint64_t count) {
  TP_ASSERT_EQ(last_applied_, Lsn(0));
  TP_ASSERT_LE(begin.value() + count, nr_blocks_);
  for (uint64_t b = begin.value(); b < begin.value() + count; ++b) {
    TP_ASSERT_EQ(counts_[b], 0u);
    TP_ASSERT(!reserved_[b]);
    counts_[b] = 1;
    ++used_;
    const uint64_t c = b / kEntriesPerChunk;
    --chunks_[c].allocatable;
    touch(c);
  }
}

Status MetadataSpaceMap::grow(uint64_t new_nr_blocks) {
  if (new_nr_blocks < nr_blocks_) {
    return Status(Errc::invalid_argument, "metadata space map cannot shrink from " +
                                              std::to_string(nr_blocks_) + " to " +
                                              std::to_string(new_nr_blocks) + " blocks");
  }
  const uint64_t new_chunks = chunks_for(new_nr_blocks);
  if (new_chunks > region_.page_capacity()) {
    return Status(Errc::no_space, "metadata space map of " + std::to_string(new_nr_blocks) +
                                      " blocks needs " + std::to_string(new_chunks) +
                                      " pages, region holds " +
                                      std::to_string(region_.page_capacity()));
  }
  const uint64_t old_nr = nr_blocks_;
  nr_blocks_ = new_nr_blocks;
  counts_.resize(new_nr_blocks, 0);
  reserved_.resize(new_nr_blocks, false);
  const uint64_t old_chunks = chunks_.size();
  chunks_.resize(new_chunks);
  // The old last chunk may have gained entries; every new chunk is all free.
  for (uint64_t c = old_chunks == 0 ? 0 : old_chunks - 1; c < new_chunks; ++c) {
    const uint64_t begin = c * kEntriesPerChunk;
    const uint64_t old_end = std::max(begin, std::min(old_nr, begin + kEntriesPerChunk));
    const uint64_t new_end = std::min(new_nr_blocks, begin + kEntriesPerChunk);
    if (new_end == old_end && c < old_chunks) continue;
    chunks_[c].allocatable += static_cast<uint32_t>(new_end - old_end);
    touch(c);
  }
  return ok_status();
}

std::optional<uint64_t> MetadataSpaceMap::find_free(uint64_t from, uint64_t to) const {
  uint64_t b = from;
  while (b < to) {
    const uint64_t c = b / kEntriesPerChunk;
    if (chunks_[c].allocatable == 0) {
      b = (c + 1) * kEntriesPerChunk;
      continue;
    }
    if (counts_[b] == 0 && !reserved_[b]) return b;
    ++b;
  }
  return std::nullopt;
}

Result<journal::MetaRefDelta> MetadataSpaceMap::reserve(std::optional<MBlock> hint) {
  uint64_t start = hint ? hint->value() : cursor_;
  if (start >= nr_blocks_) start = 0;
  std::optional<uint64_t> found = find_free(start, nr_blocks_);
  if (!found) found = find_free(0, start);
  if (!found) {
    return Status(Errc::no_space,
                  "metadata device full: all " + std::to_string(nr_blocks_) + " blocks in use");
  }
  const uint64_t b = *found;
  reserved_[b] = true;
  ++reserved_count_;
  --chunks_[b / kEntriesPerChunk].allocatable;
  cursor_ = b + 1;
  return journal::MetaRefDelta{MBlock(b), +1};
}

void MetadataSpaceMap::cancel(MBlock block) {
  const uint64_t b = block.value();
  TP_ASSERT_LT(b, nr_blocks_);
  TP_ASSERT(reserved_[b]);
  reserved_[b] = false;
  --reserved_count_;
  ++chunks_[b / kEntriesPerChunk].allocatable;
}

Status MetadataSpaceMap::check(const journal::MetaRefDelta& r) const {
  const uint64_t b = r.block.value();
  const std::string what =
      "metadata ref delta " + std::to_string(r.delta) + " on block " + std::to_string(b) + ": ";
  if (b >= nr_blocks_) {
    return Status(Errc::invalid_argument, what + "beyond " + std::to_string(nr_blocks_));
  }
  if (r.delta == 0) return Status(Errc::invalid_argument, what + "delta is 0");
  const int64_t next = int64_t(counts_[b]) + r.delta;
  if (next < 0) return Status(Errc::invalid_argument, what + "count would go below zero");
  if (next > int64_t(std::numeric_limits<uint32_t>::max())) {
    return Status(Errc::invalid_argument, what + "count would overflow");
  }
  if (counts_[b] == 0 && !reserved_[b]) {
    return Status(Errc::invalid_argument, what + "raises a free block that was not reserved");
  }
  return ok_status();
}

void MetadataSpaceMap::apply(const journal::MetaRefDelta& r, Lsn lsn) {
  TP_ASSERT_GT(lsn, last_applied_);
  last_applied_ = lsn;
  const uint64_t b = r.block.value();
  TP_ASSERT_LT(b, nr_blocks_);
  TP_ASSERT_NE(r.delta, 0);
  const uint64_t c = b / kEntriesPerChunk;
  Chunk& chunk = chunks_[c];
  if (lsn <= chunk.lsn) return;  // replay: the checkpoint already has it
  const int64_t old_count = counts_[b];
  const int64_t new_count = old_count + r.delta;
  TP_ASSERT_GE(new_count, 0);
  TP_ASSERT_LE(new_count, int64_t(std::numeric_limits<uint32_t>::max()));
  if (old_count == 0) {
    ++used_;
    if (reserved_[b]) {
      reserved_[b] = false;  // already not allocatable
      --reserved_count_;
    } else {
      --chunk.allocatable;
    }
  } else if (new_count == 0) {
    --used_;
    ++chunk.allocatable;
  }
  counts_[b] = static_cast<uint32_t>(new_count);
  chunk.lsn = lsn;
  if (!chunk.rec_lsn) chunk.rec_lsn = lsn;
  touch(c);
}

uint32_t MetadataSpaceMap::refcount(MBlock block) const {
  TP_ASSERT_LT(block.value(), nr_blocks_);
  return counts_[block.value()];
}

bool MetadataSpaceMap::is_reserved(MBlock block) const {
  TP_ASSERT_LT(block.value(), nr_blocks_);
  return reserved_[block.value()];
}

Lsn MetadataSpaceMap::chunk_lsn(uint64_t chunk) const {
  TP_ASSERT_LT(chunk, chunks_.size());
  return chunks_[chunk].lsn;
}

void MetadataSpaceMap::for_each_used(const std::function<void(MBlock, uint32_t)>& fn) const {
  for (uint64_t c = 0; c < chunks_.size(); ++c) {
    if (chunks_[c].allocatable == entries_in_chunk(c)) continue;  // all zero
    const uint64_t end = c * kEntriesPerChunk + entries_in_chunk(c);
    for (uint64_t b = c * kEntriesPerChunk; b < end; ++b) {
      if (counts_[b] != 0) fn(MBlock(b), counts_[b]);
    }
  }
}

std::vector<MetaRefMismatch> MetadataSpaceMap::diff(
    const std::map<MBlock, uint32_t>& expected) const {
  std::vector<MetaRefMismatch> out;
  auto exp = expected.begin();
  for (uint64_t b = 0; b < nr_blocks_; ++b) {
    uint32_t want = 0;
    if (exp != expected.end() && exp->first.value() == b) want = (exp++)->second;
    if (counts_[b] != want) out.push_back({MBlock(b), want, counts_[b]});
  }
  // References to blocks beyond the device are always wrong.
  for (auto it = expected.lower_bound(MBlock(nr_blocks_)); it != expected.end(); ++it) {
    if (it->second != 0) out.push_back({it->first, it->second, 0});
  }
  return out;
}

std::vector<std::byte> MetadataSpaceMap::encode_chunk(uint64_t chunk) const {
  std::vector<std::byte> page(kMetadataBlockBytes, std::byte{0});
  const uint64_t n = entries_in_chunk(chunk);
  const uint64_t base = chunk * kEntriesPerChunk;
  uint32_t free_count = 0;
  for (uint64_t i = 0; i < n; ++i) {
    put_u32(page, kMetadataChunkHeaderEnd + 4 * i, counts_[base + i]);
    if (counts_[base + i] == 0) ++free_count;
  }
  put_u32(page, kOffVersion, kMetadataSpaceMapVersion);
  put_u32(page, kOffEntryCount, static_cast<uint32_t>(n));
  put_u64(page, kOffChunkIndex, chunk);
  put_u32(page, kOffFreeCount, free_count);
  put_u32(page, kOffReserved, 0);
  // Into the slot that does not hold the newest durable version.
  seal_block(page, BlockType::metadata_space_map,
             region_.slot_location(chunk, 1 - chunks_[chunk].durable_slot), chunks_[chunk].lsn);
  return page;
}

std::vector<EncodedPage> MetadataSpaceMap::encode_dirty_pages(Lsn up_to) const {
  std::vector<EncodedPage> out;
  for (uint64_t c = 0; c < chunks_.size(); ++c) {
    if (!chunks_[c].dirty || chunks_[c].lsn > up_to) continue;
    out.push_back({region_.slot_location(c, 1 - chunks_[c].durable_slot), chunks_[c].lsn,
                   encode_chunk(c), chunks_[c].generation});
  }
  return out;
}

void MetadataSpaceMap::mark_written(const EncodedPage& page) {
  const PageSlot where = page_slot_of(region_, page.location);
  const uint64_t c = where.page;
  TP_ASSERT_LT(c, chunks_.size());
  Chunk& chunk = chunks_[c];
  // The slot now holds the newest durable version, whatever changed since.
  chunk.durable_slot = where.slot;
  if (chunk.generation == page.generation) {
    chunk.dirty = false;
    chunk.rec_lsn.reset();
  } else if (chunk.rec_lsn) {
    // Changed since encoded: the disk now has every record up to page.lsn,
    // so only later ones (> page.lsn) are still needed from the journal.
    // Without this a page that is always busy would hold the tail forever.
    chunk.rec_lsn = std::max(*chunk.rec_lsn, page.lsn + 1);
  }
}

std::optional<Lsn> MetadataSpaceMap::oldest_unwritten_lsn() const {
  std::optional<Lsn> oldest;
  for (const Chunk& c : chunks_) {
    if (c.rec_lsn && (!oldest || *c.rec_lsn < *oldest)) oldest = c.rec_lsn;
  }
  return oldest;
}

uint64_t MetadataSpaceMap::dirty_page_count() const {
  uint64_t n = 0;
  for (const Chunk& c : chunks_) n += c.dirty ? 1 : 0;
  return n;
}

Status MetadataSpaceMap::decode_chunk(uint64_t chunk, unsigned slot,
                                      std::span<const std::byte> page) {
  const MBlock location = region_.slot_location(chunk, slot);
  TP_RETURN_IF_ERROR(verify_block(page, BlockType::metadata_space_map, location));
  auto bad = [&](const std::string& why) {
    return Status(Errc::corruption,
                  "metadata space map block " + std::to_string(location.value()) + ": " + why);
  };
  const uint32_t version = get_u32(page, kOffVersion);
  if (version != kMetadataSpaceMapVersion) {
    return Status(version > kMetadataSpaceMapVersion ? Errc::unsupported : Errc::corruption,
                  "metadata space map block " + std::to_string(location.value()) +
                      ": format version " + std::to_string(version));
  }
  const uint64_t n = entries_in_chunk(chunk);
  if (get_u32(page, kOffEntryCount) != n) {
    return bad("holds " + std::to_string(get_u32(page, kOffEntryCount)) + " entries, expected " +
               std::to_string(n));
  }
  if (get_u64(page, kOffChunkIndex) != chunk) {
    return bad("is chunk " + std::to_string(get_u64(page, kOffChunkIndex)) + ", expected " +
               std::to_string(chunk));
  }
  if (get_u32(page, kOffReserved) != 0) return bad("reserved header field is not zero");
  const uint64_t base = chunk * kEntriesPerChunk;
  uint32_t free_count = 0;
  uint32_t used = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t v = get_u32(page, kMetadataChunkHeaderEnd + 4 * i);
    counts_[base + i] = v;
    free_count += v == 0 ? 1 : 0;
    used += v == 0 ? 0 : 1;
  }
  for (size_t off = kMetadataChunkHeaderEnd + 4 * n; off < page.size(); ++off) {
    if (page[off] != std::byte{0}) return bad("non-zero bytes after the counts");
  }
  if (free_count != get_u32(page, kOffFreeCount)) {
    return bad("free count " + std::to_string(get_u32(page, kOffFreeCount)) + " but " +
               std::to_string(free_count) + " entries are zero");
  }
  used_ += used;
  chunks_[chunk].allocatable = free_count;
  chunks_[chunk].lsn = peek_block_header(page).lsn;
  chunks_[chunk].dirty = false;
  chunks_[chunk].durable_slot = slot;
  return ok_status();
}

Result<MetadataSpaceMap> MetadataSpaceMap::load(uint64_t nr_blocks, PageRegion region,
                                                const PageReader& read_page) {
  TP_ASSIGN_OR_RETURN(MetadataSpaceMap map, create(nr_blocks, region));
  for (uint64_t c = 0; c < map.chunks_.size(); ++c) {
    Result<ChosenSlot> page = read_newest_slot(region, c, BlockType::metadata_space_map, read_page);
    if (!page.ok()) {
      return page.status().with_context("reading metadata space map page " + std::to_string(c));
    }
    TP_RETURN_IF_ERROR(map.decode_chunk(c, page->slot, page->bytes));
  }
  return map;
}

}  // namespace thinp::space_map
