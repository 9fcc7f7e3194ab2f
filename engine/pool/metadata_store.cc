#include <cstring>
#include <string>

#include "engine/journal/recovery.h"
#include "engine/pool/metadata_store_impl.h"
#include "engine/space_map/space_map_replay.h"

namespace thinp::pool {

// --- CommittedNodes ----------------------------------------------------------------

Result<thinp::PageRef> CommittedNodes::read(MBlock block, BlockType expected) {
  if (block.value() >= meta_.nr_blocks() || meta_.refcount(block) == 0) {
    return Status(Errc::corruption,
                  "read of unallocated metadata block m:" + std::to_string(block.value()));
  }
  TP_ASSIGN_OR_RETURN(cache::PageRef ref, cache_.pin(block, expected));
  auto page = std::make_shared<Page>();
  std::memcpy(page->data(), ref.bytes().data(), kMetadataBlockBytes);
  return thinp::PageRef(std::move(page));
}

Result<uint32_t> CommittedNodes::ref_count(MBlock block) {
  if (block.value() >= meta_.nr_blocks() || meta_.refcount(block) == 0) {
    return Status(Errc::corruption,
                  "ref_count of unallocated metadata block m:" + std::to_string(block.value()));
  }
  return meta_.refcount(block);
}

Result<uint32_t> CommittedDataRefs::max_ref_count(DBlock begin, uint64_t length) {
  if (length == 0 || begin.value() >= data_.nr_blocks() ||
      length > data_.nr_blocks() - begin.value()) {
    return Status(Errc::corruption, "data range d:" + std::to_string(begin.value()) + "+" +
                                        std::to_string(length) + " is outside the data device");
  }
  return data_.max_refcount(begin, length);
}

// --- Open ----------------------------------------------------------------------------

namespace {

class StoreVisitor final : public journal::RecordVisitor {
 public:
  explicit StoreVisitor(std::function<void(const journal::Record&, Lsn)> fn) : fn_(std::move(fn)) {}
  Status apply(const journal::Record& record, Lsn lsn) override {
    fn_(record, lsn);
    return ok_status();
  }

 private:
  std::function<void(const journal::Record&, Lsn)> fn_;
};

}  // namespace

MetadataStoreImpl::MetadataStoreImpl(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                                     const OpenOptions& options, const Superblock& sb,
                                     space_map::MetadataSpaceMap meta,
                                     space_map::DataSpaceMap data_map)
    : rt_(rt),
      metadata_(metadata),
      data_device_(data),
      options_(options),
      sb_(sb),
      ring_{sb.layout.journal.begin, sb.layout.journal.blocks},
      meta_(std::move(meta)),
      data_(std::move(data_map)),
      cache_(rt, metadata, cache::BlockCacheOptions{options.cache_pages, 32}),
      committed_nodes_(cache_, meta_),
      committed_data_refs_(data_),
      staging_(rt, "metadata staging"),
      sb_mu_(rt, "superblock"),
      root_(sb.device_details_root),
      transaction_id_(sb.transaction_id.value()),
      time_(sb.time),
      opened_clean_(sb.clean_shutdown),
      pinned_(sb.pinned_roots) {}

MetadataStoreImpl::~MetadataStoreImpl() = default;

void MetadataStoreImpl::apply_record(const journal::Record& record, Lsn lsn) {
  if (space_map::apply_space_map_record(record, lsn, meta_, data_)) return;
  const auto* d = std::get_if<journal::DeviceDetailsUpdate>(&record);
  if (d == nullptr || d->thin != kPoolRootsThin) return;  // Commit, or not ours
  root_ = d->mapping_root;
  transaction_id_ = d->transaction_id;
  time_ = SnapTime(static_cast<uint32_t>(d->snapshot_time));
  if (d->virtual_blocks > data_.nr_blocks()) {
    // Checked against the layout before it was logged; in replay the
    // superblock's layout is the same one.
    Status grown = data_.grow(d->virtual_blocks, lsn);
    TP_ASSERT(grown.ok());
  }
  roots_history_.push_back(RootsAt{lsn, root_, transaction_id_, time_, data_.nr_blocks()});
}

// A space-map page newer than the last record recovery found means the log
// lost committed records (a journal block is corrupt): refuse to open rather
// than run on maps that disagree with the trees.
Status MetadataStoreImpl::check_journal_end(Lsn last_recovered) const {
  for (uint64_t c = 0; c < space_map::MetadataSpaceMap::chunks_for(meta_.nr_blocks()); ++c) {
    if (meta_.chunk_lsn(c) > last_recovered) {
      return Status(Errc::corruption, "journal ends at " + std::to_string(last_recovered.value()) +
                                          " but metadata space map page " + std::to_string(c) +
                                          " has LSN " + std::to_string(meta_.chunk_lsn(c).value()) +
                                          ": journal corrupt");
    }
  }
  for (uint64_t p = 0; p < data_.page_count(); ++p) {
    if (data_.page_lsn(p) > last_recovered) {
      return Status(Errc::corruption, "journal ends at " + std::to_string(last_recovered.value()) +
                                          " but data space map page " + std::to_string(p) +
                                          " has LSN " + std::to_string(data_.page_lsn(p).value()) +
                                          ": journal corrupt");
    }
  }
  return ok_status();
}

Status MetadataStoreImpl::start() {
  TP_ASSIGN_OR_RETURN(
      const journal::JournalPosition tail,
      journal::locate_tail(metadata_, ring_, sb_.journal_tail_block, sb_.journal_tail_lsn));
  StoreVisitor visitor([this](const journal::Record& r, Lsn lsn) { apply_record(r, lsn); });
  Result<journal::RecoveryResult> recovered =
      journal::recover(metadata_, ring_, cache_, tail, visitor);
  if (!recovered.ok()) return recovered.status().with_context("journal recovery");
  TP_RETURN_IF_ERROR(check_journal_end(recovered->resume.next_lsn - 1));

  journal::JournalOptions jopts;
  jopts.use_fua = options_.journal_use_fua;
  jopts.unsafe_skip_durability = options_.unsafe_skip_durability;
  journal_ =
      std::make_unique<journal::Journal>(rt_, metadata_, ring_, cache_, jopts, recovered->resume);
  journal_->set_record_applier([this](const journal::Record& r, Lsn lsn) { apply_record(r, lsn); });
  participant_ = std::make_unique<space_map::SpaceMapCheckpoint>(metadata_, meta_, data_);
  checkpointer_ = std::make_unique<journal::Checkpointer>(
      rt_, *journal_, cache_,
      [this](const journal::JournalPosition& t) { return persist_superblock(t, false); },
      std::vector<journal::CheckpointParticipant*>{participant_.get()});
  checkpointer_->install_as_space_reclaimer();
  Result<journal::JournalPosition> cp = checkpointer_->checkpoint();
  if (!cp.ok()) return cp.status().with_context("checkpoint after recovery");
  // Marks the pool open (not cleanly shut down) even if the tail stayed.
  return persist_superblock(journal_->tail(), false);
}

Status MetadataStoreImpl::persist_superblock(const journal::JournalPosition& tail, bool clean) {
  sb_mu_.lock();
  const Lsn durable = journal_->durable_lsn();
  while (!roots_history_.empty() && roots_history_.front().lsn <= durable) {
    sb_.device_details_root = roots_history_.front().root;
    sb_.transaction_id = TransactionId(roots_history_.front().transaction_id);
    sb_.time = roots_history_.front().time;
    sb_.geometry.data_blocks = roots_history_.front().data_blocks;
    roots_history_.pop_front();
  }
  sb_.journal_tail_block = ring_.location_of(tail.seq);
  sb_.journal_tail_lsn = tail.lsn;
  sb_.checkpoint_lsn = tail.lsn - 1;
  sb_.clean_shutdown = clean;
  sb_.pinned_roots.clear();
  for (const PinnedRoot& p : pinned_) {
    if (p.pinned_lsn < tail.lsn) sb_.pinned_roots.push_back(p);
  }
  // Written twice, to both slots: the checkpointer releases the ring up to
  // `tail` as soon as this returns, and a lost write (docs/format.md 4.1)
  // must not roll the pool back to a superblock naming released ring space.
  // With both slots naming `tail`, losing either write is harmless.
  Status s = write_superblock(metadata_, sb_);
  if (s.ok()) s = write_superblock(metadata_, sb_);
  sb_mu_.unlock();
  if (!s.ok()) {
    failed_ = true;
    if (failure_.ok()) failure_ = s;
  }
  return s;
}

// --- Transactions --------------------------------------------------------------------

std::unique_ptr<MetadataTxn> MetadataStoreImpl::begin() {
  staging_.lock();
  return std::make_unique<MetadataTxnImpl>(
      CommittedState{&cache_, &meta_, &data_, root_, transaction_id_, time_});
}

void MetadataStoreImpl::note_error(const Status& s) {
  if (s.code() != Errc::io_error && s.code() != Errc::corruption) return;
  failed_ = true;
  if (failure_.ok()) failure_ = s;
}

Result<Lsn> MetadataStoreImpl::stage_and_release(std::unique_ptr<MetadataTxn> txn) {
  TP_ASSERT(txn != nullptr);
  TP_ASSERT_EQ(staging_.owner(), rt_.current_task());
  auto* t = static_cast<MetadataTxnImpl*>(txn.get());
  if (closed_ || mode() != StoreMode::write) {
    t->cancel();
    staging_.unlock();
    if (closed_) return Status(Errc::read_only, "metadata store is closed");
    if (mode() == StoreMode::read_only) {
      return Status(Errc::read_only, "metadata store is read-only (needs_check is set)");
    }
    const Status& why = journal_->failure().ok() ? failure_ : journal_->failure();
    return Status(Errc::read_only, "metadata store has failed: " + why.message());
  }
  Result<journal::Transaction> built = t->build();
  if (!built.ok()) {
    t->cancel();
    staging_.unlock();
    note_error(built.status());
    return built.status();
  }
  Result<Lsn> staged = journal_->stage(*built);
  if (!staged.ok()) {
    t->cancel();
    staging_.unlock();
    // A stage() that failed reclaiming ring space (a checkpoint's IO error)
    // leaves the journal itself healthy: the store fails here.
    note_error(staged.status());
    return staged.status();
  }
  t->handed_over();
  txn.reset();
  committed_lsn_ = *staged;
  // Applied in memory: the next transaction may stage while this one's
  // journal write is in flight (group commit).
  staging_.unlock();
  return *staged;
}

Result<Lsn> MetadataStoreImpl::commit(std::unique_ptr<MetadataTxn> txn) {
  TP_ASSIGN_OR_RETURN(const Lsn lsn, stage_and_release(std::move(txn)));
  TP_RETURN_IF_ERROR(make_durable(lsn));
  return lsn;
}

Result<Lsn> MetadataStoreImpl::commit_nowait(std::unique_ptr<MetadataTxn> txn) {
  return stage_and_release(std::move(txn));
}

Status MetadataStoreImpl::make_durable(Lsn lsn) {
  if (lsn <= journal_->durable_lsn()) return ok_status();
  Status s = journal_->make_durable(lsn);
  if (!s.ok()) note_error(s);
  return s;
}

Result<std::vector<journal::DataRangeAlloc>> MetadataStoreImpl::reserve_data(ThinId owner,
                                                                             uint64_t blocks) {
  if (blocks == 0) return Status(Errc::invalid_argument, "reserve_data of 0 blocks");
  return data_.reserve(owner, blocks);
}

void MetadataStoreImpl::release_data(const std::vector<journal::DataRangeAlloc>& runs) {
  for (const journal::DataRangeAlloc& r : runs) data_.cancel(r);
}

Status MetadataStoreImpl::set_needs_check(const std::string& why) {
  sb_mu_.lock();
  needs_check_set_ = true;
  if (failure_.ok()) failure_ = Status(Errc::corruption, why);
  sb_.needs_check = true;
  Status s = write_superblock(metadata_, sb_);
  if (s.ok()) s = write_superblock(metadata_, sb_);
  sb_mu_.unlock();
  if (!s.ok()) failed_ = true;
  return s;
}

Status MetadataStoreImpl::grow_data(uint64_t new_blocks) {
  const Geometry& g = sb_.geometry;
  if (new_blocks <= data_.nr_blocks()) {
    return Status(Errc::invalid_argument, "the data device has " +
                                              std::to_string(data_.nr_blocks()) +
                                              " blocks already; it can only grow");
  }
  BlockDevice& dev = data_device_ != nullptr ? *data_device_ : metadata_;
  const uint64_t base = g.data_on_metadata_device ? g.data_offset_bytes : 0;
  const uint64_t have =
      dev.size_bytes() < base ? 0 : (dev.size_bytes() - base) / g.data_block_bytes;
  if (new_blocks > have) {
    return Status(Errc::invalid_argument, dev.name() + " holds " + std::to_string(have) +
                                              " data blocks, not " + std::to_string(new_blocks));
  }
  if (new_blocks > sb_.layout.data_blocks_max) {
    return Status(Errc::no_space, "the data space map was laid out for at most " +
                                      std::to_string(sb_.layout.data_blocks_max) +
                                      " data blocks; " + std::to_string(new_blocks) +
                                      " need a reformat");
  }
  std::unique_ptr<MetadataTxn> txn = begin();
  static_cast<MetadataTxnImpl*>(txn.get())->set_data_blocks(new_blocks);
  return commit(std::move(txn)).status();
}

void MetadataStoreImpl::set_pinned_roots(std::vector<PinnedRoot> roots) {
  TP_ASSERT(roots.size() <= kQueryAreaCapacity);
  pinned_ = std::move(roots);
}

void MetadataStoreImpl::abort(std::unique_ptr<MetadataTxn> txn) {
  TP_ASSERT(txn != nullptr);
  TP_ASSERT_EQ(staging_.owner(), rt_.current_task());
  static_cast<MetadataTxnImpl*>(txn.get())->cancel();
  txn.reset();
  staging_.unlock();
}

Status MetadataStoreImpl::checkpoint() {
  if (closed_) return Status(Errc::read_only, "metadata store is closed");
  return checkpointer_->checkpoint().status();
}

Status MetadataStoreImpl::close() {
  if (closed_) return ok_status();
  staging_.lock();
  Status s = checkpointer_->checkpoint().status();
  if (s.ok()) s = persist_superblock(journal_->tail(), true);
  closed_ = s.ok();
  staging_.unlock();
  return s;
}

StoreMode MetadataStoreImpl::mode() const {
  if (failed_ || !journal_->failure().ok()) return StoreMode::failed;
  if (closed_ || needs_check_set_) return StoreMode::read_only;
  return StoreMode::write;
}

StoreStatus MetadataStoreImpl::status() const {
  StoreStatus s;
  s.metadata_blocks = meta_.nr_blocks();
  s.metadata_used = meta_.count_used();
  s.metadata_free = meta_.count_free();
  s.data_blocks = data_.nr_blocks();
  s.data_used = data_.count_used();
  s.data_free = data_.count_free();
  s.data_block_bytes = sb_.geometry.data_block_bytes;
  s.journal_blocks = journal_->capacity_blocks();
  s.journal_used_blocks = journal_->used_blocks();
  s.durable_lsn = journal_->durable_lsn();
  s.checkpoint_lsn = sb_.checkpoint_lsn;
  s.clean_shutdown = opened_clean_;
  s.needs_check = sb_.needs_check;
  s.mode = mode();
  s.device_tree_root = root_;
  s.transaction_id = transaction_id_;
  s.time = time_;
  s.journal_commits = journal_->stats().commits;
  s.journal_batches = journal_->stats().batches;
  s.journal_writes = journal_->stats().journal_writes;
  s.checkpoints = checkpointer_->stats().checkpoints;
  return s;
}

}  // namespace thinp::pool
