// The pinned-tree walker on the simulator: a pool writes and pins a thin,
// then the walker, reading only the disk, must list exactly the runs the pool
// reports; a damaged tree page is a one-line corruption error naming it.
#include "engine/pool/pinned_walker.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "engine/base/random.h"
#include "engine/btree/mapping_node.h"
#include "engine/pool/pool.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"
#include "sim/sim_disk_media.h"
#include "sim/trace.h"

namespace thinp::pool {
namespace {

constexpr uint64_t kDeviceBytes = uint64_t(64) << 20;
constexpr uint64_t kBlockBytes = 4096;  // small data blocks: many runs from few writes

struct World {
  explicit World(uint64_t seed = 1)
      : media(512, kDeviceBytes / 512),
        trace(sim::TraceOptions{}),
        sched(seed),
        disk(sched, media, trace, sim::SimDiskOptions{}, Random(seed * 31)) {}
  ~World() {
    pool.reset();
    sched.kill_all_tasks();
  }

  void run(std::function<void()> body) {
    sched.spawn("test", std::move(body));
    ASSERT_EQ(sched.run(), sim::RunOutcome::idle) << sched.deadlock_report() << sched.failure();
  }

  // Formats, opens and creates thin 1 of `blocks` blocks.
  void start(uint64_t blocks) {
    run([&] {
      FormatOptions f;
      f.data_block_bytes = kBlockBytes;
      f.metadata_bytes = uint64_t(4) << 20;
      ASSERT_TRUE(Pool::format(sched, disk, nullptr, f).ok());
      auto opened = Pool::open(sched, disk, nullptr, PoolOptions{});
      ASSERT_TRUE(opened.ok()) << opened.status().to_string();
      pool = std::move(opened).value();
      Status s = pool->create_thin(ThinId(1), blocks * kBlockBytes);
      ASSERT_TRUE(s.ok()) << s.to_string();
    });
  }

  // Writes one block of a pattern at each of `vblocks` of thin 1.
  void write_blocks(const std::vector<uint64_t>& vblocks) {
    run([&] {
      AlignedBuffer buf(kBlockBytes);
      for (uint64_t v : vblocks) {
        std::fill(buf.span().begin(), buf.span().end(), std::byte(v & 0xff));
        Status s = pool->write(ThinId(1), v * kBlockBytes, buf.span());
        ASSERT_TRUE(s.ok()) << s.to_string();
      }
      ASSERT_TRUE(pool->flush().ok());
    });
  }

  Result<std::vector<thinp::Run>> walk(ThinId thin) {
    Result<std::vector<thinp::Run>> out = Status(Errc::aborted, "not run");
    run([&] { out = read_pinned_mappings(sched, disk, thin); });
    return out;
  }

  // Flips one byte of metadata block `block`, through the device.
  void damage(MBlock block, size_t offset) {
    run([&] {
      AlignedBuffer buf(kMetadataBlockBytes);
      ASSERT_TRUE(disk.read(block.value() * kMetadataBlockBytes, buf.span()).ok());
      buf.span()[offset] ^= std::byte{0xff};
      ASSERT_TRUE(disk.write(block.value() * kMetadataBlockBytes, buf.span(), true).ok());
    });
  }

  sim::DiskMedia media;
  sim::IoTrace trace;
  sim::Scheduler sched;
  sim::SimDisk disk;
  std::unique_ptr<Pool> pool;
};

// About `count` blocks below 4 * count, with gaps of 1 to 4 blocks between
// them (so no two runs merge), in a random order (so the data blocks come out
// of order and the leaves do not compress to nothing).
std::vector<uint64_t> scattered_blocks(uint64_t count, uint64_t seed) {
  Random rng(seed);
  std::vector<uint64_t> out;
  for (uint64_t v = 0; out.size() < count; v += 2 + rng.uniform(3)) out.push_back(v);
  for (size_t i = out.size() - 1; i > 0; --i) std::swap(out[i], out[rng.uniform(i + 1)]);
  return out;
}

TEST(PinnedWalker, RunsMatchThePoolsMappings) {
  World w;
  w.start(12000);
  w.write_blocks(scattered_blocks(2500, 7));  // a tree with internal nodes
  std::vector<thinp::Run> expected;
  MBlock root;
  w.run([&] {
    ASSERT_TRUE(w.pool->pin(ThinId(1)).ok());
    auto m = w.pool->mappings(ThinId(1));
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    expected = *m;
    auto info = w.pool->thin_info(ThinId(1));
    ASSERT_TRUE(info.ok());
    EXPECT_TRUE(info->pinned);
    root = info->root;
  });
  ASSERT_EQ(expected.size(), 2500u);
  auto runs = w.walk(ThinId(1));
  ASSERT_TRUE(runs.ok()) << runs.status().to_string();
  EXPECT_EQ(*runs, expected);

  // The superblock names the pool's root, and the tree is deep enough that
  // the walk went through an internal node.
  w.run([&] {
    auto sb = read_superblock(w.disk);
    ASSERT_TRUE(sb.ok());
    auto pin = find_pinned_root(*sb, ThinId(1));
    ASSERT_TRUE(pin.ok()) << pin.status().to_string();
    EXPECT_EQ(pin->root, root);
    DeviceReadNodeStore store(w.disk, sb->layout.tree_pool);
    auto page = store.read(root, BlockType::mapping_node);
    ASSERT_TRUE(page.ok()) << page.status().to_string();
    auto node = decode_mapping_node(page_body(**page));
    ASSERT_TRUE(node.ok());
    EXPECT_FALSE(node->leaf);
  });
}

TEST(PinnedWalker, UnpinnedThinIsNotFoundWithAHint) {
  World w;
  w.start(64);
  w.write_blocks({0, 1, 5});
  auto runs = w.walk(ThinId(1));
  ASSERT_EQ(runs.status().code(), Errc::not_found);
  EXPECT_NE(runs.status().message().find("thinp pin"), std::string::npos)
      << runs.status().message();
  // Pinned then unpinned: gone again.
  w.run([&] {
    ASSERT_TRUE(w.pool->pin(ThinId(1)).ok());
    ASSERT_TRUE(w.pool->unpin(ThinId(1)).ok());
  });
  EXPECT_EQ(w.walk(ThinId(1)).status().code(), Errc::not_found);
  // An id that was never a thin.
  EXPECT_EQ(w.walk(ThinId(9)).status().code(), Errc::not_found);
}

TEST(PinnedWalker, DamagedTreePageIsCorruptionNamingTheBlock) {
  World w;
  w.start(64);
  w.write_blocks({0, 2, 4});
  MBlock root;
  w.run([&] {
    ASSERT_TRUE(w.pool->pin(ThinId(1)).ok());
    root = w.pool->thin_info(ThinId(1))->root;
  });
  ASSERT_TRUE(w.walk(ThinId(1)).ok());
  w.damage(root, 100);  // inside the node body: the checksum no longer matches
  auto runs = w.walk(ThinId(1));
  ASSERT_EQ(runs.status().code(), Errc::corruption) << runs.status().to_string();
  const std::string msg = runs.status().message();
  EXPECT_NE(msg.find("m:" + std::to_string(root.value())), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(PinnedWalker, StoreRefusesBlocksOutsideTheTreeAreaRepeatsAndChanges) {
  World w;
  w.start(64);
  w.write_blocks({0});
  MBlock root;
  w.run([&] {
    ASSERT_TRUE(w.pool->pin(ThinId(1)).ok());
    root = w.pool->thin_info(ThinId(1))->root;
  });
  w.run([&] {
    auto sb = read_superblock(w.disk);
    ASSERT_TRUE(sb.ok());
    DeviceReadNodeStore store(w.disk, sb->layout.tree_pool);
    // A superblock slot is never a tree node.
    EXPECT_EQ(store.read(MBlock(1), BlockType::mapping_node).status().code(), Errc::corruption);
    EXPECT_EQ(store.read(sb->layout.tree_pool.end(), BlockType::mapping_node).status().code(),
              Errc::corruption);
    ASSERT_TRUE(store.read(root, BlockType::mapping_node).ok());
    // A second visit to the same node means a cycle.
    auto twice = store.read(root, BlockType::mapping_node);
    EXPECT_EQ(twice.status().code(), Errc::corruption);
    EXPECT_NE(twice.status().message().find("twice"), std::string::npos);
    // The walk never writes.
    EXPECT_EQ(store.allocate(root).status().code(), Errc::read_only);
    EXPECT_EQ(store.inc_ref(root).code(), Errc::read_only);
    EXPECT_EQ(store.dec_ref(root).status().code(), Errc::read_only);
  });
}

}  // namespace
}  // namespace thinp::pool
