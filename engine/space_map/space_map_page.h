// What the two space maps share: where their checkpoint pages live, how a
// page leaves and enters them, and a bounds-checked varint codec.
//
// # Where the pages live: two slots per page
//
// Each space map owns one contiguous range of metadata blocks, a PageRegion,
// given to its constructor. Page i of a map has two slots, at region.first +
// 2i and region.first + 2i + 1, always: a page never moves, so the map needs
// no index of its own pages and a reader needs nothing but the region and the
// map's size (both from the superblock) to find every slot. The region is
// sized by whoever lays out the metadata device (engine/format/layout.h) for
// the largest size the map may grow to, two blocks per page; growing past it
// is a no_space error, never a silent overflow. The blocks of the region are
// themselves metadata blocks: the layout accounts for them in the metadata
// space map at format time (MetadataSpaceMap::mark_used_at_format) like the
// superblock and the journal.
//
// Why two slots (ping-pong): a checkpoint writes pages in place, and a crash
// can tear that write. The journal replays from the superblock's tail only,
// so the version of the page that the tail depends on must survive the
// crash. A checkpoint therefore always writes a page into the slot that does
// NOT hold its newest durable version (`durable_slot`, known from load and
// from mark_written); the other slot is never touched until the write is
// durable. At load, each slot is checked with verify_block (checksum, type,
// its own location) and the one with the higher header LSN wins; a slot that
// does not verify is taken for a torn write and ignored. Both failing is
// corruption. A slot that verifies but then fails the page's own structure
// checks is corruption too (a torn write cannot pass the checksum).
//
// Either slot is safe to pick when it verifies: the write-ahead rule below
// means every record up to its LSN is durable and committed, and the journal
// tail is at or below the recovery LSN of the page, which is at most one past
// the LSN of the older durable version; replay from the tail then re-applies
// (idempotently) every record newer than the slot picked.
//
// Known limit: a slot whose last durable write later rots (fails its
// checksum) looks like a torn write, and the older slot is used; records
// between the two versions may already be behind the tail. The refcount
// check (DESIGN.md section 5, invariant 4) is what catches that.
// # How state changes: decide, log, apply
//
// While the pool runs, the in-memory maps are authoritative; the pages are a
// checkpoint of them. Every change is a journal record (engine/journal/
// record.h), and a transaction uses a map in three steps:
//
//   1. decide: `reserve` picks free blocks and takes them out of the free
//      index so no other transaction can pick them, but changes no count.
//      (Reference count changes of blocks already in use need no decision:
//      the caller builds the record and may `check` it first.)
//   2. log: the caller appends the records to the journal, which assigns each
//      its LSN.
//   3. apply: `apply(record, lsn)` changes the counts. The same call replays
//      the record during recovery.
//
// If the transaction gives up between 1 and 2 it calls `cancel`. After 3
// there is no undo: a transaction that gives up then logs and applies the
// inverse records (a negative delta for each allocation) and commits anyway,
// so that its records always reach the journal in one committed transaction
// with their inverses; recovery replays committed transactions only, and an
// inverse without its original would take a count below zero.
//
// # Idempotent replay
//
// Every page carries, in its block header, the LSN of the newest record it
// reflects. `apply` changes a page's part of the state only if the record's
// LSN is greater than the page's LSN, and then raises the page's LSN. A
// record that spans several pages (a data range crossing a page boundary) is
// split and judged page by page. This is correct because of two rules the
// caller keeps:
//
//   * Records reach a map in strictly increasing LSN order, live and in
//     replay (asserted). Live, this means no task may yield between the
//     journal assigning an LSN and the apply of that record.
//   * Write-ahead: a page may be written only once every record with an LSN
//     up to the page's LSN (EncodedPage::lsn) is durable and belongs to a
//     committed transaction. Durable is not enough: a page written with the
//     effect of a transaction whose Commit never became durable would keep
//     it, since recovery does not replay that transaction.
//
// So a page with LSN L reflects exactly the records with LSN <= L that touch
// it, and replaying every committed record in order rebuilds the live state
// whatever subset of pages was written back before the crash.
//
// Reservations, owner locality cursors and the free index are not persisted:
// the first is per transaction, the other two are rebuilt at load.
//
// # Fitting engine/journal/
//
// Journal::commit gives a transaction's records consecutive LSNs and applies
// its PageWrites to the cache in one section that never suspends, then waits
// for durability; committers wake in any order. Space-map records must be
// applied in that same section (apply_space_map_record for each logical
// record at its LSN), not after commit returns: applying after the wait
// could reach a map out of LSN order (asserted), and a page could be encoded
// with an LSN above a record not yet applied to it, which replay would then
// skip. Until the journal has that hook, only a caller that commits one
// transaction at a time may apply after commit returns. Because a batch is
// written whole, a durable LSN is always at a Commit, so "durable" in the
// write-ahead rule implies "committed" with that journal.
//
// The checkpointer's persist_logical(D) step writes encode_dirty_pages(D),
// and must keep the tail at or below oldest_unwritten_lsn() of both maps
// (pages whose LSN is above D stay dirty and still need their records).
//
// Inside a transaction, counts change only at apply: a block the transaction
// reserved reads 0 (and is_reserved) until its record is applied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/format/block_header.h"

namespace thinp::space_map {

// The metadata blocks [first, first + capacity) that hold a map's pages,
// kSlotsPerPage blocks per page.
inline constexpr uint64_t kSlotsPerPage = 2;
struct PageRegion {
  MBlock first;
  uint64_t capacity = 0;  // in blocks: holds capacity / kSlotsPerPage pages

  uint64_t page_capacity() const { return capacity / kSlotsPerPage; }
  MBlock slot_location(uint64_t page, unsigned slot) const {
    return first + (page * kSlotsPerPage + slot);
  }
};

// Which page and slot the block `location` of `region` is (asserts it is in
// the region).
struct PageSlot {
  uint64_t page = 0;
  unsigned slot = 0;
};
PageSlot page_slot_of(const PageRegion& region, MBlock location);

// A page ready to be written at `location`. It must not be written before
// every record up to `lsn` is durable and committed (the write-ahead rule
// above); once the write is durable (after the FLUSH that follows it) the
// caller tells the map with mark_written(page).
//
// # Holding the journal tail
//
// A dirty page also has a recovery LSN: the first record applied to it since
// it was last written. The journal tail must not pass the smallest of them
// (oldest_unwritten_lsn(): the records from there on are the only copy of
// what those pages lack). mark_written clears it, which is why it must be
// called only once the write is durable; if the page changed after it was
// encoded, mark_written raises it to the encoded LSN + 1 instead (the disk
// has everything up to that LSN), so a page that is never idle still lets
// the tail advance.
struct EncodedPage {
  MBlock location;
  Lsn lsn;
  std::vector<std::byte> bytes;  // kMetadataBlockBytes, sealed
  uint64_t generation = 0;       // the page's change counter when encoded; not on disk
};

// encode_dirty_pages' default bound: every dirty page, whatever its LSN.
inline constexpr Lsn kAnyLsn{UINT64_MAX};

// Reads one page during load. May suspend (it is called from the loading
// task); returns the device's error, which load passes on with context.
using PageReader = std::function<Result<std::vector<std::byte>>(MBlock location)>;

// Reads both slots of `page` and returns the bytes of the newest one that
// passes verify_block(type, its location), and its slot number. corruption
// naming both slots if neither verifies; a reader error is passed on.
struct ChosenSlot {
  std::vector<std::byte> bytes;
  unsigned slot = 0;
};
// `usable`, if given, can rule out a slot that verifies: it returns an empty
// string to accept the bytes, else why not (e.g. a data page written for a
// grown device whose new size the superblock does not name yet).
using SlotFilter = std::function<std::string(std::span<const std::byte>)>;
Result<ChosenSlot> read_newest_slot(const PageRegion& region, uint64_t page, BlockType type,
                                    const PageReader& read_page, const SlotFilter& usable = {});

// Unsigned LEB128. put_varint appends; it asserts the output has room (an
// encoder sizes its output first). get_varint reads at `offset` without going
// past `end` and returns false on a truncated or over-long (> 64 bits) value.
inline constexpr size_t kMaxVarintBytes = 10;
size_t varint_bytes(uint64_t v);
void put_varint(std::span<std::byte> out, size_t& offset, uint64_t v);
bool get_varint(std::span<const std::byte> in, size_t& offset, size_t end, uint64_t& v);

}  // namespace thinp::space_map
