#include "engine/journal/recovery.h"

#include <algorithm>
#include <map>
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

// Replay state shared by all transactions of one recovery.
struct Replay {
  cache::BlockCache& cache;
  RecordVisitor& visitor;
  RecoveryStats& stats;
  // Pages that failed verification at a partial PageWrite. Such a page is
  // rebuilt by a later full-page image (see "Torn pages" in journal.cc): a
  // write-back torn by the crash is always followed, in the log, by the
  // full image that began its dirty period. Partial records before that
  // image are already inside it and are skipped. A page still waiting at the
  // end of the log is corrupt beyond what the journal can repair.
  std::map<MBlock, Lsn> awaiting_image;
};

Status replay_page_write(Replay& r, const PageWrite& w, Lsn lsn) {
  auto waiting = r.awaiting_image.find(w.block);
  if (waiting != r.awaiting_image.end()) {
    if (!w.init) {
      ++r.stats.pages_already_current;
      return ok_status();
    }
    r.awaiting_image.erase(waiting);
  }
  Result<cache::PageRef> page = r.cache.pin_for_redo(w.block, w.page_type, w.init);
  if (!page.ok()) {
    if (page.status().code() != Errc::corruption || w.init) return page.status();
    r.awaiting_image.emplace(w.block, lsn);
    ++r.stats.pages_already_current;
    return ok_status();
  }
  if (lsn > page->page_lsn()) {
    r.cache.apply_write(*page, w.offset, w.bytes, lsn, w.init);
    ++r.stats.pages_redone;
  } else {
    ++r.stats.pages_already_current;
  }
  return ok_status();
}

Status replay_transaction(Replay& r, const LsnRecords& txn) {
  for (const auto& [lsn, record] : txn) {
    if (const auto* w = std::get_if<PageWrite>(&record)) {
      TP_RETURN_IF_ERROR(replay_page_write(r, *w, lsn));
    } else {
      TP_RETURN_IF_ERROR(r.visitor.apply(record, lsn)
                             .with_context("replaying LSN " + std::to_string(lsn.value())));
    }
    ++r.stats.records_replayed;
  }
  ++r.stats.transactions_replayed;
  return ok_status();
}

// Reads the ring sequentially, a chunk of blocks at a time.
class RingReader {
 public:
  RingReader(BlockDevice& device, RingGeometry ring, uint64_t chunk_blocks, uint64_t end_seq)
      : device_(device),
        ring_(ring),
        chunk_(chunk_blocks * kMetadataBlockBytes),
        chunk_blocks_(chunk_blocks),
        end_seq_(end_seq) {}

  bool holds(uint64_t seq) const { return seq >= first_ && seq < first_ + count_; }

  // The bytes of block `seq`; blocks are asked for in increasing order.
  Result<std::span<const std::byte>> block(uint64_t seq, RecoveryStats& stats) {
    if (seq < first_ || seq >= first_ + count_) {
      const uint64_t n = std::min(
          {chunk_blocks_, ring_.length_blocks - seq % ring_.length_blocks, end_seq_ - seq});
      TP_ASSERT_GT(n, 0u);
      std::span<std::byte> dst = chunk_.span().subspan(0, n * kMetadataBlockBytes);
      ++stats.reads;
      TP_RETURN_IF_ERROR(device_.read(ring_.location_of(seq).value() * kMetadataBlockBytes, dst)
                             .with_context("reading the journal"));
      first_ = seq;
      count_ = n;
    }
    return std::span<const std::byte>(
        chunk_.span().subspan((seq - first_) * kMetadataBlockBytes, kMetadataBlockBytes));
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
Status replay_ready(Replay& r, std::vector<LsnRecords>& ready) {
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
  r.cache.prefetch(pages);
  for (const LsnRecords& txn : ready) TP_RETURN_IF_ERROR(replay_transaction(r, txn));
  ready.clear();
  return ok_status();
}

}  // namespace

Result<JournalPosition> locate_tail(BlockDevice& device, RingGeometry ring, MBlock tail_block,
                                    Lsn tail_lsn) {
  if (tail_block < ring.start || tail_block.value() >= (ring.start + ring.length_blocks).value() ||
      tail_lsn == Lsn(0)) {
    return Status(Errc::corruption, "superblock: journal tail block " +
                                        std::to_string(tail_block.value()) + " (LSN " +
                                        std::to_string(tail_lsn.value()) + ") is not in the ring");
  }
  const uint64_t slot = tail_block - ring.start;
  AlignedBuffer block(kMetadataBlockBytes);
  TP_RETURN_IF_ERROR(device.read(tail_block.value() * kMetadataBlockBytes, block.span())
                         .with_context("reading the journal tail"));
  Result<ParsedJournalBlock> parsed = parse_journal_block(block.span(), tail_block);
  if (parsed.ok() && parsed->header.first_lsn == tail_lsn &&
      parsed->header.seq % ring.length_blocks == slot) {
    return JournalPosition{parsed->header.seq, tail_lsn};
  }
  // Empty at the tail: outrank every block in the ring.
  uint64_t max_seq = 0;
  bool any = false;
  constexpr uint64_t kChunk = 64;
  AlignedBuffer chunk(kChunk * kMetadataBlockBytes);
  for (uint64_t first = 0; first < ring.length_blocks; first += kChunk) {
    const uint64_t n = std::min(kChunk, ring.length_blocks - first);
    TP_RETURN_IF_ERROR(device
                           .read((ring.start + first).value() * kMetadataBlockBytes,
                                 chunk.span().first(n * kMetadataBlockBytes))
                           .with_context("scanning the journal"));
    for (uint64_t i = 0; i < n; ++i) {
      auto b = chunk.span().subspan(i * kMetadataBlockBytes, kMetadataBlockBytes);
      Result<ParsedJournalBlock> p = parse_journal_block(b, ring.start + (first + i));
      if (!p.ok() || p->header.seq % ring.length_blocks != first + i) continue;
      max_seq = any ? std::max(max_seq, p->header.seq) : p->header.seq;
      any = true;
    }
  }
  if (!any) return JournalPosition{slot, tail_lsn};
  const uint64_t lap = (max_seq + 1 + ring.length_blocks - 1 - slot) / ring.length_blocks;
  return JournalPosition{lap * ring.length_blocks + slot, tail_lsn};
}

namespace {

// The block-by-block acceptance rules of the scan (see recovery.h). Holds the
// chain state: the previous block's checksum and session, and the record
// assembler.
class LogScanner {
 public:
  explicit LogScanner(Lsn tail_lsn) : assembler_(tail_lsn) {}

  // Checks block `seq`. If it is accepted, appends its complete records to
  // `out`, tells whether it starts a new session, and returns true;
  // otherwise says why in `end_reason` and returns false, changing nothing.
  bool accept(uint64_t seq, const ParsedJournalBlock& block, LsnRecords& out, bool& new_session,
              std::string& end_reason) {
    const JournalBlockHeader& h = block.header;
    if (h.seq != seq) {
      end_reason = "journal block at sequence " + std::to_string(seq) + " holds sequence " +
                   std::to_string(h.seq) + " (an earlier lap)";
      return false;
    }
    if (have_prev_ && h.prev_crc != prev_crc_) {
      end_reason = "journal block " + std::to_string(seq) + " does not chain to its predecessor";
      return false;
    }
    // Work on a copy, so that a block that turns out bad changes nothing.
    RecordAssembler trial = assembler_;
    new_session = have_prev_ && h.session != session_;
    if (new_session) trial.restart(trial.next_lsn());
    out.clear();
    if (Status s = trial.add_block(block, out); !s.ok()) {
      end_reason = s.message();
      return false;
    }
    assembler_ = std::move(trial);
    have_prev_ = true;
    session_ = h.session;
    prev_crc_ = block.crc;
    return true;
  }

  const RecordAssembler& assembler() const { return assembler_; }
  uint32_t prev_crc() const { return prev_crc_; }
  uint64_t session() const { return session_; }
  bool any_accepted() const { return have_prev_; }

 private:
  RecordAssembler assembler_;
  bool have_prev_ = false;
  uint64_t session_ = 0;
  uint32_t prev_crc_ = 0;
};

// The scan stopped at block `stop` (it failed a check: `why`). A torn tail
// can only damage the batch that was in flight at the crash, and the journal
// has one batch in flight at a time (journal.h, "Group commit": the next
// batch is written only once the previous one is durable). So if a block
// after `stop` verifies, holds its own sequence number, belongs to the
// session of the last accepted block and to a batch that starts after
// `stop`, that batch was written after `stop`'s batch was durable: `stop` is
// not a torn tail but a damaged durable block, and ending the log there
// would silently drop commits that were acknowledged. That is corruption.
// A block of another session (a stale block a crashed session left beyond
// the end its recovery found) proves nothing and is skipped.
Status check_log_end(RingReader& reader, RingGeometry ring, uint64_t stop, uint64_t end_limit,
                     const LogScanner& scanner, const std::string& why, RecoveryStats& stats) {
  if (!scanner.any_accepted()) return ok_status();  // no session to compare with
  for (uint64_t seq = stop + 1; seq < end_limit; ++seq) {
    TP_ASSIGN_OR_RETURN(std::span<const std::byte> bytes, reader.block(seq, stats));
    Result<ParsedJournalBlock> p = parse_journal_block(bytes, ring.location_of(seq));
    if (!p.ok() || p->header.seq != seq || p->header.session != scanner.session()) continue;
    if (p->header.batch_first_seq() <= stop) continue;  // same batch: possibly torn
    return Status(Errc::corruption,
                  "recovery: journal block " + std::to_string(stop) + " (metadata block " +
                      std::to_string(ring.location_of(stop).value()) + ") is damaged (" + why +
                      ") but the later durable block " + std::to_string(seq) +
                      " of the same session shows it is not a torn tail; commits after it would "
                      "be lost");
  }
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
  LogScanner scanner(tail.lsn);
  Replay replay{cache, visitor, stats, {}};
  LsnRecords txn;  // the open transaction
  LsnRecords block_records;
  std::vector<LsnRecords> ready;  // committed, not yet replayed
  uint64_t seq = tail.seq;
  uint64_t max_txn = 0;
  stats.end_reason = "scanned one full lap of the ring";
  while (seq < end_limit) {
    if (!reader.holds(seq)) TP_RETURN_IF_ERROR(replay_ready(replay, ready));
    TP_ASSIGN_OR_RETURN(std::span<const std::byte> bytes, reader.block(seq, stats));
    Result<ParsedJournalBlock> parsed = parse_journal_block(bytes, ring.location_of(seq));
    if (!parsed.ok()) {
      stats.end_reason = parsed.status().message();
      break;
    }
    bool new_session = false;
    if (!scanner.accept(seq, *parsed, block_records, new_session, stats.end_reason)) break;
    if (new_session && !txn.empty()) {  // left open by a crashed session
      ++stats.transactions_dropped;
      txn.clear();
    }
    ++seq;
    ++stats.blocks_scanned;
    gate.durable = scanner.assembler().next_lsn() - 1;
    for (auto& [lsn, record] : block_records) {
      const Commit* commit = std::get_if<Commit>(&record);
      if (commit != nullptr) max_txn = std::max(max_txn, commit->txn);
      txn.emplace_back(lsn, std::move(record));
      if (commit == nullptr) continue;
      result.last_committed_lsn = lsn;
      ready.push_back(std::move(txn));
      txn.clear();
    }
  }
  if (seq < end_limit) {
    TP_RETURN_IF_ERROR(
        check_log_end(reader, ring, seq, end_limit, scanner, stats.end_reason, stats));
  }
  TP_RETURN_IF_ERROR(replay_ready(replay, ready));
  if (!replay.awaiting_image.empty()) {
    const auto& [block, lsn] = *replay.awaiting_image.begin();
    return Status(Errc::corruption,
                  "recovery: metadata block " + std::to_string(block.value()) +
                      " does not verify and the journal holds no full image of it after LSN " +
                      std::to_string(lsn.value()));
  }
  if (!txn.empty() || scanner.assembler().has_partial()) ++stats.transactions_dropped;

  result.resume = JournalResume{
      tail,       seq, scanner.assembler().next_lsn(), scanner.prev_crc(), scanner.session(),
      max_txn + 1};
  return result;
}

}  // namespace thinp::journal
