// MetadataStore on the simulator: format/open/close, transactions building a
// device tree and mapping trees, crashes (SimDisk::crash, reboot over the
// same media), corruption on open, group commit.
#include "engine/pool/metadata_store.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <set>

#include "engine/btree/device_tree.h"
#include "engine/btree/mapping_tree.h"
#include "engine/format/superblock.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"
#include "sim/sim_disk_media.h"
#include "sim/trace.h"

namespace thinp::pool {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kDeviceBytes = uint64_t(16) << 20;
constexpr uint64_t kMetadataBytes = uint64_t(2) << 20;

FormatOptions small_format() {
  FormatOptions f;
  f.metadata_bytes = kMetadataBytes;
  f.journal_blocks = 64;
  return f;
}

// One pool's disk across reboots: the media persists, the scheduler and the
// SimDisk are replaced at each boot.
struct World {
  explicit World(uint64_t seed = 1)
      : seed(seed), media(512, kDeviceBytes / 512), trace(sim::TraceOptions{.keep_events = true}) {
    boot();
  }
  ~World() {
    store.reset();
    if (sched) sched->kill_all_tasks();
  }

  void boot() {
    store.reset();
    disk.reset();
    sched = std::make_unique<sim::Scheduler>(seed + boots);
    disk = std::make_unique<sim::SimDisk>(*sched, media, trace, sim::SimDiskOptions{},
                                          Random(seed * 31 + boots));
    ++boots;
  }

  // Power loss at this instant, then a reboot over the same media.
  void crash() {
    sched->kill_all_tasks();
    store.reset();
    Random rng(seed + 1000 * boots);
    disk->crash(rng, sim::CrashOptions{});
    boot();
  }

  void run(std::function<void()> body) {
    sched->spawn("test", std::move(body));
    ASSERT_EQ(sched->run(), sim::RunOutcome::idle) << sched->deadlock_report() << sched->failure();
  }

  Status format(FormatOptions f = small_format()) {
    Status s;
    run([&] { s = MetadataStore::format(*sched, *disk, nullptr, f); });
    return s;
  }

  Status open() {
    Status s;
    run([&] {
      auto r = MetadataStore::open(*sched, *disk, nullptr, OpenOptions{});
      if (r.ok()) {
        store = std::move(r).value();
      } else {
        s = r.status();
      }
    });
    return s;
  }

  // Overwrites 4 KiB block `block` of the media with a pattern.
  void scribble(MBlock block) {
    std::vector<std::byte> junk(512, std::byte{0x5a});
    for (uint64_t s = 0; s < 8; ++s) media.write_sector(block.value() * 8 + s, junk);
  }

  // Flips the bits of one byte of block `block` on the media.
  void flip(MBlock block, size_t offset) {
    std::vector<std::byte> sector(512);
    const uint64_t at = block.value() * 8 + offset / 512;
    media.read_sector(at, sector);
    sector[offset % 512] ^= std::byte{0xff};
    media.write_sector(at, sector);
  }

  uint64_t seed;
  uint64_t boots = 0;
  sim::DiskMedia media;
  sim::IoTrace trace;
  std::unique_ptr<sim::Scheduler> sched;
  std::unique_ptr<sim::SimDisk> disk;
  std::unique_ptr<MetadataStore> store;
};

// Creates thin `thin` with a mapping tree mapping [0, blocks) to freshly
// allocated data, in one transaction (creating the device tree if needed).
Status create_thin(MetadataStore& store, uint64_t thin, uint64_t blocks) {
  std::unique_ptr<MetadataTxn> txn = store.begin();
  auto body = [&]() -> Status {
    std::optional<DeviceTree> dt;
    if (txn->device_tree_root() == kNoRoot) {
      TP_ASSIGN_OR_RETURN(DeviceTree created, DeviceTree::create(txn->nodes()));
      dt.emplace(std::move(created));
    } else {
      dt.emplace(DeviceTree::open(txn->nodes(), txn->device_tree_root()));
    }
    TP_ASSIGN_OR_RETURN(MappingTree mt, MappingTree::create(txn->nodes(), txn->data_refs()));
    TP_ASSIGN_OR_RETURN(auto runs, txn->allocate_data(ThinId(thin), blocks));
    uint64_t v = 0;
    for (const auto& r : runs) {
      TP_RETURN_IF_ERROR(mt.insert(Run{VBlock(v), r.length, r.begin, SnapTime(0)}).status());
      v += r.length;
    }
    DeviceDetails d;
    d.thin = ThinId(thin);
    d.mapping_root = mt.root();
    d.mapped_blocks = blocks;
    d.virtual_blocks = 1000;
    TP_RETURN_IF_ERROR(dt->insert(d));
    txn->set_device_tree_root(dt->root());
    txn->set_transaction_id(thin);
    return ok_status();
  };
  Status s = body();
  if (!s.ok()) {
    store.abort(std::move(txn));
    return s;
  }
  return store.commit(std::move(txn)).status();
}

// The thins found in the committed device tree, each with its mapped count.
std::map<uint64_t, uint64_t> thins_of(MetadataStore& store) {
  std::map<uint64_t, uint64_t> out;
  if (store.device_tree_root() == kNoRoot) return out;
  DeviceTree dt = DeviceTree::open(store.committed_nodes(), store.device_tree_root());
  Status s = dt.for_each([&](const DeviceDetails& d) {
    out[d.thin.value()] = d.mapped_blocks;
    return ok_status();
  });
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

void expect_clean(World& w) {
  w.run([&] {
    auto findings = w.store->check();
    ASSERT_TRUE(findings.ok()) << findings.status().to_string();
    for (const auto& f : *findings) ADD_FAILURE() << f.what;
  });
}

TEST(MetadataStore, FormatOpenCloseRoundTrip) {
  World w;
  ASSERT_TRUE(w.format().ok());
  ASSERT_TRUE(w.open().ok());
  StoreStatus st = w.store->status();
  EXPECT_EQ(st.data_used, 0u);
  EXPECT_GT(st.data_free, 200u);
  EXPECT_EQ(st.metadata_blocks, kMetadataBytes / kMetadataBlockBytes);
  EXPECT_GT(st.metadata_used, 64u);  // slots, ring, space map pages
  EXPECT_EQ(st.metadata_used + st.metadata_free, st.metadata_blocks);
  expect_clean(w);
  w.run([&] { ASSERT_TRUE(w.store->close().ok()); });
  w.boot();
  ASSERT_TRUE(w.open().ok());
  EXPECT_EQ(w.store->status().metadata_used, st.metadata_used);
  EXPECT_TRUE(w.store->status().clean_shutdown);
  w.run([&] { ASSERT_TRUE(w.store->close().ok()); });
  w.boot();
  Status again = w.format();
  EXPECT_EQ(again.code(), Errc::already_exists) << again.to_string();
  FormatOptions forced = small_format();
  forced.force = true;
  EXPECT_TRUE(w.format(forced).ok());
}

TEST(MetadataStore, AcknowledgedTransactionSurvivesCrash) {
  World w(3);
  ASSERT_TRUE(w.format().ok());
  ASSERT_TRUE(w.open().ok());
  w.run([&] {
    ASSERT_TRUE(create_thin(*w.store, 1, 10).ok());
    ASSERT_TRUE(create_thin(*w.store, 2, 5).ok());
  });
  EXPECT_EQ(w.store->status().data_used, 15u);
  expect_clean(w);
  w.crash();
  ASSERT_TRUE(w.open().ok());
  EXPECT_FALSE(w.store->status().clean_shutdown);
  std::map<uint64_t, uint64_t> thins;
  w.run([&] { thins = thins_of(*w.store); });
  EXPECT_EQ(thins, (std::map<uint64_t, uint64_t>{{1, 10}, {2, 5}}));
  EXPECT_EQ(w.store->status().data_used, 15u);
  EXPECT_EQ(w.store->status().transaction_id, 2u);
  expect_clean(w);
  // The mapping survives too, through a transaction's view.
  w.run([&] {
    auto txn = w.store->begin();
    DeviceTree dt = DeviceTree::open(txn->nodes(), txn->device_tree_root());
    auto d = dt.lookup(ThinId(1));
    ASSERT_TRUE(d.ok());
    MappingTree mt = MappingTree::open(txn->nodes(), txn->data_refs(), d->mapping_root);
    auto ext = mt.lookup(VBlock(0), 10);
    ASSERT_TRUE(ext.ok());
    uint64_t mapped = 0;
    for (const auto& e : *ext) mapped += e.mapped ? e.length : 0;
    EXPECT_EQ(mapped, 10u);
    w.store->abort(std::move(txn));
  });
}

// Transactions commit one after another while the power fails at a random
// instant: every acknowledged one is there after recovery, each other one is
// there whole or not at all, and the counts equal the census.
// Runs the writer of the crash test on `w` until `until` (or to the end).
void spawn_writer(World& w, uint64_t& acknowledged) {
  w.sched->spawn("writer", [&w, &acknowledged] {
    for (uint64_t t = 1; t <= 40; ++t) {
      if (!create_thin(*w.store, t, 1 + t % 3).ok()) return;
      acknowledged = t;
      if (t % 9 == 0) (void)w.store->checkpoint();
    }
  });
}

TEST(MetadataStore, CrashAtAnyInstantKeepsAcknowledgedAndAtomic) {
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    // A dry run measures how long the workload takes; the real one crashes
    // at a random instant inside it.
    Nanos span{0};
    {
      World dry(seed);
      ASSERT_TRUE(dry.format().ok());
      ASSERT_TRUE(dry.open().ok());
      uint64_t ack = 0;
      const Nanos start = dry.sched->now();
      spawn_writer(dry, ack);
      ASSERT_EQ(dry.sched->run(), sim::RunOutcome::idle);
      ASSERT_EQ(ack, 40u);
      span = dry.sched->now() - start;
    }
    World w(seed);
    ASSERT_TRUE(w.format().ok());
    ASSERT_TRUE(w.open().ok());
    uint64_t acknowledged = 0;
    spawn_writer(w, acknowledged);
    Random rng(seed);
    w.sched->run(sim::RunLimits{UINT64_MAX, w.sched->now() + Nanos(rng.range(1, span.count()))});
    w.crash();
    Status opened = w.open();
    ASSERT_TRUE(opened.ok()) << "seed " << seed << ": " << opened.to_string();
    std::map<uint64_t, uint64_t> thins;
    w.run([&] { thins = thins_of(*w.store); });
    ASSERT_GE(thins.size(), acknowledged) << "seed " << seed;
    if (seed <= 3)
      std::printf("seed %llu: %llu acknowledged, %zu recovered\n", (unsigned long long)seed,
                  (unsigned long long)acknowledged, thins.size());
    uint64_t t = 1, used = 0;
    for (const auto& [thin, mapped] : thins) {
      EXPECT_EQ(thin, t++) << "seed " << seed;  // a prefix: commits are ordered
      EXPECT_EQ(mapped, 1 + thin % 3);
      used += mapped;
    }
    EXPECT_EQ(w.store->status().data_used, used) << "seed " << seed;
    expect_clean(w);
  }
}

TEST(MetadataStore, CorruptSuperblockFailsOpenWithOneLine) {
  World w;
  ASSERT_TRUE(w.format().ok());
  w.flip(MBlock(0), 300);
  w.flip(MBlock(1), 300);
  Status s = w.open();
  EXPECT_EQ(s.code(), Errc::corruption) << s.to_string();
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
}

TEST(MetadataStore, CorruptSpaceMapPageFailsOpen) {
  World w;
  ASSERT_TRUE(w.format().ok());
  Superblock sb;
  w.run([&] { sb = read_superblock(*w.disk).value(); });
  w.scribble(sb.layout.metadata_space_map.begin);
  Status s = w.open();
  EXPECT_EQ(s.code(), Errc::corruption) << s.to_string();
  EXPECT_NE(s.message().find("metadata space map"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  w.boot();
  FormatOptions forced = small_format();
  forced.force = true;
  ASSERT_TRUE(w.format(forced).ok());
  w.scribble(sb.layout.data_space_map.begin);
  s = w.open();
  EXPECT_EQ(s.code(), Errc::corruption) << s.to_string();
}

// A journal block that goes bad after it was written ends the log there:
// open must not crash, and what it recovers must be consistent. (A bad block
// at the end of the log looks exactly like a torn last batch, so open can
// only refuse when something else on disk proves records were lost.)
TEST(MetadataStore, CorruptJournalBlockNeverCrashesOpen) {
  World w(5);
  ASSERT_TRUE(w.format().ok());
  ASSERT_TRUE(w.open().ok());
  Superblock sb;
  w.run([&] {
    for (uint64_t t = 1; t <= 6; ++t) ASSERT_TRUE(create_thin(*w.store, t, 2).ok());
  });
  w.run([&] { sb = read_superblock(*w.disk).value(); });
  w.crash();
  w.scribble(sb.journal_tail_block + 1);
  Status s = w.open();
  if (s.ok()) {
    expect_clean(w);
  } else {
    EXPECT_EQ(s.code(), Errc::corruption) << s.to_string();
    EXPECT_EQ(s.message().find('\n'), std::string::npos);
  }
}

// check() verifies every reachable node: a mapping node corrupted on disk is
// a finding (one line), not an error or a crash; the pool still opens.
TEST(MetadataStore, CheckReportsACorruptMappingNode) {
  World w(6);
  ASSERT_TRUE(w.format().ok());
  ASSERT_TRUE(w.open().ok());
  MBlock mapping_root;
  w.run([&] {
    ASSERT_TRUE(create_thin(*w.store, 1, 4).ok());
    ASSERT_TRUE(create_thin(*w.store, 2, 4).ok());
    DeviceTree dt = DeviceTree::open(w.store->committed_nodes(), w.store->device_tree_root());
    mapping_root = dt.lookup(ThinId(2)).value().mapping_root;
    ASSERT_TRUE(w.store->close().ok());
  });
  w.boot();
  w.flip(mapping_root, 100);
  ASSERT_TRUE(w.open().ok());
  w.run([&] {
    auto findings = w.store->check();
    ASSERT_TRUE(findings.ok()) << findings.status().to_string();
    ASSERT_EQ(findings->size(), 1u);
    EXPECT_NE((*findings)[0].what.find("tree walk failed"), std::string::npos)
        << (*findings)[0].what;
    EXPECT_EQ((*findings)[0].what.find('\n'), std::string::npos);
  });
}

// N tasks commit at once: group commit writes fewer journal blocks than N.
TEST(MetadataStore, GroupCommitBatchesConcurrentCommitters) {
  World w(9);
  ASSERT_TRUE(w.format().ok());
  ASSERT_TRUE(w.open().ok());
  Superblock sb;
  w.run([&] { sb = read_superblock(*w.disk).value(); });
  const size_t first_event = w.trace.events().size();
  constexpr int kCommitters = 16;
  int done = 0;
  for (int i = 0; i < kCommitters; ++i) {
    w.sched->spawn("committer", [&, i] {
      auto txn = w.store->begin();
      auto runs = txn->allocate_data(ThinId(i), 1);
      ASSERT_TRUE(runs.ok());
      ASSERT_TRUE(w.store->commit(std::move(txn)).ok());
      ++done;
    });
  }
  ASSERT_EQ(w.sched->run(), sim::RunOutcome::idle);
  EXPECT_EQ(done, kCommitters);
  uint64_t journal_writes = 0;
  const uint64_t ring_begin = sb.layout.journal.begin.value() * kMetadataBlockBytes;
  const uint64_t ring_end = sb.layout.journal.end().value() * kMetadataBlockBytes;
  for (size_t i = first_event; i < w.trace.events().size(); ++i) {
    const sim::TraceEvent& e = w.trace.events()[i];
    if (e.kind == sim::TraceKind::submit && e.op == IoOp::write && e.offset_bytes >= ring_begin &&
        e.offset_bytes < ring_end) {
      ++journal_writes;
    }
  }
  EXPECT_LT(journal_writes, uint64_t(kCommitters));
  EXPECT_GE(journal_writes, 1u);
  std::printf("group commit: %d committers, %llu journal writes\n", kCommitters,
              static_cast<unsigned long long>(journal_writes));
  EXPECT_EQ(w.store->status().data_used, uint64_t(kCommitters));
  // Nothing maps the blocks: check reports them, and only them, as leaked.
  w.run([&] {
    auto findings = w.store->check();
    ASSERT_TRUE(findings.ok());
    ASSERT_FALSE(findings->empty());
    for (const auto& f : *findings) EXPECT_NE(f.what.find("(leaked)"), std::string::npos) << f.what;
  });
}

// Figures for docs: metadata IOs per commit with N concurrent committers
// (trace count), and the (virtual) time to open a pool whose journal is
// nearly full. Asserts only what must hold: batching, and that open works.
TEST(MetadataStore, FiguresIosPerCommitAndOpenTimeWithFullJournal) {
  for (int committers : {1, 4, 16}) {
    World w(21);
    ASSERT_TRUE(w.format().ok());
    ASSERT_TRUE(w.open().ok());
    const size_t first_event = w.trace.events().size();
    for (int i = 0; i < committers; ++i) {
      w.sched->spawn("committer", [&w, i, committers] {
        for (int k = 0; k < 64 / committers; ++k) {
          ASSERT_TRUE(create_thin(*w.store, 1 + i * 100 + k, 1).ok());
        }
      });
    }
    ASSERT_EQ(w.sched->run(), sim::RunOutcome::idle);
    uint64_t writes = 0, flushes = 0;
    for (size_t i = first_event; i < w.trace.events().size(); ++i) {
      const sim::TraceEvent& e = w.trace.events()[i];
      if (e.kind != sim::TraceKind::submit) continue;
      writes += e.op == IoOp::write;
      flushes += e.op == IoOp::flush;
    }
    const StoreStatus st = w.store->status();
    std::printf(
        "figures: %d committers, 64 commits: %llu metadata writes + %llu flushes "
        "(%.2f IOs per commit), %llu journal batches\n",
        committers, (unsigned long long)writes, (unsigned long long)flushes,
        double(writes + flushes) / 64.0, (unsigned long long)st.journal_batches);
    if (committers > 1) {
      EXPECT_LT(st.journal_batches, 64u);
    }
    expect_clean(w);
  }
  // A nearly full journal (no checkpoint since open), then a crash and open.
  World w(22);
  FormatOptions f = small_format();
  f.journal_blocks = 256;
  ASSERT_TRUE(w.format(f).ok());
  ASSERT_TRUE(w.open().ok());
  uint64_t thins = 0;
  w.run([&] {
    while (w.store->status().journal_used_blocks + 8 < w.store->status().journal_blocks &&
           w.store->status().checkpoints == 1) {
      ASSERT_TRUE(create_thin(*w.store, ++thins, 1).ok());
    }
  });
  const uint64_t used = w.store->status().journal_used_blocks;
  w.crash();
  const Nanos before = w.sched->now();
  ASSERT_TRUE(w.open().ok());
  const Nanos took = w.sched->now() - before;
  std::printf(
      "figures: open with %llu of 256 journal blocks in use (%llu transactions): "
      "%.3f ms virtual\n",
      (unsigned long long)used, (unsigned long long)thins, took.count() / 1e6);
  std::map<uint64_t, uint64_t> found;
  w.run([&] { found = thins_of(*w.store); });
  EXPECT_EQ(found.size(), thins);
  expect_clean(w);
}

}  // namespace
}  // namespace thinp::pool

namespace thinp::pool {
namespace {

// A commit that finds the ring full checkpoints to reclaim space; when that
// checkpoint's IO fails, the store must fail (mode() failed, every later
// commit refused), not stay writable with a journal it could not advance.
TEST(MetadataStore, CommitFailingToReclaimRingSpaceFailsTheStore) {
  World w(12);
  FormatOptions f = small_format();
  f.journal_blocks = 16;
  f.data_block_bytes = 4096;
  ASSERT_TRUE(w.format(f).ok());
  ASSERT_TRUE(w.open().ok());
  Superblock sb;
  w.run([&] { sb = read_superblock(*w.disk).value(); });
  const uint64_t ring_begin = sb.layout.journal.begin.value() * kMetadataBlockBytes;
  const uint64_t ring_end = sb.layout.journal.end().value() * kMetadataBlockBytes;
  // Fill the ring with one-block commits, none of them checkpointed.
  w.run([&] {
    for (int i = 0; w.store->status().journal_used_blocks + 1 < f.journal_blocks; ++i) {
      auto txn = w.store->begin();
      ASSERT_TRUE(txn->allocate_data(ThinId(i), 1).ok());
      ASSERT_TRUE(w.store->commit(std::move(txn)).ok());
      ASSERT_LT(i, 100) << "the ring never filled";
    }
  });
  const size_t first_event = w.trace.events().size();
  sim::FaultConfig faults;
  faults.write_error = 1.0;
  w.disk->set_faults(faults);
  Status commit_status, later_status;
  w.run([&] {
    // A transaction of several journal blocks: it cannot fit in what is
    // left of the ring, so stage() must checkpoint first.
    auto txn = w.store->begin();
    for (int i = 0; i < 400; ++i) ASSERT_TRUE(txn->allocate_data(ThinId(100 + i), 1).ok());
    commit_status = w.store->commit(std::move(txn)).status();
    auto later = w.store->begin();
    later_status = w.store->commit(std::move(later)).status();
  });
  EXPECT_EQ(commit_status.code(), Errc::io_error) << commit_status.to_string();
  EXPECT_EQ(w.store->mode(), StoreMode::failed);
  EXPECT_EQ(later_status.code(), Errc::read_only) << later_status.to_string();
  // The first write that failed was a checkpoint's, outside the ring: the
  // reclaim path is the one this test exercised.
  bool saw_failed_write = false;
  for (size_t i = first_event; i < w.trace.events().size() && !saw_failed_write; ++i) {
    const sim::TraceEvent& e = w.trace.events()[i];
    if (e.kind == sim::TraceKind::complete && e.op == IoOp::write && e.status == Errc::io_error) {
      saw_failed_write = true;
      EXPECT_TRUE(e.offset_bytes < ring_begin || e.offset_bytes >= ring_end)
          << "the first failed write was a journal write at " << e.offset_bytes;
    }
  }
  EXPECT_TRUE(saw_failed_write);
}

}  // namespace
}  // namespace thinp::pool
