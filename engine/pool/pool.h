// Pool: thin volumes and snapshots over a MetadataStore and a data device.
// This is the engine users run; the CLI, the scenarios and the benchmarks all
// drive it through this interface.
//
// Management (each durable when it returns): create_thin, create_snapshot
// (of an active or inactive thin, snapshots of snapshots to any depth),
// delete_thin (frees what only it referenced), set_transaction_id (compare
// and swap), grow_data, pin/unpin (the superblock's query area), close.
//
// IO, in bytes (offset and length multiples of the data device's logical
// sector size, at least 512: invalid_argument otherwise; buffers aligned to
// kIoBufferAlignment, or the pool copies through a bounce buffer):
//   read     unprovisioned blocks read as zeros;
//   write    a provisioned, unshared block is written in place on the data
//            device (no metadata change); an unprovisioned block is
//            provisioned (reserve, write the whole block with the part not
//            written zeroed unless the pool was formatted with zeroing off,
//            then map it); a shared block has its sharing broken (copy,
//            overlay, remap, the old block loses a reference). With `fua`
//            the write is durable when it returns;
//   discard  unmaps the whole blocks inside the range and drops their
//            references (partial blocks at the ends are left alone);
//   flush    everything acknowledged before it becomes durable: one data
//            device FLUSH, then a wait for the journal batch holding the last
//            committed mapping (group commit: never a pool-wide commit).
// IO past a thin's end or to an unknown thin is invalid_argument / not_found.
//
// Ordering that keeps old data from leaking after a crash: a newly written
// data block (provisioned or copied) is written with FUA before the
// transaction mapping it is committed, so a durable mapping never points at
// data that was not durable. A data block whose reference was dropped by a
// transaction that is not yet durable (sharing broken, discard) is not
// written until that transaction is: neither reused for new data after it
// was freed, nor overwritten in place by a thin it now seems exclusive to.
// A crash can bring such a reference back, and the block must still hold
// what the resurrected mapping expects.
//
// Locks (docs/design.md, "The pool"): nothing is pool-wide across IO.
//   - per thin, a range lock over virtual blocks ("cells"): every IO holds
//     its block range (shared for reads, exclusive for writes and
//     discards), so concurrent writes to one unprovisioned block provision
//     it once; snapshot and delete hold the whole range of their thins,
//     which drains the IO in flight on them;
//   - per thin, a tree lock around every lookup and every change of the
//     thin's mapping tree (never held across data IO);
//   - the store's staging lock, inside a tree lock, only while a
//     transaction is staged in memory (never across data IO or the journal
//     write); the data allocator is used under it or without suspending.
//
// Modes (PoolStatus::mode, shown by `thinp status`):
//   write              normal;
//   out_of_data_space  the data device is full: a write needing a new block
//                      fails at once (OutOfDataSpaceMode::error) or waits up
//                      to PoolOptions::no_space_timeout for space (queue);
//                      back to write once space is freed or grown;
//   read_only          a metadata IO error or corruption was found: needs_check
//                      is set in the superblock, reads still work, every
//                      change fails with read_only;
//   fail               the metadata device cannot even be written (needs_check
//                      could not be set) or a data IO error hit a metadata
//                      change half-way: every IO fails with io_error.
//
// Task context: every call is task only. Any number of tasks may call
// concurrently; the Pool must outlive them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/btree/mapping_node.h"
#include "engine/io/block_device.h"
#include "engine/pool/metadata_store.h"
#include "engine/runtime/runtime.h"

namespace thinp::pool {

enum class PoolMode { write, out_of_data_space, read_only, fail };
const char* pool_mode_name(PoolMode mode);

struct PoolOptions {
  OpenOptions store;
  // What a write does when the data device is full. Empty: as set at format
  // (the superblock's out_of_data_space_mode).
  std::optional<OutOfDataSpaceMode> out_of_data_space;
  // queue mode: how long a write waits for space before failing no_space.
  Nanos no_space_timeout = std::chrono::seconds(60);
  // Test switch: new data blocks are written without FUA, so a crash can
  // leave a durable mapping to data that never reached the media. Exists so
  // the pool scenario can prove its checker catches it. Never set outside
  // tests.
  bool unsafe_new_blocks_without_fua = false;
};

// One thin, as the device-details tree holds it.
struct ThinInfo {
  ThinId thin;
  uint64_t virtual_blocks = 0;
  uint64_t mapped_blocks = 0;
  SnapTime creation_time, snapshot_time;
  bool pinned = false;
  MBlock root;
  bool operator==(const ThinInfo&) const = default;
};

struct PoolStatus {
  StoreStatus store;
  PoolMode mode = PoolMode::write;
  std::string mode_reason;  // empty in write mode
  OutOfDataSpaceMode out_of_data_space = OutOfDataSpaceMode::queue;
  bool zero_new_blocks = true;
  uint64_t thins = 0;
  SnapTime time;
  // Since open.
  uint64_t provisioned_blocks = 0, shares_broken = 0, writes_in_place = 0;
  // Writes that waited for the journal because their block's last dropped
  // reference was not durable yet (pool.h, "Ordering").
  uint64_t drop_waits = 0;
};

// DeviceDetails::flags bits.
inline constexpr uint32_t kThinFlagPinned = 1;
// Being deleted in pieces (a large thin): invisible to users; open finishes it.
inline constexpr uint32_t kThinFlagDeleting = 2;

class Pool {
 public:
  virtual ~Pool() = default;

  static Status format(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                       const FormatOptions& options);
  // Opens (recovers) the pool. Errors as MetadataStore::open, plus
  // corruption for a device tree that does not decode.
  static Result<std::unique_ptr<Pool>> open(Runtime& rt, BlockDevice& metadata, BlockDevice* data,
                                            const PoolOptions& options);

  // Waits for IO in flight, checkpoints and marks the pool cleanly shut
  // down. Nothing may be called afterwards.
  virtual Status close() = 0;

  // --- Management -----------------------------------------------------------------
  // `virtual_bytes` is rounded up to whole data blocks; > 0. already_exists
  // if `thin` exists; invalid_argument for the reserved id 2^64-1.
  virtual Status create_thin(ThinId thin, uint64_t virtual_bytes) = 0;
  // `snap` shares every mapping of `origin` and has its size.
  virtual Status create_snapshot(ThinId origin, ThinId snap) = 0;
  // busy if the thin is pinned.
  virtual Status delete_thin(ThinId thin) = 0;
  // conflict (nothing changed) unless the current id is `expected`.
  virtual Status set_transaction_id(uint64_t expected, uint64_t value) = 0;
  // The data device now holds `new_data_blocks` (>= the current count).
  virtual Status grow_data(uint64_t new_data_blocks) = 0;
  // Pins the thin's current root in the query area; the thin then refuses
  // writes and discards (read_only) until unpinned. The root is on disk and
  // named by the superblock when pin() returns.
  virtual Status pin(ThinId thin) = 0;
  virtual Status unpin(ThinId thin) = 0;

  virtual Result<ThinInfo> thin_info(ThinId thin) = 0;
  virtual std::vector<ThinInfo> thins() = 0;
  // The thin's mapped runs in order (for tools and tests).
  virtual Result<std::vector<Run>> mappings(ThinId thin) = 0;
  virtual PoolStatus status() = 0;
  virtual PoolMode mode() const = 0;
  virtual uint64_t data_block_bytes() const = 0;
  // The superblock as last written (geometry, layout, flags).
  virtual const Superblock& superblock() const = 0;

  // --- IO -------------------------------------------------------------------------
  virtual Status read(ThinId thin, uint64_t offset, std::span<std::byte> out) = 0;
  virtual Status write(ThinId thin, uint64_t offset, std::span<const std::byte> in,
                       bool fua = false) = 0;
  virtual Status discard(ThinId thin, uint64_t offset, uint64_t length) = 0;
  virtual Status flush() = 0;

  // MetadataStore::check() plus the pool's own: every thin's details agree
  // with its tree (mapped block count, pinned roots in the query area).
  virtual Result<std::vector<CheckFinding>> check() = 0;
};

}  // namespace thinp::pool
