#include "engine/format/layout.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/space_map/data_space_map.h"
#include "engine/space_map/metadata_space_map.h"

namespace thinp {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(Layout, TwoDevicesWithDefaults) {
  Result<Geometry> g = geometry_for_two_devices(64 * MiB, 1 * GiB, kDataBlockBytesDefault);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->metadata_blocks, 16384u);
  EXPECT_EQ(g->data_blocks, 16384u);
  EXPECT_FALSE(g->data_on_metadata_device);
  EXPECT_EQ(g->data_offset_bytes, 0u);

  Result<Layout> l = compute_layout(*g);
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  EXPECT_EQ(l->journal, (BlockRange{MBlock(2), 1024}));
  EXPECT_EQ(l->metadata_blocks_max, 4u * 16384);
  EXPECT_EQ(l->data_blocks_max, 4u * 16384);
  EXPECT_EQ(l->data_blocks_per_space_map_page, 668u);
  // Two slots per page: 2 * ceil(65536 / 1010) and 2 * ceil(65536 / 668).
  EXPECT_EQ(l->metadata_space_map, (BlockRange{MBlock(1026), 130}));
  EXPECT_EQ(l->data_space_map, (BlockRange{MBlock(1156), 198}));
  EXPECT_EQ(l->tree_pool, (BlockRange{MBlock(1354), 16384 - 1354}));
  EXPECT_TRUE(validate_layout(*g, *l).ok());
}

// A metadata area too small for the data space map of 4x the data gets less
// room to grow, not a refusal.
TEST(Layout, SmallMetadataGrowsLessInsteadOfFailing) {
  Result<Geometry> g = geometry_for_two_devices(1 * MiB, 100 * MiB, 4 * KiB);
  ASSERT_TRUE(g.ok());
  Result<Layout> l = compute_layout(*g);
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  EXPECT_EQ(l->data_blocks_max, 2u * 25600);  // 3x and 4x do not fit in 256 blocks
  EXPECT_TRUE(validate_layout(*g, *l).ok());
}

TEST(Layout, SmallMetadataGetsAProportionalJournal) {
  Result<Geometry> g = geometry_for_two_devices(1 * MiB, 100 * MiB, 4 * KiB);
  ASSERT_TRUE(g.ok());
  Result<Layout> l = compute_layout(*g);
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  EXPECT_EQ(l->journal.blocks, 16u);  // 256 blocks / 16
  EXPECT_EQ(l->tree_pool.end(), MBlock(256));
}

TEST(Layout, OptionsOverrideDefaults) {
  Result<Geometry> g = geometry_for_two_devices(64 * MiB, 1 * GiB, 1 * MiB);
  ASSERT_TRUE(g.ok());
  LayoutOptions o;
  o.journal_blocks = 100;
  o.metadata_blocks_max = 16384;
  o.data_blocks_max = 2000;
  o.data_blocks_per_space_map_page = 100;
  Result<Layout> l = compute_layout(*g, o);
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  EXPECT_EQ(l->journal.blocks, 100u);
  EXPECT_EQ(l->metadata_space_map.blocks, 34u);  // 2 slots * ceil(16384 / 1010)
  EXPECT_EQ(l->data_space_map.blocks, 40u);      // 2 slots * 2000 / 100

  o.journal_blocks = 3;
  EXPECT_TRUE(contains(compute_layout(*g, o).status().message(), "below the minimum of 8"));
  o.journal_blocks = 0;
  o.metadata_blocks_max = 100;
  EXPECT_TRUE(contains(compute_layout(*g, o).status().message(), "maximum metadata size"));
  o.metadata_blocks_max = 0;
  o.data_blocks_max = 10;
  EXPECT_TRUE(contains(compute_layout(*g, o).status().message(), "maximum data size"));
  o.data_blocks_max = 0;
  o.data_blocks_per_space_map_page = uint64_t(1) << 33;
  EXPECT_TRUE(contains(compute_layout(*g, o).status().message(), "larger than 2^32"));
  o.data_blocks_per_space_map_page = 1;
  o.data_blocks_max = UINT64_MAX / (1 * MiB);  // 2^44 pages: must not fit, nor overflow
  EXPECT_TRUE(contains(compute_layout(*g, o).status().message(), "is too small"));
  o = LayoutOptions();
  o.journal_blocks = UINT64_MAX;  // must not overflow the size sum
  EXPECT_TRUE(contains(compute_layout(*g, o).status().message(), "is too small"));
}

TEST(Layout, RejectsDataBlockSizes) {
  for (uint64_t bad : {uint64_t(0), uint64_t(512), 2 * KiB, 96 * KiB, uint64_t(3000), 2 * GiB}) {
    Result<Geometry> g = geometry_for_two_devices(64 * MiB, 64 * GiB, bad);
    ASSERT_FALSE(g.ok()) << bad;
    EXPECT_EQ(g.status().code(), Errc::invalid_argument);
    EXPECT_TRUE(contains(g.status().message(), "is not a power of two between 4 KiB and 1 GiB"))
        << g.status().message();
  }
  EXPECT_TRUE(contains(geometry_for_two_devices(64 * MiB, 64 * GiB, 96 * KiB).status().message(),
                       "data block size 96 KiB"));
  EXPECT_TRUE(geometry_for_two_devices(64 * MiB, 64 * GiB, 4 * KiB).ok());
  EXPECT_TRUE(geometry_for_two_devices(64 * MiB, 64 * GiB, 1 * GiB).ok());
}

TEST(Layout, RejectsTooSmallDevices) {
  Result<Geometry> g = geometry_for_two_devices(64 * KiB, 1 * GiB, 64 * KiB);
  ASSERT_TRUE(g.ok());
  Result<Layout> l = compute_layout(*g);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().message(),
            "metadata area of 64 KiB (16 blocks) is too small: it needs at least 78 blocks "
            "(2 superblock, 8 journal, 2 metadata space map, 50 data space map, 16 trees)");

  EXPECT_TRUE(contains(geometry_for_two_devices(100, 1 * GiB, 64 * KiB).status().message(),
                       "holds no whole 4 KiB block"));
  EXPECT_TRUE(contains(geometry_for_two_devices(1 * MiB, 60 * KiB, 64 * KiB).status().message(),
                       "data device of 60 KiB holds no whole data block of 64 KiB"));
}

TEST(Layout, OneDeviceSplitsMetadataFirstAlignedToDataBlocks) {
  Result<Geometry> g = geometry_for_one_device(1 * GiB, 4 * MiB + 4 * KiB, 64 * KiB);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_TRUE(g->data_on_metadata_device);
  EXPECT_EQ(g->metadata_blocks, 1025u);
  EXPECT_EQ(g->data_offset_bytes, 4 * MiB + 64 * KiB);
  EXPECT_EQ(g->data_blocks, 16384u - 64 - 1);
  EXPECT_LE(g->data_offset_bytes + g->data_bytes(), 1 * GiB);
  EXPECT_TRUE(compute_layout(*g).ok());

  EXPECT_TRUE(contains(geometry_for_one_device(1 * GiB, 4 * MiB + 1, 64 * KiB).status().message(),
                       "is not a positive multiple of 4 KiB"));
  EXPECT_EQ(geometry_for_one_device(4 * MiB + 32 * KiB, 4 * MiB, 64 * KiB).status().message(),
            "device of 4128 KiB is too small for 4 MiB of metadata and one 64 KiB data block");
  EXPECT_FALSE(geometry_for_one_device(1 * MiB, 4 * MiB, 64 * KiB).ok());
}

TEST(Layout, ValidateGeometryCatchesUntrustedValues) {
  Geometry g;
  g.metadata_blocks = 1024;
  g.data_blocks = 10;
  EXPECT_TRUE(validate_geometry(g).ok());

  Geometry bad = g;
  bad.data_offset_bytes = 4096;
  EXPECT_TRUE(contains(validate_geometry(bad).message(), "own device but at offset"));
  bad = g;
  bad.data_on_metadata_device = true;
  bad.data_offset_bytes = 64 * KiB;  // inside the 4 MiB metadata area
  EXPECT_TRUE(contains(validate_geometry(bad).message(), "overlaps the metadata area"));
  bad.data_offset_bytes = 4 * MiB + 4096;
  EXPECT_TRUE(contains(validate_geometry(bad).message(), "not aligned"));
  bad = g;
  bad.data_blocks = UINT64_MAX / 1024;
  EXPECT_TRUE(contains(validate_geometry(bad).message(), "does not fit in 64 bits"));
  bad = g;
  bad.data_on_metadata_device = true;
  bad.data_offset_bytes = UINT64_MAX - (UINT64_MAX % (64 * KiB));
  EXPECT_TRUE(contains(validate_geometry(bad).message(), "does not fit in 64 bits"));
  bad = g;
  bad.metadata_blocks = 0;
  EXPECT_FALSE(validate_geometry(bad).ok());
}

TEST(Layout, ValidateLayoutCatchesEachRegion) {
  const Geometry g = geometry_for_two_devices(64 * MiB, 1 * GiB, 64 * KiB).value();
  const Layout good = compute_layout(g).value();

  Layout l = good;
  l.journal.begin = MBlock(3);
  EXPECT_TRUE(
      contains(validate_layout(g, l).message(), "journal [3, +1024) should start at block 2"));
  l = good;
  l.metadata_space_map.blocks += 1;
  EXPECT_TRUE(contains(validate_layout(g, l).message(), "two slots for each of the 65 pages"));
  l = good;
  l.data_space_map.begin = MBlock(UINT64_MAX);
  EXPECT_TRUE(contains(validate_layout(g, l).message(), "runs past the end"));
  l = good;
  l.tree_pool.blocks -= 1;
  EXPECT_TRUE(contains(validate_layout(g, l).message(), "does not end at the end"));
  l = good;
  l.journal.blocks = UINT64_MAX;
  EXPECT_TRUE(contains(validate_layout(g, l).message(), "runs past the end"));
  l = good;
  l.data_space_map.blocks += 1;
  EXPECT_TRUE(contains(validate_layout(g, l).message(), "two slots for each of the 99 pages"));
  l = good;
  l.data_blocks_per_space_map_page = 0;
  EXPECT_TRUE(contains(validate_layout(g, l).message(), "outside [1, 2^32]"));
  l = good;
  l.data_blocks_max = 1;
  EXPECT_TRUE(contains(validate_layout(g, l).message(), "maximum data size"));
  l = good;
  l.metadata_blocks_max = 5;
  EXPECT_TRUE(contains(validate_layout(g, l).message(), "maximum metadata size"));
}

// The layout sizes the space map regions; the space maps own the page formats.
// They must agree on how many pages a map needs.
TEST(Layout, AgreesWithTheSpaceMapsOnPageCounts) {
  EXPECT_EQ(kMetadataRefcountsPerPage, space_map::kEntriesPerChunk);
  EXPECT_EQ(kDataBlocksPerSpaceMapPageDefault, space_map::kDefaultDataBlocksPerPage);
  for (uint64_t n :
       {uint64_t(1), uint64_t(1009), uint64_t(1010), uint64_t(1011), uint64_t(1) << 30}) {
    EXPECT_EQ(metadata_space_map_pages(n), space_map::MetadataSpaceMap::chunks_for(n)) << n;
    EXPECT_EQ(data_space_map_pages(n, 16384), space_map::DataSpaceMap::pages_for(n, 16384)) << n;
  }
}

}  // namespace
}  // namespace thinp
