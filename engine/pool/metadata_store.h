// MetadataStore: the pool's metadata core, put together. It owns, for one
// pool, the superblock, the block cache, the journal, the checkpointer and
// both space maps, and gives callers transactions over them.
//
//   format()  lays a new pool out on one device (metadata area, then data
//             area) or on a metadata/data pair; refuses a device that holds
//             a pool unless FormatOptions::force.
//   open()    reads the superblock, recovers (replays the journal from the
//             superblock's tail to the last intact commit), checkpoints, and
//             returns a store ready for transactions.
//   close()   checkpoints and writes the superblock with clean_shutdown.
//
// Transactions. A MetadataTxn collects changes: tree page writes and
// metadata refcount changes through nodes() (a btree::NodeStore), data range
// refcount changes through data_refs() (a btree::DataRefs), data allocation
// through allocate_data(), and the device-details tree root through
// set_device_tree_root(). Reads through nodes() see the transaction's own
// staged changes. commit() makes the changes visible to every later
// transaction at once and returns when they are durable (group commit: one
// journal write covers every transaction committing at the same time).
//
// Concurrency (this first version): transactions are staged one at a time.
// begin() takes the staging lock and commit()/abort() release it; commit()
// releases it as soon as the changes are applied in memory, before waiting
// for the journal write, so the next transaction stages while the previous
// one's journal write is in flight, and committers batch. The staging lock
// may be held across a cache miss. Finer locks (per thin, per cell) are the
// pool's job (issue 5).
//
// Failure. An IO error while committing fails the journal; every later
// commit fails too and the store reports mode() == failed. Corruption found
// on open makes open fail with Errc::corruption and a one-line message.
//
// Task context: everything here is task only unless it says otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/btree/node_store.h"
#include "engine/format/superblock.h"
#include "engine/io/block_device.h"
#include "engine/journal/record.h"
#include "engine/runtime/runtime.h"

namespace thinp::pool {

struct FormatOptions {
  uint64_t data_block_bytes = 64 * 1024;  // power of two in [4 KiB, 1 GiB]
  // One-device pools: bytes given to the metadata area (0: a default that
  // scales with the device). Ignored with a separate data device.
  uint64_t metadata_bytes = 0;
  uint64_t journal_blocks = 0;  // 0: the layout's default
  bool zero_new_blocks = true;
  OutOfDataSpaceMode out_of_data_space = OutOfDataSpaceMode::queue;
  bool force = false;  // overwrite a device that already holds a pool
};

struct OpenOptions {
  uint64_t cache_pages = 4096;
  bool journal_use_fua = true;  // false: journal write then FLUSH
  // Test switch: commits skip FUA and FLUSH, so acknowledged commits can be
  // lost in a crash. Exists so the journal scenario can prove its checker
  // fails. Never set outside tests.
  bool unsafe_skip_durability = false;
};

// write: accepting transactions. read_only: needs_check was set (the pool
// found metadata it cannot trust) or the store is closed. failed: a metadata
// IO error while committing or writing the superblock.
enum class StoreMode { write, read_only, failed };

// The pool's roots (device tree root and userland transaction id) are logged
// as a DeviceDetailsUpdate whose thin is this reserved id (no thin can have
// it: the device tree refuses nothing, but pool/ never creates it): its
// mapping_root is the device tree root, its transaction_id the transaction
// id. Replay applies the last one found; the superblock holds the value as of
// its checkpoint. (A record kind of its own would be cleaner; this keeps the
// journal's on-disk record set unchanged.) Its snapshot_time is the pool's
// snapshot time (Superblock::time) and its virtual_blocks the number of data
// blocks (Geometry::data_blocks): replay grows the data space map to it.
inline constexpr ThinId kPoolRootsThin{UINT64_MAX};

struct StoreStatus {
  uint64_t metadata_blocks = 0, metadata_used = 0, metadata_free = 0;
  uint64_t data_blocks = 0, data_used = 0, data_free = 0;
  uint64_t data_block_bytes = 0;
  uint64_t journal_blocks = 0, journal_used_blocks = 0;
  Lsn durable_lsn, checkpoint_lsn;
  // clean_shutdown: what the superblock said when the pool was opened (the
  // store clears it on disk while open).
  bool clean_shutdown = false, needs_check = false;
  StoreMode mode = StoreMode::write;
  MBlock device_tree_root;  // MBlock(0): no device tree yet
  uint64_t transaction_id = 0;
  SnapTime time;  // the pool's snapshot time, as committed
  // Since open: for group-commit figures.
  uint64_t journal_commits = 0, journal_batches = 0, journal_writes = 0;
  uint64_t checkpoints = 0;
};

// One finding of check(): what is wrong, on one line.
struct CheckFinding {
  std::string what;
};

class MetadataStore;

// A transaction being staged. Obtained from MetadataStore::begin(); must end
// with commit() or abort() on the store. Not shared between tasks. The store
// must outlive it. One destroyed otherwise (its task unwound by a simulated
// crash) gives back its reservations but leaves the staging lock held: the
// store is then only fit to be discarded. Every page a transaction writes is
// pinned in the cache from commit() until the journal has it, so a
// transaction may write fewer pages than OpenOptions::cache_pages
// (invalid_argument otherwise).
class MetadataTxn {
 public:
  virtual ~MetadataTxn() = default;
  virtual NodeStore& nodes() = 0;
  virtual DataRefs& data_refs() = 0;
  // Allocates `blocks` data blocks for `owner` (locality: an owner's
  // allocations continue where its last one ended), as few contiguous runs
  // as possible; their counts become 1 when the transaction commits.
  // no_space if the data device cannot hold them (nothing is allocated).
  virtual Result<std::vector<journal::DataRangeAlloc>> allocate_data(ThinId owner,
                                                                     uint64_t blocks) = 0;
  // Takes over data runs reserved by MetadataStore::reserve_data(): their
  // counts become 1 when the transaction commits; abort() gives them back.
  // Either way the caller no longer owns them.
  virtual void adopt_data(const std::vector<journal::DataRangeAlloc>& runs) = 0;
  virtual void set_device_tree_root(MBlock root) = 0;
  virtual MBlock device_tree_root() const = 0;  // as staged in this transaction
  virtual void set_transaction_id(uint64_t id) = 0;
  // The pool's snapshot time (Superblock::time), logged with the roots.
  virtual void set_pool_time(SnapTime time) = 0;
  virtual SnapTime pool_time() const = 0;  // as staged in this transaction
};

class MetadataStore {
 public:
  virtual ~MetadataStore() = default;

  // Formats a new pool. `data` is nullptr for a one-device pool (the data
  // area follows the metadata area on `metadata`). Durable when it returns.
  static Status format(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                       const FormatOptions& options);

  // Opens (and recovers) the pool on `metadata` (+ `data`, or nullptr for a
  // one-device pool). Errors: not_found (no pool on the device), unsupported
  // (newer format), corruption, io_error; each message is one line.
  static Result<std::unique_ptr<MetadataStore>> open(Runtime& rt, BlockDevice& metadata,
                                                     BlockDevice* data, const OpenOptions& options);

  virtual std::unique_ptr<MetadataTxn> begin() = 0;
  // Commits and waits until durable; returns the commit's LSN. The
  // transaction object is spent either way. On error nothing of it is
  // acknowledged (it may still be found by recovery if the journal write
  // reached the disk).
  virtual Result<Lsn> commit(std::unique_ptr<MetadataTxn> txn) = 0;
  // commit() in two steps: commit_nowait() makes the changes visible to
  // every later transaction and returns the commit's LSN without waiting for
  // the journal write; make_durable(lsn) waits until it is durable. A pool
  // write needs its mapping durable only at the next flush, so it commits
  // without waiting and the flush waits for committed_lsn().
  virtual Result<Lsn> commit_nowait(std::unique_ptr<MetadataTxn> txn) = 0;
  virtual Status make_durable(Lsn lsn) = 0;
  // The LSN of the last commit handed out (durable or not); Lsn(0) if none.
  virtual Lsn committed_lsn() const = 0;
  // Every commit at or below this LSN is durable.
  virtual Lsn durable_lsn() const = 0;
  // Drops a staged transaction: releases its reservations, nothing logged.
  virtual void abort(std::unique_ptr<MetadataTxn> txn) = 0;

  // Data reservations outside any transaction, so that a writer can reserve
  // blocks, write the data, and only then begin the transaction that maps
  // them (the staging lock is never held across data IO). Never suspends;
  // no IO. no_space when the data device cannot hold `blocks` more (nothing
  // reserved). Hand the runs to MetadataTxn::adopt_data() or back with
  // release_data().
  virtual Result<std::vector<journal::DataRangeAlloc>> reserve_data(ThinId owner,
                                                                    uint64_t blocks) = 0;
  virtual void release_data(const std::vector<journal::DataRangeAlloc>& runs) = 0;

  // Sets needs_check in the superblock (both slots, FUA) and stops the
  // store accepting transactions (mode() read_only). Used by the pool when
  // it finds metadata it cannot trust. An error if the superblock could not
  // be written (the store is then failed).
  virtual Status set_needs_check(const std::string& why) = 0;

  // The query area: roots userland may read from the metadata device while
  // the pool runs. A root is written to the superblock by the first
  // checkpoint whose tail has passed its pinned_lsn (so every page of the
  // tree is on disk by then); checkpoint() after set_pinned_roots() makes it
  // visible at once. The caller keeps the pinned trees unchanged.
  virtual void set_pinned_roots(std::vector<PinnedRoot> roots) = 0;
  // What the superblock on disk names now.
  virtual std::vector<PinnedRoot> published_pinned_roots() const = 0;

  // The data device now holds `new_blocks` data blocks (more than now). Logged
  // (with the roots) and durable when it returns; the superblock names the
  // new size from the next checkpoint on. invalid_argument if the device is
  // smaller or the size shrinks; no_space past what the layout's data space
  // map region can describe.
  virtual Status grow_data(uint64_t new_blocks) = 0;

  // The superblock as of the last write (geometry, flags, time).
  virtual const Superblock& superblock() const = 0;

  // Reads outside a transaction (they see committed state).
  virtual MBlock device_tree_root() const = 0;
  virtual NodeStore& committed_nodes() = 0;     // read-only use: read()/ref_count()
  virtual DataRefs& committed_data_refs() = 0;  // read-only use: max_ref_count()

  virtual Status checkpoint() = 0;
  // Checkpoints and marks the pool cleanly shut down. The store accepts no
  // transaction afterwards.
  virtual Status close() = 0;

  virtual StoreStatus status() const = 0;
  virtual StoreMode mode() const = 0;

  // Verifies every metadata block's checksum/type/location reachable from
  // the superblock (device tree, mapping trees), and that every metadata and
  // data reference count equals the references found by walking the
  // structures. Empty when clean.
  virtual Result<std::vector<CheckFinding>> check() = 0;
};

}  // namespace thinp::pool
