// MetadataStoreImpl: the MetadataStore (metadata_store.h) over the block
// cache, the journal, the checkpointer and both space maps.
//
// Logged state outside the pages and the maps: the device tree root and the
// userland transaction id, as a roots record (kPoolRootsThin). The journal's
// record applier applies space-map records and roots records in LSN order
// inside Journal::stage; recovery feeds the same records through a visitor.
//
// The superblock names the roots as of the durable LSN when it is written
// (never a root whose records might not be durable: its pages could be
// missing after a crash); replay from the superblock's tail then re-applies
// every later roots record, so the last one wins.
//
// Superblock writes are serialised by sb_mu_ (persist_tail from a
// checkpoint, and close()).
#pragma once

#include <deque>
#include <memory>
#include <optional>

#include "engine/cache/block_cache.h"
#include "engine/format/superblock.h"
#include "engine/journal/checkpoint.h"
#include "engine/journal/journal.h"
#include "engine/pool/metadata_store.h"
#include "engine/pool/metadata_txn.h"
#include "engine/runtime/sync.h"
#include "engine/space_map/data_space_map.h"
#include "engine/space_map/metadata_space_map.h"
#include "engine/space_map/space_map_checkpoint.h"

namespace thinp::pool {

// Read-only NodeStore over the committed pages (MetadataStore::committed_nodes).
class CommittedNodes final : public NodeStore {
 public:
  CommittedNodes(cache::BlockCache& cache, space_map::MetadataSpaceMap& meta)
      : cache_(cache), meta_(meta) {}
  Result<MBlock> allocate(MBlock) override { return refuse(); }
  Result<thinp::PageRef> read(MBlock block, BlockType expected) override;
  Status write(MBlock, BlockType, std::span<const std::byte>) override { return refuse(); }
  Result<uint32_t> ref_count(MBlock block) override;
  Status inc_ref(MBlock) override { return refuse(); }
  Result<bool> dec_ref(MBlock) override { return refuse(); }

 private:
  static Status refuse() {
    return Status(Errc::read_only, "committed_nodes() is read-only: change pages in a transaction");
  }
  cache::BlockCache& cache_;
  space_map::MetadataSpaceMap& meta_;
};

// Read-only DataRefs over the committed data space map.
class CommittedDataRefs final : public DataRefs {
 public:
  explicit CommittedDataRefs(space_map::DataSpaceMap& data) : data_(data) {}
  Status inc_range(DBlock, uint64_t) override { return refuse(); }
  Status dec_range(DBlock, uint64_t) override { return refuse(); }
  Result<uint32_t> max_ref_count(DBlock begin, uint64_t length) override;

 private:
  static Status refuse() {
    return Status(Errc::read_only,
                  "committed_data_refs() is read-only: change counts in a transaction");
  }
  space_map::DataSpaceMap& data_;
};

class MetadataStoreImpl final : public MetadataStore {
 public:
  MetadataStoreImpl(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                    const OpenOptions& options, const Superblock& sb,
                    space_map::MetadataSpaceMap meta, space_map::DataSpaceMap data_map);
  ~MetadataStoreImpl() override;

  // open() after the constructor: recovery, journal, checkpointer, first
  // checkpoint and a superblock marking the pool open.
  Status start();

  std::unique_ptr<MetadataTxn> begin() override;
  Result<Lsn> commit(std::unique_ptr<MetadataTxn> txn) override;
  void abort(std::unique_ptr<MetadataTxn> txn) override;
  Result<Lsn> commit_nowait(std::unique_ptr<MetadataTxn> txn) override;
  Status make_durable(Lsn lsn) override;
  Lsn committed_lsn() const override { return committed_lsn_; }
  Lsn durable_lsn() const override { return journal_->durable_lsn(); }
  Result<std::vector<journal::DataRangeAlloc>> reserve_data(ThinId owner, uint64_t blocks) override;
  void release_data(const std::vector<journal::DataRangeAlloc>& runs) override;
  Status set_needs_check(const std::string& why) override;
  void set_pinned_roots(std::vector<PinnedRoot> roots) override;
  std::vector<PinnedRoot> published_pinned_roots() const override { return sb_.pinned_roots; }
  const Superblock& superblock() const override { return sb_; }
  Status grow_data(uint64_t new_blocks) override;
  MBlock device_tree_root() const override { return root_; }
  NodeStore& committed_nodes() override { return committed_nodes_; }
  DataRefs& committed_data_refs() override { return committed_data_refs_; }
  Status checkpoint() override;
  Status close() override;
  StoreStatus status() const override;
  StoreMode mode() const override;
  Result<std::vector<CheckFinding>> check() override;

 private:
  struct RootsAt {
    Lsn lsn;
    MBlock root;
    uint64_t transaction_id = 0;
    SnapTime time;
    uint64_t data_blocks = 0;
  };
  // Applies a logical record, live (applier) or in replay (visitor).
  void apply_record(const journal::Record& record, Lsn lsn);
  // Writes the superblock naming `tail` and the roots as of the durable LSN.
  Status persist_superblock(const journal::JournalPosition& tail, bool clean);
  // Stages `txn` (staging lock held on entry, released on return).
  Result<Lsn> stage_and_release(std::unique_ptr<MetadataTxn> txn);
  // An error from the journal or the superblock: IO errors and corruption
  // fail the store; anything else (invalid_argument, no_space) does not.
  void note_error(const Status& s);
  Status check_journal_end(Lsn last_recovered) const;
  void check_metadata_counts(const std::map<MBlock, uint32_t>& found,
                             std::vector<CheckFinding>& findings) const;

  Runtime& rt_;
  BlockDevice& metadata_;
  BlockDevice* data_device_;
  OpenOptions options_;
  Superblock sb_;
  journal::RingGeometry ring_;
  space_map::MetadataSpaceMap meta_;
  space_map::DataSpaceMap data_;
  cache::BlockCache cache_;
  CommittedNodes committed_nodes_;
  CommittedDataRefs committed_data_refs_;
  std::unique_ptr<journal::Journal> journal_;
  std::unique_ptr<space_map::SpaceMapCheckpoint> participant_;
  std::unique_ptr<journal::Checkpointer> checkpointer_;
  Mutex staging_;  // begin() .. commit()/abort()
  Mutex sb_mu_;    // one superblock write at a time
  MBlock root_;    // committed (applied) roots
  uint64_t transaction_id_ = 0;
  SnapTime time_;
  std::deque<RootsAt> roots_history_;  // applied, maybe not yet durable
  bool opened_clean_ = false;          // the superblock's clean_shutdown at open
  bool closed_ = false;
  bool failed_ = false;
  Status failure_;                // why failed_ or needs_check_set_, if known
  bool needs_check_set_ = false;  // set_needs_check() while open
  Lsn committed_lsn_;
  std::vector<PinnedRoot> pinned_;  // wanted in the query area
};

}  // namespace thinp::pool
