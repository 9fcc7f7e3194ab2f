// Pool properties: random sequences of Pool operations on the simulator,
// checked against a reference model after every step.
//
// The model is the simplest thing that can be right: per thin, its size in
// sectors and a map sector -> token (pool_test_world.h: every written sector
// names the write that put it there; a missing entry reads as zeros). A
// snapshot copies its origin's map, delete drops it, discard erases the
// whole blocks inside its range. Management errors are predicted from the
// model (not_found, already_exists, busy, read_only, conflict, ...).
//
// Every read is compared sector by sector with the model. Every few steps
// and at the end of a sequence, every thin is read back whole, Pool::check()
// must report nothing, and the store's data_used must equal the number of
// distinct data blocks the thins map (no leak, no double provisioning).
//
// Concurrency: a "batch" step spawns several tasks at once on one thin,
// writing, discarding and reading overlapping block ranges. Range locks
// serialise overlapping changes, so the thin must afterwards read exactly as
// if the batch's changes had run in some order, one after another; each
// read must see, per sector, the old value or a value one of the changes
// could have left there.
//
// The device is small (a one-device pool with 256 KiB of data), so
// sequences run out of data space; the pool is formatted with
// out_of_data_space = error so such a write fails at once with no_space.
// A write that fails so may have written the blocks it did not need to
// provision: the model then accepts, per sector, the old or the new token.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "engine/pool/pool.h"
#include "engine/pool/pool_test_world.h"

namespace thinp::pool {
namespace {

using testing::kSector;
using testing::PoolWorld;

constexpr uint64_t kDeviceBytes = uint64_t(5) << 18;  // 1.25 MiB: 1 of metadata
constexpr uint64_t kMaxThinId = 6;

enum class OpKind {
  create,
  snapshot,
  remove,
  write,
  read,
  discard,
  flush,
  transaction_id,
  pin,
  batch,
};

const char* op_name(OpKind k) {
  switch (k) {
    case OpKind::create:
      return "create";
    case OpKind::snapshot:
      return "snapshot";
    case OpKind::remove:
      return "delete";
    case OpKind::write:
      return "write";
    case OpKind::read:
      return "read";
    case OpKind::discard:
      return "discard";
    case OpKind::flush:
      return "flush";
    case OpKind::transaction_id:
      return "set_transaction_id";
    case OpKind::pin:
      return "pin/unpin";
    case OpKind::batch:
      return "batch";
  }
  return "?";
}

// One step, in raw numbers: interpreted against the model when it runs, so
// that any shrunk sequence still means something.
struct Op {
  OpKind kind = OpKind::flush;
  uint64_t thin = 1, other = 2;  // thin ids in [1, kMaxThinId]
  uint64_t a = 0, b = 0;         // offset / length / size seeds
  bool flag = false;             // fua, unaligned, right CAS value, ...
  uint64_t seed = 0;             // batch: its sub-operations
};

std::ostream& operator<<(std::ostream& os, const Op& op) {
  return os << op_name(op.kind) << "(thin " << op.thin << ", other " << op.other << ", a " << op.a
            << ", b " << op.b << ", flag " << op.flag << ", seed " << op.seed << ")";
}

rc::Gen<Op> gen_op() {
  const auto kind = rc::gen::weightedElement<OpKind>({{3, OpKind::create},
                                                      {2, OpKind::snapshot},
                                                      {1, OpKind::remove},
                                                      {10, OpKind::write},
                                                      {3, OpKind::read},
                                                      {3, OpKind::discard},
                                                      {2, OpKind::flush},
                                                      {1, OpKind::transaction_id},
                                                      {1, OpKind::pin},
                                                      {3, OpKind::batch}});
  return rc::gen::map(
      rc::gen::tuple(kind, rc::gen::inRange<uint64_t>(1, kMaxThinId + 1),
                     rc::gen::inRange<uint64_t>(1, kMaxThinId + 1),
                     rc::gen::inRange<uint64_t>(0, 1 << 20), rc::gen::inRange<uint64_t>(0, 1 << 20),
                     rc::gen::weightedElement<bool>({{9, false}, {1, true}}),
                     rc::gen::inRange<uint64_t>(0, 1 << 30)),
      [](const auto& t) {
        return Op{std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t),
                  std::get<4>(t), std::get<5>(t), std::get<6>(t)};
      });
}

struct ThinModel {
  uint64_t sectors = 0;
  std::map<uint64_t, uint64_t> tokens;  // sector -> token; missing: zeros
  bool pinned = false;
  uint64_t at(uint64_t sector) const {
    auto it = tokens.find(sector);
    return it == tokens.end() ? 0 : it->second;
  }
};

// A change made by one task of a batch (or by one step).
struct Change {
  bool discard = false;
  uint64_t sector = 0, count = 0;  // the IO's range, in sectors
  uint64_t first_token = 0;        // write: sector i gets first_token + i
};

// Drives one sequence: the pool in a PoolWorld, the model beside it.
class Harness {
 public:
  Harness(uint64_t block_bytes, uint64_t seed)
      : world_(testing::PoolWorldOptions{.device_bytes = kDeviceBytes, .seed = seed, .disk = {}}),
        block_bytes_(block_bytes),
        block_sectors_(block_bytes / kSector) {}

  // Formats and opens; empty or what failed.
  std::string start() {
    FormatOptions f;
    f.data_block_bytes = block_bytes_;
    f.metadata_bytes = uint64_t(1) << 20;
    f.journal_blocks = 64;
    f.out_of_data_space = OutOfDataSpaceMode::error;
    Status s = world_.format(f);
    if (!s.ok()) return "format: " + s.to_string();
    s = world_.open();
    if (!s.ok()) return "open: " + s.to_string();
    return "";
  }

  // Runs one step; empty, or how the pool disagreed with the model.
  std::string step(const Op& op) {
    if (op.kind == OpKind::batch) return batch(resolve(op));
    return world_.run_task([&] { return run_step(op); });
  }

  // Reads every thin whole, runs check(), and compares data_used with the
  // distinct blocks mapped.
  std::string verify_all() {
    return world_.run_task([&] { return verify_task(); });
  }

  uint64_t no_space_seen() const { return no_space_; }
  uint64_t batches_run() const { return batches_; }
  uint64_t shares_broken() const { return shares_broken_; }
  uint64_t data_blocks() const { return data_blocks_; }

 private:
  Pool& pool() { return *world_.pool; }

  static std::string describe(const Status& s) { return s.ok() ? "ok" : s.to_string(); }

  static std::string expect_code(const char* what, const Status& s, Errc want) {
    if (s.code() == want) return "";
    return std::string(what) + ": got " + describe(s) + ", want " + std::string(errc_name(want));
  }

  // Most steps act on a thin that exists: the thin at index `op.thin` of
  // the model; one in eight uses the raw id (maybe missing).
  Op resolve(Op op) const {
    if (model_.empty() || op.seed % 8 == 0 || op.kind == OpKind::create) return op;
    auto it = model_.begin();
    std::advance(it, op.thin % model_.size());
    op.thin = it->first;
    return op;
  }

  std::string run_step(const Op& raw) {
    const Op op = resolve(raw);
    switch (op.kind) {
      case OpKind::create:
        return create(op);
      case OpKind::snapshot:
        return snapshot(op);
      case OpKind::remove:
        return remove(op);
      case OpKind::write:
        return write(op);
      case OpKind::read:
        return read(op);
      case OpKind::discard:
        return discard(op);
      case OpKind::flush:
        return expect_code("flush", pool().flush(), Errc::ok);
      case OpKind::transaction_id:
        return transaction_id(op);
      case OpKind::pin:
        return pin(op);
      case OpKind::batch:
        break;
    }
    return "unreachable";
  }

  std::string create(const Op& op) {
    // 1 to 48 blocks, sometimes not a whole number of blocks (rounded up).
    const uint64_t blocks = 1 + op.a % (op.a % 2 == 0 ? 48 : 6);
    const uint64_t bytes = op.flag
                               ? blocks * block_bytes_ - kSector * (1 + op.b % (block_sectors_ - 1))
                               : blocks * block_bytes_;
    const Status s = pool().create_thin(ThinId(op.thin), bytes);
    if (model_.count(op.thin) != 0) return expect_code("create existing", s, Errc::already_exists);
    if (!s.ok()) return "create: " + describe(s);
    model_[op.thin] = ThinModel{blocks * block_sectors_, {}, false};
    auto info = pool().thin_info(ThinId(op.thin));
    if (!info.ok() || info->virtual_blocks != blocks) return "create: wrong virtual_blocks";
    return "";
  }

  std::string snapshot(const Op& op) {
    const Status s = pool().create_snapshot(ThinId(op.thin), ThinId(op.other));
    if (model_.count(op.thin) == 0) return expect_code("snapshot of missing", s, Errc::not_found);
    if (model_.count(op.other) != 0) {
      return expect_code("snapshot onto existing", s, Errc::already_exists);
    }
    if (!s.ok()) return "snapshot: " + describe(s);
    ThinModel snap = model_[op.thin];
    snap.pinned = false;
    model_[op.other] = std::move(snap);
    return "";
  }

  std::string remove(const Op& op) {
    const Status s = pool().delete_thin(ThinId(op.thin));
    auto it = model_.find(op.thin);
    if (it == model_.end()) return expect_code("delete missing", s, Errc::not_found);
    if (it->second.pinned) return expect_code("delete pinned", s, Errc::busy);
    if (!s.ok()) return "delete: " + describe(s);
    model_.erase(it);
    return "";
  }

  // A range in sectors from the op's seeds: mostly inside the thin, near
  // block boundaries, sometimes past its end.
  std::pair<uint64_t, uint64_t> range_of(const Op& op, uint64_t thin_sectors) const {
    const uint64_t span = thin_sectors + 2 * block_sectors_;
    uint64_t sector = op.a % span;
    if (op.a % 3 == 0) sector = sector / block_sectors_ * block_sectors_;  // block aligned
    uint64_t count = op.b % (3 * block_sectors_ + 1);
    if (op.b % 4 == 0) count = (1 + op.b % 3) * block_sectors_;  // whole blocks' worth
    if (op.b % 16 == 1) count = op.b % (16 * block_sectors_);    // long
    return {sector, count};
  }

  std::string write(const Op& op) {
    auto it = model_.find(op.thin);
    const uint64_t thin_sectors = it == model_.end() ? 64 : it->second.sectors;
    auto [sector, count] = range_of(op, thin_sectors);
    const bool unaligned = op.flag && op.seed % 2 == 0;
    const bool fua = op.seed % 3 == 0;
    const uint64_t first = next_token_;
    next_token_ += count;
    std::vector<uint64_t> tokens(count);
    for (uint64_t i = 0; i < count; ++i) tokens[i] = first + i;
    AlignedBuffer buf = testing::sectors_of(tokens);
    const uint64_t offset = sector * kSector + (unaligned ? 256 : 0);
    const Status s = pool().write(ThinId(op.thin), offset, buf.span(), fua);
    if (unaligned) return expect_code("unaligned write", s, Errc::invalid_argument);
    if (it == model_.end()) return expect_code("write to missing", s, Errc::not_found);
    ThinModel& m = it->second;
    if (sector + count > m.sectors) return expect_code("write past end", s, Errc::invalid_argument);
    if (m.pinned) return expect_code("write to pinned", s, Errc::read_only);
    const Change c{false, sector, count, first};
    if (s.code() == Errc::no_space) {
      ++no_space_;
      return adopt_uncertain(op.thin, {c}, sector, count);
    }
    if (!s.ok()) return "write: " + describe(s);
    apply(m, c);
    return "";
  }

  std::string read(const Op& op) {
    auto it = model_.find(op.thin);
    const uint64_t thin_sectors = it == model_.end() ? 64 : it->second.sectors;
    auto [sector, count] = range_of(op, thin_sectors);
    AlignedBuffer buf(count * kSector);
    const Status s = pool().read(ThinId(op.thin), sector * kSector, buf.span());
    if (it == model_.end()) return expect_code("read of missing", s, Errc::not_found);
    if (sector + count > it->second.sectors) {
      return expect_code("read past end", s, Errc::invalid_argument);
    }
    if (!s.ok()) return "read: " + describe(s);
    return compare(op.thin, it->second, sector, buf);
  }

  std::string discard(const Op& op) {
    auto it = model_.find(op.thin);
    const uint64_t thin_sectors = it == model_.end() ? 64 : it->second.sectors;
    auto [sector, count] = range_of(op, thin_sectors);
    const Status s = pool().discard(ThinId(op.thin), sector * kSector, count * kSector);
    if (it == model_.end()) return expect_code("discard of missing", s, Errc::not_found);
    ThinModel& m = it->second;
    if (sector + count > m.sectors) {
      return expect_code("discard past end", s, Errc::invalid_argument);
    }
    if (m.pinned) return expect_code("discard of pinned", s, Errc::read_only);
    if (!s.ok()) return "discard: " + describe(s);
    apply(m, Change{true, sector, count, 0});
    return "";
  }

  std::string transaction_id(const Op& op) {
    const uint64_t expected = op.flag ? transaction_id_ + 1 + op.a % 5 : transaction_id_;
    const Status s = pool().set_transaction_id(expected, op.b);
    if (op.flag) return expect_code("set_transaction_id with a wrong value", s, Errc::conflict);
    if (!s.ok()) return "set_transaction_id: " + describe(s);
    transaction_id_ = op.b;
    if (pool().status().store.transaction_id != op.b) return "transaction id not changed";
    return "";
  }

  std::string pin(const Op& op) {
    auto it = model_.find(op.thin);
    const bool unpin = it != model_.end() && it->second.pinned && !op.flag;
    const Status s = unpin ? pool().unpin(ThinId(op.thin)) : pool().pin(ThinId(op.thin));
    if (it == model_.end()) return expect_code("pin of missing", s, Errc::not_found);
    ThinModel& m = it->second;
    if (unpin) {
      if (!s.ok()) return "unpin: " + describe(s);
      m.pinned = false;
    } else if (m.pinned) {
      return expect_code("pin of pinned", s, Errc::already_exists);
    } else if (s.ok() || s.code() == Errc::busy) {
      m.pinned = true;  // busy: pinned, not yet published (pool.h)
    } else if (s.code() != Errc::no_space) {
      return "pin: " + describe(s);
    }
    auto info = pool().thin_info(ThinId(op.thin));
    if (!info.ok() || info->pinned != m.pinned) return "pin: thin_info disagrees";
    return "";
  }

  void apply(ThinModel& m, const Change& c) const {
    if (!c.discard) {
      for (uint64_t i = 0; i < c.count; ++i) m.tokens[c.sector + i] = c.first_token + i;
      return;
    }
    const uint64_t b0 = (c.sector + block_sectors_ - 1) / block_sectors_;
    const uint64_t b1 = (c.sector + c.count) / block_sectors_;
    for (uint64_t b = b0; b < b1; ++b) {
      m.tokens.erase(m.tokens.lower_bound(b * block_sectors_),
                     m.tokens.lower_bound((b + 1) * block_sectors_));
    }
  }

  // The token sector `s` could hold after change `c` (nullopt: c does not
  // touch it).
  std::optional<uint64_t> token_after(const Change& c, uint64_t s) const {
    if (!c.discard) {
      if (s < c.sector || s >= c.sector + c.count) return std::nullopt;
      return c.first_token + (s - c.sector);
    }
    const uint64_t b = s / block_sectors_;
    if (b * block_sectors_ >= c.sector && (b + 1) * block_sectors_ <= c.sector + c.count) {
      return 0;
    }
    return std::nullopt;
  }

  std::string compare(uint64_t thin, const ThinModel& m, uint64_t sector,
                      const AlignedBuffer& buf) const {
    for (uint64_t i = 0; i < buf.size() / kSector; ++i) {
      const auto got = testing::decode_sector(buf.span().subspan(i * kSector, kSector));
      const uint64_t want = m.at(sector + i);
      if (got != want) {
        return "thin " + std::to_string(thin) + " sector " + std::to_string(sector + i) +
               " reads " + (got ? "token " + std::to_string(*got) : std::string("garbage")) +
               ", model says token " + std::to_string(want);
      }
    }
    return "";
  }

  // After changes whose outcome is uncertain per sector (a failed write):
  // reads [sector, sector + count) back, checks each sector is its old value
  // or one a change could have left, and makes the model what was read.
  std::string adopt_uncertain(uint64_t thin, const std::vector<Change>& changes, uint64_t sector,
                              uint64_t count) {
    ThinModel& m = model_.at(thin);
    AlignedBuffer buf(count * kSector);
    const Status s = pool().read(ThinId(thin), sector * kSector, buf.span());
    if (!s.ok()) return "read back: " + describe(s);
    for (uint64_t i = 0; i < count; ++i) {
      const auto got = testing::decode_sector(buf.span().subspan(i * kSector, kSector));
      bool allowed = got == m.at(sector + i);
      for (const Change& c : changes)
        allowed = allowed || (got && token_after(c, sector + i) == got);
      if (!allowed) {
        return "thin " + std::to_string(thin) + " sector " + std::to_string(sector + i) +
               " reads " + (got ? "token " + std::to_string(*got) : std::string("garbage")) +
               ": neither its old value nor one the failed or racing changes wrote";
      }
      if (*got == 0) {
        m.tokens.erase(sector + i);
      } else {
        m.tokens[sector + i] = *got;
      }
    }
    return "";
  }

  std::string batch(const Op& op);
  std::string verify_task();

  PoolWorld world_;
  uint64_t block_bytes_, block_sectors_;
  std::map<uint64_t, ThinModel> model_;
  uint64_t transaction_id_ = 0;
  uint64_t next_token_ = 1;
  uint64_t no_space_ = 0, batches_ = 0, shares_broken_ = 0, data_blocks_ = 0;
};

// 2 to 5 tasks at once on one thin, over its first few blocks so that they
// overlap: writes (some FUA), discards and reads.
std::string Harness::batch(const Op& op) {
  auto it = model_.find(op.thin);
  if (it == model_.end() || it->second.pinned) return "";
  ++batches_;
  ThinModel& m = it->second;
  const ThinModel before = m;
  Random rng(op.seed);
  const uint64_t window = std::min<uint64_t>(m.sectors, 3 * block_sectors_);
  const size_t tasks = 2 + rng.uniform(4);
  struct Task {
    Change change;
    bool read = false;
    bool fua = false;
    AlignedBuffer buf;
    Status result;
  };
  std::vector<Task> ts(tasks);
  for (Task& t : ts) {
    const uint64_t kind = rng.uniform(10);
    t.read = kind >= 8;
    t.change.discard = kind == 7;
    t.fua = rng.chance(0.3);
    // Mostly one whole block (racing provisioning), else any range.
    if (rng.chance(0.5)) {
      t.change.sector = rng.uniform(window / block_sectors_) * block_sectors_;
      t.change.count = block_sectors_;
    } else {
      t.change.sector = rng.uniform(window);
      t.change.count = 1 + rng.uniform(window - t.change.sector);
    }
    if (t.read) {
      t.buf = AlignedBuffer(t.change.count * kSector);
    } else if (!t.change.discard) {
      t.change.first_token = next_token_;
      next_token_ += t.change.count;
      std::vector<uint64_t> tokens(t.change.count);
      for (uint64_t i = 0; i < t.change.count; ++i) tokens[i] = t.change.first_token + i;
      t.buf = testing::sectors_of(tokens);
    }
  }
  for (Task& t : ts) {
    world_.sched->spawn("batch", [this, &t, thin = op.thin] {
      const uint64_t offset = t.change.sector * kSector;
      if (t.read) {
        t.result = pool().read(ThinId(thin), offset, t.buf.span());
      } else if (t.change.discard) {
        t.result = pool().discard(ThinId(thin), offset, t.change.count * kSector);
      } else {
        t.result = pool().write(ThinId(thin), offset, t.buf.span(), t.fua);
      }
    });
  }
  const std::string sched_problem = world_.run_until_idle();
  if (!sched_problem.empty()) return sched_problem;

  std::vector<Change> changes;
  bool uncertain = false;
  for (const Task& t : ts) {
    if (t.read) continue;
    if (t.result.code() == Errc::no_space) {
      uncertain = true;
      ++no_space_;
    } else if (!t.result.ok()) {
      return std::string("batch ") + (t.change.discard ? "discard" : "write") + ": " +
             describe(t.result);
    }
    changes.push_back(t.change);
  }
  // Reads: per sector the old value or one some change could leave.
  for (const Task& t : ts) {
    if (!t.read) continue;
    if (!t.result.ok()) return "batch read: " + describe(t.result);
    for (uint64_t i = 0; i < t.change.count; ++i) {
      const uint64_t s = t.change.sector + i;
      const auto got = testing::decode_sector(t.buf.span().subspan(i * kSector, kSector));
      bool allowed = got == before.at(s);
      for (const Change& c : changes) allowed = allowed || (got && token_after(c, s) == got);
      if (!allowed) {
        return "batch read of sector " + std::to_string(s) + " saw " +
               (got ? "token " + std::to_string(*got) : std::string("garbage"));
      }
    }
  }
  if (uncertain) {
    return world_.run_task([&] { return adopt_uncertain(op.thin, changes, 0, window); });
  }

  // Everything succeeded: the window must read as some serial order of the
  // changes (at most 5! orders).
  AlignedBuffer now(window * kSector);
  const std::string read_back = world_.run_task([&] {
    const Status s = pool().read(ThinId(op.thin), 0, now.span());
    return s.ok() ? "" : "batch read back: " + describe(s);
  });
  if (!read_back.empty()) return read_back;
  std::vector<size_t> order(changes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  do {
    ThinModel candidate = before;
    for (size_t i : order) apply(candidate, changes[i]);
    if (compare(op.thin, candidate, 0, now).empty()) {
      m = std::move(candidate);
      return "";
    }
  } while (std::next_permutation(order.begin(), order.end()));
  ThinModel candidate = before;
  for (const Change& c : changes) apply(candidate, c);
  return "batch of " + std::to_string(tasks) +
         " tasks: no serial order of its changes explains what the thin reads; in submission "
         "order: " +
         compare(op.thin, candidate, 0, now);
}

std::string Harness::verify_task() {
  for (const auto& [thin, m] : model_) {
    AlignedBuffer buf(m.sectors * kSector);
    const Status s = pool().read(ThinId(thin), 0, buf.span());
    if (!s.ok()) return "read back thin " + std::to_string(thin) + ": " + describe(s);
    std::string problem = compare(thin, m, 0, buf);
    if (!problem.empty()) return problem;
  }
  const std::vector<ThinInfo> thins = pool().thins();
  if (thins.size() != model_.size()) {
    return "the pool has " + std::to_string(thins.size()) + " thins, the model " +
           std::to_string(model_.size());
  }
  auto findings = pool().check();
  if (!findings.ok()) return "check: " + describe(findings.status());
  if (!findings->empty()) return "check: " + findings->front().what;
  auto distinct = testing::distinct_data_blocks(pool());
  if (!distinct.ok()) return "mappings: " + describe(distinct.status());
  const PoolStatus st = pool().status();
  if (st.store.data_used != *distinct) {
    return "data_used is " + std::to_string(st.store.data_used) + " but the thins map " +
           std::to_string(*distinct) + " distinct data blocks";
  }
  shares_broken_ = st.shares_broken;
  data_blocks_ = st.store.data_blocks;
  return "";
}

struct Totals {
  uint64_t sequences = 0, steps = 0, no_space = 0, batches = 0, shares_broken = 0;
  uint64_t data_blocks = 0;
  ~Totals() {
    std::cout << "PoolProperty totals: " << sequences << " sequences, " << steps << " steps, "
              << batches << " concurrent batches, " << no_space << " no_space writes, "
              << shares_broken << " shares broken; data blocks " << data_blocks << "\n";
  }
};
Totals totals;

RC_GTEST_PROP(PoolProperty, RandomOperationsMatchTheModel, ()) {
  const uint64_t block_bytes = *rc::gen::element<uint64_t>(4096, 8192);
  const uint64_t seed = *rc::gen::inRange<uint64_t>(1, 1 << 30);
  const size_t steps = *rc::gen::resize(100, rc::gen::inRange<size_t>(1, 200));
  const auto ops = *rc::gen::container<std::vector<Op>>(steps, gen_op());
  Harness h(block_bytes, seed);
  const std::string started = h.start();
  RC_ASSERT(started == "");
  for (size_t i = 0; i < ops.size(); ++i) {
    std::string problem = h.step(ops[i]);
    if (problem.empty() && i % 5 == 4) problem = h.verify_all();
    if (!problem.empty()) {
      std::ostringstream os;
      os << "step " << i << " " << ops[i] << ": " << problem;
      RC_FAIL(os.str());
    }
  }
  const std::string end = h.verify_all();
  if (!end.empty()) RC_FAIL("at the end: " + end);
  ++totals.sequences;
  totals.steps += ops.size();
  totals.no_space += h.no_space_seen();
  totals.batches += h.batches_run();
  totals.shares_broken += h.shares_broken();
  totals.data_blocks = h.data_blocks();
}

// Tasks racing on one unprovisioned block of a fresh thin: `writes[i]` is
// task i's range (first sector, sector count) inside block 0. Returns what
// the block reads afterwards, as tokens (task i wrote 100 * (i + 1) + j to
// its sector j), and checks it was provisioned exactly once.
std::vector<std::optional<uint64_t>> race_on_block0(
    const std::vector<std::pair<uint64_t, uint64_t>>& writes) {
  constexpr uint64_t kBlock = 4096;
  PoolWorld w(testing::PoolWorldOptions{.device_bytes = kDeviceBytes, .seed = 11, .disk = {}});
  FormatOptions f;
  f.data_block_bytes = kBlock;
  f.metadata_bytes = uint64_t(1) << 20;
  f.journal_blocks = 64;
  EXPECT_TRUE(w.format(f).ok());
  EXPECT_TRUE(w.open().ok());
  uint64_t used_before = 0;
  w.run([&] {
    ASSERT_TRUE(w.pool->create_thin(ThinId(1), 4 * kBlock).ok());
    used_before = w.pool->status().store.data_used;
  });
  std::vector<AlignedBuffer> bufs;
  std::vector<Status> results(writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    std::vector<uint64_t> tokens(writes[i].second);
    for (uint64_t j = 0; j < tokens.size(); ++j) tokens[j] = 100 * (i + 1) + j;
    bufs.push_back(testing::sectors_of(tokens));
  }
  for (size_t i = 0; i < writes.size(); ++i) {
    w.sched->spawn("racer", [&, i] {
      results[i] = w.pool->write(ThinId(1), writes[i].first * kSector, bufs[i].span());
    });
  }
  EXPECT_EQ(w.run_until_idle(), "");
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.to_string();
  std::vector<std::optional<uint64_t>> got;
  w.run([&] {
    const PoolStatus st = w.pool->status();
    EXPECT_EQ(st.store.data_used, used_before + 1) << "the block must be provisioned once";
    EXPECT_EQ(st.provisioned_blocks, 1u);
    AlignedBuffer buf(kBlock);
    ASSERT_TRUE(w.pool->read(ThinId(1), 0, buf.span()).ok());
    for (uint64_t j = 0; j < kBlock / kSector; ++j) {
      got.push_back(testing::decode_sector(buf.span().subspan(j * kSector, kSector)));
    }
  });
  EXPECT_EQ(w.check(), std::vector<std::string>{});
  return got;
}

// Whole-block writes racing to provision one block: it is provisioned once
// and holds one of the writes, whole.
TEST(PoolProperty, RacingWholeBlockWritesProvisionOnceAndOneWins) {
  const auto got = race_on_block0({{0, 8}, {0, 8}, {0, 8}, {0, 8}});
  ASSERT_EQ(got.size(), 8u);
  ASSERT_TRUE(got[0].has_value());
  const uint64_t winner = *got[0] / 100;
  EXPECT_TRUE(winner >= 1 && winner <= 4) << "sector 0 reads token " << *got[0];
  for (uint64_t j = 0; j < 8; ++j) {
    EXPECT_EQ(got[j], std::optional<uint64_t>(100 * winner + j)) << "sector " << j;
  }
}

// Partial writes to different sectors of one unprovisioned block: the one
// that provisions it zeroes the rest, and the others must not be lost to
// that zeroing (nor zero each other).
TEST(PoolProperty, RacingPartialWritesToOneNewBlockAllSurvive) {
  const auto got = race_on_block0({{0, 2}, {2, 1}, {5, 3}, {3, 1}});
  ASSERT_EQ(got.size(), 8u);
  const std::vector<std::optional<uint64_t>> want = {100, 101, 200, 400, 0, 300, 301, 302};
  for (uint64_t j = 0; j < 8; ++j) EXPECT_EQ(got[j], want[j]) << "sector " << j;
}

}  // namespace
}  // namespace thinp::pool
