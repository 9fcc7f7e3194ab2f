// Journal records: the redo log of every metadata change.
//
// A transaction is a sequence of records followed by a Commit record. The
// journal assigns each record an LSN when it is appended; recovery replays, in
// LSN order, every record of every transaction whose Commit record is durable,
// and nothing else. Replay must be idempotent: a structure applies a record
// only if the record's LSN is greater than the LSN its on-disk page carries.
//
// Records are logical where a structure keeps its state in memory and
// checkpoints it (the space maps, the device details), and physical (a byte
// range of one metadata page) where the state lives in cached pages (tree
// nodes, test pages).
#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "engine/base/units.h"
#include "engine/format/block_header.h"

namespace thinp::journal {

// Physical redo: bytes [offset, offset + bytes.size()) of metadata page
// `block` become `bytes`. offset + size <= 4096 - header; the page's header
// (checksum, LSN) is maintained by the block cache, not by this record.
//
// `offset` counts from the end of the 32-byte block header (payload offset).
// `page_type` and `init` were added so that recovery can pin the page without
// any other knowledge: it verifies the on-disk page against `page_type`, and
// when `init` is set (the transaction (re)initialised a freshly allocated
// page, whose payload outside the written range is zero) a page that does not
// verify, or holds another type, is rebuilt from zeros instead of reported
// as corrupt.
struct PageWrite {
  MBlock block;
  uint16_t offset = 0;
  std::vector<std::byte> bytes;
  BlockType page_type = BlockType::test_page;
  bool init = false;
};

// A metadata block's reference count changes by `delta` (+1 allocate or
// share, -1 release). Reaching zero frees the block.
struct MetaRefDelta {
  MBlock block;
  int32_t delta = 0;
};

// The reference counts of data blocks [begin, begin + length) change by
// `delta`. One record covers any length: this is what makes breaking the
// sharing of a leaf that maps a million blocks cost one record.
struct DataRangeRefDelta {
  DBlock begin;
  uint64_t length = 0;
  int32_t delta = 0;
};

// Data blocks [begin, begin + length) were allocated to `owner` (a thin id,
// used for locality): their counts go from 0 to 1.
struct DataRangeAlloc {
  DBlock begin;
  uint64_t length = 0;
  ThinId owner;
};

// A thin's details changed (or the thin was created). `deleted` removes it.
struct DeviceDetailsUpdate {
  ThinId thin;
  MBlock mapping_root;
  uint64_t mapped_blocks = 0;
  uint64_t virtual_blocks = 0;
  uint64_t creation_time = 0;
  uint64_t snapshot_time = 0;
  uint64_t transaction_id = 0;
  uint32_t flags = 0;
  bool deleted = false;
};

// Ends a transaction. `txn` is the committer's transaction sequence number.
struct Commit {
  uint64_t txn = 0;
};

using Record =
    std::variant<PageWrite, MetaRefDelta, DataRangeRefDelta, DataRangeAlloc, DeviceDetailsUpdate, Commit>;

}  // namespace thinp::journal
