// The superblock: the one metadata structure with no sharing and no journal.
// It names everything else (docs/format.md, "Superblock").
//
// Atomicity: two slots, blocks 0 and 1. Every write bumps the sequence number
// and goes to slot (sequence % 2) with FUA, so the slot holding the previous
// superblock is never touched while the new one is in flight. A crash during
// the write leaves the new slot torn, old or new; a torn slot fails its
// checksum, and the reader takes the valid slot with the highest sequence
// number. So a reader sees the old superblock or the new one, never a mix.
//
// The rule holds only if superblock writes are serialised: the caller must
// not start write_superblock() while another is in flight for the same pool,
// and must have made durable (FLUSH) everything the new superblock names
// before calling it (DESIGN.md invariant 7): FUA makes this write durable,
// not the writes that came before it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/base/random.h"
#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/format/layout.h"
#include "engine/io/block_device.h"

namespace thinp {

// "thinp2sb" read as a little-endian u64.
inline constexpr uint64_t kSuperblockMagic = 0x627332706e696874ULL;
// The newest format version this build reads and the one it writes.
inline constexpr uint32_t kFormatVersion = 1;
// How many roots can be pinned at once (the query area, docs/format.md).
inline constexpr size_t kQueryAreaCapacity = 64;
// A root that is not there (block 0 is a superblock slot, never a tree node).
inline constexpr MBlock kNoRoot{0};

// What a write to a full data device does: wait for the pool to grow
// (dm-thin's queue_if_no_space) or fail the IO (error_if_no_space).
enum class OutOfDataSpaceMode : uint8_t { queue = 0, error = 1 };

// The root of a mapping tree pinned for userland to read while the pool runs.
// The pool keeps every block reachable from `root` alive until it is unpinned.
struct PinnedRoot {
  ThinId thin;
  MBlock root;
  Lsn pinned_lsn;        // journal position when it was pinned
  SnapTime pinned_time;  // the pool's snapshot time when it was pinned

  bool operator==(const PinnedRoot&) const = default;
};

using Uuid = std::array<uint8_t, 16>;

// "0f1e2d3c-...": the usual 8-4-4-4-12 form.
std::string uuid_string(const Uuid& uuid);

struct Superblock {
  uint32_t format_version = kFormatVersion;
  uint64_t sequence = 0;  // bumped by write_superblock(); slot = sequence % 2
  Uuid uuid{};
  Geometry geometry;
  Layout layout;

  // Journal positions. Recovery starts reading the ring at journal_tail_block,
  // whose first record has LSN journal_tail_lsn; every change with LSN <=
  // checkpoint_lsn is already in the structures the superblock names.
  Lsn journal_tail_lsn;
  MBlock journal_tail_block;
  Lsn checkpoint_lsn;

  MBlock device_details_root = kNoRoot;
  SnapTime time;                  // the pool's snapshot time
  TransactionId transaction_id;   // userland's, as set by set_transaction_id

  bool clean_shutdown = false;
  bool needs_check = false;
  OutOfDataSpaceMode out_of_data_space_mode = OutOfDataSpaceMode::queue;
  bool zero_new_blocks = true;  // zero a data block before its first partial write

  std::vector<PinnedRoot> pinned_roots;  // at most kQueryAreaCapacity

  bool operator==(const Superblock&) const = default;
};

// A fresh superblock for a pool being formatted: a random uuid (type 4) from
// `random`, the journal empty at the start of its ring with tail LSN 1, no
// device details yet, sequence 0 (the first write_superblock makes it 1).
Superblock new_superblock(const Geometry& geometry, const Layout& layout, Random& random);

// Checks every field of `sb` the way the decoder does: corruption with a
// one-line message naming the field. Used before encoding (as an assertion)
// and after decoding.
Status validate_superblock(const Superblock& sb);

// Encodes `sb` into `block` (exactly 4096 bytes) and seals it for `slot`.
// Asserts that `sb` is valid and `slot` is sequence % 2. Every byte is
// written (unused ones as zero).
void encode_superblock(const Superblock& sb, MBlock slot, std::span<std::byte> block);

// Decodes untrusted bytes read from `slot`. Never asserts on the content.
//   not_found:   no superblock magic (the slot never held a thinp superblock)
//   unsupported: a newer format version; the message says which
//   corruption:  anything else wrong (checksum, type, location, a field)
Result<Superblock> decode_superblock(std::span<const std::byte> block, MBlock slot);

// Bumps sb.sequence and writes slot (sequence % 2) with FUA, the metadata
// area being at byte 0 of `dev`. On failure sb.sequence is restored: the
// target slot may now hold a torn copy, and a retry must go to that same slot
// again, never to the other one, which holds the last good superblock.
// Task only; see the serialisation contract above.
Status write_superblock(BlockDevice& dev, Superblock& sb);

// Writes zeroes over both slots with FUA, so that a device formatted over an
// old pool can never be mistaken for it: format calls this first, then
// initialises the other structures, then calls write_superblock(). Task only.
Status erase_superblocks(BlockDevice& dev);

// Reads both slots and returns the valid superblock with the highest sequence
// number. A slot that fails to read, verify or decode is ignored. Errors:
//   not_found:   "<dev> is not a thinp pool (no superblock magic in slot 0 or
//                slot 1)": neither slot ever held a superblock, so format may
//                proceed without --force;
//   unsupported: either slot holds a superblock from a newer format version
//                (never fall back to the older slot: that would roll back);
//   corruption:  "no valid superblock on <dev>: slot 0: <why>; slot 1: <why>".
//   io_error:    neither slot could be read.
// Task only.
Result<Superblock> read_superblock(BlockDevice& dev);

// Query-area helpers. pin_root: no_space when the area is full,
// already_exists when (thin, root) is pinned. unpin_root: not_found.
Status pin_root(Superblock& sb, const PinnedRoot& pin);
Status unpin_root(Superblock& sb, ThinId thin, MBlock root);

}  // namespace thinp
