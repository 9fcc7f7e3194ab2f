// The reference model and the commit-prefix oracle of the journal scenario.
//
// The model is deliberately simple: a pool is a map from thin id to the
// thin's details and its mapped runs, kept canonical (sorted, disjoint, and
// no two neighbours that could be one run), so that two pools holding the
// same mappings compare equal however a btree happened to split or merge its
// runs. Which metadata block holds a thin's mapping root is the store's
// business and is never compared.
//
// The oracle is the durability contract of MetadataStore::commit put into
// code. Transactions are staged one at a time, so the order in which
// commit() is called is the commit (LSN) order. The oracle keeps, from the
// last verified state on, the model state after each staged commit. After a
// crash and recovery the pool found on disk must equal the state after some
// prefix of that order, and the prefix must contain every commit whose
// commit() returned success: a commit still in flight at the crash (or one
// whose commit() failed) may be in or out, but only as part of a prefix.
// The recovered transaction id names the prefix exactly (every staged commit
// sets it to its own number), so the oracle does not have to guess.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/btree/device_tree.h"
#include "engine/btree/mapping_node.h"

namespace thinp::scenarios {

// One thin: its details (mapping_root is carried along but never compared)
// and its runs by first virtual block, canonical (see the file comment).
struct ThinModel {
  DeviceDetails details;
  std::map<VBlock, Run> runs;

  // Maps run.vbegin.. to run.dbegin.., replacing what was there. Returns
  // how many blocks of the range were mapped before (what MappingTree::insert
  // returns for the same call).
  uint64_t map(const Run& run);
  // Unmaps [begin, begin + length). Returns how many blocks were mapped.
  uint64_t unmap(VBlock begin, uint64_t length);
  // Blocks mapped in [begin, begin + length).
  uint64_t mapped_in(VBlock begin, uint64_t length) const;
  uint64_t mapped_blocks() const;
};

struct PoolModel {
  std::map<ThinId, ThinModel> thins;
  // Model bookkeeping, not on disk: the time given to new runs and
  // snapshots (advanced by each snapshot) and the transaction id of the last
  // staged commit (also on disk: the store's transaction id).
  SnapTime time{1};
  uint64_t transaction_id = 0;
};

// Whether two thins' details agree on everything but mapping_root.
bool details_match(const DeviceDetails& a, const DeviceDetails& b);

// "{mapped=3 virtual=512 created=t:1 snap=t:1 txn:7 flags=0}" (no root).
std::string format_details(const DeviceDetails& d);
// "v:10+4->d:100@t:3"
std::string format_run(const Run& r);

// Empty if `expected` and `found` hold the same thins, details (except
// mapping_root) and runs; otherwise one line naming the first difference.
std::string describe_difference(const PoolModel& expected, const PoolModel& found);

// A digest of everything compared (not the mapping roots).
uint64_t model_digest(const PoolModel& pool);

// "thins=3 runs=41 mapped=312"
std::string model_summary(const PoolModel& pool);

// What recovery found, as the oracle judged it.
struct RecoveredPrefix {
  size_t prefix = 0;    // commits since the last verified state that survived
  size_t required = 0;  // the least prefix that holds every acknowledged commit
  size_t staged = 0;    // commits staged since the last verified state
};

class CommitOracle {
 public:
  explicit CommitOracle(PoolModel initial) : base_(std::move(initial)) {}

  // The state a new transaction stages on: after every commit staged so far.
  const PoolModel& staged() const { return entries_.empty() ? base_ : entries_.back().after; }

  // Records the next commit in commit order, about to be handed to
  // commit(): its resulting state (after.transaction_id must be the
  // previous one + 1) and a description for failure messages. Returns its
  // index, for acknowledge()/failed().
  size_t stage(PoolModel after, std::string what);

  // commit() returned `lsn` for commit `index`. corruption if LSNs do not
  // increase with commit order among acknowledged commits.
  Status acknowledge(size_t index, Lsn lsn);
  // commit() failed and the store failed: the commit may or may not be
  // found by recovery.
  void failed(size_t index);
  // commit() failed but the store did not: nothing of the commit was logged
  // or applied, so it leaves the commit order. Only the last staged commit
  // can be withdrawn (the store holds its staging lock until it fails).
  void withdraw(size_t index);

  // Judges a recovered pool. On success the recovered state (with the mapping
  // roots as found) becomes the new verified base and the log is cleared.
  // corruption, with the details, if the pool is not a prefix state holding
  // every acknowledged commit. Nothing changes on failure.
  Result<RecoveredPrefix> recover(const PoolModel& found, uint64_t found_transaction_id);

  size_t staged_count() const { return entries_.size(); }
  size_t acknowledged_count() const { return acknowledged_; }

 private:
  struct Entry {
    PoolModel after;
    std::string what;
    std::optional<Lsn> lsn;  // acknowledged
    bool failed = false;
  };
  const PoolModel& state_after(size_t prefix) const {
    return prefix == 0 ? base_ : entries_[prefix - 1].after;
  }
  std::string describe_entry(size_t index) const;

  PoolModel base_;
  std::vector<Entry> entries_;
  size_t acknowledged_ = 0;  // since the last verified state
};

}  // namespace thinp::scenarios
