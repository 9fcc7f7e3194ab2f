// The transactions of the journal scenario, and reading a pool back.
//
// Each transaction kind stages one logical change of a thin pool through a
// MetadataTxn, exactly as the pool layer will: the device tree and the
// mapping trees run on txn.nodes() and txn.data_refs(), data comes from
// txn.allocate_data(), and the device tree's root and the transaction id are
// set on the transaction. The same change is applied to a PoolModel, and
// every value the trees return on the way (a thin's details, how many blocks
// an insert replaced or a remove unmapped) is compared with the model, so a
// store that shows a transaction the wrong state fails at once instead of
// at the next recovery.
#pragma once

#include <cstdint>
#include <string>

#include "engine/base/random.h"
#include "engine/base/status.h"
#include "engine/pool/metadata_store.h"
#include "scenarios/journal_model.h"

namespace thinp::scenarios {

enum class TxnKind : uint8_t {
  create,      // a new thin: device-tree entry and an empty mapping tree
  map,         // 1-3 runs of newly allocated data into one thin
  unmap,       // remove a range of one thin's mappings
  snapshot,    // clone a thin's mapping root into a new thin
  remove,      // delete a thin: destroy its mapping tree, drop its entry
  read_check,  // read a thin inside a transaction and compare; then abort
};
inline constexpr size_t kTxnKindCount = 6;
const char* txn_kind_name(TxnKind k);

struct TxnLimits {
  uint64_t thin_ids = 24;  // thin ids are drawn from [0, thin_ids)
  uint64_t virtual_blocks_min = 64;
  uint64_t virtual_blocks_max = 2048;
  uint64_t run_blocks_max = 16;
  uint64_t unmap_blocks_max = 64;
};

// Stages one transaction of `kind` on `txn`, or of another kind when the
// pool does not allow it (no thin to map into, no free thin id). `pool` must
// be the state the store stages on (every commit before this one); it is
// updated to the state this transaction leaves, with transaction_id one
// higher (except read_check, which changes nothing and must be aborted).
// `what` receives a one-line description. Returns the kind staged.
// Errors: the store's (io_error, no_space: the caller aborts the
// transaction), or corruption when the store disagrees with the model.
Result<TxnKind> stage_txn(pool::MetadataTxn& txn, TxnKind kind, Random& rng,
                          const TxnLimits& limits, PoolModel& pool, std::string& what);

// Reads the committed pool: every thin's details and runs (mapping roots as
// found) and the store's transaction id; `time` is left at its default.
// Errors: what the reads return, or corruption if a tree holds overlapping
// runs.
Result<PoolModel> read_pool(pool::MetadataStore& store);

}  // namespace thinp::scenarios
