#include "scenarios/disk_scenario.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <set>
#include <sstream>
#include <string>

#include "engine/base/hash.h"
#include "sim/scheduler.h"
#include "sim/sim_disk.h"
#include "sim/trace.h"

namespace thinp::scenarios {
namespace {

ScenarioResult run_seed(uint64_t seed, std::vector<std::string> bugs = {}, uint64_t ops = 0) {
  ScenarioOptions o;
  o.seed = seed;
  o.ops = ops;
  o.bugs = std::move(bugs);
  return run_disk_scenario(o);
}

TEST(DiskScenario, Seeds1To50Pass) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const ScenarioResult r = run_seed(seed);
    EXPECT_TRUE(r.passed) << "seed " << seed << ": " << r.failure << "\n" << r.summary;
    EXPECT_TRUE(r.failure.empty());
    EXPECT_NE(r.summary.find("reads_checked="), std::string::npos);
  }
}

TEST(DiskScenario, RunsActuallyCheckReadsAndCrash) {
  const ScenarioResult r = run_seed(3);
  ASSERT_TRUE(r.passed) << r.failure;
  // The summary is "key=value ..."; pull out a few counts.
  auto count = [&](const std::string& key) -> uint64_t {
    const size_t at = r.summary.find(" " + key + "=");
    if (at == std::string::npos) return 0;
    return std::stoull(r.summary.substr(at + key.size() + 2));
  };
  EXPECT_GT(count("crashes"), 0u) << r.summary;
  EXPECT_GT(count("reads_checked"), 100u) << r.summary;
  EXPECT_GT(count("sectors_checked"), 1000u) << r.summary;
}

TEST(DiskScenario, SameSeedSameDigest) {
  for (uint64_t seed : {1, 7, 42}) {
    const ScenarioResult a = run_seed(seed);
    const ScenarioResult b = run_seed(seed);
    EXPECT_EQ(a.digest, b.digest) << "seed " << seed;
    EXPECT_EQ(a.summary, b.summary);
  }
}

TEST(DiskScenario, DifferentSeedsDiffer) {
  std::set<uint64_t> digests;
  for (uint64_t seed = 1; seed <= 20; ++seed) digests.insert(run_seed(seed, {}, 300).digest);
  EXPECT_EQ(digests.size(), 20u);
}

TEST(DiskScenario, OpsOptionChangesTheRun) {
  const ScenarioResult small = run_seed(5, {}, 100);
  const ScenarioResult big = run_seed(5, {}, 400);
  EXPECT_TRUE(small.passed) << small.failure;
  EXPECT_NE(small.summary.find("ops=100 "), std::string::npos) << small.summary;
  EXPECT_NE(big.summary.find("ops=400 "), std::string::npos) << big.summary;
  EXPECT_NE(small.digest, big.digest);
}

// The checker must be able to fail: with FLUSH broken, some early seed has
// to read back a flushed write that the crash then lost.
TEST(DiskScenario, FlushNoopBugIsCaught) {
  int failures = 0;
  std::string first;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const ScenarioResult r = run_seed(seed, {"disk-flush-noop"});
    if (!r.passed) {
      ++failures;
      first = r.failure;
      break;
    }
  }
  EXPECT_GT(failures, 0);
  // The message says which seed, and what the model allowed instead.
  EXPECT_NE(first.find("seed "), std::string::npos) << first;
  EXPECT_NE(first.find("allow"), std::string::npos) << first;
}

// Silent faults are accounted exactly: a lost write the trace does not
// report leaves the old value where the model expects the new one.
TEST(DiskScenario, HiddenLostWriteIsCaught) {
  std::string failure;
  for (uint64_t seed = 1; seed <= 50 && failure.empty(); ++seed) {
    const ScenarioResult r = run_seed(seed, {"disk-hidden-lost-write"});
    if (!r.passed) failure = r.failure;
    EXPECT_NE(r.summary.find("BUG=hide_lost_writes"), std::string::npos);
  }
  ASSERT_FALSE(failure.empty());
  EXPECT_NE(failure.find("not an allowed value"), std::string::npos) << failure;
}

TEST(DiskScenario, UnknownBugIsAnError) {
  const ScenarioResult r = run_seed(1, {"no-such-bug"});
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.failure.find("unknown bug 'no-such-bug'"), std::string::npos) << r.failure;
}

TEST(DiskScenario, RegisteredInTheRegistry) {
  const ScenarioInfo* info = find_scenario("disk");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->run, &run_disk_scenario);
  EXPECT_EQ(info->default_ops, kDiskScenarioDefaultOps);
}

TEST(DiskScenario, VerboseLogNamesEveryEvent) {
  std::ostringstream log;
  ScenarioOptions o;
  o.seed = 2;
  o.ops = 50;
  o.verbose = true;
  o.log = &log;
  const ScenarioResult r = run_disk_scenario(o);
  ASSERT_TRUE(r.passed) << r.failure;
  const std::string text = log.str();
  EXPECT_NE(text.find(" boot boot=0 "), std::string::npos);
  EXPECT_NE(text.find(" crash boot=0 "), std::string::npos);
  EXPECT_NE(text.find("crash: tear="), std::string::npos);
  EXPECT_NE(text.find("result: pass"), std::string::npos);
}


// --- Saved traces replay through the model ---------------------------------------

TEST(DiskScenarioReplay, SavedTraceReplaysCleanAndTamperingIsCaught) {
  const std::string path = testing::TempDir() + "/disk_scenario_seed4.trace";
  ScenarioOptions o;
  o.seed = 4;
  o.ops = 300;
  const ScenarioResult r = run_disk_scenario_traced(o, path);
  ASSERT_TRUE(r.passed) << r.failure;
  // Keeping the trace does not change the run.
  EXPECT_EQ(r.digest, run_disk_scenario(o).digest);

  Result<sim::LoadedTrace> loaded = sim::load_trace(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_NE(loaded->description.find("seed 4"), std::string::npos);
  Result<models::DiskModelStats> replayed = replay_disk_trace(*loaded);
  ASSERT_TRUE(replayed.ok()) << replayed.status().to_string();
  EXPECT_GT(replayed->reads_checked, 50u);
  EXPECT_GT(replayed->crashes, 0u);

  // Change what one read returned: the replay must notice.
  sim::LoadedTrace tampered = *loaded;
  for (auto it = tampered.events.rbegin(); it != tampered.events.rend(); ++it) {
    if (it->kind == sim::TraceKind::complete && it->op == IoOp::read && it->status == Errc::ok) {
      it->sector_hashes.back() ^= 1;
      break;
    }
  }
  Result<models::DiskModelStats> bad = replay_disk_trace(tampered);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("the disk returned"), std::string::npos)
      << bad.status().message();
  std::remove(path.c_str());
}

TEST(DiskScenarioReplay, TraceOfABrokenFlushFailsOnReplay) {
  const std::string path = testing::TempDir() + "/disk_scenario_noop.trace";
  ScenarioOptions o;
  o.seed = 1;
  o.bugs = {"disk-flush-noop"};
  const ScenarioResult r = run_disk_scenario_traced(o, path);
  ASSERT_FALSE(r.passed);
  Result<sim::LoadedTrace> loaded = sim::load_trace(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_FALSE(replay_disk_trace(*loaded).ok());
  std::remove(path.c_str());
}

// --- Property: every crash state the disk builds is one the model allows ------------

struct AsyncIo {
  IoRequest req;
  AlignedBuffer buf;
  bool done = false;
};

RC_GTEST_PROP(DiskScenarioProp, CrashStatesAreAllowedByTheModel, ()) {
  constexpr uint32_t kSb = 512;
  constexpr uint64_t kSectors = 32;
  sim::DiskMedia media(kSb, kSectors);
  sim::IoTrace trace;
  models::DiskModel model(kSb, kSectors, media.zero_sector_hash());
  std::string violation;
  trace.set_observer([&](const sim::TraceEvent& ev) {
    const Status s = feed_disk_model(model, kSb, ev);
    if (!s.ok() && violation.empty()) violation = s.message();
  });
  const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
  const int boots = *rc::gen::inRange(1, 4);
  for (int boot = 0; boot < boots; ++boot) {
    sim::SimDiskOptions o;
    const double p = *rc::gen::element(0.0, 0.2);
    o.faults.lost_write = o.faults.misdirect = o.faults.bit_flip = o.faults.write_error = p;
    sim::Scheduler sched(seed + boot);
    sim::SimDisk disk(sched, media, trace, o, Random(seed * 31 + boot));
    std::deque<AsyncIo> ios;
    const int n = *rc::gen::inRange(1, 30);
    for (int i = 0; i < n; ++i) {
      const int kind = *rc::gen::inRange(0, 4);  // 0 read, 1 write, 2 fua write, 3 flush
      const uint64_t count = *rc::gen::inRange<uint64_t>(1, 5);
      const uint64_t first = *rc::gen::inRange<uint64_t>(0, kSectors - count + 1);
      // Writes in flight must not overlap: wait for all earlier IO first.
      if (kind == 1 || kind == 2) sched.run();
      AsyncIo& io = ios.emplace_back();
      io.buf = AlignedBuffer(count * kSb);
      for (uint64_t b = 0; b < count * kSb; b += 8) {
        uint64_t state = seed + i * 1000 + b;
        const uint64_t word = splitmix64(state);
        std::memcpy(io.buf.data() + b, &word, 8);
      }
      io.req.op = kind == 0 ? IoOp::read : kind == 3 ? IoOp::flush : IoOp::write;
      io.req.fua = kind == 2;
      io.req.offset_bytes = first * kSb;
      io.req.length_bytes = kind == 3 ? 0 : count * kSb;
      io.req.data = io.buf.data();
      io.req.on_complete = [&io](Status) { io.done = true; };
      disk.submit(&io.req);
    }
    // Stop at an arbitrary moment, with some of the IO still in flight.
    sched.run({.max_time = Nanos(*rc::gen::inRange<int64_t>(0, 400'000))});
    sched.kill_all_tasks();
    Random crash_rng(seed ^ boot);
    disk.crash(crash_rng, {.tear_sectors = *rc::gen::element(1u, 2u, 4u),
                           .tear_probability = 0.3,
                           .keep_probability = 0.5});
    RC_ASSERT(violation.empty());
    for (uint64_t s = 0; s < kSectors; ++s) {
      const uint64_t h = media.sector_hash(s);
      const auto allowed = model.durable(s);
      RC_ASSERT(std::any_of(allowed.begin(), allowed.end(),
                            [&](const models::SectorValue& v) { return v.hash == h; }));
    }
  }
}

}  // namespace
}  // namespace thinp::scenarios
