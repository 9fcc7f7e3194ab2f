// BlockCache: a bounded cache of 4 KiB metadata pages.
//
// Pages are pinned through PageRef (an RAII, reference-counted handle); a
// pinned page is never evicted. A page changed by a journalled transaction is
// dirty and carries two LSNs: its page LSN (the latest record that changed
// it) and its recovery LSN (the earliest record that changed it since it was
// last written back; the journal tail may not pass it).
//
// Write-ahead rule (DESIGN.md invariant 7). A dirty page is written back only
// when WalGate::durable_lsn() >= its page LSN: the write site asserts it. The
// page is sealed (seal_block with its type, location and page LSN) on a copy
// taken just before the write, so that a page may keep changing while its
// write is in flight. Write-backs complete into the device's volatile cache;
// flush_device() makes them durable, and until then their recovery LSNs still
// hold the journal tail back (oldest_needed_lsn()).
//
// No steal: the cache never sees uncommitted changes. The journal applies a
// transaction's page writes to the cache only at commit, after giving them
// LSNs (engine/journal/journal.h).
//
// Integrity (invariant 5). A page read from the device is verified
// (checksum, type, location) before anyone sees it; one that fails is
// dropped and the pin fails with Errc::corruption.
//
// Tasks. Every call that can suspend is "task only". All state is touched by
// one task at a time between suspension points; the cache-wide mutex is never
// held across IO.
//
// Sizing. The cache holds at most `capacity_pages` pages. pin() on a full
// cache evicts the least recently used unpinned clean page, or writes back
// (making its journal records durable first) an unpinned dirty one; if every
// page is pinned it waits for an unpin. Callers must therefore never hold
// more pins at once than the capacity (a simulation reports the deadlock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/format/block_header.h"
#include "engine/io/block_device.h"
#include "engine/runtime/sync.h"

namespace thinp::cache {

// What the cache needs from the journal to keep the write-ahead rule.
class WalGate {
 public:
  virtual ~WalGate() = default;
  // Every record with an LSN <= this is durable.
  virtual Lsn durable_lsn() const = 0;
  // Suspends until durable_lsn() >= lsn (forcing a journal write if needed).
  // Fails if the journal has failed. Task only.
  virtual Status make_durable(Lsn lsn) = 0;
};

struct BlockCacheOptions {
  size_t capacity_pages = 1024;
  size_t max_parallel_writes = 32;  // write-backs in flight at once (checkpoint)
};

struct BlockCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t reads = 0;
  uint64_t write_backs = 0;
  uint64_t evictions = 0;
  uint64_t flushes = 0;
};

class BlockCache;
struct Frame;

// A pin on one cached page. Move-only; the pin is dropped by reset() or the
// destructor. clone() takes another pin on the same page.
class PageRef {
 public:
  PageRef() = default;
  ~PageRef() { reset(); }
  PageRef(PageRef&& o) noexcept : cache_(o.cache_), frame_(o.frame_) {
    o.cache_ = nullptr;
    o.frame_ = nullptr;
  }
  PageRef& operator=(PageRef&& o) noexcept;
  PageRef(const PageRef&) = delete;
  PageRef& operator=(const PageRef&) = delete;

  explicit operator bool() const { return frame_ != nullptr; }
  PageRef clone() const;
  void reset();

  MBlock block() const;
  BlockType type() const;
  Lsn page_lsn() const;
  bool dirty() const;
  // The whole 4 KiB image; its header is stale until the page is written
  // back (the cache seals a copy, not the cached page).
  std::span<const std::byte> bytes() const;
  // The bytes after the 32-byte header: what PageWrite offsets address.
  std::span<const std::byte> payload() const { return bytes().subspan(kBlockHeaderBytes); }

 private:
  friend class BlockCache;
  PageRef(BlockCache* cache, Frame* frame) : cache_(cache), frame_(frame) {}
  BlockCache* cache_ = nullptr;
  Frame* frame_ = nullptr;
};

class BlockCache {
 public:
  // `device` is the metadata device; page MBlock b lives at byte b * 4096.
  BlockCache(Runtime& rt, BlockDevice& device, BlockCacheOptions options);
  ~BlockCache();
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // Must be set before any page is marked dirty; the gate must outlive the
  // cache's use.
  void set_wal_gate(WalGate* gate) { gate_ = gate; }

  // Pins `block`, reading and verifying it on a miss. A resident page of
  // another type, or an on-disk page that fails verification, is
  // Errc::corruption; a read error is Errc::io_error. Task only.
  Result<PageRef> pin(MBlock block, BlockType expected);

  // Pins `block` as a freshly allocated page of `type` whose payload is
  // zero, without reading the device. The caller must be the page's only
  // user (it was just allocated). Task only.
  Result<PageRef> pin_new(MBlock block, BlockType type);

  // Recovery's pin: like pin(), but when `init` is set a page that fails
  // verification (never written, or reused with another type) becomes a zero
  // page of `type` with page LSN 0, so that an init record can rebuild it.
  Result<PageRef> pin_for_redo(MBlock block, BlockType type, bool init);

  struct PrefetchPage {
    MBlock block;
    BlockType type = BlockType::test_page;
    bool init_on_failure = false;  // as pin_for_redo(init = true)
  };

  // Reads, in parallel, those of `pages` that are not resident, as far as
  // frames can be had without writing anything back or waiting (free frames,
  // then least recently used clean ones). A page that fails its read or
  // verification is just not cached (a later pin reports it), unless it is
  // init_on_failure and failed verification: then it is cached as a zero
  // page with LSN 0. Recovery uses it to read the pages of a stretch of log
  // at once. Task only.
  void prefetch(std::span<const PrefetchPage> pages);

  // Copies `bytes` to payload offset `offset` of the pinned page (after
  // zeroing the whole payload if `init`) and marks it dirty at `lsn`. Never
  // suspends. `lsn` must exceed the page LSN.
  void apply_write(const PageRef& page, uint16_t offset, std::span<const std::byte> bytes, Lsn lsn,
                   bool init = false);

  // The current WAL gate (recovery swaps in its own for the replay).
  WalGate* wal_gate() const { return gate_; }

  // Records that the page was changed by the record at `lsn` (which must not
  // be below the page LSN). Never suspends.
  void mark_dirty(const PageRef& page, Lsn lsn);

  // Writes back every dirty page whose page LSN is durable (block order, up
  // to max_parallel_writes at once). Pages that change meanwhile stay dirty.
  // Returns the number of pages written. Task only.
  Result<size_t> write_back_durable();

  // FLUSHes the device; on success every write-back that completed before
  // the call is durable and stops holding the journal tail. Task only.
  Status flush_device();

  // The lowest recovery LSN among dirty pages and write-backs not yet
  // flushed: the journal tail may not pass it. Empty when there is none.
  std::optional<Lsn> oldest_needed_lsn() const;

  size_t resident_pages() const { return index_.size(); }
  size_t dirty_pages() const;
  size_t capacity() const { return options_.capacity_pages; }
  const BlockCacheStats& stats() const { return stats_; }

 private:
  friend class PageRef;
  enum class Miss { verify, init_on_failure, fresh };

  Result<PageRef> pin_impl(MBlock block, BlockType type, Miss miss);
  Result<PageRef> load(Frame* f, Miss miss);
  // Returns a frame with no page, evicting or writing back as needed; null
  // after waiting (the caller re-checks). Called with mu_ held; may release
  // and retake it.
  Frame* take_free_frame_locked(Status& error);
  // A free frame, a new one, or an evicted clean one; null if none. Never
  // suspends.
  Frame* take_clean_frame_locked();
  Status write_back_frames(std::vector<Frame*> frames);
  void unpin(Frame* f);

  Runtime& rt_;
  BlockDevice& device_;
  BlockCacheOptions options_;
  WalGate* gate_ = nullptr;
  Mutex mu_;
  CondVar changed_;  // a load or write finished, or a page was unpinned
  std::vector<std::unique_ptr<Frame>> frames_;
  std::vector<Frame*> free_;
  std::map<MBlock, Frame*> index_;   // ordered: write-back in block order
  std::map<MBlock, Lsn> unflushed_;  // written back, not yet flushed
  uint64_t clock_ = 0;
  BlockCacheStats stats_;
};

// One cached page. Internal to the cache; declared here for PageRef.
struct Frame {
  MBlock block;
  BlockType type = BlockType::test_page;
  AlignedBuffer buf{kMetadataBlockBytes};
  Lsn page_lsn;  // latest record applied (or the on-disk header LSN)
  Lsn rec_lsn;   // earliest record applied since the last write-back
  bool resident = false;
  bool dirty = false;
  bool loading = false;  // a read is in flight; nobody may use the page yet
  bool writing = false;  // a write-back is in flight
  uint32_t pins = 0;
  uint64_t last_use = 0;
};

}  // namespace thinp::cache
