#include "models/disk_model.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

namespace thinp::models {
namespace {

constexpr uint64_t kZero = 0x2e40;  // the zero-sector hash, as far as the model is concerned

std::vector<uint64_t> hashes_of(const std::vector<SectorValue>& values) {
  std::vector<uint64_t> out;
  for (const SectorValue& v : values) out.push_back(v.hash);
  std::sort(out.begin(), out.end());
  return out;
}

// Drives the model the way the disk's events would, with io ids handed out
// in order.
struct Driver {
  DiskModel m{512, 32, kZero};
  uint64_t next_id = 1;

  uint64_t submit_write(uint64_t first, std::vector<uint64_t> hashes, bool fua = false) {
    const uint64_t id = next_id++;
    m.write_submitted(id, first, std::move(hashes), fua);
    return id;
  }
  void complete_write(uint64_t id, uint64_t landed, WriteOutcome o = WriteOutcome::applied) {
    m.write_completed(id, o, landed);
  }
  uint64_t write(uint64_t first, std::vector<uint64_t> hashes, bool fua = false) {
    const uint64_t id = submit_write(first, std::move(hashes), fua);
    complete_write(id, first);
    return id;
  }
  void flush(bool ok = true) {
    const uint64_t id = next_id++;
    m.flush_submitted(id);
    m.flush_completed(id, ok);
  }
  // A whole read: submit, complete, check what the caller got.
  Status read(uint64_t first, std::vector<uint64_t> got) {
    const uint64_t id = next_id++;
    m.read_submitted(id, first, got.size());
    TP_RETURN_IF_ERROR(m.read_completed(id, true, got));
    return m.check_read(id, got);
  }
};

TEST(DiskModel, FreshSectorsReadZero) {
  Driver d;
  EXPECT_EQ(hashes_of(d.m.readable(5)), std::vector<uint64_t>{kZero});
  EXPECT_TRUE(d.read(0, {kZero, kZero}).ok());
  const Status bad = d.read(0, {kZero, 0x99});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("sector 1"), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("zeros:"), std::string::npos) << bad.message();
}

TEST(DiskModel, CompletedWriteIsReadableButNotDurable) {
  Driver d;
  d.write(3, {0xa});
  EXPECT_EQ(hashes_of(d.m.readable(3)), std::vector<uint64_t>{0xa});
  EXPECT_EQ(hashes_of(d.m.durable(3)), std::vector<uint64_t>{kZero});
  EXPECT_EQ(hashes_of(d.m.after_crash(3)), (std::vector<uint64_t>{0xa, kZero}));
  EXPECT_FALSE(d.read(3, {kZero}).ok());  // before a crash the old value is gone
  EXPECT_TRUE(d.read(3, {0xa}).ok());
}

TEST(DiskModel, FlushCoversOnlyWritesCompletedBeforeItWasSubmitted) {
  Driver d;
  const uint64_t w1 = d.submit_write(0, {0x1});
  const uint64_t w2 = d.submit_write(1, {0x2});
  d.complete_write(w1, 0);
  const uint64_t f = d.next_id++;
  d.m.flush_submitted(f);
  d.complete_write(w2, 1);  // completes after the flush was submitted
  d.m.flush_completed(f, true);
  EXPECT_EQ(hashes_of(d.m.durable(0)), std::vector<uint64_t>{0x1});
  EXPECT_EQ(hashes_of(d.m.durable(1)), std::vector<uint64_t>{kZero});
  d.m.crash();
  EXPECT_EQ(hashes_of(d.m.durable(0)), std::vector<uint64_t>{0x1});
  EXPECT_EQ(hashes_of(d.m.durable(1)), (std::vector<uint64_t>{0x2, kZero}));
}

TEST(DiskModel, FailedFlushMakesNothingDurable) {
  Driver d;
  d.write(0, {0x1});
  d.flush(/*ok=*/false);
  EXPECT_EQ(hashes_of(d.m.durable(0)), std::vector<uint64_t>{kZero});
}

TEST(DiskModel, FuaIsDurableAndSupersedesOlderPendingVersions) {
  Driver d;
  d.write(0, {0x1});
  d.write(0, {0x2}, /*fua=*/true);
  EXPECT_EQ(hashes_of(d.m.durable(0)), std::vector<uint64_t>{0x2});
  EXPECT_EQ(hashes_of(d.m.after_crash(0)), std::vector<uint64_t>{0x2});
}

TEST(DiskModel, CrashAllowsEveryNonDurableVersionAndAReadPinsIt) {
  Driver d;
  d.write(0, {0x1});
  d.flush();
  d.write(0, {0x2});
  d.write(0, {0x3});
  const uint64_t inflight = d.submit_write(0, {0x4});
  (void)inflight;
  d.m.crash();
  EXPECT_EQ(hashes_of(d.m.durable(0)), (std::vector<uint64_t>{0x1, 0x2, 0x3, 0x4}));
  EXPECT_FALSE(d.read(0, {kZero}).ok());  // the flushed 0x1 cannot be lost
  EXPECT_TRUE(d.read(0, {0x2}).ok());
  EXPECT_EQ(hashes_of(d.m.durable(0)), std::vector<uint64_t>{0x2});
  EXPECT_EQ(d.m.stats().sectors_pinned, 1u);
  EXPECT_FALSE(d.read(0, {0x3}).ok());  // once read, the sector stays put
}

TEST(DiskModel, ReadsOverAWriteInFlightMaySeeOldOrNew) {
  for (uint64_t seen : {kZero, uint64_t{0x7}}) {
    Driver d;
    const uint64_t w = d.submit_write(2, {0x7});
    EXPECT_TRUE(d.read(2, {seen}).ok());
    d.complete_write(w, 2);
  }
  // A write submitted while the read is in flight widens it too.
  Driver d;
  const uint64_t r = d.next_id++;
  d.m.read_submitted(r, 2, 1);
  const uint64_t w = d.submit_write(2, {0x8});
  d.complete_write(w, 2);
  ASSERT_TRUE(d.m.read_completed(r, true, {0x8}).ok());
  EXPECT_TRUE(d.m.check_read(r, {0x8}).ok());
}

TEST(DiskModel, LostWriteLeavesOnlyTheOldValue) {
  Driver d;
  const uint64_t w = d.submit_write(1, {0x9});
  d.complete_write(w, 1, WriteOutcome::lost);
  EXPECT_TRUE(d.read(1, {kZero}).ok());
  EXPECT_FALSE(d.read(1, {0x9}).ok());
  d.m.crash();
  EXPECT_EQ(hashes_of(d.m.after_crash(1)), std::vector<uint64_t>{kZero});
}

TEST(DiskModel, FailedWriteChangesNothing) {
  Driver d;
  const uint64_t w = d.submit_write(1, {0x9});
  d.complete_write(w, 1, WriteOutcome::failed);
  EXPECT_EQ(hashes_of(d.m.after_crash(1)), std::vector<uint64_t>{kZero});
}

TEST(DiskModel, MisdirectedWriteLandsElsewhere) {
  Driver d;
  const uint64_t w = d.submit_write(0, {0xa, 0xb});
  d.complete_write(w, 10);
  EXPECT_TRUE(d.read(0, {kZero, kZero}).ok());
  EXPECT_TRUE(d.read(10, {0xa, 0xb}).ok());
  EXPECT_FALSE(d.read(0, {0xa, 0xb}).ok());
}

TEST(DiskModel, LatentCorruptionReplacesTheDurableValue) {
  Driver d;
  d.write(4, {0xc}, /*fua=*/true);
  const Status wrong = d.m.media_corrupted(100, 4, 0xdead, 0xcc);
  EXPECT_FALSE(wrong.ok());
  EXPECT_NE(wrong.message().find("io#1:"), std::string::npos) << wrong.message();
  EXPECT_TRUE(d.m.media_corrupted(101, 4, 0xc, 0xcc).ok());
  EXPECT_TRUE(d.read(4, {0xcc}).ok());
  EXPECT_FALSE(d.read(4, {0xc}).ok());
}

TEST(DiskModel, CorruptionUnderACachedVersionShowsOnlyAfterACrash) {
  Driver d;
  d.write(4, {0xc}, /*fua=*/true);
  d.write(4, {0xd});
  ASSERT_TRUE(d.m.media_corrupted(100, 4, 0xc, 0xcc).ok());
  EXPECT_TRUE(d.read(4, {0xd}).ok());
  EXPECT_FALSE(d.read(4, {0xcc}).ok());
  d.m.crash();
  EXPECT_EQ(hashes_of(d.m.durable(4)), (std::vector<uint64_t>{0xd, 0xcc}));
}

TEST(DiskModel, CheckReadNeedsACompletedRead) {
  Driver d;
  EXPECT_EQ(d.m.check_read(42, {kZero}).code(), Errc::not_found);
  const uint64_t r = d.next_id++;
  d.m.read_submitted(r, 0, 1);
  ASSERT_TRUE(d.m.read_completed(r, /*ok=*/false, {}).ok());
  EXPECT_EQ(d.m.check_read(r, {kZero}).code(), Errc::not_found);
}

// Property: a simple reference (per sector: durable value and a list of
// versions since) agrees with the model's after-crash sets for any sequence
// of sequential writes, FUA writes and flushes.
RC_GTEST_PROP(DiskModelProp, AfterCrashMatchesAReference, ()) {
  Driver d;
  std::map<uint64_t, uint64_t> durable;                 // sector -> hash
  std::map<uint64_t, std::vector<uint64_t>> since;      // sector -> versions since
  const int steps = *rc::gen::inRange(1, 40);
  uint64_t next_hash = 100;
  for (int i = 0; i < steps; ++i) {
    const int kind = *rc::gen::inRange(0, 3);
    const uint64_t sector = *rc::gen::inRange<uint64_t>(0, 4);
    if (kind == 0 || kind == 1) {
      const uint64_t h = next_hash++;
      d.write(sector, {h}, kind == 1);
      if (kind == 1) {
        durable[sector] = h;
        since[sector].clear();
      } else {
        since[sector].push_back(h);
      }
    } else {
      d.flush();
      for (auto& [s, v] : since) {
        if (!v.empty()) durable[s] = v.back();
        v.clear();
      }
    }
  }
  for (uint64_t s = 0; s < 4; ++s) {
    std::vector<uint64_t> expect = {durable.count(s) ? durable[s] : kZero};
    for (uint64_t h : since[s]) expect.push_back(h);
    std::sort(expect.begin(), expect.end());
    expect.erase(std::unique(expect.begin(), expect.end()), expect.end());
    RC_ASSERT(hashes_of(d.m.after_crash(s)) == expect);
  }
}

}  // namespace
}  // namespace thinp::models
