#include "engine/journal/recovery.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

namespace thinp::journal {
namespace {

// During replay every accepted record is durable: it was read back from the
// device after a FLUSH.
class RecoveryGate final : public cache::WalGate {
 public:
  Lsn durable_lsn() const override { return durable; }
  Status make_durable(Lsn lsn) override {
    TP_ASSERT_LE(lsn, durable);
    return ok_status();
  }
  Lsn durable;
};

// Puts the cache's previous gate back however recover() returns.
class GateSwap {
 public:
  GateSwap(cache::BlockCache& cache, cache::WalGate* gate) : cache_(cache), old_(cache.wal_gate()) {
    cache_.set_wal_gate(gate);
  }
  ~GateSwap() { cache_.set_wal_gate(old_); }

 private:
  cache::BlockCache& cache_;
  cache::WalGate* old_;
};

using LsnRecords = std::vector<std::pair<Lsn, Record>>;

Status replay_transaction(const LsnRecords& txn, cache::BlockCache& cache, RecordVisitor& visitor,
                          RecoveryStats& stats) {
  for (const auto& [lsn, record] : txn) {
    if (const auto* w = std::get_if<PageWrite>(&record)) {
      TP_ASSIGN_OR_RETURN(cache::PageRef page, cache.pin_for_redo(w->block, w->page_type, w->init));
      if (lsn > page.page_lsn()) {
        cache.apply_write(page, w->offset, w->bytes, lsn, w->init);
        ++stats.pages_redone;
      } else {
        ++stats.pages_already_current;
      }
    } else {
      TP_RETURN_IF_ERROR(
          visitor.apply(record, lsn).with_context("replaying LSN " + std::to_string(lsn.value())));
    }
    ++stats.records_replayed;
  }
  ++stats.transactions_replayed;
  return ok_status();
}

// Reads the ring sequentially, a chunk of blocks at a time.
class RingReader {
 public:
  RingReader(BlockDevice& device, RingGeometry ring, uint64_t chunk_blocks, uint64_t end_seq)
      : device_(device), ring_(ring), chunk_(chunk_blocks * kMetadataBlockBytes),
        chunk_blocks_(chunk_blocks), end_seq_(end_seq) {}

  bool holds(uint64_t seq) const { return seq >= first_ && seq < first_ + count_; }

  // The bytes of block `seq`; blocks are asked for in increasing order.
  Result<std::span<const std::byte>> block(uint64_t seq, RecoveryStats& stats) {
    if (seq < first_ || seq >= first_ + count_) {
      const uint64_t n = std::min({chunk_blocks_, ring_.length_blocks - seq % ring_.length_blocks,
                                   end_seq_ - seq});
      TP_ASSERT_GT(n, 0u);
      std::span<std::byte> dst = chunk_.span().subspan(0, n * kMetadataBlockBytes);
      ++stats.reads;
      TP_RETURN_IF_ERROR(device_.read(ring_.location_of(seq).value() * kMetadataBlockBytes, dst)
                             .with_context("reading the journal"));
      first_ = seq;
      count_ = n;
    }
    return std::span<const std::byte>(chunk_.span().subspan((seq - first_) * kMetadataBlockBytes,
                                                            kMetadataBlockBytes));
  }

 private:
  BlockDevice& device_;
  RingGeometry ring_;
  AlignedBuffer chunk_;
  uint64_t chunk_blocks_;
  uint64_t end_seq_;
  uint64_t first_ = 0;
  uint64_t count_ = 0;
};

// Committed transactions waiting to be replayed: they are replayed a read
// chunk at a time, after one parallel read of every page they touch.
Status replay_ready(std::vector<LsnRecords>& ready, cache::BlockCache& cache,
                    RecordVisitor& visitor, RecoveryStats& stats) {
  if (ready.empty()) return ok_status();
  std::vector<cache::BlockCache::PrefetchPage> pages;
  std::set<MBlock> seen;
  for (const LsnRecords& txn : ready) {
    for (const auto& [lsn, record] : txn) {
      const auto* w = std::get_if<PageWrite>(&record);
      if (w != nullptr && seen.insert(w->block).second) {
        pages.push_back({w->block, w->page_type, w->init});
      }
    }
  }
  cache.prefetch(pages);
  for (const LsnRecords& txn : ready) TP_RETURN_IF_ERROR(replay_transaction(txn, cache, visitor, stats));
  ready.clear();
  return ok_status();
}

}  // namespace

Result<RecoveryResult> recover(BlockDevice& device, RingGeometry ring, cache::BlockCache& cache,
                               JournalPosition tail, RecordVisitor& visitor,
                               RecoveryOptions options) {
  TP_ASSERT_NE(device.runtime().current_task(), kNoTask);
  TP_ASSERT_GT(ring.length_blocks, 0u);
  TP_ASSERT_GT(tail.lsn, Lsn(0));
  TP_ASSERT_GT(options.read_ahead_blocks, 0u);
  RecoveryResult result;
  RecoveryStats& stats = result.stats;
  RecoveryGate gate;
  gate.durable = tail.lsn - 1;
  GateSwap swap(cache, &gate);
  // Whatever the device still caches becomes durable, so what we read is
  // what a later crash would leave.
  TP_RETURN_IF_ERROR(device.flush().with_context("recovery"));

  const uint64_t end_limit = tail.seq + ring.length_blocks;
  RingReader reader(device, ring, options.read_ahead_blocks, end_limit);
  RecordAssembler assembler(tail.lsn);
  LsnRecords txn;
  LsnRecords block_records;
  uint64_t seq = tail.seq;
  bool have_prev = false;
  uint64_t session = 0;
  uint32_t prev_crc = 0;
  uint64_t max_txn = 0;
  stats.end_reason = "scanned one full lap of the ring";
  std::vector<LsnRecords> ready;
  while (seq < end_limit) {
    if (!reader.holds(seq)) TP_RETURN_IF_ERROR(replay_ready(ready, cache, visitor, stats));
    TP_ASSIGN_OR_RETURN(std::span<const std::byte> bytes, reader.block(seq, stats));
    Result<ParsedJournalBlock> parsed = parse_journal_block(bytes, ring.location_of(seq));
    if (!parsed.ok()) {
      stats.end_reason = parsed.status().message();
      break;
    }
    const JournalBlockHeader& h = parsed->header;
    if (h.seq != seq) {
      stats.end_reason = "journal block at sequence " + std::to_string(seq) + " holds sequence " +
                         std::to_string(h.seq) + " (an earlier lap)";
      break;
    }
    if (have_prev && h.prev_crc != prev_crc) {
      stats.end_reason = "journal block " + std::to_string(seq) + " does not chain to its predecessor";
      break;
    }
    // Work on a copy, so that a block that turns out bad changes nothing.
    RecordAssembler trial = assembler;
    const bool new_session = have_prev && h.session != session;
    if (new_session) trial.restart(trial.next_lsn());
    block_records.clear();
    if (Status s = trial.add_block(*parsed, block_records); !s.ok()) {
      stats.end_reason = s.message();
      break;
    }
    if (new_session && !txn.empty()) {
      ++stats.transactions_dropped;
      txn.clear();
    }
    assembler = std::move(trial);
    have_prev = true;
    session = h.session;
    prev_crc = parsed->crc;
    ++seq;
    ++stats.blocks_scanned;
    gate.durable = assembler.next_lsn() - 1;
    for (auto& [lsn, record] : block_records) {
      const Commit* commit = std::get_if<Commit>(&record);
      if (commit != nullptr) max_txn = std::max(max_txn, commit->txn);
      const bool ends_txn = commit != nullptr;
      txn.emplace_back(lsn, std::move(record));
      if (!ends_txn) continue;
      result.last_committed_lsn = lsn;
      ready.push_back(std::move(txn));
      txn.clear();
    }
  }
  TP_RETURN_IF_ERROR(replay_ready(ready, cache, visitor, stats));
  if (!txn.empty() || assembler.has_partial()) ++stats.transactions_dropped;

  JournalResume& resume = result.resume;
  resume.tail = tail;
  resume.head_seq = seq;
  resume.next_lsn = assembler.next_lsn();
  resume.prev_crc = prev_crc;
  resume.last_session = session;
  resume.next_txn = max_txn + 1;
  return result;
}

}  // namespace thinp::journal
