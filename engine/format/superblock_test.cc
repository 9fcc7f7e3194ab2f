#include "engine/format/superblock.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "engine/format/block_header.h"
#include "engine/format/checksum.h"
#include "sim/scheduler.h"

namespace thinp {
namespace {

using namespace std::chrono_literals;

// A minimal in-memory BlockDevice on the simulator. Requests complete after a
// random latency via schedule_after; writes land at completion. Faults for
// these tests only: tear the next write after `tear_sectors` sectors, or fail
// reads at one offset.
class MemDevice final : public BlockDevice {
 public:
  MemDevice(sim::Scheduler& sched, uint64_t bytes) : BlockDevice(sched), sched_(sched), bytes_(bytes) {}

  struct WriteRecord {
    uint64_t offset_bytes;
    bool fua;
  };

  void submit(IoRequest* req) override {
    const Status valid = validate(*req);
    sched_.schedule_after(Nanos(1000 + sched_.random().uniform(1000)),
                          [this, req, valid] { complete(req, valid); });
  }
  uint64_t size_bytes() const override { return bytes_.size(); }
  uint32_t logical_sector_bytes() const override { return 512; }
  std::string name() const override { return "mem"; }

  std::vector<std::byte>& bytes() { return bytes_; }
  const std::vector<WriteRecord>& writes() const { return writes_; }
  void tear_next_write(uint64_t sectors) { tear_sectors_ = sectors; }
  void fail_reads_at(uint64_t offset_bytes) { failing_read_offsets_.insert(offset_bytes); }
  // The next write tears after `sectors` sectors, then completes with an error.
  void fail_next_write(uint64_t sectors) {
    tear_sectors_ = sectors;
    fail_next_write_ = true;
  }

 private:
  void complete(IoRequest* req, const Status& valid) {
    if (!valid.ok()) return req->on_complete(valid);
    if (req->op == IoOp::read) {
      if (failing_read_offsets_.count(req->offset_bytes) != 0) {
        return req->on_complete(Status(Errc::io_error, "injected read error"));
      }
      std::memcpy(req->data, bytes_.data() + req->offset_bytes, req->length_bytes);
    } else if (req->op == IoOp::write) {
      uint64_t length = req->length_bytes;
      if (tear_sectors_ != UINT64_MAX) length = std::min(length, tear_sectors_ * 512);
      tear_sectors_ = UINT64_MAX;
      std::memcpy(bytes_.data() + req->offset_bytes, req->data, length);
      writes_.push_back({req->offset_bytes, req->fua});
      if (fail_next_write_) {
        fail_next_write_ = false;
        return req->on_complete(Status(Errc::io_error, "injected write error"));
      }
    }
    req->on_complete(ok_status());
  }

  sim::Scheduler& sched_;
  std::vector<std::byte> bytes_;
  std::vector<WriteRecord> writes_;
  uint64_t tear_sectors_ = UINT64_MAX;
  bool fail_next_write_ = false;
  std::set<uint64_t> failing_read_offsets_;
};

// Runs `body` as a task and the scheduler until everything is done.
template <typename F>
void run_task(sim::Scheduler& sched, F body) {
  sched.spawn("test", body);
  ASSERT_EQ(sched.run(), sim::RunOutcome::idle);
}

Superblock sample_superblock(Random& random) {
  const Geometry g = geometry_for_two_devices(16 << 20, 1ull << 30, 64 << 10).value();
  const Layout l = compute_layout(g).value();
  return new_superblock(g, l, random);
}

// A superblock with every field away from its default.
Superblock busy_superblock(Random& random) {
  const Geometry g = geometry_for_one_device(1ull << 30, 8 << 20, 128 << 10).value();
  LayoutOptions o;
  o.journal_blocks = 64;
  const Layout l = compute_layout(g, o).value();
  Superblock sb = new_superblock(g, l, random);
  sb.sequence = 7;
  sb.journal_tail_lsn = Lsn(1000);
  sb.journal_tail_block = l.journal.begin + 17;
  sb.checkpoint_lsn = Lsn(1200);
  sb.device_details_root = l.tree_pool.begin + 5;
  sb.time = SnapTime(42);
  sb.transaction_id = TransactionId(0x1122334455667788ULL);
  sb.clean_shutdown = true;
  sb.needs_check = true;
  sb.out_of_data_space_mode = OutOfDataSpaceMode::error;
  sb.zero_new_blocks = false;
  for (uint64_t i = 0; i < kQueryAreaCapacity; ++i) {
    EXPECT_TRUE(pin_root(sb, {ThinId(i * 3), l.tree_pool.begin + i, Lsn(900 + i), SnapTime(i)}).ok());
  }
  return sb;
}

// Recomputes the checksum over a block whose fields a test changed.
void reseal(std::span<std::byte> block) { put_u32(block, 0, crc32c(block.subspan(4))); }

std::vector<std::byte> encoded(const Superblock& sb) {
  std::vector<std::byte> block(kMetadataBlockBytes);
  encode_superblock(sb, MBlock(sb.sequence % 2), block);
  return block;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(Superblock, EncodeDecodeRoundTripsEveryField) {
  Random random(1);
  const Superblock sb = busy_superblock(random);
  std::vector<std::byte> block = encoded(sb);
  Result<Superblock> back = decode_superblock(block, MBlock(1));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, sb);
  EXPECT_EQ(back->pinned_roots.size(), kQueryAreaCapacity);
  EXPECT_EQ(encoded(*back), block);  // the encoding is canonical

  const Superblock fresh = sample_superblock(random);
  Superblock one = fresh;
  one.sequence = 1;
  Result<Superblock> fresh_back = decode_superblock(encoded(one), MBlock(1));
  ASSERT_TRUE(fresh_back.ok()) << fresh_back.status().to_string();
  EXPECT_EQ(*fresh_back, one);
}

TEST(Superblock, UuidIsRandomVersion4) {
  Random random(7);
  const Superblock a = sample_superblock(random);
  const Superblock b = sample_superblock(random);
  EXPECT_NE(a.uuid, b.uuid);
  const std::string s = uuid_string(a.uuid);
  ASSERT_EQ(s.size(), 36u);
  EXPECT_EQ(s[14], '4');
}

TEST(Superblock, WritesAlternateSlotsWithFuaAndReadTakesTheNewest) {
  sim::Scheduler sched(11);
  MemDevice dev(sched, 1 << 20);
  Random random(2);
  Superblock sb = sample_superblock(random);
  run_task(sched, [&] {
    for (uint64_t txn = 1; txn <= 3; ++txn) {
      sb.transaction_id = TransactionId(txn);
      ASSERT_TRUE(write_superblock(dev, sb).ok());
      Result<Superblock> r = read_superblock(dev);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      EXPECT_EQ(r->sequence, txn);
      EXPECT_EQ(r->transaction_id, TransactionId(txn));
    }
  });
  ASSERT_EQ(dev.writes().size(), 3u);
  EXPECT_EQ(dev.writes()[0].offset_bytes, 4096u);  // sequence 1: slot 1
  EXPECT_EQ(dev.writes()[1].offset_bytes, 0u);     // sequence 2: slot 0
  EXPECT_EQ(dev.writes()[2].offset_bytes, 4096u);
  for (const auto& w : dev.writes()) EXPECT_TRUE(w.fua);
}

TEST(Superblock, TornOrCorruptNewestSlotFallsBackToThePreviousOne) {
  sim::Scheduler sched(12);
  MemDevice dev(sched, 1 << 20);
  Random random(3);
  Superblock sb = sample_superblock(random);
  run_task(sched, [&] {
    sb.transaction_id = TransactionId(1);
    ASSERT_TRUE(write_superblock(dev, sb).ok());  // sequence 1, slot 1
    sb.transaction_id = TransactionId(2);
    ASSERT_TRUE(write_superblock(dev, sb).ok());  // sequence 2, slot 0
    sb.transaction_id = TransactionId(3);
    // Pins put entries in sectors 1-2, so a write torn after sector 0 carries
    // a new header and checksum over old query-area bytes.
    for (uint64_t i = 0; i < 20; ++i) {
      ASSERT_TRUE(pin_root(sb, {ThinId(i), sb.layout.tree_pool.begin + i, Lsn(1), SnapTime(0)}).ok());
    }
    dev.tear_next_write(1);                       // sequence 3, slot 1: 1 of 8 sectors lands
    ASSERT_TRUE(write_superblock(dev, sb).ok());
    Result<Superblock> r = read_superblock(dev);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->sequence, 2u);
    EXPECT_EQ(r->transaction_id, TransactionId(2));

    // A bit flip in slot 0 leaves nothing newer than the torn slot: no pool.
    dev.bytes()[2000] ^= std::byte{0x10};
    Result<Superblock> none = read_superblock(dev);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.status().code(), Errc::corruption);
    EXPECT_EQ(none.status().message(),
              "no valid superblock on mem: slot 0: superblock block 0: checksum mismatch; "
              "slot 1: superblock block 1: checksum mismatch");

    // Rewriting resumes after the highest sequence and heals the pool.
    sb.sequence = 2;
    ASSERT_TRUE(write_superblock(dev, sb).ok());
    Result<Superblock> healed = read_superblock(dev);
    ASSERT_TRUE(healed.ok()) << healed.status().to_string();
    EXPECT_EQ(healed->transaction_id, TransactionId(3));
  });
}

// A failed write leaves its slot torn; the retry must rewrite that slot and
// leave the last good superblock alone.
TEST(Superblock, FailedWriteIsRetriedInTheSameSlot) {
  sim::Scheduler sched(16);
  MemDevice dev(sched, 1 << 20);
  Random random(11);
  Superblock sb = sample_superblock(random);
  run_task(sched, [&] {
    ASSERT_TRUE(write_superblock(dev, sb).ok());  // sequence 1, slot 1
    ASSERT_TRUE(write_superblock(dev, sb).ok());  // sequence 2, slot 0
    sb.transaction_id = TransactionId(9);
    dev.fail_next_write(1);
    const Status failed = write_superblock(dev, sb);
    EXPECT_EQ(failed.to_string(),
              "io_error: writing superblock slot 1 of mem: injected write error");
    EXPECT_EQ(sb.sequence, 2u);
    ASSERT_TRUE(write_superblock(dev, sb).ok());
    Result<Superblock> r = read_superblock(dev);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->sequence, 3u);
    EXPECT_EQ(r->transaction_id, TransactionId(9));
  });
  ASSERT_EQ(dev.writes().size(), 4u);
  EXPECT_EQ(dev.writes()[2].offset_bytes, 4096u);
  EXPECT_EQ(dev.writes()[3].offset_bytes, 4096u);  // the same slot again
}

TEST(Superblock, ReadErrorOnOneSlotUsesTheOther) {
  sim::Scheduler sched(13);
  MemDevice dev(sched, 1 << 20);
  Random random(4);
  Superblock sb = sample_superblock(random);
  run_task(sched, [&] {
    ASSERT_TRUE(write_superblock(dev, sb).ok());
    ASSERT_TRUE(write_superblock(dev, sb).ok());
    dev.fail_reads_at(0);  // the newer slot
    Result<Superblock> r = read_superblock(dev);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->sequence, 1u);
    dev.fail_reads_at(4096);
    EXPECT_EQ(read_superblock(dev).status().code(), Errc::io_error);
  });
}

TEST(Superblock, BlankOrErasedDeviceIsNotAPool) {
  sim::Scheduler sched(14);
  MemDevice dev(sched, 1 << 20);
  Random random(5);
  Superblock sb = sample_superblock(random);
  run_task(sched, [&] {
    Result<Superblock> blank = read_superblock(dev);
    EXPECT_EQ(blank.status().code(), Errc::not_found);
    EXPECT_EQ(blank.status().message(),
              "mem is not a thinp pool (no superblock magic in slot 0 or slot 1)");
    ASSERT_TRUE(write_superblock(dev, sb).ok());
    ASSERT_TRUE(read_superblock(dev).ok());
    ASSERT_TRUE(erase_superblocks(dev).ok());
    EXPECT_EQ(read_superblock(dev).status().code(), Errc::not_found);
  });
  MemDevice tiny(sched, 4096);
  run_task(sched, [&] { EXPECT_EQ(read_superblock(tiny).status().code(), Errc::not_found); });
}

TEST(Superblock, NewerFormatVersionIsRefusedEvenWithAnOlderValidSlot) {
  sim::Scheduler sched(15);
  MemDevice dev(sched, 1 << 20);
  Random random(6);
  Superblock sb = sample_superblock(random);
  run_task(sched, [&] {
    ASSERT_TRUE(write_superblock(dev, sb).ok());  // slot 1, version 1
    ASSERT_TRUE(write_superblock(dev, sb).ok());  // slot 0
    std::span<std::byte> slot0(dev.bytes().data(), kMetadataBlockBytes);
    put_u32(slot0, 40, kFormatVersion + 1);
    reseal(slot0);
    Result<Superblock> r = read_superblock(dev);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Errc::unsupported);
    EXPECT_EQ(r.status().message(), "mem slot 0: created by a newer thinp (format version " +
                                        std::to_string(kFormatVersion + 1) +
                                        ", this build reads up to " +
                                        std::to_string(kFormatVersion) + ")");
  });
}

TEST(Superblock, DecoderRefusesBadFields) {
  Random random(8);
  Superblock sb = busy_superblock(random);
  const std::vector<std::byte> good = encoded(sb);
  auto decode_with = [&](size_t at, uint64_t value, size_t width) {
    std::vector<std::byte> b = good;
    if (width == 1) b[at] = std::byte(value);
    if (width == 4) put_u32(b, at, static_cast<uint32_t>(value));
    if (width == 8) put_u64(b, at, value);
    reseal(b);
    return decode_superblock(b, MBlock(1)).status();
  };
  EXPECT_EQ(decode_with(108, 65, 4).message(), "pinned root count 65 exceeds the capacity of 64");
  EXPECT_TRUE(contains(decode_with(208, 3, 8).message(), "device details root 3 is outside"));
  EXPECT_TRUE(contains(decode_with(3000, 1, 1).message(), "reserved byte 3000 is not zero"));
  EXPECT_TRUE(contains(decode_with(48, 8, 8).message(), "does not belong in slot 1"));
  EXPECT_TRUE(contains(decode_with(76, 3000, 4).message(), "not a power of two"));
  EXPECT_TRUE(contains(decode_with(80, UINT64_MAX, 8).message(), "metadata area of"));
  EXPECT_TRUE(contains(decode_with(192, 1, 8).message(), "journal tail block 1 is outside"));
  EXPECT_TRUE(contains(decode_with(184, 5000, 8).message(), "records in between would be lost"));
  EXPECT_TRUE(contains(decode_with(105, 9, 1).message(), "out-of-data-space mode 9"));
  EXPECT_TRUE(contains(decode_with(104, 2, 1).message(), "not 0 or 1"));
  EXPECT_EQ(decode_with(44, 0x10, 4).code(), Errc::unsupported);
  EXPECT_EQ(decode_with(40, 0, 4).code(), Errc::corruption);
  EXPECT_EQ(decode_with(32, 0, 8).code(), Errc::not_found);

  // Unchanged except the checksum: wrong slot, wrong size.
  EXPECT_TRUE(contains(decode_superblock(good, MBlock(0)).status().message(), "misdirected"));
  EXPECT_FALSE(decode_superblock(std::span(good).first(100), MBlock(1)).ok());
}

// Random bytes and random mutations of a valid block never crash the decoder,
// and anything it accepts re-encodes to the same bytes.
TEST(Superblock, GarbageIsRefusedAndAcceptedBlocksAreCanonical) {
  Random random(9);
  const Superblock sb = busy_superblock(random);
  const std::vector<std::byte> good = encoded(sb);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::byte> b = good;
    if (iter % 10 == 0) {
      for (auto& byte : b) byte = std::byte(random.next_u64());
      put_u64(b, 32, kSuperblockMagic);
      put_u32(b, 40, 1);
    } else {
      const uint64_t flips = random.range(1, 4);
      for (uint64_t f = 0; f < flips; ++f) {
        // Mostly the field area, where a mutation means something.
        const size_t at = random.chance(0.8) ? random.range(32, 400) : random.uniform(4096);
        b[at] = std::byte(random.chance(0.5) ? random.next_u64() : (uint64_t(1) << random.uniform(8)));
      }
    }
    if (random.chance(0.95)) reseal(b);
    Result<Superblock> r = decode_superblock(b, MBlock(1));
    if (r.ok()) {
      ++accepted;
      EXPECT_EQ(encoded(*r), b);
    } else {
      EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
    }
  }
  EXPECT_GT(accepted, 0);  // some mutations (e.g. of the transaction id) stay valid
}

TEST(Superblock, PinAndUnpinRoots) {
  Random random(10);
  Superblock sb = sample_superblock(random);
  const MBlock root = sb.layout.tree_pool.begin + 1;
  ASSERT_TRUE(pin_root(sb, {ThinId(5), root, Lsn(1), SnapTime(1)}).ok());
  EXPECT_EQ(pin_root(sb, {ThinId(5), root, Lsn(2), SnapTime(2)}).code(), Errc::already_exists);
  EXPECT_EQ(unpin_root(sb, ThinId(6), root).code(), Errc::not_found);
  EXPECT_TRUE(unpin_root(sb, ThinId(5), root).ok());
  EXPECT_TRUE(sb.pinned_roots.empty());

  Superblock full = busy_superblock(random);
  EXPECT_EQ(pin_root(full, {ThinId(999), root, Lsn(1), SnapTime(1)}).code(), Errc::no_space);
}

}  // namespace
}  // namespace thinp
