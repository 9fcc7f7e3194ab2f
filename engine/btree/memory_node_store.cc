#include "engine/btree/memory_node_store.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace thinp {

namespace {
std::string block_name(MBlock b) { return "m:" + std::to_string(b.value()); }
}  // namespace

Status MemoryNodeStore::check_allocated(MBlock block, const char* op) const {
  if (!counts_.contains(block)) {
    return Status(Errc::corruption, std::string(op) + " of unallocated block " + block_name(block));
  }
  return ok_status();
}

Status MemoryNodeStore::injected_failure(const char* op) {
  if (fail_after_ == UINT64_MAX) return ok_status();
  if (fail_after_ == 0) return Status(Errc::io_error, std::string("injected failure of ") + op);
  --fail_after_;
  return ok_status();
}

Result<MBlock> MemoryNodeStore::allocate(MBlock hint) {
  TP_RETURN_IF_ERROR(injected_failure("allocate"));
  if (counts_.size() >= blocks_max_) {
    return Status(Errc::no_space,
                  "metadata device full (" + std::to_string(blocks_max_) + " blocks)");
  }
  uint64_t b;
  auto it = free_.lower_bound(hint.value());
  if (it == free_.end()) it = free_.begin();
  if (it != free_.end()) {
    b = *it;
    free_.erase(it);
  } else {
    b = next_never_used_++;
  }
  counts_[MBlock(b)] = 1;
  pages_.erase(MBlock(b));
  ++cost_.meta_ref_deltas;
  if (log_) log_->push_back(journal::MetaRefDelta{MBlock(b), +1});
  return MBlock(b);
}

Result<PageRef> MemoryNodeStore::read(MBlock block, BlockType expected) {
  TP_RETURN_IF_ERROR(check_allocated(block, "read"));
  auto it = pages_.find(block);
  if (it == pages_.end()) {
    return Status(Errc::corruption, "read of never written block " + block_name(block));
  }
  TP_RETURN_IF_ERROR(verify_block(*it->second, expected, block));
  return it->second;
}

Status MemoryNodeStore::write(MBlock block, BlockType type, std::span<const std::byte> body) {
  TP_ASSERT_EQ(body.size(), kPageBodyBytes);
  TP_RETURN_IF_ERROR(injected_failure("write"));
  TP_RETURN_IF_ERROR(check_allocated(block, "write"));
  auto page = std::make_shared<Page>();
  std::memcpy(page->data() + kBlockHeaderBytes, body.data(), body.size());
  seal_block(*page, type, block, Lsn(++lsn_));

  // The record carries the changed byte range of the body (all of it for a
  // block's first write), as the cache adapter will log it.
  size_t first = 0, last = kPageBodyBytes;
  auto old = pages_.find(block);
  if (old != pages_.end()) {
    const std::span<const std::byte> before = page_body(*old->second);
    while (first < kPageBodyBytes && before[first] == body[first]) ++first;
    while (last > first && before[last - 1] == body[last - 1]) --last;
  }
  ++cost_.page_writes;
  cost_.page_write_bytes += last - first;
  if (log_) {
    journal::PageWrite w{block, uint16_t(first), {}};
    w.bytes.assign(body.begin() + first, body.begin() + last);
    w.page_type = type;
    w.init = old == pages_.end();  // a freshly allocated page: all of it is here
    log_->push_back(std::move(w));
  }
  pages_[block] = std::move(page);
  return ok_status();
}

Result<uint32_t> MemoryNodeStore::ref_count(MBlock block) {
  TP_RETURN_IF_ERROR(check_allocated(block, "ref_count"));
  return counts_[block];
}

Status MemoryNodeStore::inc_ref(MBlock block) {
  TP_RETURN_IF_ERROR(injected_failure("inc_ref"));
  TP_RETURN_IF_ERROR(check_allocated(block, "inc_ref"));
  uint32_t& c = counts_[block];
  if (c == UINT32_MAX) return Status(Errc::corruption, "refcount overflow on " + block_name(block));
  ++c;
  ++cost_.meta_ref_deltas;
  if (log_) log_->push_back(journal::MetaRefDelta{block, +1});
  return ok_status();
}

Result<bool> MemoryNodeStore::dec_ref(MBlock block) {
  TP_RETURN_IF_ERROR(injected_failure("dec_ref"));
  TP_RETURN_IF_ERROR(check_allocated(block, "dec_ref"));
  ++cost_.meta_ref_deltas;
  if (log_) log_->push_back(journal::MetaRefDelta{block, -1});
  auto it = counts_.find(block);
  if (--it->second > 0) return false;
  counts_.erase(it);
  pages_.erase(block);
  free_.insert(block.value());
  return true;
}

void MemoryNodeStore::corrupt_byte(MBlock block, size_t offset) {
  auto it = pages_.find(block);
  TP_ASSERT(it != pages_.end());
  TP_ASSERT_LT(offset, kMetadataBlockBytes);
  auto copy = std::make_shared<Page>(*it->second);
  (*copy)[offset] ^= std::byte{0x40};
  it->second = std::move(copy);
}

Status MemoryDataRefs::inc_range(DBlock begin, uint64_t length) {
  TP_ASSERT_GT(length, 0u);
  TP_RETURN_IF_ERROR(counts_.add(begin.value(), length, +1));
  ++cost_.data_range_deltas;
  if (log_) log_->push_back(journal::DataRangeRefDelta{begin, length, +1});
  return ok_status();
}

Status MemoryDataRefs::dec_range(DBlock begin, uint64_t length) {
  TP_ASSERT_GT(length, 0u);
  TP_RETURN_IF_ERROR(counts_.add(begin.value(), length, -1));
  ++cost_.data_range_deltas;
  if (log_) log_->push_back(journal::DataRangeRefDelta{begin, length, -1});
  return ok_status();
}

Result<uint32_t> MemoryDataRefs::max_ref_count(DBlock begin, uint64_t length) {
  return counts_.max_count(begin.value(), length);
}

Status MemoryDataRefs::allocate_range(DBlock begin, uint64_t length) {
  TP_ASSERT_GT(length, 0u);
  if (counts_.max_count(begin.value(), length) != 0) {
    return Status(Errc::invalid_argument,
                  "data range d:" + std::to_string(begin.value()) + " is already in use");
  }
  return counts_.add(begin.value(), length, +1);
}

}  // namespace thinp
