#include "sim/sim_disk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/hash.h"
#include "engine/runtime/sync.h"
#include "sim/scheduler.h"

namespace thinp::sim {
namespace {

using namespace std::chrono_literals;

// One disk over one media, with fixed latencies unless a test changes them,
// so each test controls exactly what is in flight when.
struct World {
  explicit World(SimDiskOptions o = fixed_options(), uint32_t sector_bytes = 512,
                 uint64_t sectors = 64, uint64_t seed = 1)
      : media(sector_bytes, sectors), trace(TraceOptions{.keep_events = true}) {
    boot(std::move(o), seed);
  }

  static SimDiskOptions fixed_options() {
    SimDiskOptions o;
    o.latency.read_min = o.latency.read_max = 10us;
    o.latency.write_min = o.latency.write_max = 100us;
    o.latency.flush_min = o.latency.flush_max = 500us;
    o.latency.tail_probability = 0;
    return o;
  }

  void boot(SimDiskOptions o, uint64_t seed = 1) {
    disk.reset();
    sched = std::make_unique<Scheduler>(seed);
    disk = std::make_unique<SimDisk>(*sched, media, trace, std::move(o), Random(seed));
  }

  // Crashes with the given options, then reboots a perfect disk over the media.
  CrashReport crash_and_reboot(CrashOptions c, uint64_t seed = 7) {
    sched->kill_all_tasks();
    Random rng(seed);
    CrashReport r = disk->crash(rng, c);
    boot(fixed_options());
    return r;
  }

  // Runs `body` as a task to completion.
  void run_task(std::function<void()> body) {
    sched->spawn("test", std::move(body));
    ASSERT_EQ(sched->run(), RunOutcome::idle);
  }

  uint32_t sb() const { return media.sector_bytes(); }

  DiskMedia media;
  IoTrace trace;
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<SimDisk> disk;
};

AlignedBuffer pattern(size_t bytes, uint8_t value) {
  AlignedBuffer b(bytes);
  std::fill(b.data(), b.data() + bytes, std::byte{value});
  return b;
}

// The first byte of each sector of a read, a compact picture of the device.
std::vector<uint8_t> read_marks(World& w, uint64_t first_sector, uint64_t count) {
  std::vector<uint8_t> marks;
  w.run_task([&] {
    AlignedBuffer b(count * w.sb());
    ASSERT_TRUE(w.disk->read(first_sector * w.sb(), b.span()).ok());
    for (uint64_t i = 0; i < count; ++i) marks.push_back(static_cast<uint8_t>(b.data()[i * w.sb()]));
  });
  return marks;
}

const CrashOptions kDropAll{.tear_sectors = 1, .tear_probability = 0, .keep_probability = 0};
const CrashOptions kKeepAll{.tear_sectors = 1, .tear_probability = 0, .keep_probability = 1};

TEST(SimDisk, UnwrittenSectorsReadAsZeroAndReadsSeeTheNewestWrite) {
  World w;
  EXPECT_EQ(read_marks(w, 0, 2), (std::vector<uint8_t>{0, 0}));
  w.run_task([&] {
    AlignedBuffer a = pattern(2 * 512, 0xa1), b = pattern(512, 0xb2);
    ASSERT_TRUE(w.disk->write(0, a.span()).ok());
    ASSERT_TRUE(w.disk->write(512, b.span()).ok());
  });
  EXPECT_EQ(read_marks(w, 0, 3), (std::vector<uint8_t>{0xa1, 0xb2, 0}));
  EXPECT_EQ(w.disk->cached_version_count(), 3u);  // nothing flushed: all in the cache
  EXPECT_EQ(w.media.sector_hash(0), w.media.zero_sector_hash());
}

TEST(SimDisk, CompletionOrderDiffersFromSubmissionOrder) {
  SimDiskOptions o;  // the default, random latencies
  World w(o);
  std::vector<int> completed;
  bool inside_submit = false;
  std::vector<std::unique_ptr<IoRequest>> reqs;
  std::vector<AlignedBuffer> bufs;
  for (int i = 0; i < 16; ++i) {
    bufs.emplace_back(512);
    auto r = std::make_unique<IoRequest>();
    r->op = i % 2 ? IoOp::read : IoOp::write;
    r->offset_bytes = i * 512;
    r->length_bytes = 512;
    r->data = bufs.back().data();
    r->on_complete = [&, i](Status s) {
      EXPECT_FALSE(inside_submit) << "on_complete ran inside submit()";
      EXPECT_TRUE(s.ok());
      completed.push_back(i);
    };
    inside_submit = true;
    w.disk->submit(r.get());
    inside_submit = false;
    reqs.push_back(std::move(r));
  }
  EXPECT_TRUE(completed.empty());
  EXPECT_EQ(w.sched->run(), RunOutcome::idle);
  ASSERT_EQ(completed.size(), 16u);
  EXPECT_FALSE(std::is_sorted(completed.begin(), completed.end()));
}

TEST(SimDisk, CrashDropsUnflushedWritesOrKeepsThem) {
  for (bool keep : {false, true}) {
    World w;
    w.run_task([&] {
      AlignedBuffer a = pattern(512, 0x11);
      ASSERT_TRUE(w.disk->write(0, a.span()).ok());
    });
    const CrashReport r = w.crash_and_reboot(keep ? kKeepAll : kDropAll);
    ASSERT_EQ(r.choices.size(), 1u);
    EXPECT_EQ(r.choices[0].fate, keep ? CrashFate::kept : CrashFate::dropped);
    EXPECT_FALSE(r.choices[0].in_flight);
    EXPECT_EQ(read_marks(w, 0, 1)[0], keep ? 0x11 : 0);
  }
}

TEST(SimDisk, FlushMakesEarlierCompletedWritesDurable) {
  World w;
  w.run_task([&] {
    AlignedBuffer a = pattern(512, 0x21), b = pattern(512, 0x22);
    ASSERT_TRUE(w.disk->write(0, a.span()).ok());
    ASSERT_TRUE(w.disk->flush().ok());
    ASSERT_TRUE(w.disk->write(512, b.span()).ok());
  });
  EXPECT_NE(w.media.sector_hash(0), w.media.zero_sector_hash());
  w.crash_and_reboot(kDropAll);
  EXPECT_EQ(read_marks(w, 0, 2), (std::vector<uint8_t>{0x21, 0}));
  EXPECT_EQ(w.trace.flush_epoch(), 1u);
}

TEST(SimDisk, FlushDoesNotCoverAWriteCompletingAfterItWasSubmitted) {
  World w;  // write latency 100us, flush 500us
  w.run_task([&] {
    AlignedBuffer a = pattern(512, 0x31);
    Status write_status, flush_status;
    WaitGroup wg(*w.sched);
    wg.add(2);
    w.sched->spawn("writer", [&] {
      write_status = w.disk->write(0, a.span());
      wg.done();
    });
    w.sched->spawn("flusher", [&] {
      flush_status = w.disk->flush();  // submitted at t=0, before the write completes
      wg.done();
    });
    wg.wait();
    EXPECT_TRUE(write_status.ok());
    EXPECT_TRUE(flush_status.ok());
  });
  EXPECT_EQ(w.media.sector_hash(0), w.media.zero_sector_hash());
  w.crash_and_reboot(kDropAll);
  EXPECT_EQ(read_marks(w, 0, 1)[0], 0);
}

TEST(SimDisk, FuaIsDurableAtCompletionAndSupersedesCachedVersions) {
  World w;
  w.run_task([&] {
    AlignedBuffer a = pattern(512, 0x41), b = pattern(512, 0x42);
    ASSERT_TRUE(w.disk->write(0, a.span()).ok());
    ASSERT_TRUE(w.disk->write(0, b.span(), /*fua=*/true).ok());
  });
  EXPECT_EQ(w.disk->cached_version_count(), 0u);
  // Even a crash that keeps every cached write cannot bring back 0x41.
  const CrashReport r = w.crash_and_reboot(kKeepAll);
  EXPECT_TRUE(r.choices.empty());
  EXPECT_EQ(read_marks(w, 0, 1)[0], 0x42);
}

TEST(SimDisk, TornWritesKeepWholeTearChunks) {
  bool saw_kept_chunk = false, saw_dropped_chunk = false;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    World w;
    w.run_task([&] {
      AlignedBuffer a = pattern(16 * 512, 0x51);
      ASSERT_TRUE(w.disk->write(0, a.span()).ok());
    });
    const CrashReport r =
        w.crash_and_reboot({.tear_sectors = 4, .tear_probability = 1, .keep_probability = 0}, seed);
    ASSERT_EQ(r.choices.size(), 1u);
    EXPECT_EQ(r.tear_sectors, 4u);
    EXPECT_EQ(r.choices[0].fate, CrashFate::torn);
    ASSERT_EQ(r.choices[0].chunk_kept.size(), 4u);
    EXPECT_NE(r.summary().find("tear=4"), std::string::npos);
    const std::vector<uint8_t> marks = read_marks(w, 0, 16);
    for (int chunk = 0; chunk < 4; ++chunk) {
      const uint8_t expect = r.choices[0].chunk_kept[chunk] ? 0x51 : 0;
      for (int i = 0; i < 4; ++i) EXPECT_EQ(marks[chunk * 4 + i], expect) << "sector " << chunk * 4 + i;
      (r.choices[0].chunk_kept[chunk] ? saw_kept_chunk : saw_dropped_chunk) = true;
    }
    EXPECT_EQ(r.sectors_kept + r.sectors_dropped, 16u);
  }
  EXPECT_TRUE(saw_kept_chunk);
  EXPECT_TRUE(saw_dropped_chunk);
}

TEST(SimDisk, WritesInFlightAtACrashMayLand) {
  for (bool keep : {false, true}) {
    World w;
    AlignedBuffer a = pattern(2 * 512, 0x61);
    Status never;
    w.sched->spawn("writer", [&] { never = w.disk->write(1024, a.span()); });
    ASSERT_EQ(w.sched->run({.max_time = Nanos(50us)}), RunOutcome::time_limit);
    EXPECT_EQ(w.disk->in_flight_count(), 1u);
    const CrashReport r = w.crash_and_reboot(keep ? kKeepAll : kDropAll);
    ASSERT_EQ(r.choices.size(), 1u);
    EXPECT_TRUE(r.choices[0].in_flight);
    EXPECT_EQ(read_marks(w, 2, 2), (std::vector<uint8_t>(2, keep ? 0x61 : 0)));
  }
}

TEST(SimDisk, NewestSurvivingVersionWinsAfterACrash) {
  World w;
  w.run_task([&] {
    AlignedBuffer a = pattern(512, 0x71), b = pattern(512, 0x72);
    ASSERT_TRUE(w.disk->write(0, a.span()).ok());
    ASSERT_TRUE(w.disk->write(0, b.span()).ok());
  });
  w.crash_and_reboot(kKeepAll);
  EXPECT_EQ(read_marks(w, 0, 1)[0], 0x72);
}

TEST(SimDisk, FlushNoopBugMakesNothingDurable) {
  SimDiskOptions o = World::fixed_options();
  o.bugs.flush_noop = true;
  World w(o);
  w.run_task([&] {
    AlignedBuffer a = pattern(512, 0x81);
    ASSERT_TRUE(w.disk->write(0, a.span()).ok());
    ASSERT_TRUE(w.disk->flush().ok());  // reports success...
  });
  w.crash_and_reboot(kDropAll);
  EXPECT_EQ(read_marks(w, 0, 1)[0], 0);  // ...but the write is gone
}

TEST(DiskMedia, SparseSectorsHashesAndBitFlips) {
  DiskMedia m(4096, 8);
  EXPECT_EQ(m.size_bytes(), 8u * 4096);
  EXPECT_EQ(m.sector_hash(3), m.zero_sector_hash());
  EXPECT_EQ(m.written_sector_count(), 0u);
  SectorBytes a(4096, std::byte{0x5});
  m.write_sector(3, a);
  m.write_sector(3, a);
  EXPECT_EQ(m.written_sector_count(), 1u);  // first writes only
  EXPECT_EQ(m.written_sector(0), 3u);
  EXPECT_EQ(m.sector_hash(3), hash_bytes(a));
  const uint64_t flipped = m.flip_bit(3, 9);
  SectorBytes back(4096);
  m.read_sector(3, back);
  EXPECT_EQ(back[1], std::byte{0x7});  // bit 9 is bit 1 of byte 1: 0x5 ^ 0x2
  EXPECT_EQ(flipped, hash_bytes(back));
  m.read_sector(4, back);
  EXPECT_TRUE(std::all_of(back.begin(), back.end(), [](std::byte b) { return b == std::byte{0}; }));
}

// --- Faults -------------------------------------------------------------------

const TraceEvent* last_completion(const IoTrace& t, IoOp op) {
  for (auto it = t.events().rbegin(); it != t.events().rend(); ++it) {
    if (it->kind == TraceKind::complete && it->op == op) return &*it;
  }
  return nullptr;
}

TEST(SimDiskFaults, ReadErrorFailsTheRead) {
  SimDiskOptions o = World::fixed_options();
  o.faults.read_error = 1;
  World w(o);
  w.run_task([&] {
    AlignedBuffer b(512);
    const Status s = w.disk->read(0, b.span());
    EXPECT_EQ(s.code(), Errc::io_error);
    EXPECT_NE(s.message().find("injected read error"), std::string::npos);
  });
  ASSERT_NE(last_completion(w.trace, IoOp::read), nullptr);
  EXPECT_EQ(last_completion(w.trace, IoOp::read)->fault, FaultKind::read_error);
  EXPECT_EQ(w.disk->fault_count(FaultKind::read_error), 1u);
}

TEST(SimDiskFaults, WriteErrorChangesNothing) {
  SimDiskOptions o = World::fixed_options();
  o.faults.write_error = 1;
  World w(o);
  w.run_task([&] {
    AlignedBuffer a = pattern(512, 0x91);
    EXPECT_EQ(w.disk->write(0, a.span()).code(), Errc::io_error);
    EXPECT_EQ(w.disk->flush().code(), Errc::io_error);
  });
  EXPECT_EQ(w.disk->cached_version_count(), 0u);
  EXPECT_EQ(read_marks(w, 0, 1)[0], 0);
  EXPECT_EQ(last_completion(w.trace, IoOp::write)->fault, FaultKind::write_error);
}

TEST(SimDiskFaults, LostWriteReportsSuccessButChangesNothing) {
  SimDiskOptions o = World::fixed_options();
  o.faults.lost_write = 1;
  World w(o);
  w.run_task([&] {
    AlignedBuffer a = pattern(512, 0xa1);
    EXPECT_TRUE(w.disk->write(0, a.span(), true).ok());
  });
  EXPECT_EQ(read_marks(w, 0, 1)[0], 0);
  const TraceEvent* ev = last_completion(w.trace, IoOp::write);
  EXPECT_EQ(ev->fault, FaultKind::lost_write);
  EXPECT_EQ(ev->status, Errc::ok);
}

TEST(SimDiskFaults, MisdirectedWriteLandsWhereTheTraceSays) {
  SimDiskOptions o = World::fixed_options();
  o.faults.misdirect = 1;
  World w(o);
  w.run_task([&] {
    AlignedBuffer a = pattern(2 * 512, 0xb1);
    EXPECT_TRUE(w.disk->write(0, a.span()).ok());
  });
  const TraceEvent* ev = last_completion(w.trace, IoOp::write);
  ASSERT_EQ(ev->fault, FaultKind::misdirect);
  const uint64_t landed = ev->fault_offset_bytes / 512;
  EXPECT_EQ(read_marks(w, landed, 2), (std::vector<uint8_t>{0xb1, 0xb1}));
  if (landed >= 2) {
    EXPECT_EQ(read_marks(w, 0, 2), (std::vector<uint8_t>{0, 0}));
  }
}

TEST(SimDiskFaults, BitFlipCorruptsOneBitOfADurableSector) {
  SimDiskOptions o = World::fixed_options();
  o.faults.bit_flip = 1;
  World w(o);
  w.run_task([&] {
    AlignedBuffer a = pattern(512, 0x00);
    a.data()[0] = std::byte{0xc1};
    EXPECT_TRUE(w.disk->write(0, a.span(), true).ok());  // the flip hits the only written sector
  });
  const auto& evs = w.trace.events();
  auto corrupt = std::find_if(evs.begin(), evs.end(),
                              [](const TraceEvent& e) { return e.kind == TraceKind::corrupt; });
  ASSERT_NE(corrupt, evs.end());
  EXPECT_EQ(corrupt->fault_offset_bytes, 0u);
  EXPECT_NE(corrupt->prior_hash, corrupt->content_hash);
  EXPECT_EQ(w.media.sector_hash(0), corrupt->content_hash);
  // The corruption is found by a later read: exactly one bit differs.
  w.run_task([&] {
    AlignedBuffer b(512);
    ASSERT_TRUE(w.disk->read(0, b.span()).ok());
    int bits = 0;
    for (size_t i = 0; i < 512; ++i) {
      const uint8_t expect = i == 0 ? 0xc1 : 0;
      bits += __builtin_popcount(static_cast<uint8_t>(b.data()[i]) ^ expect);
    }
    EXPECT_EQ(bits, 1);
  });
}

TEST(SimDiskFaults, SlowIoTakesSlowFactorTimesLonger) {
  SimDiskOptions o = World::fixed_options();
  o.faults.slow = 1;
  o.faults.slow_factor = 30;
  World w(o);
  w.run_task([&] {
    AlignedBuffer b(512);
    EXPECT_TRUE(w.disk->read(0, b.span()).ok());
    EXPECT_EQ(w.sched->now(), 300us);  // 10us * 30
  });
  EXPECT_EQ(last_completion(w.trace, IoOp::read)->fault, FaultKind::slow);
}

TEST(SimDiskFaults, DeviceFullFailsWritesPastTheLimit) {
  SimDiskOptions o = World::fixed_options();
  o.faults.full_limit_bytes = 8192;
  World w(o);
  w.run_task([&] {
    AlignedBuffer a = pattern(1024, 0xd1);
    EXPECT_TRUE(w.disk->write(7168, a.span()).ok());           // ends exactly at the limit
    EXPECT_EQ(w.disk->write(7680, a.span()).code(), Errc::no_space);  // crosses it
    EXPECT_EQ(w.disk->discard(8192, 512).code(), Errc::no_space);
    AlignedBuffer b(1024);
    EXPECT_TRUE(w.disk->read(8192, b.span()).ok());  // reads are unaffected
  });
  EXPECT_EQ(read_marks(w, 14, 3), (std::vector<uint8_t>{0xd1, 0xd1, 0}));
}

TEST(SimDiskFaults, SwarmConfigsVaryAndAreDeterministic) {
  int with_faults = 0, without = 0;
  for (uint64_t seed = 1; seed <= 64; ++seed) {
    Random a(seed), b(seed);
    const FaultConfig fa = random_swarm_faults(a, 1 << 20, 512);
    const FaultConfig fb = random_swarm_faults(b, 1 << 20, 512);
    EXPECT_EQ(fa.to_string(), fb.to_string());
    (fa.read_error > 0 ? with_faults : without)++;
    if (fa.full_limit_bytes) {
      EXPECT_GE(*fa.full_limit_bytes, (1u << 20) / 2);
      EXPECT_EQ(*fa.full_limit_bytes % 512, 0u);
    }
  }
  EXPECT_GT(with_faults, 10);
  EXPECT_GT(without, 10);
  EXPECT_EQ(FaultConfig{}.to_string(), "none");
}

// --- Requests that break the contract -------------------------------------------

TEST(SimDisk, MisalignedAndOutOfRangeRequestsFailAsynchronously) {
  World w(World::fixed_options(), 4096, 16);
  EXPECT_EQ(w.disk->logical_sector_bytes(), 4096u);
  EXPECT_EQ(w.disk->size_bytes(), 16u * 4096);
  w.run_task([&] {
    AlignedBuffer a(4096);
    EXPECT_EQ(w.disk->write(512, std::span(a.data(), 512)).code(), Errc::invalid_argument);
    EXPECT_EQ(w.disk->read(16 * 4096, a.span()).code(), Errc::invalid_argument);
    EXPECT_TRUE(w.disk->write(15 * 4096, a.span()).ok());
  });
}

// --- Trace ----------------------------------------------------------------------

uint64_t workload_digest(uint64_t seed, IoTrace* keep = nullptr) {
  DiskMedia media(512, 128);
  IoTrace local(TraceOptions{.keep_events = keep == nullptr});
  IoTrace& trace = keep ? *keep : local;
  Scheduler sched(seed);
  SimDiskOptions o;
  o.faults.read_error = o.faults.misdirect = o.faults.bit_flip = o.faults.slow = 0.05;
  SimDisk disk(sched, media, trace, o, Random(seed));
  for (int t = 0; t < 3; ++t) {
    sched.spawn("t", [&, t] {
      AlignedBuffer b = pattern(4 * 512, static_cast<uint8_t>(t + 1));
      for (int i = 0; i < 20; ++i) {
        (void)disk.write((t * 40 + i % 8 * 4) * 512, b.span(), i % 5 == 0);
        (void)disk.read((i * 4) * 512, b.span());
        if (i % 7 == 0) (void)disk.flush();
      }
    });
  }
  EXPECT_EQ(sched.run(), RunOutcome::idle);
  Random crash_rng(seed);
  disk.crash(crash_rng, {.tear_sectors = 2});
  return trace.digest();
}

TEST(IoTrace, DigestIsDeterministicAndSeedSensitive) {
  EXPECT_EQ(workload_digest(3), workload_digest(3));
  EXPECT_NE(workload_digest(3), workload_digest(4));
}

TEST(IoTrace, EventsCarryTimesEpochsAndHashes) {
  World w;
  w.run_task([&] {
    AlignedBuffer a = pattern(1024, 0x5a);
    ASSERT_TRUE(w.disk->write(0, a.span()).ok());
    ASSERT_TRUE(w.disk->flush().ok());
    ASSERT_TRUE(w.disk->read(0, a.span()).ok());
  });
  const auto& evs = w.trace.events();
  ASSERT_EQ(evs.size(), 7u);  // boot, 3 x (submit, complete)
  EXPECT_EQ(evs[0].kind, TraceKind::boot);
  const TraceEvent& wsub = evs[1];
  const TraceEvent& wdone = evs[2];
  EXPECT_EQ(wsub.kind, TraceKind::submit);
  EXPECT_EQ(wsub.sector_hashes.size(), 2u);
  EXPECT_EQ(wsub.content_hash, combine_sector_hashes(wsub.sector_hashes));
  EXPECT_EQ(wdone.time_ns - wdone.submit_time_ns, 100'000);
  EXPECT_EQ(wdone.flush_epoch, 0u);
  const TraceEvent& rdone = evs[6];
  EXPECT_EQ(rdone.op, IoOp::read);
  EXPECT_EQ(rdone.flush_epoch, 1u);
  EXPECT_EQ(rdone.sector_hashes, wsub.sector_hashes);  // the read returned what was written
  for (size_t i = 0; i < evs.size(); ++i) EXPECT_EQ(evs[i].seq, i);
}

TEST(IoTrace, SaveAndLoadRoundTrip) {
  IoTrace trace(TraceOptions{.keep_events = true});
  workload_digest(5, &trace);
  const std::string path = testing::TempDir() + "/sim_disk_test_trace.txt";
  ASSERT_TRUE(trace.save(path, "seed 5").ok());
  Result<LoadedTrace> loaded = load_trace(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->description, "seed 5");
  EXPECT_EQ(loaded->digest, trace.digest());
  ASSERT_EQ(loaded->events.size(), trace.events().size());
  for (size_t i = 0; i < trace.events().size(); ++i) {
    EXPECT_EQ(format_event(loaded->events[i]), format_event(trace.events()[i]));
  }
  EXPECT_EQ(digest_of(loaded->events), trace.digest());

  // A changed event no longer matches the saved digest.
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = text.find(" len=512 ");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 9, " len=1024 ");
  std::ofstream(path, std::ios::trunc) << text;
  Result<LoadedTrace> tampered = load_trace(path);
  ASSERT_FALSE(tampered.ok());
  EXPECT_EQ(tampered.status().code(), Errc::corruption);
  EXPECT_NE(tampered.status().message().find("digest"), std::string::npos);
  std::remove(path.c_str());
}

TEST(IoTrace, ParseRejectsGarbageAndMemoryIsBoundedByDefault) {
  EXPECT_FALSE(parse_event("nonsense").ok());
  EXPECT_FALSE(parse_event("1 submit boot=x note=").ok());
  EXPECT_FALSE(parse_event("1 teleport boot=0 note=").ok());
  IoTrace bounded;
  uint64_t seen = 0;
  bounded.set_observer([&](const TraceEvent&) { ++seen; });
  bounded.record(TraceEvent{});
  bounded.record(TraceEvent{});
  EXPECT_EQ(bounded.event_count(), 2u);
  EXPECT_EQ(seen, 2u);
  EXPECT_TRUE(bounded.events().empty());
  EXPECT_FALSE(bounded.save(testing::TempDir() + "/never.txt").ok());
}

}  // namespace
}  // namespace thinp::sim
