// The two narrow interfaces the trees run on: NodeStore (metadata pages and
// their reference counts) and DataRefs (reference counts of data ranges).
//
// The trees never see the block cache, the journal or the space maps
// directly. Every mutating call here corresponds to exactly one journal
// record of the transaction the caller is building (engine/journal/record.h):
//
//   NodeStore::allocate      MetaRefDelta{block, +1} (count 0 -> 1)
//   NodeStore::write         PageWrite{block, offset, bytes} (the changed
//                            byte range of the page body; the cache keeps
//                            the header: checksum, type, location, LSN)
//   NodeStore::inc_ref       MetaRefDelta{block, +1}
//   NodeStore::dec_ref       MetaRefDelta{block, -1} (reaching 0 frees it)
//   DataRefs::inc_range      DataRangeRefDelta{begin, length, +1}
//   DataRefs::dec_range      DataRangeRefDelta{begin, length, -1}
//
// so an adapter over the cache and journal is a thin forwarding layer, and
// the cost of a tree operation in journal records is the number of these
// calls. Reads (read, ref_count, max_ref_count) log nothing.
//
// Task context: every call may suspend the calling task (a cache miss reads
// the device; a full journal waits for space), so trees call them only from
// a task, holding the tree's lock. Errors are values: io_error, no_space,
// corruption (a page failed its checksum/type/location checks, a count
// would go below zero). After an error mid-operation the tree's blocks are
// in an unspecified state and the caller must abort its journal transaction
// (nothing of it reaches disk); the in-memory stores here have no abort, so
// tests treat an error as the end of the test.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/format/block_header.h"

namespace thinp {

// A 4 KiB metadata page, header included. Immutable once handed out.
using Page = std::array<std::byte, kMetadataBlockBytes>;
using PageRef = std::shared_ptr<const Page>;

// Bytes of a page after its 32-byte header: what tree nodes encode into.
inline constexpr size_t kPageBodyBytes = kMetadataBlockBytes - kBlockHeaderBytes;  // 4064

inline std::span<const std::byte> page_body(const Page& p) {
  return std::span<const std::byte>(p).subspan(kBlockHeaderBytes);
}

class NodeStore {
 public:
  virtual ~NodeStore() = default;

  // Allocates a free metadata block and gives it reference count 1. `hint`
  // is a locality hint (a block near which to allocate, e.g. the parent);
  // the store may ignore it. The block's contents are undefined until the
  // first write(). no_space when the metadata device is full.
  virtual Result<MBlock> allocate(MBlock hint) = 0;

  // The page of `block`, verified: checksum, `expected` type and location
  // all match (corruption otherwise, never an assertion). `block` must be
  // allocated and written. The returned page stays valid (and unchanged)
  // while the caller holds it, even if the block is later rewritten or freed.
  virtual Result<PageRef> read(MBlock block, BlockType expected) = 0;

  // Replaces the body of `block` (bytes [32, 4096)) with `body`, which must
  // be exactly kPageBodyBytes long, and sets its type. `block` must be
  // allocated (count >= 1). A logged update: the store records the changed
  // byte range as one PageWrite.
  virtual Status write(MBlock block, BlockType type, std::span<const std::byte> body) = 0;

  // The reference count of an allocated block (>= 1).
  virtual Result<uint32_t> ref_count(MBlock block) = 0;

  // +1 on an allocated block (a new parent or root now refers to it).
  virtual Status inc_ref(MBlock block) = 0;

  // -1 on an allocated block. Returns true if the count reached zero and the
  // block was freed; its pages previously returned by read() stay readable
  // by their holders, but the block may be allocated again at once.
  virtual Result<bool> dec_ref(MBlock block) = 0;
};

// Reference counts of data blocks, kept per range by the data space map.
// A leaf of a mapping tree holds one reference to every data block it maps.
class DataRefs {
 public:
  virtual ~DataRefs() = default;

  // +1 on every block of [begin, begin + length); length > 0. One journal
  // record whatever the length.
  virtual Status inc_range(DBlock begin, uint64_t length) = 0;

  // -1 on every block of [begin, begin + length); blocks reaching zero
  // become free. corruption if a count would go below zero.
  virtual Status dec_range(DBlock begin, uint64_t length) = 0;

  // The largest count of any block in [begin, begin + length). Used to tell
  // whether a mapped range is shared (count > 1).
  virtual Result<uint32_t> max_ref_count(DBlock begin, uint64_t length) = 0;
};

// DataRefs for walks that only read a tree (for_each, lookup without the
// sharing query): every call is refused with read_only, naming `who`.
class NoDataRefs final : public DataRefs {
 public:
  explicit NoDataRefs(std::string who = "a read-only walk") : who_(std::move(who)) {}
  Status inc_range(DBlock, uint64_t) override { return refuse("take data references"); }
  Status dec_range(DBlock, uint64_t) override { return refuse("drop data references"); }
  Result<uint32_t> max_ref_count(DBlock, uint64_t) override {
    return refuse("read data reference counts");
  }

 private:
  Status refuse(const char* what) const {
    return Status(Errc::read_only, who_ + " cannot " + what);
  }
  std::string who_;
};

}  // namespace thinp
