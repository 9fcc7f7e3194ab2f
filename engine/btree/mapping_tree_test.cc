#include "engine/btree/mapping_tree.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/base/random.h"
#include "engine/btree/memory_node_store.h"
#include "engine/btree/ref_census.h"

namespace thinp {
namespace {

struct Mapping {
  uint64_t d;
  uint32_t t;
  bool operator==(const Mapping&) const = default;
};
using Model = std::map<uint64_t, Mapping>;  // virtual block -> mapping

// Live trees, their models, and the pool state a thin pool would keep.
struct Pool {
  MemoryNodeStore store;
  MemoryDataRefs data;
  MappingTreeOptions options;
  struct Thin {
    std::unique_ptr<MappingTree> tree;
    Model model;
    uint32_t snapshot_time = 0;
  };
  std::vector<Thin> thins;
  uint32_t time = 1;
  uint64_t next_data = 1;

  explicit Pool(size_t node_bytes) { options.node_bytes_max = node_bytes; }

  Status create() {
    TP_ASSIGN_OR_RETURN(MappingTree t, MappingTree::create(store, data, options));
    thins.push_back(Thin{std::make_unique<MappingTree>(std::move(t)), {}, 0});
    return ok_status();
  }

  // Maps [v, v+len) to fresh data, or, if `extend`, to the data following
  // what v-1 maps to when that is free (so runs merge).
  Status write(Thin& th, uint64_t v, uint64_t len, bool extend) {
    uint64_t d = next_data;
    auto prev = th.model.find(v - 1);
    if (extend && v > 0 && prev != th.model.end() &&
        data.counts().max_count(prev->second.d + 1, len) == 0) {
      d = prev->second.d + 1;
      next_data = std::max(next_data, d + len + 3);
    } else {
      next_data += len + 3;
    }
    TP_RETURN_IF_ERROR(data.allocate_range(DBlock(d), len));
    uint64_t before = 0;
    for (uint64_t i = 0; i < len; ++i) before += th.model.count(v + i);
    TP_ASSIGN_OR_RETURN(uint64_t mapped,
                        th.tree->insert(thinp::Run{VBlock(v), len, DBlock(d), SnapTime(time)}));
    if (mapped != before)
      return Status(Errc::corruption, "insert reported wrong overwritten count");
    for (uint64_t i = 0; i < len; ++i) th.model[v + i] = Mapping{d + i, time};
    return ok_status();
  }

  Status discard(Thin& th, uint64_t v, uint64_t len) {
    uint64_t before = 0;
    for (uint64_t i = 0; i < len; ++i) before += th.model.erase(v + i);
    TP_ASSIGN_OR_RETURN(uint64_t mapped, th.tree->remove(VBlock(v), len));
    if (mapped != before) return Status(Errc::corruption, "remove reported wrong count");
    return ok_status();
  }

  Status snapshot(size_t i) {
    TP_ASSIGN_OR_RETURN(MBlock root, thins[i].tree->clone());
    thins[i].snapshot_time = time;
    thins.push_back(
        Thin{std::make_unique<MappingTree>(MappingTree::open(store, data, root, options)),
             thins[i].model, time});
    ++time;
    return ok_status();
  }

  Status destroy(size_t i) {
    TP_RETURN_IF_ERROR(thins[i].tree->destroy());
    thins.erase(thins.begin() + i);
    return ok_status();
  }

  // How many live thins map data block d.
  std::map<uint64_t, int> data_users() const {
    std::map<uint64_t, int> users;
    for (const Thin& th : thins)
      for (const auto& [v, m] : th.model) ++users[m.d];
    return users;
  }

  // The per-step check: contents equal the models, lookups cover ranges
  // exactly, and every refcount equals the references the walker finds.
  Status check() {
    RefCensus census;
    for (const Thin& th : thins) {
      Model seen;
      TP_RETURN_IF_ERROR(th.tree->for_each([&](const thinp::Run& r) -> Status {
        for (uint64_t i = 0; i < r.length; ++i) {
          seen[r.vbegin.value() + i] = Mapping{r.dbegin.value() + i, r.time.value()};
        }
        return ok_status();
      }));
      if (seen != th.model) return Status(Errc::corruption, "tree contents differ from the model");
      TP_ASSIGN_OR_RETURN(std::vector<Extent> ex, th.tree->lookup(VBlock(3), 500));
      uint64_t pos = 3;
      for (const Extent& e : ex) {
        if (e.vbegin.value() != pos || e.length == 0) return Status(Errc::corruption, "lookup gap");
        for (uint64_t i = 0; i < e.length; ++i) {
          auto it = th.model.find(pos + i);
          if (e.mapped != (it != th.model.end()))
            return Status(Errc::corruption, "lookup mapped flag");
          if (e.mapped && it->second != Mapping{e.dbegin.value() + i, e.time.value()}) {
            return Status(Errc::corruption, "lookup mapping");
          }
        }
        pos += e.length;
      }
      if (pos != 503) return Status(Errc::corruption, "lookup does not cover the range");
      TP_RETURN_IF_ERROR(census_mapping_tree(store, th.tree->root(), census));
    }
    return check_census(census, store.ref_counts(), data.counts());
  }

  // A one-block lookup's `shared` equals "another thin maps the same data".
  Status check_sharing(Thin& th, uint64_t v) {
    TP_ASSIGN_OR_RETURN(
        std::vector<Extent> ex,
        th.tree->lookup(VBlock(v), 1, SharingQuery{true, SnapTime(th.snapshot_time)}));
    if (ex.size() != 1) return Status(Errc::corruption, "one-block lookup");
    if (!ex[0].mapped) return ok_status();
    const bool shared = data_users()[ex[0].dbegin.value()] > 1;
    if (ex[0].shared != shared) {
      return Status(Errc::corruption, "v:" + std::to_string(v) + " shared " +
                                          std::to_string(ex[0].shared) + " expected " +
                                          std::to_string(shared));
    }
    return ok_status();
  }
};

struct Op {
  int kind;  // 0-3 write, 4-5 discard, 6 snapshot, 7 delete, 8 create, 9 sharing check
  size_t thin;
  uint64_t v;
  uint64_t len;
  bool extend;
};

void show(const Op& op, std::ostream& os) {
  os << "{kind " << op.kind << " thin " << op.thin << " v " << op.v << " len " << op.len
     << " extend " << op.extend << "}";
}

rc::Gen<Op> gen_op() {
  return rc::gen::map(
      rc::gen::tuple(rc::gen::inRange(0, 10), rc::gen::inRange<size_t>(0, 8),
                     rc::gen::inRange<uint64_t>(0, 400),
                     rc::gen::weightedOneOf<uint64_t>({{6, rc::gen::inRange<uint64_t>(1, 8)},
                                                       {3, rc::gen::inRange<uint64_t>(1, 60)},
                                                       {1, rc::gen::inRange<uint64_t>(1, 400)}}),
                     rc::gen::arbitrary<bool>()),
      [](const auto& t) {
        return Op{std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t), std::get<4>(t)};
      });
}

Status run_op(Pool& pool, const Op& op) {
  if (pool.thins.empty() || op.kind == 8) {
    return pool.thins.size() < 8 ? pool.create() : ok_status();
  }
  Pool::Thin& th = pool.thins[op.thin % pool.thins.size()];
  switch (op.kind) {
    case 0:
    case 1:
    case 2:
    case 3:
      return pool.write(th, op.v, op.len, op.extend);
    case 4:
    case 5:
      return pool.discard(th, op.v, op.len);
    case 6:
      return pool.thins.size() < 8 ? pool.snapshot(op.thin % pool.thins.size()) : ok_status();
    case 7:
      return pool.destroy(op.thin % pool.thins.size());
    default:
      return pool.check_sharing(th, op.v);
  }
}

RC_GTEST_PROP(MappingTree, MatchesModelAndRefcountsWithSnapshotsAndDeletes, ()) {
  const size_t node_bytes = *rc::gen::element<size_t>(48, 64, 128, kPageBodyBytes);
  const auto ops = *rc::gen::container<std::vector<Op>>(gen_op());
  Pool pool(node_bytes);
  for (size_t i = 0; i < ops.size(); ++i) {
    const Status s = run_op(pool, ops[i]);
    if (!s.ok()) {
      std::ostringstream os;
      show(ops[i], os);
      RC_FAIL("step " + std::to_string(i) + " " + os.str() + ": " + s.to_string());
    }
    const Status c = pool.check();
    if (!c.ok()) {
      std::ostringstream os;
      show(ops[i], os);
      RC_FAIL("after step " + std::to_string(i) + " " + os.str() + ": " + c.to_string());
    }
  }
  // Deleting every tree frees every node and every data reference.
  while (!pool.thins.empty()) RC_ASSERT(pool.destroy(0).ok());
  RC_ASSERT(pool.store.live_blocks() == 0u);
  RC_ASSERT(pool.data.counts().empty());
}

// A long random sequence on small nodes, to reach trees several levels deep.
TEST(MappingTree, DeepTreeMatchesModel) {
  Pool pool(48);
  ASSERT_TRUE(pool.create().ok());
  Random rng(3);
  for (int i = 0; i < 3000; ++i) {
    Pool::Thin& th = pool.thins[0];
    const uint64_t v = rng.uniform(4000), len = 1 + rng.uniform(6);
    const Status s =
        rng.chance(0.8) ? pool.write(th, v, len, rng.chance(0.3)) : pool.discard(th, v, len);
    ASSERT_TRUE(s.ok()) << s.to_string();
    if (i == 1500) {
      ASSERT_TRUE(pool.snapshot(0).ok());
    }
    if (i % 500 == 0) {
      ASSERT_TRUE(pool.check().ok());
    }
  }
  const Status c = pool.check();
  ASSERT_TRUE(c.ok()) << c.to_string();
  RefCensus census;
  ASSERT_TRUE(census_mapping_tree(pool.store, pool.thins[0].tree->root(), census).ok());
  EXPECT_GT(census.mapping_nodes - census.mapping_leaves, 10u);  // internal nodes exist
}

// The sharing decision and what breaking sharing costs.
TEST(MappingTree, SharingIsExactAfterBreaksAndSnapshotDeletion) {
  Pool pool(kPageBodyBytes);
  ASSERT_TRUE(pool.create().ok());
  ASSERT_TRUE(pool.write(pool.thins[0], 0, 100000, false).ok());
  ASSERT_TRUE(pool.snapshot(0).ok());  // thins[1] is the snapshot
  auto shared = [&](size_t thin, uint64_t v) {
    Pool::Thin& th = pool.thins[thin];
    auto ex = th.tree->lookup(VBlock(v), 1, SharingQuery{true, SnapTime(th.snapshot_time)});
    EXPECT_TRUE(ex.ok());
    return ex->at(0).shared;
  };
  EXPECT_TRUE(shared(0, 5));
  EXPECT_TRUE(shared(1, 5));

  // The origin overwrites v:5: one leaf copied, its one run's data range
  // incremented by one record, not 100000.
  pool.store.reset_cost();
  pool.data.reset_cost();
  ASSERT_TRUE(pool.write(pool.thins[0], 5, 1, false).ok());
  EXPECT_EQ(pool.store.cost().page_writes, 1u);
  EXPECT_EQ(pool.data.cost().data_range_deltas, 2u);  // +1 on the run, -1 on v:5's old block
  EXPECT_EQ(pool.store.cost().meta_ref_deltas, 2u);   // allocate the copy, -1 on the original

  EXPECT_FALSE(shared(0, 5));  // written since the snapshot
  EXPECT_FALSE(shared(1, 5));  // thinp1 would copy this block again: only the snapshot maps it
  EXPECT_TRUE(shared(0, 6));
  EXPECT_TRUE(shared(1, 6));

  ASSERT_TRUE(pool.destroy(1).ok());
  EXPECT_FALSE(shared(0, 6));  // no break at all once the snapshot is gone
  ASSERT_TRUE(pool.check().ok());
}

// Discards merge under-full nodes with their neighbours, so trees shrink.
TEST(MappingTree, DiscardsShrinkTheTree) {
  for (const size_t node_bytes : {size_t(64), kPageBodyBytes}) {
    Pool pool(node_bytes);
    ASSERT_TRUE(pool.create().ok());
    Random rng(11);
    // Random order: runs with varied gaps and data, which do not pack to
    // zero bits.
    const uint64_t blocks = node_bytes == 64 ? 2000 : 20000;
    for (uint64_t i = 0; i < blocks / 2; ++i) {
      ASSERT_TRUE(pool.write(pool.thins[0], rng.uniform(blocks), 1, false).ok());
    }
    const uint64_t full = pool.store.live_blocks();
    // Thin every leaf out without emptying any: keep one block in 50.
    for (uint64_t v = 0; v + 50 <= blocks; v += 50) {
      ASSERT_TRUE(pool.discard(pool.thins[0], v + 1, 49).ok());
    }
    const Status c = pool.check();
    ASSERT_TRUE(c.ok()) << c.to_string();
    const uint64_t left = pool.store.live_blocks();
    std::cout << node_bytes << "-byte nodes: " << full << " nodes before, " << left << " after\n";
    EXPECT_LE(left * 4, full);
  }
}

// A store error at any point of a write, snapshot or delete comes back as
// that error; nothing asserts on the way out.
TEST(MappingTree, StoreErrorsAreReturnedAtEveryStep) {
  for (uint64_t fail_at = 0;; ++fail_at) {
    Pool pool(64);
    ASSERT_TRUE(pool.create().ok());
    for (uint64_t v = 0; v < 300; v += 3) ASSERT_TRUE(pool.write(pool.thins[0], v, 2, false).ok());
    ASSERT_TRUE(pool.snapshot(0).ok());
    pool.store.fail_after(fail_at);
    Status s = pool.write(pool.thins[0], 100, 50, false);
    if (s.ok()) s = pool.discard(pool.thins[1], 20, 200);
    if (s.ok()) s = pool.destroy(0);
    if (s.ok()) {
      EXPECT_GT(fail_at, 10u);  // the sequence needs many store calls
      return;
    }
    EXPECT_EQ(s.code(), Errc::io_error) << s.to_string();
    EXPECT_NE(s.message().find("injected"), std::string::npos);
  }
}

TEST(MappingTree, NeighbouringRunsMerge) {
  Pool pool(kPageBodyBytes);
  ASSERT_TRUE(pool.create().ok());
  for (uint64_t v = 0; v < 1000; ++v) ASSERT_TRUE(pool.write(pool.thins[0], v, 1, true).ok());
  int runs = 0;
  ASSERT_TRUE(pool.thins[0]
                  .tree
                  ->for_each([&](const thinp::Run&) {
                    ++runs;
                    return ok_status();
                  })
                  .ok());
  EXPECT_EQ(runs, 1);
  ASSERT_TRUE(pool.discard(pool.thins[0], 500, 1).ok());  // splits the run
  ASSERT_TRUE(pool.thins[0]
                  .tree
                  ->for_each([&](const thinp::Run&) {
                    ++runs;
                    return ok_status();
                  })
                  .ok());
  EXPECT_EQ(runs, 3);
  ASSERT_TRUE(pool.check().ok());
}

TEST(MappingTree, CorruptNodeIsReportedNotTrusted) {
  Pool pool(kPageBodyBytes);
  ASSERT_TRUE(pool.create().ok());
  ASSERT_TRUE(pool.write(pool.thins[0], 10, 5, false).ok());
  pool.store.corrupt_byte(pool.thins[0].tree->root(), 100);
  const auto ex = pool.thins[0].tree->lookup(VBlock(0), 20);
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), Errc::corruption);
  EXPECT_NE(ex.status().message().find("checksum"), std::string::npos) << ex.status().message();
}

TEST(MappingTree, CensusFindsWrongCountsAndLeaks) {
  Pool pool(kPageBodyBytes);
  ASSERT_TRUE(pool.create().ok());
  ASSERT_TRUE(pool.write(pool.thins[0], 10, 5, false).ok());
  ASSERT_TRUE(pool.check().ok());
  ASSERT_TRUE(pool.store.inc_ref(pool.thins[0].tree->root()).ok());
  Status s = pool.check();
  EXPECT_NE(s.message().find("referenced 1 times, count 2"), std::string::npos) << s.to_string();
  ASSERT_TRUE(pool.store.dec_ref(pool.thins[0].tree->root()).ok());
  ASSERT_TRUE(pool.data.allocate_range(DBlock(90000), 3).ok());  // leaked data
  s = pool.check();
  EXPECT_NE(s.message().find("d:90000..d:90002 expected 0 found 1"), std::string::npos)
      << s.to_string();
}

TEST(MappingTree, BadArgumentsAreErrors) {
  Pool pool(kPageBodyBytes);
  ASSERT_TRUE(pool.create().ok());
  MappingTree& t = *pool.thins[0].tree;
  EXPECT_EQ(t.insert(thinp::Run{VBlock(1), 0, DBlock(1), SnapTime(0)}).status().code(),
            Errc::invalid_argument);
  EXPECT_EQ(
      t.insert(thinp::Run{VBlock(kVirtualEnd - 1), 2, DBlock(1), SnapTime(0)}).status().code(),
      Errc::invalid_argument);
  EXPECT_EQ(t.remove(VBlock(5), kVirtualEnd).status().code(), Errc::invalid_argument);
  EXPECT_EQ(*t.remove(VBlock(5), 10), 0u);
}

}  // namespace
}  // namespace thinp
