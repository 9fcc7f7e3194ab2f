// In-memory NodeStore and DataRefs, for tests, the reference walker's
// checks and the metadata benchmark.
//
// They behave as the cache/journal adapters will: pages are sealed with the
// standard block header and verified on every read, counts are exact, and
// every mutating call is counted as the journal record it would produce.
// Optionally each call is also appended, as a journal::Record, to a log the
// caller owns, so a test or a benchmark can see the exact records a tree
// operation costs. Deterministic: blocks are allocated lowest-free-first at
// or after the hint.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "engine/btree/node_store.h"
#include "engine/btree/range_counts.h"
#include "engine/journal/record.h"

namespace thinp {

// Journal cost of a sequence of calls.
struct JournalCost {
  uint64_t page_writes = 0;        // PageWrite records (node IOs)
  uint64_t page_write_bytes = 0;   // bytes carried by those records
  uint64_t meta_ref_deltas = 0;    // MetaRefDelta records (allocate, inc, dec)
  uint64_t data_range_deltas = 0;  // DataRangeRefDelta records

  uint64_t records() const { return page_writes + meta_ref_deltas + data_range_deltas; }
};

class MemoryNodeStore final : public NodeStore {
 public:
  // `blocks_max`: allocate() returns no_space beyond this many live blocks.
  explicit MemoryNodeStore(uint64_t blocks_max = UINT64_MAX) : blocks_max_(blocks_max) {}

  Result<MBlock> allocate(MBlock hint) override;
  Result<PageRef> read(MBlock block, BlockType expected) override;
  Status write(MBlock block, BlockType type, std::span<const std::byte> body) override;
  Result<uint32_t> ref_count(MBlock block) override;
  Status inc_ref(MBlock block) override;
  Result<bool> dec_ref(MBlock block) override;

  // Every allocated block and its count, in block order.
  const std::map<MBlock, uint32_t>& ref_counts() const { return counts_; }
  uint64_t live_blocks() const { return counts_.size(); }
  const JournalCost& cost() const { return cost_; }
  void reset_cost() { cost_ = {}; }

  // While non-null, every mutating call appends its record to `log`.
  void set_record_log(std::vector<journal::Record>* log) { log_ = log; }

  // Test hook: flips one byte of a stored page (to test corruption paths).
  void corrupt_byte(MBlock block, size_t offset);

  // Test hook: after `calls` more successful mutating calls (allocate,
  // write, inc_ref, dec_ref), every mutating call fails with io_error and
  // changes nothing. UINT64_MAX: never.
  void fail_after(uint64_t calls) { fail_after_ = calls; }

 private:
  Status check_allocated(MBlock block, const char* op) const;

  uint64_t blocks_max_;
  uint64_t next_never_used_ = 0;
  std::set<uint64_t> free_;            // freed blocks below next_never_used_
  std::map<MBlock, uint32_t> counts_;  // allocated blocks
  std::map<MBlock, PageRef> pages_;    // written blocks
  uint64_t lsn_ = 0;
  JournalCost cost_;
  std::vector<journal::Record>* log_ = nullptr;
  uint64_t fail_after_ = UINT64_MAX;
  Status injected_failure(const char* op);
};

class MemoryDataRefs final : public DataRefs {
 public:
  Status inc_range(DBlock begin, uint64_t length) override;
  Status dec_range(DBlock begin, uint64_t length) override;
  Result<uint32_t> max_ref_count(DBlock begin, uint64_t length) override;

  // The allocator's side, not a tree's: gives [begin, begin + length) its
  // first reference (a DataRangeAlloc record in the engine). Not counted in
  // cost(), which counts only what trees do.
  Status allocate_range(DBlock begin, uint64_t length);

  const RangeCounts& counts() const { return counts_; }
  const JournalCost& cost() const { return cost_; }
  void reset_cost() { cost_ = {}; }
  void set_record_log(std::vector<journal::Record>* log) { log_ = log; }

 private:
  RangeCounts counts_;
  JournalCost cost_;
  std::vector<journal::Record>* log_ = nullptr;
};

}  // namespace thinp
