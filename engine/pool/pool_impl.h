// PoolImpl: the Pool (pool.h) over a MetadataStore and a data device.
// pool.cc holds open/close and management, pool_io.cc the IO path.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "engine/btree/device_tree.h"
#include "engine/btree/mapping_tree.h"
#include "engine/pool/pool.h"
#include "engine/pool/range_lock.h"
#include "engine/runtime/sync.h"

namespace thinp::pool {

// "thin 7", for messages.
inline std::string thin_name(ThinId thin) { return "thin " + std::to_string(thin.value()); }

// Runs unmapped by one transaction (a discard's piece, a large delete's
// trim); larger thins are deleted in pieces.
inline constexpr size_t kDiscardRunsPerTxn = 512;

class PoolImpl final : public Pool {
 public:
  PoolImpl(Runtime& rt, BlockDevice& metadata, BlockDevice* data, const PoolOptions& options,
           std::unique_ptr<MetadataStore> store);
  ~PoolImpl() override;

  // Loads every thin's details from the device tree.
  Status start();

  Status close() override;
  Status create_thin(ThinId thin, uint64_t virtual_bytes) override;
  Status create_snapshot(ThinId origin, ThinId snap) override;
  Status delete_thin(ThinId thin) override;
  Status set_transaction_id(uint64_t expected, uint64_t value) override;
  Status grow_data(uint64_t new_data_blocks) override;
  Status pin(ThinId thin) override;
  Status unpin(ThinId thin) override;
  Result<ThinInfo> thin_info(ThinId thin) override;
  std::vector<ThinInfo> thins() override;
  Result<std::vector<Run>> mappings(ThinId thin) override;
  PoolStatus status() override;
  PoolMode mode() const override { return mode_; }
  uint64_t data_block_bytes() const override { return block_bytes_; }
  const Superblock& superblock() const override { return store_->superblock(); }
  Status read(ThinId thin, uint64_t offset, std::span<std::byte> out) override;
  Status write(ThinId thin, uint64_t offset, std::span<const std::byte> in, bool fua) override;
  Status discard(ThinId thin, uint64_t offset, uint64_t length) override;
  Status flush() override;
  Result<std::vector<CheckFinding>> check() override;

 private:
  // One thin's in-memory state. `details` is the committed copy (what the
  // device tree holds as of the last commit), changed only under tree_mu.
  struct Thin {
    Thin(Runtime& rt, const DeviceDetails& d) : details(d), tree_mu(rt, "thin tree"), cells(rt) {}
    DeviceDetails details;
    Mutex tree_mu;
    RangeLock cells;
    bool deleted = false;
  };
  using ThinPtr = std::shared_ptr<Thin>;

  // A piece of a write that needs a new data block range: [vbegin, vbegin +
  // length) of the thin, which was a hole or shared.
  struct NewMapping {
    uint64_t vbegin = 0, length = 0;
    bool was_mapped = false;  // shared: copy what the write does not cover
    uint64_t old_dbegin = 0;  // was_mapped only
  };

  Result<ThinPtr> find(ThinId thin) const;
  // Unmaps [b0, b1) of the thin in transactions of bounded size; the caller
  // holds the range's cells.
  Status trim(Thin& t, uint64_t b0, uint64_t b1);
  // delete_thin after its checks, with the thin's IO drained; also run at
  // open for a thin whose delete a crash interrupted.
  Status finish_delete(const ThinPtr& t);
  // The guard for IO: mode and alignment checks. `changes` for write/discard.
  Status check_io(uint64_t offset, uint64_t length, bool changes) const;
  Status check_bounds(const Thin& t, uint64_t offset, uint64_t length) const;
  uint64_t data_offset(uint64_t dblock) const;

  // Reserves `blocks` data blocks for `owner`, waiting in queue mode.
  Result<std::vector<journal::DataRangeAlloc>> reserve(ThinId owner, uint64_t blocks);

  // Stages a transaction that changes one thin's tree: `fn(tree, details)`
  // edits both, then the details are written to the device tree and the
  // transaction committed (not waited for unless `durable`). Called with
  // the thin's tree lock held. `adopt` runs go to the transaction first.
  using TreeEdit = std::function<Status(MappingTree&, DeviceDetails&)>;
  Result<Lsn> commit_tree_change(Thin& t, const std::vector<journal::DataRangeAlloc>& adopt,
                                 const TreeEdit& fn, bool durable);
  // Sets and clears DeviceDetails::flags bits of the thin; durable on return.
  // Called with the thin's tree lock held.
  Result<Lsn> change_flags(Thin& t, uint32_t set, uint32_t clear);
  // Ends a staged transaction: aborts it if `edited` failed, else commits it;
  // `committed` runs once it is visible, before the wait for it to be durable
  // (only if `durable`). Every error goes through metadata_error().
  Result<Lsn> settle(std::unique_ptr<MetadataTxn> txn, const Status& edited, bool durable,
                     const std::function<void(Lsn)>& committed);
  // A transaction on the device tree only (management); durable on return.
  // `committed` runs once the transaction is visible, before the wait for
  // it to be durable (no other task runs in between).
  using DeviceEdit = std::function<Status(MetadataTxn&, DeviceTree&)>;
  Status commit_device_change(const DeviceEdit& fn,
                              const std::function<void(Lsn)>& committed = nullptr);

  // The thin's mapping as of the last commit, under its tree lock.
  Result<std::vector<Extent>> lookup(Thin& t, uint64_t begin, uint64_t length, bool sharing);

  // Data references dropped by transactions that may not be durable yet
  // (sharing broken, discards). Until such a transaction is durable, a crash
  // can bring the reference back, so the block must not be written: neither
  // reused for new data nor written in place by a thin it now seems
  // exclusive to. wait_for_drops() makes the journal durable up to the last
  // drop overlapping [begin, begin + length), if any.
  struct Dropped {
    Lsn lsn;
    uint64_t begin = 0, length = 0;
  };
  void note_dropped(Lsn lsn, uint64_t begin, uint64_t length);
  Status wait_for_drops(uint64_t begin, uint64_t length);

  Status write_new_blocks(Thin& t, uint64_t offset, std::span<const std::byte> in,
                          const std::vector<NewMapping>& pieces, bool fua);
  // Called with every metadata error: enters read_only (needs_check set) or
  // fail, and returns `s` for the caller to pass on.
  Status metadata_error(const Status& s);
  void publish_pinned_roots(Lsn lsn);

  Runtime& rt_;
  BlockDevice& metadata_;
  BlockDevice& data_;  // the data device, or the metadata device for a one-device pool
  PoolOptions options_;
  std::unique_ptr<MetadataStore> store_;
  uint64_t block_bytes_ = 0;
  uint64_t data_base_bytes_ = 0;  // byte offset of data block 0 on data_
  bool zero_new_blocks_ = true;
  OutOfDataSpaceMode no_space_mode_ = OutOfDataSpaceMode::queue;

  Mutex mgmt_;  // create/snapshot/delete/pin/... one at a time (never IO)
  std::map<ThinId, ThinPtr> thins_;
  SnapTime time_;  // runs written now get this time; a snapshot bumps it
  PoolMode mode_ = PoolMode::write;
  std::string mode_reason_;
  bool out_of_space_ = false;  // the last reservation failed for lack of space
  bool closed_ = false;
  uint64_t provisioned_blocks_ = 0, shares_broken_ = 0, writes_in_place_ = 0;
  std::vector<PinnedRoot> pinned_;
  std::deque<Dropped> dropped_;
  uint64_t drop_waits_ = 0;
};

}  // namespace thinp::pool
