// End to end with the real journal: transactions reserve, log (commit applies
// through the record applier) and checkpoint through SpaceMapCheckpoint; a
// crash keeps only what was flushed; recovery loads the pages and replays the
// journal from the superblock's tail. The recovered maps equal the live ones.
#include "engine/space_map/space_map_checkpoint.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/cache/block_cache.h"
#include "engine/journal/checkpoint.h"
#include "engine/journal/crash_test_disk.h"
#include "engine/journal/journal.h"
#include "engine/journal/recovery.h"
#include "engine/space_map/space_map_replay.h"
#include "engine/space_map/space_map_test_util.h"
#include "sim/scheduler.h"

namespace thinp::space_map {
namespace {

constexpr uint64_t kDeviceBlocks = 256;
constexpr journal::RingGeometry kRing{MBlock(8), 64};
constexpr PageRegion kMetaRegion{MBlock(100), kSlotsPerPage};
constexpr uint64_t kDataBlocks = 2000;
const DataGeometry kDataGeometry{kDataBlocks, 100, PageRegion{MBlock(120), 20 * kSlotsPerPage}};

class SpaceMapVisitor final : public journal::RecordVisitor {
 public:
  SpaceMapVisitor(MetadataSpaceMap& m, DataSpaceMap& d) : m_(m), d_(d) {}
  Status apply(const journal::Record& r, Lsn lsn) override {
    apply_space_map_record(r, lsn, m_, d_);
    return ok_status();
  }

 private:
  MetadataSpaceMap& m_;
  DataSpaceMap& d_;
};

// One pool's worth of parts over a crash test disk.
struct Node {
  explicit Node(std::vector<std::byte> image, uint64_t seed)
      : sched(seed),
        disk(
            sched,
            [this](Nanos d, std::function<void()> f) { sched.schedule_after(d, std::move(f)); },
            kDeviceBlocks * kMetadataBlockBytes, seed, std::move(image)),
        cache(sched, disk, cache::BlockCacheOptions{64, 8}) {}
  ~Node() { sched.kill_all_tasks(); }

  void start(const journal::JournalResume& resume) {
    journal = std::make_unique<journal::Journal>(sched, disk, kRing, cache,
                                                 journal::JournalOptions{}, resume);
    journal->set_record_applier([this](const journal::Record& r, Lsn lsn) {
      if (apply_space_map_record(r, lsn, *meta, *data)) applied.emplace_back(lsn, r);
    });
    participant = std::make_unique<SpaceMapCheckpoint>(disk, *meta, *data);
    checkpointer = std::make_unique<journal::Checkpointer>(
        sched, *journal, cache,
        [this](const journal::JournalPosition& t) {
          tail = t;
          return ok_status();
        },
        std::vector<journal::CheckpointParticipant*>{participant.get()});
    checkpointer->install_as_space_reclaimer();
  }

  void run(std::function<void()> body) {
    sched.spawn("test", std::move(body));
    ASSERT_EQ(sched.run(), sim::RunOutcome::idle) << sched.deadlock_report() << sched.failure();
  }

  sim::Scheduler sched;
  thinp::testing::CrashTestDisk disk;
  cache::BlockCache cache;
  std::optional<MetadataSpaceMap> meta;
  std::optional<DataSpaceMap> data;
  std::unique_ptr<journal::Journal> journal;
  std::unique_ptr<SpaceMapCheckpoint> participant;
  std::unique_ptr<journal::Checkpointer> checkpointer;
  journal::JournalPosition tail;                         // the superblock's
  std::vector<std::pair<Lsn, journal::Record>> applied;  // by the record applier, in order
};

// Fresh maps as format leaves them.
void format_maps(Node& node) {
  node.meta = std::move(MetadataSpaceMap::create(kDeviceBlocks, kMetaRegion)).value();
  node.meta->mark_used_at_format(MBlock(0), 160);  // superblock, ring, maps
  node.data = std::move(DataSpaceMap::create(kDataGeometry)).value();
}

PageReader image_reader(const std::vector<std::byte>& image) {
  return [&image](MBlock at) -> Result<std::vector<std::byte>> {
    const auto begin = image.begin() + at.value() * kMetadataBlockBytes;
    return std::vector<std::byte>(begin, begin + kMetadataBlockBytes);
  };
}

// One transaction: allocate `n` data blocks and a metadata block for owner
// `owner`, and release the oldest allocation in `live` if asked.
void transact(Node& node, uint64_t owner, uint64_t n, bool release,
              std::vector<journal::DataRangeAlloc>& live) {
  journal::Transaction txn;
  auto runs = node.data->reserve(ThinId(owner), n);
  ASSERT_TRUE(runs.ok());
  auto block = node.meta->reserve(std::nullopt);
  ASSERT_TRUE(block.ok());
  for (const auto& r : *runs) txn.add(r);
  txn.add(*block);
  if (release && !live.empty()) {
    const journal::DataRangeRefDelta dec{live.front().begin, live.front().length, -1};
    ASSERT_TRUE(node.data->check(dec).ok());
    txn.add(dec);
    live.erase(live.begin());
  }
  for (const auto& r : *runs) live.push_back(r);
  Result<Lsn> committed = node.journal->commit(txn);
  ASSERT_TRUE(committed.ok()) << committed.status().to_string();
}

// Loads both maps from `image`, replays the journal from `tail`, and checks
// that the result equals `live`.
void expect_recovers_to(const std::vector<std::byte>& image, const journal::JournalPosition& tail,
                        Node& live, const std::string& what, uint64_t seed = 99) {
  Node after(image, seed);
  auto meta = MetadataSpaceMap::load(kDeviceBlocks, kMetaRegion, image_reader(image));
  auto data = DataSpaceMap::load(kDataGeometry, image_reader(image));
  ASSERT_TRUE(meta.ok()) << what << ": " << meta.status().to_string();
  ASSERT_TRUE(data.ok()) << what << ": " << data.status().to_string();
  after.meta = std::move(meta).value();
  after.data = std::move(data).value();
  SpaceMapVisitor visitor(*after.meta, *after.data);
  std::optional<Result<journal::RecoveryResult>> recovered;
  after.run([&] { recovered = journal::recover(after.disk, kRing, after.cache, tail, visitor); });
  ASSERT_TRUE(recovered.has_value() && recovered->ok()) << what;
  EXPECT_EQ(testing::extents_of(*after.data), testing::extents_of(*live.data)) << what;
  EXPECT_EQ(testing::used_of(*after.meta), testing::used_of(*live.meta)) << what;
  EXPECT_EQ(after.data->count_free(), live.data->count_free()) << what;
  EXPECT_EQ(after.meta->count_free(), live.meta->count_free()) << what;
  after.data->check_invariants();
}

TEST(SpaceMapCheckpoint, JournalCheckpointCrashRecoverGivesTheLiveMaps) {
  Node live(std::vector<std::byte>(kDeviceBlocks * kMetadataBlockBytes), 11);
  format_maps(live);
  live.start(journal::JournalResume{});
  std::vector<journal::DataRangeAlloc> allocated;
  live.run([&] {
    // Format: every page on disk before the first transaction.
    ASSERT_TRUE(live.participant->write_pages(Lsn(0)).ok());
    ASSERT_TRUE(live.disk.flush().ok());
    live.participant->pages_durable();
    for (int i = 0; i < 60; ++i) {
      transact(live, i % 3, 1 + i % 7, i % 4 == 3, allocated);
      if (i % 17 == 16) {
        ASSERT_TRUE(live.checkpointer->checkpoint().ok());
      }
    }
  });
  ASSERT_GT(live.participant->pages_written(), 21u);
  ASSERT_GT(live.tail.lsn, Lsn(1));  // the tail moved: recovery must not need old records

  // Crash: only flushed bytes survive.
  const std::vector<std::byte> image =
      live.disk.durable_bytes(0, kDeviceBlocks * kMetadataBlockBytes);
  expect_recovers_to(image, live.tail, live, "after a crash", 12);
}

// A crash tears the page writes of a checkpoint (each written page keeps
// only its first half). The pages are written into the slot that does not
// hold the version the superblock's tail depends on, so load still finds an
// intact version of every page and replay brings it up to date. Without the
// second slot the torn page is the only copy, and load fails (corruption).
TEST(SpaceMapCheckpoint, TornPageWritesOfACheckpointStillLoadAndRecover) {
  Node live(std::vector<std::byte>(kDeviceBlocks * kMetadataBlockBytes), 21);
  format_maps(live);
  live.start(journal::JournalResume{});
  std::vector<journal::DataRangeAlloc> allocated;
  live.run([&] {
    ASSERT_TRUE(live.participant->write_pages(Lsn(0)).ok());
    ASSERT_TRUE(live.disk.flush().ok());
    live.participant->pages_durable();
    for (int i = 0; i < 40; ++i) {
      transact(live, i % 3, 1 + i % 7, i % 4 == 3, allocated);
      // Two checkpoints, so that pages have a version in each slot.
      if (i == 12 || i == 25) ASSERT_TRUE(live.checkpointer->checkpoint().ok());
    }
  });
  const journal::JournalPosition tail = live.tail;  // the superblock's, durable
  ASSERT_GT(tail.lsn, Lsn(1));
  const uint64_t bytes = kDeviceBlocks * kMetadataBlockBytes;
  const std::vector<std::byte> before = live.disk.durable_bytes(0, bytes);
  // The next checkpoint writes its pages (and they even become durable),
  // but the crash comes before the superblock names a new tail.
  live.run([&] {
    ASSERT_TRUE(live.participant->write_pages(live.journal->durable_lsn()).ok());
    ASSERT_TRUE(live.disk.flush().ok());
  });
  const std::vector<std::byte> after = live.disk.durable_bytes(0, bytes);

  std::vector<std::byte> torn = before;
  uint64_t torn_pages = 0;
  for (uint64_t b = kMetaRegion.first.value(); b < 160; ++b) {
    const size_t at = b * kMetadataBlockBytes;
    if (std::equal(before.begin() + at, before.begin() + at + kMetadataBlockBytes,
                   after.begin() + at)) {
      continue;
    }
    std::copy(after.begin() + at, after.begin() + at + kMetadataBlockBytes / 2, torn.begin() + at);
    ++torn_pages;
  }
  ASSERT_GT(torn_pages, 2u);  // pages of both maps
  expect_recovers_to(torn, tail, live, "torn page writes");
  expect_recovers_to(after, tail, live, "page writes durable, tail not moved");
  expect_recovers_to(before, tail, live, "page writes lost");
}

// Three committers interleave through group commit while a fourth task
// checkpoints, so the applier sees transactions in LSN order however they
// interleave and pages above the durable LSN stay dirty across checkpoints.
// The run stops at a random instant (a crash: only flushed bytes survive);
// recovery must give exactly the transactions that were durable.
TEST(SpaceMapCheckpoint, CrashAtAnyInstantWithConcurrentCommitsAndCheckpoints) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Node live(std::vector<std::byte>(kDeviceBlocks * kMetadataBlockBytes), seed);
    format_maps(live);
    live.start(journal::JournalResume{});
    live.run([&] {  // format completes before the pool is used
      ASSERT_TRUE(live.participant->write_pages(Lsn(0)).ok());
      ASSERT_TRUE(live.disk.flush().ok());
      live.participant->pages_durable();
    });
    for (uint64_t w = 0; w < 3; ++w) {
      live.sched.spawn("writer", [&live, w] {
        std::vector<journal::DataRangeAlloc> mine;
        for (int i = 0; i < 25; ++i) {
          transact(live, w, 1 + (i + w) % 5, i % 3 == 2, mine);
          live.sched.sleep(std::chrono::microseconds(live.sched.random().uniform(300)));
        }
      });
    }
    live.sched.spawn("checkpointer", [&live] {
      for (int i = 0; i < 12; ++i) {
        live.sched.sleep(std::chrono::microseconds(500));
        (void)live.checkpointer->checkpoint();
      }
    });
    Random rng(seed);
    const Nanos crash_at = live.sched.now() + std::chrono::microseconds(rng.range(100, 9000));
    live.sched.run(sim::RunLimits{UINT64_MAX, crash_at});
    const Lsn durable = live.journal->durable_lsn();
    const std::vector<std::byte> image =
        live.disk.durable_bytes(0, kDeviceBlocks * kMetadataBlockBytes);

    // Expected: format, then every applied record up to the durable LSN.
    Node expect(std::vector<std::byte>(kDeviceBlocks * kMetadataBlockBytes), seed);
    format_maps(expect);
    for (const auto& [lsn, r] : live.applied) {
      if (lsn <= durable) apply_space_map_record(r, lsn, *expect.meta, *expect.data);
    }

    Node after(image, seed + 100);
    auto meta = MetadataSpaceMap::load(kDeviceBlocks, kMetaRegion, image_reader(image));
    auto data = DataSpaceMap::load(kDataGeometry, image_reader(image));
    ASSERT_TRUE(meta.ok()) << "seed " << seed << ": " << meta.status().to_string();
    ASSERT_TRUE(data.ok()) << "seed " << seed << ": " << data.status().to_string();
    after.meta = std::move(meta).value();
    after.data = std::move(data).value();
    SpaceMapVisitor visitor(*after.meta, *after.data);
    std::optional<Result<journal::RecoveryResult>> recovered;
    after.run(
        [&] { recovered = journal::recover(after.disk, kRing, after.cache, live.tail, visitor); });
    ASSERT_TRUE(recovered.has_value() && recovered->ok()) << "seed " << seed;
    EXPECT_EQ(testing::extents_of(*after.data), testing::extents_of(*expect.data))
        << "seed " << seed;
    EXPECT_EQ(testing::used_of(*after.meta), testing::used_of(*expect.meta)) << "seed " << seed;
    after.data->check_invariants();
  }
}

}  // namespace
}  // namespace thinp::space_map
