// MetadataStore::format and MetadataStore::open: laying a pool out, and
// reading one back (docs/format.md, "Pool metadata lifecycle").
#include <algorithm>
#include <cstring>
#include <string>

#include "engine/pool/metadata_store_impl.h"

namespace thinp::pool {
namespace {

constexpr uint64_t kRegionWriteBytes = uint64_t(4) << 20;  // per IO when writing a region
constexpr uint64_t kDefaultMetadataBytesMin = uint64_t(1) << 20;
constexpr uint64_t kDefaultMetadataBytesMax = uint64_t(16) << 30;
constexpr int kSuperblockReadRetries = 2;

// Writes blocks [first, first + blocks) of `dev`: each block is the page in
// `pages` that lives there, or zero. In chunks of kRegionWriteBytes, no FLUSH.
Status write_region(BlockDevice& dev, MBlock first, uint64_t blocks,
                    const std::vector<space_map::EncodedPage>& pages) {
  const uint64_t per_io = kRegionWriteBytes / kMetadataBlockBytes;
  size_t next_page = 0;
  for (uint64_t done = 0; done < blocks;) {
    const uint64_t n = std::min(per_io, blocks - done);
    AlignedBuffer buf(n * kMetadataBlockBytes);  // zero-filled
    const MBlock chunk_begin = first + done;
    while (next_page < pages.size() && pages[next_page].location < chunk_begin + n) {
      const space_map::EncodedPage& p = pages[next_page++];
      TP_ASSERT_GE(p.location, chunk_begin);
      TP_ASSERT_EQ(p.bytes.size(), kMetadataBlockBytes);
      std::memcpy(buf.data() + (p.location - chunk_begin) * kMetadataBlockBytes, p.bytes.data(),
                  kMetadataBlockBytes);
    }
    TP_RETURN_IF_ERROR(dev.write(chunk_begin.value() * kMetadataBlockBytes, buf.span()));
    done += n;
  }
  TP_ASSERT_EQ(next_page, pages.size());
  return ok_status();
}

Result<Geometry> format_geometry(BlockDevice& metadata, BlockDevice* data,
                                 const FormatOptions& options) {
  if (data != nullptr) {
    return geometry_for_two_devices(metadata.size_bytes(), data->size_bytes(),
                                    options.data_block_bytes);
  }
  uint64_t meta_bytes = options.metadata_bytes;
  if (meta_bytes == 0) {  // ~1.5% of the device, within [1 MiB, 16 GiB]
    meta_bytes =
        std::clamp(metadata.size_bytes() / 64, kDefaultMetadataBytesMin, kDefaultMetadataBytesMax);
  }
  meta_bytes -= meta_bytes % kMetadataBlockBytes;
  return geometry_for_one_device(metadata.size_bytes(), meta_bytes, options.data_block_bytes);
}

space_map::PageRegion region_of(const BlockRange& r) {
  return space_map::PageRegion{r.begin, r.blocks};
}

space_map::DataGeometry data_geometry_of(const Superblock& sb) {
  return space_map::DataGeometry{sb.geometry.data_blocks, sb.layout.data_blocks_per_space_map_page,
                                 region_of(sb.layout.data_space_map)};
}

// The data space map and its pages on disk after the erase.
Status write_space_maps(BlockDevice& dev, const Geometry& geometry, const Layout& layout) {
  TP_ASSIGN_OR_RETURN(auto meta,
                      space_map::MetadataSpaceMap::create(geometry.metadata_blocks,
                                                          region_of(layout.metadata_space_map)));
  // Superblock slots, journal and both maps' regions: everything before the
  // tree pool is in use from the start.
  meta.mark_used_at_format(MBlock(0), layout.tree_pool.begin.value());
  TP_ASSIGN_OR_RETURN(auto data, space_map::DataSpaceMap::create(space_map::DataGeometry{
                                     geometry.data_blocks, layout.data_blocks_per_space_map_page,
                                     region_of(layout.data_space_map)}));
  TP_RETURN_IF_ERROR(write_region(dev, layout.metadata_space_map.begin,
                                  layout.metadata_space_map.blocks, meta.encode_dirty_pages()));
  TP_ASSIGN_OR_RETURN(auto data_pages, data.encode_dirty_pages());
  return write_region(dev, layout.data_space_map.begin, layout.data_space_map.blocks, data_pages);
}

Status check_device_sizes(const Superblock& sb, BlockDevice& metadata, BlockDevice* data) {
  const Geometry& g = sb.geometry;
  if (metadata.size_bytes() < g.metadata_bytes()) {
    return Status(Errc::invalid_argument, metadata.name() + " is smaller (" +
                                              std::to_string(metadata.size_bytes()) +
                                              " bytes) than the pool's metadata area (" +
                                              std::to_string(g.metadata_bytes()) + " bytes)");
  }
  if (g.data_on_metadata_device) {
    if (data != nullptr) {
      return Status(Errc::invalid_argument, "the pool on " + metadata.name() +
                                                " keeps its data on the same device; "
                                                "no data device expected");
    }
    if (metadata.size_bytes() < g.data_offset_bytes + g.data_bytes()) {
      return Status(Errc::invalid_argument,
                    metadata.name() + " is smaller than the pool's data area");
    }
    return ok_status();
  }
  if (data == nullptr) {
    return Status(Errc::invalid_argument,
                  "the pool on " + metadata.name() + " has a separate data device; none given");
  }
  if (data->size_bytes() < g.data_bytes()) {
    return Status(Errc::invalid_argument, data->name() + " is smaller than the pool's data area (" +
                                              std::to_string(g.data_bytes()) + " bytes)");
  }
  return ok_status();
}

space_map::PageReader device_reader(BlockDevice& dev) {
  return [&dev](MBlock at) -> Result<std::vector<std::byte>> {
    AlignedBuffer buf(kMetadataBlockBytes);
    TP_RETURN_IF_ERROR(dev.read(at.value() * kMetadataBlockBytes, buf.span()));
    return std::vector<std::byte>(buf.data(), buf.data() + kMetadataBlockBytes);
  };
}

}  // namespace

// Order (each step durable before the superblock names it):
//   1. refuse a device holding a pool unless forced;
//   2. erase both superblock slots (FUA): from here the device is no pool;
//   3. zero the journal ring, so that no block of an older pool can be taken
//      for the new log (locate_tail/recover trust a block that verifies and
//      carries the tail LSN);
//   4. write every page of both space maps (format regions in use);
//   5. FLUSH;
//   6. write the superblock (FUA): the pool exists.
Status MetadataStore::format(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                             const FormatOptions& options) {
  (void)rt;
  TP_ASSIGN_OR_RETURN(const Geometry geometry, format_geometry(metadata, data, options));
  LayoutOptions lo;
  lo.journal_blocks = options.journal_blocks;
  TP_ASSIGN_OR_RETURN(const Layout layout, compute_layout(geometry, lo));
  if (!options.force) {
    Result<Superblock> existing = read_superblock(metadata);
    if (existing.ok()) {
      return Status(Errc::already_exists, metadata.name() + " already holds a thinp pool (uuid " +
                                              uuid_string(existing->uuid) + "); use --force");
    }
    if (existing.status().code() != Errc::not_found) {
      return existing.status().with_context("refusing to format " + metadata.name() +
                                            " without --force");
    }
  }
  TP_RETURN_IF_ERROR(erase_superblocks(metadata));
  TP_RETURN_IF_ERROR(write_region(metadata, layout.journal.begin, layout.journal.blocks, {}));
  TP_RETURN_IF_ERROR(write_space_maps(metadata, geometry, layout));
  TP_RETURN_IF_ERROR(metadata.flush());
  Superblock sb = new_superblock(geometry, layout, rt.random());
  sb.zero_new_blocks = options.zero_new_blocks;
  sb.out_of_data_space_mode = options.out_of_data_space;
  return write_superblock(metadata, sb);
}

Result<std::unique_ptr<MetadataStore>> MetadataStore::open(Runtime& rt, BlockDevice& metadata,
                                                           BlockDevice* data,
                                                           const OpenOptions& options) {
  // A read error of one slot is reported as corruption when the other slot
  // holds no pool (read_superblock cannot tell), so a failed read is retried
  // before the pool is called corrupt: real corruption reads the same again.
  Result<Superblock> read = read_superblock(metadata);
  for (int retry = 0;
       retry < kSuperblockReadRetries && !read.ok() &&
       (read.status().code() == Errc::corruption || read.status().code() == Errc::io_error);
       ++retry) {
    read = read_superblock(metadata);
  }
  if (!read.ok()) return read.status();
  const Superblock sb = std::move(read).value();
  TP_RETURN_IF_ERROR(check_device_sizes(sb, metadata, data));
  const space_map::PageReader reader = device_reader(metadata);
  auto meta = space_map::MetadataSpaceMap::load(sb.geometry.metadata_blocks,
                                                region_of(sb.layout.metadata_space_map), reader);
  if (!meta.ok()) return meta.status().with_context("metadata space map");
  auto data_map = space_map::DataSpaceMap::load(data_geometry_of(sb), reader);
  if (!data_map.ok()) return data_map.status().with_context("data space map");
  auto store = std::make_unique<MetadataStoreImpl>(
      rt, metadata, data, options, sb, std::move(meta).value(), std::move(data_map).value());
  TP_RETURN_IF_ERROR(store->start());
  return std::unique_ptr<MetadataStore>(std::move(store));
}

}  // namespace thinp::pool
