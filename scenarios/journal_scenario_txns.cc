#include "scenarios/journal_scenario_txns.h"

#include <algorithm>
#include <sstream>

#include "engine/btree/device_tree.h"
#include "engine/btree/mapping_tree.h"

namespace thinp::scenarios {
namespace {

Status model_mismatch(const std::string& what) {
  return Status(Errc::corruption, "the store disagrees with the model: " + what);
}

// The state a transaction works on, and what it is building.
struct Staging {
  pool::MetadataTxn& txn;
  Random& rng;
  const TxnLimits& limits;
  PoolModel& pool;
  std::string& what;
  DeviceTree devices;
  uint64_t transaction_id;  // of this transaction
};

Result<DeviceTree> open_device_tree(pool::MetadataTxn& txn) {
  if (txn.device_tree_root() == MBlock(0)) return DeviceTree::create(txn.nodes());
  return DeviceTree::open(txn.nodes(), txn.device_tree_root());
}

ThinId pick_thin(const PoolModel& pool, Random& rng) {
  TP_ASSERT(!pool.thins.empty());
  auto it = pool.thins.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(rng.uniform(pool.thins.size())));
  return it->first;
}

// A thin id the pool does not use, or nullopt when every id is taken.
std::optional<ThinId> free_thin_id(const PoolModel& pool, Random& rng, const TxnLimits& limits) {
  if (pool.thins.size() >= limits.thin_ids) return std::nullopt;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const ThinId id(rng.uniform(limits.thin_ids));
    if (!pool.thins.contains(id)) return id;
  }
  for (uint64_t i = 0; i < limits.thin_ids; ++i) {
    if (!pool.thins.contains(ThinId(i))) return ThinId(i);
  }
  TP_UNREACHABLE();
}

// The thin's details as staged, which must match the model's.
Result<DeviceDetails> lookup_checked(Staging& s, ThinId id) {
  Result<DeviceDetails> found = s.devices.lookup(id);
  if (!found.ok() && found.status().code() == Errc::not_found) {
    std::ostringstream os;
    os << id << " has no device details";
    return model_mismatch(os.str());
  }
  TP_RETURN_IF_ERROR(found.status());
  const DeviceDetails& expected = s.pool.thins.at(id).details;
  if (!details_match(expected, *found)) {
    std::ostringstream os;
    os << id << " details: expected " << format_details(expected) << " found "
       << format_details(*found);
    return model_mismatch(os.str());
  }
  return found;
}

// Stores `d` as the thin's new details, in the tree and the model.
Status update_details(Staging& s, ThinModel& thin, DeviceDetails d, MBlock mapping_root) {
  d.mapping_root = mapping_root;
  d.mapped_blocks = thin.mapped_blocks();
  d.transaction_id = TransactionId(s.transaction_id);
  thin.details = d;
  return s.devices.update(d);
}

Status compare_count(const char* op, ThinId id, uint64_t found, uint64_t expected) {
  if (found == expected) return ok_status();
  std::ostringstream os;
  os << op << " on " << id << " reported " << found << " blocks mapped before, model " << expected;
  return model_mismatch(os.str());
}

Status stage_create(Staging& s, ThinId id) {
  TP_ASSIGN_OR_RETURN(MappingTree tree, MappingTree::create(s.txn.nodes(), s.txn.data_refs()));
  DeviceDetails d;
  d.thin = id;
  d.mapping_root = tree.root();
  d.virtual_blocks = s.rng.range(s.limits.virtual_blocks_min, s.limits.virtual_blocks_max);
  d.creation_time = s.pool.time;
  d.snapshot_time = s.pool.time;
  d.transaction_id = TransactionId(s.transaction_id);
  TP_RETURN_IF_ERROR(s.devices.insert(d));
  s.pool.thins[id] = ThinModel{d, {}};
  std::ostringstream os;
  os << "create " << id << " virtual=" << d.virtual_blocks;
  s.what = os.str();
  return ok_status();
}

Status stage_map(Staging& s, ThinId id) {
  TP_ASSIGN_OR_RETURN(DeviceDetails d, lookup_checked(s, id));
  ThinModel& thin = s.pool.thins.at(id);
  MappingTree tree = MappingTree::open(s.txn.nodes(), s.txn.data_refs(), d.mapping_root);
  std::ostringstream os;
  os << "map " << id;
  const uint64_t runs = s.rng.range(1, 3);
  for (uint64_t i = 0; i < runs; ++i) {
    const uint64_t length = s.rng.range(1, std::min(s.limits.run_blocks_max, d.virtual_blocks));
    VBlock at(s.rng.uniform(d.virtual_blocks - length + 1));
    os << " " << at << "+" << length;
    TP_ASSIGN_OR_RETURN(auto ranges, s.txn.allocate_data(id, length));
    uint64_t allocated = 0;
    for (const journal::DataRangeAlloc& r : ranges) {
      const Run run{at, r.length, r.begin, s.pool.time};
      TP_ASSIGN_OR_RETURN(const uint64_t replaced, tree.insert(run));
      TP_RETURN_IF_ERROR(compare_count("insert", id, replaced, thin.map(run)));
      os << (allocated == 0 ? "->" : ",") << r.begin << "+" << r.length;
      at += r.length;
      allocated += r.length;
    }
    TP_ASSERT_EQ(allocated, length);
  }
  s.what = os.str();
  return update_details(s, thin, d, tree.root());
}

Status stage_unmap(Staging& s, ThinId id) {
  TP_ASSIGN_OR_RETURN(DeviceDetails d, lookup_checked(s, id));
  ThinModel& thin = s.pool.thins.at(id);
  MappingTree tree = MappingTree::open(s.txn.nodes(), s.txn.data_refs(), d.mapping_root);
  const uint64_t length = s.rng.range(1, std::min(s.limits.unmap_blocks_max, d.virtual_blocks));
  const VBlock at(s.rng.uniform(d.virtual_blocks - length + 1));
  TP_ASSIGN_OR_RETURN(const uint64_t removed, tree.remove(at, length));
  TP_RETURN_IF_ERROR(compare_count("remove", id, removed, thin.unmap(at, length)));
  std::ostringstream os;
  os << "unmap " << id << " " << at << "+" << length << " (" << removed << " mapped)";
  s.what = os.str();
  return update_details(s, thin, d, tree.root());
}

Status stage_snapshot(Staging& s, ThinId origin, ThinId id) {
  TP_ASSIGN_OR_RETURN(DeviceDetails d, lookup_checked(s, origin));
  MappingTree tree = MappingTree::open(s.txn.nodes(), s.txn.data_refs(), d.mapping_root);
  TP_ASSIGN_OR_RETURN(const MBlock snap_root, tree.clone());
  ThinModel snap = s.pool.thins.at(origin);
  snap.details.thin = id;
  snap.details.mapping_root = snap_root;
  snap.details.creation_time = s.pool.time;
  snap.details.snapshot_time = s.pool.time;
  snap.details.transaction_id = TransactionId(s.transaction_id);
  TP_RETURN_IF_ERROR(s.devices.insert(snap.details));
  ThinModel& thin = s.pool.thins.at(origin);
  d.snapshot_time = s.pool.time;
  TP_RETURN_IF_ERROR(update_details(s, thin, d, d.mapping_root));
  s.pool.thins[id] = std::move(snap);
  s.pool.time = SnapTime(s.pool.time.value() + 1);
  std::ostringstream os;
  os << "snapshot " << origin << " as " << id << " (" << thin.runs.size() << " runs)";
  s.what = os.str();
  return ok_status();
}

Status stage_remove(Staging& s, ThinId id) {
  TP_ASSIGN_OR_RETURN(DeviceDetails d, lookup_checked(s, id));
  MappingTree tree = MappingTree::open(s.txn.nodes(), s.txn.data_refs(), d.mapping_root);
  TP_RETURN_IF_ERROR(tree.destroy());
  TP_RETURN_IF_ERROR(s.devices.remove(id));
  std::ostringstream os;
  os << "delete " << id << " (" << s.pool.thins.at(id).runs.size() << " runs)";
  s.what = os.str();
  s.pool.thins.erase(id);
  return ok_status();
}

// Reads one thin's runs through `nodes`, canonically.
Result<ThinModel> read_thin(NodeStore& nodes, DataRefs& refs, const DeviceDetails& d) {
  ThinModel thin{d, {}};
  MappingTree tree = MappingTree::open(nodes, refs, d.mapping_root);
  TP_RETURN_IF_ERROR(tree.for_each([&](const Run& r) -> Status {
    if (thin.map(r) == 0) return ok_status();
    std::ostringstream os;
    os << d.thin << " holds overlapping runs at " << format_run(r);
    return Status(Errc::corruption, os.str());
  }));
  return thin;
}

Status stage_read_check(Staging& s, ThinId id) {
  TP_ASSIGN_OR_RETURN(DeviceDetails d, lookup_checked(s, id));
  TP_ASSIGN_OR_RETURN(const ThinModel found, read_thin(s.txn.nodes(), s.txn.data_refs(), d));
  const ThinModel& expected = s.pool.thins.at(id);
  if (found.runs != expected.runs) {
    PoolModel e, f;
    e.thins[id] = expected;
    f.thins[id] = found;
    return model_mismatch("read in a transaction: " + describe_difference(e, f));
  }
  std::ostringstream os;
  os << "read " << id << " (" << found.runs.size() << " runs)";
  s.what = os.str();
  return ok_status();
}

// The kind to stage instead of `kind` when the pool does not allow it.
TxnKind feasible_kind(TxnKind kind, const PoolModel& pool, const TxnLimits& limits) {
  const bool any_thin = !pool.thins.empty();
  const bool free_id = pool.thins.size() < limits.thin_ids;
  switch (kind) {
    case TxnKind::create:
      return free_id ? kind : TxnKind::map;
    case TxnKind::snapshot:
      if (!any_thin) return TxnKind::create;
      return free_id ? kind : TxnKind::remove;
    default:
      return any_thin ? kind : TxnKind::create;
  }
}

}  // namespace

const char* txn_kind_name(TxnKind k) {
  switch (k) {
    case TxnKind::create:
      return "create";
    case TxnKind::map:
      return "map";
    case TxnKind::unmap:
      return "unmap";
    case TxnKind::snapshot:
      return "snapshot";
    case TxnKind::remove:
      return "delete";
    case TxnKind::read_check:
      return "read";
  }
  return "?";
}

Result<TxnKind> stage_txn(pool::MetadataTxn& txn, TxnKind kind, Random& rng,
                          const TxnLimits& limits, PoolModel& pool, std::string& what) {
  kind = feasible_kind(kind, pool, limits);
  if (kind == TxnKind::read_check && txn.device_tree_root() == MBlock(0)) {
    return model_mismatch("the model has thins but the pool has no device tree");
  }
  TP_ASSIGN_OR_RETURN(DeviceTree devices, open_device_tree(txn));
  Staging s{txn, rng, limits, pool, what, devices, pool.transaction_id + 1};
  switch (kind) {
    case TxnKind::create:
      TP_RETURN_IF_ERROR(stage_create(s, *free_thin_id(pool, rng, limits)));
      break;
    case TxnKind::map:
      TP_RETURN_IF_ERROR(stage_map(s, pick_thin(pool, rng)));
      break;
    case TxnKind::unmap:
      TP_RETURN_IF_ERROR(stage_unmap(s, pick_thin(pool, rng)));
      break;
    case TxnKind::snapshot: {
      const ThinId origin = pick_thin(pool, rng);
      TP_RETURN_IF_ERROR(stage_snapshot(s, origin, *free_thin_id(pool, rng, limits)));
      break;
    }
    case TxnKind::remove:
      TP_RETURN_IF_ERROR(stage_remove(s, pick_thin(pool, rng)));
      break;
    case TxnKind::read_check:
      TP_RETURN_IF_ERROR(stage_read_check(s, pick_thin(pool, rng)));
      return kind;
  }
  txn.set_device_tree_root(s.devices.root());
  txn.set_transaction_id(s.transaction_id);
  pool.transaction_id = s.transaction_id;
  return kind;
}

Result<PoolModel> read_pool(pool::MetadataStore& store) {
  PoolModel pool;
  pool.transaction_id = store.status().transaction_id;
  const MBlock root = store.device_tree_root();
  if (root == MBlock(0)) return pool;
  NodeStore& nodes = store.committed_nodes();
  NoDataRefs refs("reading the pool");
  DeviceTree devices = DeviceTree::open(nodes, root);
  std::vector<DeviceDetails> all;
  TP_RETURN_IF_ERROR(devices.for_each([&](const DeviceDetails& d) {
    all.push_back(d);
    return ok_status();
  }));
  for (const DeviceDetails& d : all) {
    TP_ASSIGN_OR_RETURN(ThinModel thin, read_thin(nodes, refs, d));
    pool.thins.emplace(d.thin, std::move(thin));
  }
  return pool;
}

}  // namespace thinp::scenarios
