#include "engine/btree/device_tree.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "engine/btree/mapping_tree.h"
#include "engine/btree/memory_node_store.h"
#include "engine/btree/ref_census.h"

namespace thinp {
namespace {

DeviceDetails details(uint64_t thin, uint64_t salt) {
  return DeviceDetails{ThinId(thin),
                       MBlock(salt * 3),
                       salt * 5,
                       salt * 7 + thin,
                       SnapTime(uint32_t(salt)),
                       SnapTime(uint32_t(salt + 1)),
                       TransactionId(salt * 11),
                       uint32_t(salt & 0xff)};
}

Status check_device_tree(MemoryNodeStore& store, DeviceTree& tree,
                         const std::map<uint64_t, DeviceDetails>& model) {
  std::map<uint64_t, DeviceDetails> seen;
  uint64_t last = 0;
  bool first = true;
  TP_RETURN_IF_ERROR(tree.for_each([&](const DeviceDetails& d) -> Status {
    if (!first && d.thin.value() <= last) return Status(Errc::corruption, "for_each out of order");
    first = false;
    last = d.thin.value();
    seen[d.thin.value()] = d;
    return ok_status();
  }));
  if (seen != model) return Status(Errc::corruption, "device tree differs from the model");
  RefCensus census;
  TP_RETURN_IF_ERROR(census_device_tree(store, tree.root(), census, false));
  return check_census(census, store.ref_counts(), RangeCounts{});
}

RC_GTEST_PROP(DeviceTree, MatchesModel, ()) {
  DeviceTreeOptions options;
  options.leaf_entries_max = *rc::gen::element<size_t>(2, 3, 5, kDeviceLeafEntriesMax);
  options.internal_entries_max = *rc::gen::element<size_t>(3, 4, kDeviceInternalEntriesMax);
  MemoryNodeStore store;
  auto created = DeviceTree::create(store, options);
  RC_ASSERT(created.ok());
  DeviceTree tree = std::move(created).value();
  std::map<uint64_t, DeviceDetails> model;
  const auto ops = *rc::gen::container<std::vector<std::tuple<int, uint64_t, uint64_t>>>(
      rc::gen::tuple(rc::gen::inRange(0, 5), rc::gen::inRange<uint64_t>(0, 120),
                     rc::gen::inRange<uint64_t>(0, 1000)));
  for (const auto& [kind, thin, salt] : ops) {
    const bool present = model.contains(thin);
    const DeviceDetails d = details(thin, salt);
    Status s;
    if (kind <= 1) {
      s = tree.insert(d);
      RC_ASSERT(s.code() == (present ? Errc::already_exists : Errc::ok));
      if (!present) model[thin] = d;
    } else if (kind == 2) {
      s = tree.update(d);
      RC_ASSERT(s.code() == (present ? Errc::ok : Errc::not_found));
      if (present) model[thin] = d;
    } else if (kind == 3) {
      s = tree.remove(ThinId(thin));
      RC_ASSERT(s.code() == (present ? Errc::ok : Errc::not_found));
      model.erase(thin);
    } else {
      const Result<DeviceDetails> r = tree.lookup(ThinId(thin));
      RC_ASSERT(r.ok() == present);
      if (present) RC_ASSERT(*r == model[thin]);
    }
    const Status c = check_device_tree(store, tree, model);
    if (!c.ok()) RC_FAIL(c.to_string());
  }
  RC_ASSERT(tree.destroy().ok());
  RC_ASSERT(store.live_blocks() == 0u);
}

TEST(DeviceTree, SequentialIdsFillLeaves) {
  MemoryNodeStore store;
  DeviceTree tree = std::move(DeviceTree::create(store)).value();
  for (uint64_t i = 0; i < 72 * 10; ++i) ASSERT_TRUE(tree.insert(details(i, i)).ok());
  EXPECT_EQ(store.live_blocks(), 10u + 1u);  // ten full leaves and a root
  EXPECT_EQ(tree.lookup(ThinId(700))->virtual_blocks, details(700, 700).virtual_blocks);
}

TEST(DeviceTree, NodeCodecRejectsGarbage) {
  std::array<std::byte, kPageBodyBytes> body{};
  DeviceNode node;
  node.entries = {details(1, 1), details(5, 2)};
  encode_device_node(node, body);
  ASSERT_TRUE(decode_device_node(body).ok());
  auto b = body;
  put_u64(b, kDeviceNodeHeaderBytes + kDeviceLeafEntryBytes, 1);  // second id == first
  EXPECT_EQ(decode_device_node(b).status().code(), Errc::corruption);
  b = body;
  put_u16(b, 2, 500);
  EXPECT_EQ(decode_device_node(b).status().code(), Errc::corruption);
  b = body;
  b[0] = std::byte(9);
  EXPECT_EQ(decode_device_node(b).status().code(), Errc::corruption);
  b = body;
  b[kPageBodyBytes - 1] = std::byte(1);
  EXPECT_EQ(decode_device_node(b).status().code(), Errc::corruption);
}

// The whole-pool walk `thinp check` will do: the device tree, and through
// each thin's details its mapping tree, shared nodes counted once.
TEST(DeviceTree, CensusWalksMappingTreesThroughDetails) {
  MemoryNodeStore store;
  MemoryDataRefs data;
  DeviceTree devices = std::move(DeviceTree::create(store)).value();
  MappingTree origin = std::move(MappingTree::create(store, data)).value();
  ASSERT_TRUE(data.allocate_range(DBlock(100), 50).ok());
  ASSERT_TRUE(origin.insert(thinp::Run{VBlock(0), 50, DBlock(100), SnapTime(1)}).ok());
  const MBlock snap_root = *origin.clone();
  DeviceDetails o = details(1, 1), s = details(2, 2);
  o.mapping_root = origin.root();
  s.mapping_root = snap_root;
  ASSERT_TRUE(devices.insert(o).ok());
  ASSERT_TRUE(devices.insert(s).ok());
  RefCensus census;
  ASSERT_TRUE(census_device_tree(store, devices.root(), census, true).ok());
  EXPECT_EQ(census.meta[origin.root()], 2u);
  EXPECT_EQ(census.mapping_nodes, 1u);
  const Status c = check_census(census, store.ref_counts(), data.counts());
  EXPECT_TRUE(c.ok()) << c.to_string();
}

}  // namespace
}  // namespace thinp
