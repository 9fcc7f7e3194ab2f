// MetadataTxnImpl: a transaction being staged over the store's committed
// state (the block cache and the two space maps), with an overlay so that it
// reads its own changes.
//
// What it keeps:
//   - pages: the full new image of every page it wrote (copy on write: a
//     PageRef handed out by read() is never changed afterwards);
//   - meta deltas: the net change of each metadata block's count, and the
//     blocks it reserved through allocate() (count 0 until commit);
//   - data deltas: every DataRangeRefDelta and DataRangeAlloc it made;
//   - records: the logical records in call order, as they will be logged.
// Nothing reaches the cache, the maps or the journal before build(): the
// store then pins each page, logs the changed byte range of it, and hands the
// journal::Transaction to Journal::stage, whose record applier changes the
// counts in LSN order.
//
// Checks happen at the call, against committed state plus the overlay, so
// that a tree bug (a count below zero, a read of a freed block) is an error
// value before anything is logged, never an assertion in a space map's
// apply.
//
// Task context: one task, holding the store's staging lock from begin() to
// commit()/abort().
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "engine/cache/block_cache.h"
#include "engine/journal/journal.h"
#include "engine/pool/metadata_store.h"
#include "engine/space_map/data_space_map.h"
#include "engine/space_map/metadata_space_map.h"

namespace thinp::pool {

// What a transaction works on: the store's committed state.
struct CommittedState {
  cache::BlockCache* cache = nullptr;
  space_map::MetadataSpaceMap* meta = nullptr;
  space_map::DataSpaceMap* data = nullptr;
  MBlock root;
  uint64_t transaction_id = 0;
  SnapTime time;
};

class MetadataTxnImpl final : public MetadataTxn, public NodeStore, public DataRefs {
 public:
  explicit MetadataTxnImpl(const CommittedState& state);
  ~MetadataTxnImpl() override;

  // MetadataTxn.
  NodeStore& nodes() override { return *this; }
  DataRefs& data_refs() override { return *this; }
  Result<std::vector<journal::DataRangeAlloc>> allocate_data(ThinId owner,
                                                             uint64_t blocks) override;
  void adopt_data(const std::vector<journal::DataRangeAlloc>& runs) override;
  void set_device_tree_root(MBlock root) override;
  MBlock device_tree_root() const override { return root_; }
  void set_transaction_id(uint64_t id) override;
  void set_pool_time(SnapTime time) override;
  // For MetadataStore::grow_data: the roots record carries the new size.
  void set_data_blocks(uint64_t blocks) {
    data_blocks_ = blocks;
    roots_changed_ = true;
  }
  SnapTime pool_time() const override { return time_; }

  // NodeStore.
  Result<MBlock> allocate(MBlock hint) override;
  Result<thinp::PageRef> read(MBlock block, BlockType expected) override;
  Status write(MBlock block, BlockType type, std::span<const std::byte> body) override;
  Result<uint32_t> ref_count(MBlock block) override;
  Status inc_ref(MBlock block) override;
  Result<bool> dec_ref(MBlock block) override;

  // DataRefs.
  Status inc_range(DBlock begin, uint64_t length) override;
  Status dec_range(DBlock begin, uint64_t length) override;
  Result<uint32_t> max_ref_count(DBlock begin, uint64_t length) override;

  // For the store. build() pins every written page (may suspend on a cache
  // miss) and returns the journal transaction; on error nothing was logged
  // and the caller must still cancel(). cancel() gives back every
  // reservation not yet applied; call it exactly when the transaction will
  // not reach the journal.
  Result<journal::Transaction> build();
  void cancel();
  // The built transaction reached the journal (Journal::stage succeeded).
  void handed_over() { done_ = true; }
  bool roots_changed() const { return roots_changed_; }
  uint64_t transaction_id() const { return transaction_id_; }

 private:
  struct StagedPage {
    std::shared_ptr<Page> page;
    BlockType type = BlockType::test_page;
  };
  int64_t meta_count(MBlock block) const;  // committed + staged
  Status check_data_range(DBlock begin, uint64_t length, int64_t need_after) const;
  // The staged change of the counts of [begin, begin + length) cut where any
  // staged range starts or ends: (piece begin, piece length, delta).
  struct Piece {
    uint64_t begin = 0, length = 0;
    int64_t delta = 0;
  };
  std::vector<Piece> staged_pieces(uint64_t begin, uint64_t length) const;

  CommittedState state_;
  std::map<MBlock, StagedPage> pages_;
  std::map<MBlock, int64_t> meta_delta_;
  std::set<MBlock> meta_reserved_;                       // reserved by allocate(), not yet applied
  std::vector<journal::DataRangeRefDelta> data_deltas_;  // allocations as +1 too
  std::vector<journal::DataRangeAlloc> data_reserved_;
  std::vector<journal::Record> records_;
  MBlock root_;
  uint64_t transaction_id_ = 0;
  SnapTime time_;
  uint64_t data_blocks_ = 0;  // 0: unchanged
  bool roots_changed_ = false;
  bool done_ = false;  // built and handed over, or cancelled
};

}  // namespace thinp::pool
