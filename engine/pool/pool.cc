#include "engine/pool/pool.h"

#include <algorithm>
#include <string>

#include "engine/base/assert.h"
#include "engine/pool/pool_impl.h"

namespace thinp::pool {

namespace {

constexpr uint64_t kSectorBytes = 512;
// queue mode: how often a write waiting for data space tries again.
constexpr Nanos kNoSpaceRetry = std::chrono::milliseconds(10);

// Appends every run of `tree` to `out`, in order.
Status collect_runs(MappingTree& tree, std::vector<Run>& out) {
  return tree.for_each([&](const Run& r) {
    out.push_back(r);
    return ok_status();
  });
}

ThinInfo info_of(const DeviceDetails& d) {
  ThinInfo i;
  i.thin = d.thin;
  i.virtual_blocks = d.virtual_blocks;
  i.mapped_blocks = d.mapped_blocks;
  i.creation_time = d.creation_time;
  i.snapshot_time = d.snapshot_time;
  i.pinned = (d.flags & kThinFlagPinned) != 0;
  i.root = d.mapping_root;
  return i;
}

}  // namespace

const char* pool_mode_name(PoolMode mode) {
  switch (mode) {
    case PoolMode::write:
      return "write";
    case PoolMode::out_of_data_space:
      return "out_of_data_space";
    case PoolMode::read_only:
      return "read_only";
    case PoolMode::fail:
      return "fail";
  }
  return "?";
}

// --- Open and close ------------------------------------------------------------------

Status Pool::format(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                    const FormatOptions& options) {
  return MetadataStore::format(rt, metadata, data, options);
}

Result<std::unique_ptr<Pool>> Pool::open(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                                         const PoolOptions& options) {
  TP_ASSIGN_OR_RETURN(std::unique_ptr<MetadataStore> store,
                      MetadataStore::open(rt, metadata, data, options.store));
  auto pool = std::make_unique<PoolImpl>(rt, metadata, data, options, std::move(store));
  TP_RETURN_IF_ERROR(pool->start());
  return std::unique_ptr<Pool>(std::move(pool));
}

PoolImpl::PoolImpl(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                   const PoolOptions& options, std::unique_ptr<MetadataStore> store)
    : rt_(rt),
      metadata_(metadata),
      data_(data != nullptr ? *data : metadata),
      options_(options),
      store_(std::move(store)),
      mgmt_(rt, "pool management") {
  const Superblock& sb = store_->superblock();
  block_bytes_ = sb.geometry.data_block_bytes;
  data_base_bytes_ = sb.geometry.data_on_metadata_device ? sb.geometry.data_offset_bytes : 0;
  zero_new_blocks_ = sb.zero_new_blocks;
  no_space_mode_ = options.out_of_data_space.value_or(sb.out_of_data_space_mode);
}

PoolImpl::~PoolImpl() = default;

Status PoolImpl::start() {
  const MBlock root = store_->device_tree_root();
  uint32_t latest = 0;
  bool any = false;
  if (root != kNoRoot) {
    DeviceTree tree = DeviceTree::open(store_->committed_nodes(), root);
    Status s = tree.for_each([&](const DeviceDetails& d) {
      thins_[d.thin] = std::make_shared<Thin>(rt_, d);
      latest = std::max({latest, d.snapshot_time.value(), d.creation_time.value()});
      any = true;
      if ((d.flags & kThinFlagPinned) != 0) {
        // Recovery's checkpoint wrote every page back: the tree is on disk.
        pinned_.push_back(PinnedRoot{d.thin, d.mapping_root, Lsn(0), d.snapshot_time});
      }
      return ok_status();
    });
    if (!s.ok()) return s.with_context("reading the device details tree");
  }
  // The pool time is logged with every snapshot and never goes back (runs
  // of deleted snapshots live on in other thins with their times). A thin
  // newer than it means the log and the tree disagree (a pool from before
  // the time was logged): move past every thin, durably, before any write.
  time_ = store_->status().time;
  if (any && latest > time_.value()) {
    time_ = SnapTime(latest + 1);
    std::unique_ptr<MetadataTxn> txn = store_->begin();
    txn->set_pool_time(time_);
    Result<Lsn> lsn = store_->commit(std::move(txn));
    if (!lsn.ok()) return lsn.status().with_context("logging the pool time");
  }
  store_->set_pinned_roots(pinned_);
  if (store_->superblock().needs_check) {
    mode_ = PoolMode::read_only;
    mode_reason_ = "needs_check is set: run thinp check";
    return ok_status();
  }
  // Deletes a crash interrupted: finish them before anything else.
  std::vector<ThinPtr> deleting;
  for (const auto& [id, t] : thins_) {
    if ((t->details.flags & kThinFlagDeleting) != 0) deleting.push_back(t);
  }
  for (const ThinPtr& t : deleting) {
    Status s = finish_delete(t);
    if (!s.ok()) return s.with_context("finishing the delete of " + thin_name(t->details.thin));
  }
  return ok_status();
}

Status PoolImpl::close() {
  LockGuard g(mgmt_);
  if (closed_) return ok_status();
  // Drain the IO in flight on every thin.
  for (auto& [id, t] : thins_) RangeGuard drain(t->cells, 0, kVirtualEnd, false);
  closed_ = true;
  if (mode_ == PoolMode::fail) return Status(Errc::io_error, "pool has failed: " + mode_reason_);
  return store_->close();
}

// --- Helpers -------------------------------------------------------------------------

Result<PoolImpl::ThinPtr> PoolImpl::find(ThinId thin) const {
  auto it = thins_.find(thin);
  if (it == thins_.end() || (it->second->details.flags & kThinFlagDeleting) != 0) {
    return Status(Errc::not_found, thin_name(thin) + " does not exist");
  }
  return it->second;
}

Status PoolImpl::check_io(uint64_t offset, uint64_t length, bool changes) const {
  if (closed_) return Status(Errc::read_only, "pool is closed");
  if (mode_ == PoolMode::fail) return Status(Errc::io_error, "pool has failed: " + mode_reason_);
  if (changes && mode_ == PoolMode::read_only) {
    return Status(Errc::read_only, "pool is read-only: " + mode_reason_);
  }
  const uint64_t sector = std::max<uint64_t>(kSectorBytes, data_.logical_sector_bytes());
  if (offset % sector != 0 || length % sector != 0) {
    return Status(Errc::invalid_argument,
                  "IO offset " + std::to_string(offset) + " and length " + std::to_string(length) +
                      " must be multiples of the data device's sector size (" +
                      std::to_string(sector) + " bytes)");
  }
  return ok_status();
}

Status PoolImpl::check_bounds(const Thin& t, uint64_t offset, uint64_t length) const {
  const uint64_t size = t.details.virtual_blocks * block_bytes_;
  if (offset > size || length > size - offset) {
    return Status(Errc::invalid_argument, "IO at " + std::to_string(offset) + "+" +
                                              std::to_string(length) + " is past the end of " +
                                              thin_name(t.details.thin) + " (" +
                                              std::to_string(size) + " bytes)");
  }
  return ok_status();
}

uint64_t PoolImpl::data_offset(uint64_t dblock) const {
  return data_base_bytes_ + dblock * block_bytes_;
}

Status PoolImpl::metadata_error(const Status& s) {
  if (s.code() != Errc::io_error && s.code() != Errc::corruption) return s;
  if (mode_ == PoolMode::read_only || mode_ == PoolMode::fail) return s;
  const std::string why = s.message();
  mode_ = PoolMode::read_only;
  mode_reason_ = why;
  Status set = store_->set_needs_check(why);
  if (!set.ok()) {
    mode_ = PoolMode::fail;
    mode_reason_ = why + "; setting needs_check failed: " + set.message();
  }
  return s;
}

Result<std::vector<journal::DataRangeAlloc>> PoolImpl::reserve(ThinId owner, uint64_t blocks) {
  const Nanos deadline = rt_.now() + options_.no_space_timeout;
  for (;;) {
    Result<std::vector<journal::DataRangeAlloc>> r = store_->reserve_data(owner, blocks);
    if (r.ok()) {
      out_of_space_ = false;
      return r;
    }
    if (r.status().code() != Errc::no_space) return r.status();
    out_of_space_ = true;
    if (no_space_mode_ == OutOfDataSpaceMode::error || rt_.now() >= deadline || closed_ ||
        mode_ != PoolMode::write) {
      return Status(Errc::no_space, "out of data space: " + std::to_string(blocks) +
                                        " blocks wanted, " +
                                        std::to_string(store_->status().data_free) + " free");
    }
    rt_.sleep(kNoSpaceRetry);
  }
}

Result<std::vector<Extent>> PoolImpl::lookup(Thin& t, uint64_t begin, uint64_t length,
                                             bool sharing) {
  LockGuard g(t.tree_mu);
  MappingTree tree = MappingTree::open(store_->committed_nodes(), store_->committed_data_refs(),
                                       t.details.mapping_root);
  Result<std::vector<Extent>> r =
      tree.lookup(VBlock(begin), length, SharingQuery{sharing, t.details.snapshot_time});
  if (!r.ok()) return metadata_error(r.status());
  return r;
}

Result<Lsn> PoolImpl::commit_tree_change(Thin& t, const std::vector<journal::DataRangeAlloc>& adopt,
                                         const TreeEdit& fn, bool durable) {
  TP_ASSERT_EQ(t.tree_mu.owner(), rt_.current_task());
  std::unique_ptr<MetadataTxn> txn = store_->begin();
  txn->adopt_data(adopt);
  DeviceDetails details = t.details;
  MappingTree tree = MappingTree::open(txn->nodes(), txn->data_refs(), details.mapping_root);
  Status s = fn(tree, details);
  if (s.ok()) {
    details.mapping_root = tree.root();
    DeviceTree dt = DeviceTree::open(txn->nodes(), txn->device_tree_root());
    s = dt.update(details);
    if (s.ok()) txn->set_device_tree_root(dt.root());
  }
  return settle(std::move(txn), s, durable, [&](Lsn) { t.details = details; });
}

Result<Lsn> PoolImpl::settle(std::unique_ptr<MetadataTxn> txn, const Status& edited, bool durable,
                             const std::function<void(Lsn)>& committed) {
  if (!edited.ok()) {
    store_->abort(std::move(txn));
    return metadata_error(edited);
  }
  Result<Lsn> lsn = store_->commit_nowait(std::move(txn));
  if (!lsn.ok()) return metadata_error(lsn.status());
  if (committed) committed(*lsn);
  if (durable) {
    Status d = store_->make_durable(*lsn);
    if (!d.ok()) return metadata_error(d);
  }
  return lsn;
}

Status PoolImpl::commit_device_change(const DeviceEdit& fn,
                                      const std::function<void(Lsn)>& committed) {
  std::unique_ptr<MetadataTxn> txn = store_->begin();
  Status s;
  MBlock root = txn->device_tree_root();
  std::optional<DeviceTree> dt;
  if (root == kNoRoot) {
    Result<DeviceTree> created = DeviceTree::create(txn->nodes());
    if (created.ok()) {
      dt.emplace(std::move(*created));
    } else {
      s = created.status();
    }
  } else {
    dt.emplace(DeviceTree::open(txn->nodes(), root));
  }
  if (s.ok()) s = fn(*txn, *dt);
  if (s.ok()) txn->set_device_tree_root(dt->root());
  return settle(std::move(txn), s, true, committed).status();
}

Result<Lsn> PoolImpl::change_flags(Thin& t, uint32_t set, uint32_t clear) {
  return commit_tree_change(
      t, {},
      [&](MappingTree&, DeviceDetails& d) {
        d.flags = (d.flags | set) & ~clear;
        return ok_status();
      },
      true);
}

void PoolImpl::publish_pinned_roots(Lsn lsn) {
  pinned_.clear();
  for (const auto& [id, t] : thins_) {
    if ((t->details.flags & kThinFlagPinned) != 0) {
      pinned_.push_back(PinnedRoot{id, t->details.mapping_root, lsn, t->details.snapshot_time});
    }
  }
  store_->set_pinned_roots(pinned_);
}

// --- Management ----------------------------------------------------------------------

Status PoolImpl::create_thin(ThinId thin, uint64_t virtual_bytes) {
  LockGuard g(mgmt_);
  TP_RETURN_IF_ERROR(check_io(0, 0, true));
  if (thin == kPoolRootsThin) {
    return Status(Errc::invalid_argument, "thin id 2^64-1 is reserved");
  }
  if (virtual_bytes == 0) return Status(Errc::invalid_argument, "a thin's size must be > 0");
  if (thins_.count(thin) != 0) {
    return Status(Errc::already_exists, thin_name(thin) + " already exists");
  }
  DeviceDetails d;
  d.thin = thin;
  d.virtual_blocks = virtual_bytes / block_bytes_ + (virtual_bytes % block_bytes_ != 0 ? 1 : 0);
  d.creation_time = time_;
  d.snapshot_time = time_;
  TP_RETURN_IF_ERROR(commit_device_change([&](MetadataTxn& txn, DeviceTree& dt) -> Status {
    TP_ASSIGN_OR_RETURN(MappingTree tree, MappingTree::create(txn.nodes(), txn.data_refs()));
    d.mapping_root = tree.root();
    return dt.insert(d);
  }));
  thins_[thin] = std::make_shared<Thin>(rt_, d);
  return ok_status();
}

Status PoolImpl::create_snapshot(ThinId origin, ThinId snap) {
  LockGuard g(mgmt_);
  TP_RETURN_IF_ERROR(check_io(0, 0, true));
  TP_ASSIGN_OR_RETURN(ThinPtr o, find(origin));
  if (snap == kPoolRootsThin) return Status(Errc::invalid_argument, "thin id 2^64-1 is reserved");
  if (thins_.count(snap) != 0) {
    return Status(Errc::already_exists, thin_name(snap) + " already exists");
  }
  // Drain the IO in flight on the origin: the snapshot shares what it has.
  RangeGuard drain(o->cells, 0, kVirtualEnd, false);
  LockGuard tl(o->tree_mu);
  DeviceDetails od = o->details;
  od.snapshot_time = time_;
  DeviceDetails sd = od;
  sd.thin = snap;
  sd.creation_time = time_;
  sd.flags = 0;
  TP_RETURN_IF_ERROR(commit_device_change([&](MetadataTxn& txn, DeviceTree& dt) -> Status {
    MappingTree tree = MappingTree::open(txn.nodes(), txn.data_refs(), od.mapping_root);
    TP_ASSIGN_OR_RETURN(sd.mapping_root, tree.clone());
    txn.set_pool_time(time_ + 1);
    TP_RETURN_IF_ERROR(dt.update(od));
    return dt.insert(sd);
  }));
  o->details = od;
  thins_[snap] = std::make_shared<Thin>(rt_, sd);
  // Every run written from now on is newer than this snapshot.
  time_ = time_ + 1;
  return ok_status();
}

Status PoolImpl::delete_thin(ThinId thin) {
  LockGuard g(mgmt_);
  TP_RETURN_IF_ERROR(check_io(0, 0, true));
  TP_ASSIGN_OR_RETURN(ThinPtr t, find(thin));
  if ((t->details.flags & kThinFlagPinned) != 0) {
    return Status(Errc::busy, thin_name(thin) + " is pinned: unpin it first");
  }
  RangeGuard drain(t->cells, 0, kVirtualEnd, false);
  return finish_delete(t);
}

Status PoolImpl::finish_delete(const ThinPtr& t) {
  const ThinId thin = t->details.thin;
  // A thin too large to free in one transaction is first marked deleting
  // (durably: it is gone for users from then on, and open finishes the job
  // after a crash), then unmapped in pieces, then removed.
  uint64_t runs = 0;
  {
    LockGuard tl(t->tree_mu);
    MappingTree tree = MappingTree::open(store_->committed_nodes(), store_->committed_data_refs(),
                                         t->details.mapping_root);
    Status s = tree.for_each([&](const Run&) {
      return ++runs > kDiscardRunsPerTxn ? Status(Errc::aborted, "large") : ok_status();
    });
    if (!s.ok() && s.code() != Errc::aborted) return metadata_error(s);
  }
  if (runs > kDiscardRunsPerTxn || (t->details.flags & kThinFlagDeleting) != 0) {
    if ((t->details.flags & kThinFlagDeleting) == 0) {
      LockGuard tl(t->tree_mu);
      TP_RETURN_IF_ERROR(change_flags(*t, kThinFlagDeleting, 0).status());
    }
    TP_RETURN_IF_ERROR(trim(*t, 0, t->details.virtual_blocks));
  }
  LockGuard tl(t->tree_mu);
  // What the thin maps loses a reference: blocks it shared now look
  // exclusive to the others, but only once the delete is durable.
  std::vector<Run> unmapped;
  TP_RETURN_IF_ERROR(commit_device_change(
      [&](MetadataTxn& txn, DeviceTree& dt) -> Status {
        MappingTree tree = MappingTree::open(txn.nodes(), txn.data_refs(), t->details.mapping_root);
        TP_RETURN_IF_ERROR(collect_runs(tree, unmapped));
        TP_RETURN_IF_ERROR(tree.destroy());
        return dt.remove(thin);
      },
      [&](Lsn lsn) {
        for (const Run& r : unmapped) note_dropped(lsn, r.dbegin.value(), r.length);
      }));
  t->deleted = true;
  thins_.erase(thin);
  out_of_space_ = false;
  return ok_status();
}

Status PoolImpl::set_transaction_id(uint64_t expected, uint64_t value) {
  LockGuard g(mgmt_);
  TP_RETURN_IF_ERROR(check_io(0, 0, true));
  std::unique_ptr<MetadataTxn> txn = store_->begin();
  const uint64_t current = store_->status().transaction_id;
  if (current != expected) {
    store_->abort(std::move(txn));
    return Status(Errc::conflict, "transaction id is " + std::to_string(current) + ", not " +
                                      std::to_string(expected) + ": unchanged");
  }
  txn->set_transaction_id(value);
  Result<Lsn> lsn = store_->commit(std::move(txn));
  if (!lsn.ok()) return metadata_error(lsn.status());
  return ok_status();
}

Status PoolImpl::grow_data(uint64_t new_data_blocks) {
  LockGuard g(mgmt_);
  TP_RETURN_IF_ERROR(check_io(0, 0, true));
  const uint64_t current = store_->status().data_blocks;
  if (new_data_blocks < current) {
    return Status(Errc::invalid_argument, "the data device cannot shrink (from " +
                                              std::to_string(current) + " to " +
                                              std::to_string(new_data_blocks) + " blocks)");
  }
  if (new_data_blocks == current) return ok_status();
  Status s = store_->grow_data(new_data_blocks);
  if (!s.ok()) return metadata_error(s);
  out_of_space_ = false;
  return ok_status();
}

Status PoolImpl::pin(ThinId thin) {
  LockGuard g(mgmt_);
  TP_RETURN_IF_ERROR(check_io(0, 0, true));
  TP_ASSIGN_OR_RETURN(ThinPtr t, find(thin));
  if ((t->details.flags & kThinFlagPinned) != 0) {
    return Status(Errc::already_exists, thin_name(thin) + " is already pinned");
  }
  if (pinned_.size() >= kQueryAreaCapacity) {
    return Status(Errc::no_space, "the query area is full (" + std::to_string(kQueryAreaCapacity) +
                                      " pinned roots)");
  }
  RangeGuard drain(t->cells, 0, kVirtualEnd, false);
  LockGuard tl(t->tree_mu);
  TP_ASSIGN_OR_RETURN(const Lsn lsn, change_flags(*t, kThinFlagPinned, 0));
  publish_pinned_roots(lsn);
  // The superblock names the root once a checkpoint's tail has passed the
  // pin: every page of the tree is then on disk.
  for (int i = 0; i < 2; ++i) {
    Status s = store_->checkpoint();
    if (!s.ok()) return metadata_error(s);
    for (const PinnedRoot& p : store_->published_pinned_roots()) {
      if (p.thin == thin) return ok_status();
    }
  }
  return Status(Errc::busy, "pinned " + thin_name(thin) +
                                " but the checkpoint could not publish it yet; it will appear "
                                "in the query area after the next checkpoint");
}

Status PoolImpl::unpin(ThinId thin) {
  LockGuard g(mgmt_);
  TP_RETURN_IF_ERROR(check_io(0, 0, true));
  TP_ASSIGN_OR_RETURN(ThinPtr t, find(thin));
  if ((t->details.flags & kThinFlagPinned) == 0) {
    return Status(Errc::not_found, thin_name(thin) + " is not pinned");
  }
  LockGuard tl(t->tree_mu);
  TP_ASSIGN_OR_RETURN(const Lsn lsn, change_flags(*t, 0, kThinFlagPinned));
  publish_pinned_roots(lsn);
  Status s = store_->checkpoint();
  if (!s.ok()) return metadata_error(s);
  return ok_status();
}

Result<ThinInfo> PoolImpl::thin_info(ThinId thin) {
  TP_ASSIGN_OR_RETURN(ThinPtr t, find(thin));
  return info_of(t->details);
}

std::vector<ThinInfo> PoolImpl::thins() {
  std::vector<ThinInfo> out;
  for (const auto& [id, t] : thins_) {
    if ((t->details.flags & kThinFlagDeleting) == 0) out.push_back(info_of(t->details));
  }
  return out;
}

Result<std::vector<Run>> PoolImpl::mappings(ThinId thin) {
  TP_ASSIGN_OR_RETURN(ThinPtr t, find(thin));
  LockGuard tl(t->tree_mu);
  NoDataRefs none("Pool::mappings");
  MappingTree tree = MappingTree::open(store_->committed_nodes(), none, t->details.mapping_root);
  std::vector<Run> runs;
  Status s = collect_runs(tree, runs);
  if (!s.ok()) return metadata_error(s);
  return runs;
}

PoolStatus PoolImpl::status() {
  PoolStatus s;
  s.store = store_->status();
  s.mode = mode_;
  s.mode_reason = mode_reason_;
  if (mode_ == PoolMode::write && out_of_space_ && s.store.data_free == 0) {
    s.mode = PoolMode::out_of_data_space;
    s.mode_reason = "the data device is full";
  }
  s.out_of_data_space = no_space_mode_;
  s.zero_new_blocks = zero_new_blocks_;
  s.thins = thins().size();
  s.time = time_;
  s.provisioned_blocks = provisioned_blocks_;
  s.shares_broken = shares_broken_;
  s.writes_in_place = writes_in_place_;
  s.drop_waits = drop_waits_;
  return s;
}

Result<std::vector<CheckFinding>> PoolImpl::check() {
  TP_ASSIGN_OR_RETURN(std::vector<CheckFinding> findings, store_->check());
  for (const auto& [id, t] : thins_) {
    Result<std::vector<Run>> runs = mappings(id);
    if (!runs.ok()) {
      findings.push_back({thin_name(id) + ": " + runs.status().message()});
      continue;
    }
    uint64_t mapped = 0;
    for (const Run& r : *runs) {
      mapped += r.length;
      if (r.vend().value() > t->details.virtual_blocks) {
        findings.push_back({thin_name(id) + ": run at v:" + std::to_string(r.vbegin.value()) +
                            " is past its end"});
      }
    }
    if (mapped != t->details.mapped_blocks) {
      findings.push_back({thin_name(id) + ": details say " +
                          std::to_string(t->details.mapped_blocks) + " mapped blocks, tree has " +
                          std::to_string(mapped)});
    }
  }
  return findings;
}

}  // namespace thinp::pool
