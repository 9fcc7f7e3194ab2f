#include "engine/cache/block_cache.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace thinp::cache {

// --- PageRef -------------------------------------------------------------------

PageRef& PageRef::operator=(PageRef&& o) noexcept {
  if (this != &o) {
    reset();
    cache_ = o.cache_;
    frame_ = o.frame_;
    o.cache_ = nullptr;
    o.frame_ = nullptr;
  }
  return *this;
}

PageRef PageRef::clone() const {
  TP_ASSERT(frame_ != nullptr);
  ++frame_->pins;
  return PageRef(cache_, frame_);
}

void PageRef::reset() {
  if (frame_ == nullptr) return;
  cache_->unpin(frame_);
  frame_ = nullptr;
  cache_ = nullptr;
}

MBlock PageRef::block() const { return frame_->block; }
BlockType PageRef::type() const { return frame_->type; }
Lsn PageRef::page_lsn() const { return frame_->page_lsn; }
bool PageRef::dirty() const { return frame_->dirty; }
std::span<const std::byte> PageRef::bytes() const { return frame_->buf.span(); }

// --- BlockCache ----------------------------------------------------------------

BlockCache::BlockCache(Runtime& rt, BlockDevice& device, BlockCacheOptions options)
    : rt_(rt),
      device_(device),
      options_(options),
      mu_(rt, "block-cache"),
      changed_(rt, "block-cache page busy or all pinned") {
  TP_ASSERT_GT(options_.capacity_pages, 0u);
  TP_ASSERT_GT(options_.max_parallel_writes, 0u);
  frames_.reserve(options_.capacity_pages);
}

BlockCache::~BlockCache() = default;

void BlockCache::unpin(Frame* f) {
  // Runs from destructors too (also while a crashed simulation unwinds), so
  // it must not suspend: no mutex here.
  TP_ASSERT_GT(f->pins, 0u);
  if (--f->pins == 0) changed_.notify_all();
}

size_t BlockCache::dirty_pages() const {
  size_t n = 0;
  for (const auto& [block, f] : index_) n += f->dirty ? 1 : 0;
  return n;
}

Result<PageRef> BlockCache::pin(MBlock block, BlockType expected) {
  return pin_impl(block, expected, Miss::verify);
}

Result<PageRef> BlockCache::pin_new(MBlock block, BlockType type) {
  return pin_impl(block, type, Miss::fresh);
}

Result<PageRef> BlockCache::pin_for_redo(MBlock block, BlockType type, bool init) {
  return pin_impl(block, type, init ? Miss::init_on_failure : Miss::verify);
}

Result<PageRef> BlockCache::pin_impl(MBlock block, BlockType type, Miss miss) {
  mu_.lock();
  for (;;) {
    auto it = index_.find(block);
    if (it != index_.end()) {
      Frame* f = it->second;
      if (f->loading) {
        changed_.wait(mu_);
        continue;
      }
      if (miss == Miss::fresh) {
        // A reused block: its old contents (dirty or not) are replaced. The
        // page LSN stays, so later records still order after earlier ones.
        TP_ASSERT_EQ(f->pins, 0u);
        std::memset(f->buf.data(), 0, kMetadataBlockBytes);
        f->type = type;
      } else if (f->type != type && miss == Miss::init_on_failure) {
        // Redo of a page reused with another type: rebuilt from zeros.
        std::memset(f->buf.data(), 0, kMetadataBlockBytes);
        f->type = type;
      } else if (f->type != type) {
        mu_.unlock();
        return Status(Errc::corruption, "cached metadata block " + std::to_string(block.value()) +
                                            " is a " + std::string(block_type_name(f->type)) +
                                            " page, expected " +
                                            std::string(block_type_name(type)));
      }
      ++f->pins;
      f->last_use = ++clock_;
      ++stats_.hits;
      mu_.unlock();
      return PageRef(this, f);
    }
    Status error;
    Frame* f = take_free_frame_locked(error);
    if (!error.ok()) {
      mu_.unlock();
      return error;
    }
    if (f == nullptr) continue;  // waited or wrote back: look again
    f->block = block;
    f->type = type;
    f->page_lsn = Lsn(0);
    f->rec_lsn = Lsn(0);
    f->dirty = false;
    f->writing = false;
    f->resident = true;
    f->loading = miss != Miss::fresh;
    f->pins = 1;
    f->last_use = ++clock_;
    index_[block] = f;
    ++stats_.misses;
    if (miss == Miss::fresh) std::memset(f->buf.data(), 0, kMetadataBlockBytes);
    mu_.unlock();
    if (miss == Miss::fresh) return PageRef(this, f);
    return load(f, miss);
  }
}

Result<PageRef> BlockCache::load(Frame* f, Miss miss) {
  ++stats_.reads;
  Status s = device_.read(f->block.value() * kMetadataBlockBytes, f->buf.span());
  if (s.ok()) s = verify_block(f->buf.span(), f->type, f->block);
  if (!s.ok() && s.code() == Errc::corruption && miss == Miss::init_on_failure) {
    std::memset(f->buf.data(), 0, kMetadataBlockBytes);
    s = ok_status();
  } else if (s.ok()) {
    f->page_lsn = peek_block_header(f->buf.span()).lsn;
  }
  f->loading = false;
  changed_.notify_all();
  if (!s.ok()) {
    // Nobody else could pin the page while it loaded: drop it.
    TP_ASSERT_EQ(f->pins, 1u);
    f->pins = 0;
    f->resident = false;
    index_.erase(f->block);
    free_.push_back(f);
    return s.with_context("reading metadata block " + std::to_string(f->block.value()));
  }
  return PageRef(this, f);
}

Frame* BlockCache::take_clean_frame_locked() {
  if (!free_.empty()) {
    Frame* f = free_.back();
    free_.pop_back();
    return f;
  }
  if (frames_.size() < options_.capacity_pages) {
    frames_.push_back(std::make_unique<Frame>());
    return frames_.back().get();
  }
  Frame* clean = nullptr;
  for (const auto& up : frames_) {
    Frame* f = up.get();
    if (!f->resident || f->pins > 0 || f->loading || f->writing || f->dirty) continue;
    if (clean == nullptr || f->last_use < clean->last_use) clean = f;
  }
  if (clean == nullptr) return nullptr;
  index_.erase(clean->block);
  clean->resident = false;
  ++stats_.evictions;
  return clean;
}

Frame* BlockCache::take_free_frame_locked(Status& error) {
  if (Frame* f = take_clean_frame_locked(); f != nullptr) return f;
  Frame* dirty = nullptr;
  for (const auto& up : frames_) {
    Frame* f = up.get();
    if (!f->resident || f->pins > 0 || f->loading || f->writing) continue;
    TP_ASSERT(f->dirty);
    if (dirty == nullptr || f->last_use < dirty->last_use) dirty = f;
  }
  if (dirty != nullptr) {
    // Write the least recently used dirty page back, then look again.
    mu_.unlock();
    error = write_back_frames({dirty});
    mu_.lock();
    return nullptr;
  }
  changed_.wait(mu_);  // every page is pinned or busy
  return nullptr;
}

void BlockCache::prefetch(std::span<const PrefetchPage> pages) {
  std::vector<Frame*> loading;
  std::vector<bool> init;
  mu_.lock();
  for (const auto& [block, type, init_on_failure] : pages) {
    if (index_.count(block) != 0) continue;
    Frame* f = take_clean_frame_locked();
    if (f == nullptr) break;
    f->block = block;
    f->type = type;
    f->page_lsn = Lsn(0);
    f->rec_lsn = Lsn(0);
    f->dirty = false;
    f->writing = false;
    f->resident = true;
    f->loading = true;
    f->pins = 1;  // not evictable by the rest of this loop
    f->last_use = ++clock_;
    index_[block] = f;
    loading.push_back(f);
    init.push_back(init_on_failure);
  }
  mu_.unlock();
  if (loading.empty()) return;
  std::vector<IoRequest> reqs(loading.size());
  std::vector<Status> statuses(loading.size());
  WaitGroup done(rt_, "metadata prefetch");
  for (size_t i = 0; i < loading.size(); ++i) {
    reqs[i].op = IoOp::read;
    reqs[i].offset_bytes = loading[i]->block.value() * kMetadataBlockBytes;
    reqs[i].length_bytes = kMetadataBlockBytes;
    reqs[i].data = loading[i]->buf.data();
    reqs[i].on_complete = [&statuses, &done, i](Status st) {
      statuses[i] = std::move(st);
      done.done();
    };
    done.add();
  }
  for (IoRequest& r : reqs) device_.submit(&r);
  stats_.reads += reqs.size();
  done.wait();
  for (size_t i = 0; i < loading.size(); ++i) {
    Frame* f = loading[i];
    if (statuses[i].ok()) statuses[i] = verify_block(f->buf.span(), f->type, f->block);
    f->loading = false;
    f->pins = 0;
    if (statuses[i].ok()) {
      f->page_lsn = peek_block_header(f->buf.span()).lsn;
    } else if (statuses[i].code() == Errc::corruption && init[i]) {
      std::memset(f->buf.data(), 0, kMetadataBlockBytes);
    } else {
      f->resident = false;
      index_.erase(f->block);
      free_.push_back(f);
    }
  }
  changed_.notify_all();
}

void BlockCache::apply_write(const PageRef& page, uint16_t offset, std::span<const std::byte> bytes,
                             Lsn lsn, bool init) {
  TP_ASSERT(page);
  Frame* f = page.frame_;
  TP_ASSERT_LE(size_t(offset) + bytes.size(), kMetadataBlockBytes - kBlockHeaderBytes);
  TP_ASSERT_GT(lsn, f->page_lsn);
  if (init)
    std::memset(f->buf.data() + kBlockHeaderBytes, 0, kMetadataBlockBytes - kBlockHeaderBytes);
  std::memcpy(f->buf.data() + kBlockHeaderBytes + offset, bytes.data(), bytes.size());
  mark_dirty(page, lsn);
}

void BlockCache::mark_dirty(const PageRef& page, Lsn lsn) {
  TP_ASSERT(page);
  TP_ASSERT_MSG(gate_ != nullptr, "block cache has no WAL gate");
  Frame* f = page.frame_;
  TP_ASSERT_GT(lsn, Lsn(0));
  TP_ASSERT_GE(lsn, f->page_lsn);
  if (!f->dirty) {
    f->dirty = true;
    f->rec_lsn = lsn;
  }
  f->page_lsn = lsn;
}

Result<size_t> BlockCache::write_back_durable() {
  TP_ASSERT(gate_ != nullptr);
  std::vector<Frame*> frames;
  const Lsn durable = gate_->durable_lsn();
  for (const auto& [block, f] : index_) {
    if (f->dirty && !f->writing && !f->loading && f->page_lsn <= durable) frames.push_back(f);
  }
  const size_t n = frames.size();
  TP_RETURN_IF_ERROR(write_back_frames(std::move(frames)));
  return n;
}

// Writes `frames` back in waves of max_parallel_writes. Each page's journal
// records are made durable first (the write-ahead rule); a page that changed
// again meanwhile is written with its newer LSN if that is durable too, and
// otherwise left dirty for a later pass.
Status BlockCache::write_back_frames(std::vector<Frame*> frames) {
  TP_ASSERT(gate_ != nullptr);
  Lsn max_lsn;
  for (Frame* f : frames) max_lsn = std::max(max_lsn, f->page_lsn);
  if (gate_->durable_lsn() < max_lsn) TP_RETURN_IF_ERROR(gate_->make_durable(max_lsn));

  struct Job {
    Frame* frame;
    Lsn lsn;
    Lsn rec_lsn;
    AlignedBuffer copy{kMetadataBlockBytes};
    IoRequest req;
    Status status;
  };
  Status first_error;
  for (size_t begin = 0; begin < frames.size(); begin += options_.max_parallel_writes) {
    const size_t end = std::min(frames.size(), begin + options_.max_parallel_writes);
    std::vector<std::unique_ptr<Job>> jobs;
    WaitGroup done(rt_, "metadata write-back");
    for (size_t i = begin; i < end; ++i) {
      Frame* f = frames[i];
      // Re-check: the wait for durability may have let the page change.
      if (!f->resident || !f->dirty || f->writing || f->loading) continue;
      if (f->page_lsn > gate_->durable_lsn()) continue;
      auto job = std::make_unique<Job>();
      job->frame = f;
      job->lsn = f->page_lsn;
      job->rec_lsn = f->rec_lsn;
      std::memcpy(job->copy.data(), f->buf.data(), kMetadataBlockBytes);
      seal_block(job->copy.span(), f->type, f->block, job->lsn);
      // The write-ahead rule, at the write site: the records that produced
      // this image are durable.
      TP_ASSERT_LE(job->lsn, gate_->durable_lsn());
      f->writing = true;
      Job* j = job.get();
      j->req.op = IoOp::write;
      j->req.offset_bytes = f->block.value() * kMetadataBlockBytes;
      j->req.length_bytes = kMetadataBlockBytes;
      j->req.data = j->copy.data();
      j->req.on_complete = [j, &done](Status s) {
        j->status = std::move(s);
        done.done();
      };
      done.add();
      jobs.push_back(std::move(job));
    }
    for (auto& j : jobs) device_.submit(&j->req);
    done.wait();
    for (auto& j : jobs) {
      Frame* f = j->frame;
      f->writing = false;
      ++stats_.write_backs;
      if (!j->status.ok()) {
        if (first_error.ok())
          first_error = j->status.with_context("writing back metadata block " +
                                               std::to_string(f->block.value()));
        continue;
      }
      auto [it, inserted] = unflushed_.emplace(f->block, j->rec_lsn);
      if (!inserted) it->second = std::min(it->second, j->rec_lsn);
      if (f->page_lsn == j->lsn) {
        f->dirty = false;
        f->rec_lsn = Lsn(0);
      }
    }
    changed_.notify_all();
  }
  return first_error;
}

Status BlockCache::flush_device() {
  std::map<MBlock, Lsn> covered;
  covered.swap(unflushed_);
  ++stats_.flushes;
  Status s = device_.flush();
  if (!s.ok()) {
    for (const auto& [block, lsn] : covered) {
      auto [it, inserted] = unflushed_.emplace(block, lsn);
      if (!inserted) it->second = std::min(it->second, lsn);
    }
  }
  return s;
}

std::optional<Lsn> BlockCache::oldest_needed_lsn() const {
  std::optional<Lsn> oldest;
  auto consider = [&](Lsn l) {
    if (!oldest || l < *oldest) oldest = l;
  };
  for (const auto& [block, f] : index_) {
    if (f->dirty) consider(f->rec_lsn);
  }
  for (const auto& [block, lsn] : unflushed_) consider(lsn);
  return oldest;
}

}  // namespace thinp::cache
