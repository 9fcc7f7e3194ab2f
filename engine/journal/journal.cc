#include "engine/journal/journal.h"

#include <algorithm>
#include <set>
#include <string>

namespace thinp::journal {

// --- Transaction -----------------------------------------------------------------

void Transaction::write_page(const cache::PageRef& page, uint16_t offset,
                             std::span<const std::byte> bytes, bool init) {
  TP_ASSERT(page);
  TP_ASSERT(!bytes.empty());
  TP_ASSERT_LE(size_t(offset) + bytes.size(), kPagePayloadBytes);
  PageWrite w;
  w.block = page.block();
  w.offset = offset;
  w.bytes.assign(bytes.begin(), bytes.end());
  w.page_type = page.type();
  w.init = init;
  records_.emplace_back(std::move(w));
  pages_.push_back(page.clone());
}

void Transaction::add(Record record) {
  TP_ASSERT(!std::holds_alternative<PageWrite>(record));
  TP_ASSERT(!std::holds_alternative<Commit>(record));
  records_.push_back(std::move(record));
  pages_.emplace_back();
}

// --- Journal -----------------------------------------------------------------------

Journal::Journal(Runtime& rt, BlockDevice& device, RingGeometry ring, cache::BlockCache& cache,
                 JournalOptions options, const JournalResume& resume)
    : rt_(rt),
      device_(device),
      ring_(ring),
      cache_(cache),
      options_(options),
      session_(rt.random().next_u64()),
      mu_(rt, "journal"),
      changed_(rt, "journal commit durable or space freed"),
      tail_(resume.tail),
      head_seq_(resume.head_seq),
      prev_crc_(resume.prev_crc),
      next_lsn_(resume.next_lsn),
      written_next_lsn_(resume.next_lsn),
      durable_lsn_(resume.next_lsn - 1),
      next_txn_(resume.next_txn) {
  TP_ASSERT_GE(ring_.length_blocks, 8u);
  TP_ASSERT_LE((ring_.start + ring_.length_blocks).value() * kMetadataBlockBytes,
               device.size_bytes());
  TP_ASSERT_LE(tail_.seq, head_seq_);
  TP_ASSERT_LE(head_seq_ - tail_.seq, ring_.length_blocks);
  TP_ASSERT_GT(resume.next_lsn, Lsn(0));
  if (session_ == resume.last_session) ++session_;
  if (options_.max_transaction_blocks == 0) {
    options_.max_transaction_blocks = ring_.length_blocks / 2;
  }
  // What recovery found between the tail and the head is one extent: it can
  // only be released as a whole, by the first checkpoint.
  if (head_seq_ > tail_.seq) {
    extents_.push_back(Extent{tail_.seq, head_seq_, tail_.lsn, resume.next_lsn - 1});
  }
  cache_.set_wal_gate(this);
}

Journal::~Journal() {
  if (cache_.wal_gate() == this) cache_.set_wal_gate(nullptr);
}

// Torn pages. A page write-back can tear (sector granularity), and only the
// records since the tail are replayed, so the first record that makes a
// clean page dirty carries the whole page payload (init: recovery rebuilds
// the page from it without reading the old one). A torn write-back is then
// always repaired: its page stays dirty, or unflushed, and holds the tail at
// or before that full image until a FLUSH has made the write-back durable.
Result<Lsn> Journal::commit(Transaction& txn) {
  TP_ASSIGN_OR_RETURN(const Lsn commit_lsn, stage(txn));
  TP_RETURN_IF_ERROR(make_durable(commit_lsn));
  return commit_lsn;
}

Result<Lsn> Journal::stage(Transaction& txn) {
  TP_ASSERT_NE(rt_.current_task(), kNoTask);
  if (!failed_.ok()) return failed_;
  const uint64_t records = txn.records_.size() + 1;  // and the Commit record
  // The first write of each page may be widened to a full page image.
  uint64_t bound_bytes = encoded_record_bytes(Commit{});
  std::set<MBlock> pages;
  for (const Record& r : txn.records_) {
    const auto* w = std::get_if<PageWrite>(&r);
    const bool first_of_page = w != nullptr && pages.insert(w->block).second;
    bound_bytes += first_of_page ? kMaxEncodedRecordBytes : encoded_record_bytes(r);
  }
  const uint64_t need = JournalBlockPacker::blocks_needed_bound(bound_bytes, records);
  if (need > options_.max_transaction_blocks) {
    txn = Transaction();
    return Status(Errc::invalid_argument, "journal: transaction of " + std::to_string(records) +
                                              " records needs " + std::to_string(need) +
                                              " blocks; the limit is " +
                                              std::to_string(options_.max_transaction_blocks));
  }
  Status reserved = reserve_space(need);
  if (!reserved.ok()) {
    txn = Transaction();
    return reserved;
  }
  // From here to the wait nothing suspends: the LSNs handed out, the staged
  // bytes and the cache's page LSNs change together.
  Staged s;
  s.first = next_lsn_;
  s.last = next_lsn_ + (records - 1);
  next_lsn_ = s.last + 1;
  s.reserved_blocks = need;
  for (size_t i = 0; i < txn.records_.size(); ++i) {
    Record& r = txn.records_[i];
    if (auto* w = std::get_if<PageWrite>(&r)) {
      const cache::PageRef& page = txn.pages_[i];
      const bool was_clean = !page.dirty();
      cache_.apply_write(page, w->offset, w->bytes, s.first + i, w->init);
      if (was_clean) {
        w->offset = 0;
        w->bytes.assign(page.payload().begin(), page.payload().end());
        w->init = true;
        ++stats_.full_page_images;
      }
    } else if (applier_) {
      applier_(r, s.first + i);
    }
    encode_record(r, s.encoded);
    s.ends.push_back(static_cast<uint32_t>(s.encoded.size()));
  }
  const Commit commit{next_txn_++};
  if (applier_) applier_(Record(commit), s.last);
  encode_record(commit, s.encoded);
  s.ends.push_back(static_cast<uint32_t>(s.encoded.size()));
  const Lsn commit_lsn = s.last;
  staged_.push_back(std::move(s));
  txn = Transaction();  // drops the pins
  ++stats_.commits;
  stats_.records += records;
  return commit_lsn;
}

// The mutex is taken and released by hand around the locked parts, never by
// a LockGuard: a simulated crash unwinds a task parked in CondVar::wait,
// which does not hold the mutex, and a guard would then release it anyway.
Status Journal::reserve_space(uint64_t blocks) {
  mu_.lock();
  Status s = reserve_space_locked(blocks);
  mu_.unlock();
  return s;
}

Status Journal::reserve_space_locked(uint64_t blocks) {
  while (used_blocks() + blocks > ring_.length_blocks) {
    if (!failed_.ok()) return failed_;
    ++stats_.space_waits;
    if (!reclaimer_ || reclaiming_) {
      changed_.wait(mu_);
      continue;
    }
    const JournalPosition before = tail_;
    reclaiming_ = true;
    ++stats_.reclaims;
    mu_.unlock();
    Status s = reclaimer_();
    mu_.lock();
    reclaiming_ = false;
    changed_.notify_all();
    if (!s.ok()) return s.with_context("journal: reclaiming ring space");
    if (tail_ == before && used_blocks() + blocks > ring_.length_blocks && staged_.empty() &&
        !writing_) {
      return Status(Errc::no_space, "journal: a checkpoint freed no space in the ring of " +
                                        std::to_string(ring_.length_blocks) + " blocks");
    }
  }
  if (!failed_.ok()) return failed_;
  reserved_blocks_ += blocks;
  return ok_status();
}

Status Journal::make_durable(Lsn lsn) {
  TP_ASSERT_NE(rt_.current_task(), kNoTask);
  TP_ASSERT_LT(lsn, next_lsn_);
  if (durable_lsn_ >= lsn) return ok_status();
  mu_.lock();
  Status s = make_durable_locked(lsn);
  mu_.unlock();
  return s;
}

Status Journal::make_durable_locked(Lsn lsn) {
  while (durable_lsn_ < lsn && failed_.ok()) {
    if (writing_ || staged_.empty()) {
      // A batch is in flight (ours is in it or in the next one).
      TP_ASSERT(writing_);
      changed_.wait(mu_);
      continue;
    }
    // Lead: write everything staged so far as one batch.
    std::deque<Staged> batch;
    batch.swap(staged_);
    writing_ = true;
    mu_.unlock();
    Status s = write_batch(std::move(batch));
    mu_.lock();
    writing_ = false;
    if (!s.ok() && failed_.ok()) failed_ = s;
    changed_.notify_all();
  }
  return durable_lsn_ >= lsn ? ok_status() : failed_;
}

// Packs `batch` into fresh blocks at the head, writes them, and on success
// makes their LSNs durable. Called by the leader with writing_ set.
Status Journal::write_batch(std::deque<Staged> batch) {
  TP_ASSERT(!batch.empty());
  uint64_t reserved = 0;
  for (const Staged& s : batch) reserved += s.reserved_blocks;
  const Lsn first = batch.front().first;
  const Lsn last = batch.back().last;
  TP_ASSERT_EQ(first, written_next_lsn_);
  AlignedBuffer buffer(reserved * kMetadataBlockBytes);
  JournalBlockPacker packer(buffer.span(), ring_, head_seq_, session_, prev_crc_, first);
  for (const Staged& s : batch) {
    uint32_t begin = 0;
    for (uint32_t end : s.ends) {
      packer.add(std::span(s.encoded).subspan(begin, end - begin));
      begin = end;
    }
  }
  const uint64_t blocks = packer.finish();
  TP_ASSERT_LE(blocks, reserved);
  const uint64_t first_seq = head_seq_;
  // The batch's blocks are accounted as used from now on; the unused part of
  // its reservation is returned.
  extents_.push_back(Extent{first_seq, first_seq + blocks, first, last});
  head_seq_ += blocks;
  reserved_blocks_ -= reserved;
  TP_ASSERT_LE(head_seq_ - tail_.seq, ring_.length_blocks);
  prev_crc_ = packer.last_crc();
  written_next_lsn_ = last + 1;
  ++stats_.batches;
  stats_.blocks_written += blocks;
  stats_.largest_batch_commits = std::max<uint64_t>(stats_.largest_batch_commits, batch.size());
  changed_.notify_all();

  TP_RETURN_IF_ERROR(write_blocks(first_seq, blocks, buffer));
  TP_ASSERT_LT(durable_lsn_, last);
  durable_lsn_ = last;
  return ok_status();
}

// Writes `count` blocks from `buffer` at ring positions first_seq, ... (two
// writes if they wrap the ring end), durably unless the test switch says not.
Status Journal::write_blocks(uint64_t first_seq, uint64_t count, AlignedBuffer& buffer) {
  const bool durable = !options_.unsafe_skip_durability;
  const bool fua = durable && options_.use_fua;
  const uint64_t slot = first_seq % ring_.length_blocks;
  const uint64_t first_part = std::min(count, ring_.length_blocks - slot);
  IoRequest reqs[2];
  const uint64_t parts = first_part == count ? 1 : 2;
  Status statuses[2];
  WaitGroup done(rt_, "journal write");
  for (uint64_t i = 0; i < parts; ++i) {
    const uint64_t skip = i == 0 ? 0 : first_part;
    const uint64_t n = i == 0 ? first_part : count - first_part;
    IoRequest& r = reqs[i];
    r.op = IoOp::write;
    r.fua = fua;
    r.offset_bytes = ring_.location_of(first_seq + skip).value() * kMetadataBlockBytes;
    r.length_bytes = n * kMetadataBlockBytes;
    r.data = buffer.data() + skip * kMetadataBlockBytes;
    r.on_complete = [&statuses, &done, i](Status s) {
      statuses[i] = std::move(s);
      done.done();
    };
    done.add();
  }
  for (uint64_t i = 0; i < parts; ++i) device_.submit(&reqs[i]);
  stats_.journal_writes += parts;
  done.wait();
  for (uint64_t i = 0; i < parts; ++i) {
    if (!statuses[i].ok()) return statuses[i].with_context("journal write");
  }
  if (durable && !fua) {
    ++stats_.journal_flushes;
    TP_RETURN_IF_ERROR(device_.flush().with_context("journal flush"));
  }
  return ok_status();
}

JournalPosition Journal::position_for(Lsn oldest_needed) const {
  for (const Extent& e : extents_) {
    if (e.last_lsn >= oldest_needed) return JournalPosition{e.first_seq, e.first_lsn};
  }
  return JournalPosition{head_seq_, written_next_lsn_};
}

void Journal::release_to(JournalPosition tail) {
  TP_ASSERT_GE(tail.seq, tail_.seq);
  TP_ASSERT_LE(tail.seq, head_seq_);
  TP_ASSERT_GE(tail.lsn, tail_.lsn);
  tail_ = tail;
  while (!extents_.empty() && extents_.front().end_seq <= tail.seq) extents_.pop_front();
  if (!extents_.empty()) TP_ASSERT_GE(tail.seq, extents_.front().first_seq);
  changed_.notify_all();
}

}  // namespace thinp::journal
