#include "engine/pool/metadata_txn.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace thinp::pool {
namespace {

std::string mname(MBlock b) { return "m:" + std::to_string(b.value()); }
std::string dname(DBlock b) { return "d:" + std::to_string(b.value()); }

Status corrupt(const std::string& what) { return Status(Errc::corruption, what); }

}  // namespace

MetadataTxnImpl::MetadataTxnImpl(const CommittedState& state)
    : state_(state), root_(state.root), transaction_id_(state.transaction_id), time_(state.time) {
  TP_ASSERT(state_.cache != nullptr && state_.meta != nullptr && state_.data != nullptr);
}

// A transaction is normally spent by commit() or abort(). It can also be
// destroyed staged when its task is unwound (a simulated crash kills every
// task): its reservations are then given back, so that the maps stay exact
// for whoever still looks at them. The store must outlive its transactions.
MetadataTxnImpl::~MetadataTxnImpl() {
  if (!done_) cancel();
}

void MetadataTxnImpl::set_device_tree_root(MBlock root) {
  root_ = root;
  roots_changed_ = true;
}

void MetadataTxnImpl::set_pool_time(SnapTime time) {
  time_ = time;
  roots_changed_ = true;
}

void MetadataTxnImpl::set_transaction_id(uint64_t id) {
  transaction_id_ = id;
  roots_changed_ = true;
}

// --- Metadata blocks ---------------------------------------------------------------

int64_t MetadataTxnImpl::meta_count(MBlock block) const {
  int64_t count = block.value() < state_.meta->nr_blocks() ? state_.meta->refcount(block) : 0;
  if (auto it = meta_delta_.find(block); it != meta_delta_.end()) count += it->second;
  return count;
}

Result<MBlock> MetadataTxnImpl::allocate(MBlock hint) {
  std::optional<MBlock> h;
  if (hint.value() != 0 && hint.value() < state_.meta->nr_blocks()) h = hint;
  TP_ASSIGN_OR_RETURN(journal::MetaRefDelta r, state_.meta->reserve(h));
  TP_ASSERT_EQ(r.delta, 1);
  meta_reserved_.insert(r.block);
  meta_delta_[r.block] += 1;
  pages_.erase(r.block);  // contents undefined until written
  records_.emplace_back(r);
  return r.block;
}

Result<thinp::PageRef> MetadataTxnImpl::read(MBlock block, BlockType expected) {
  if (meta_count(block) <= 0) return corrupt("read of unallocated metadata block " + mname(block));
  if (auto it = pages_.find(block); it != pages_.end()) {
    if (it->second.type != expected) {
      return corrupt("metadata block " + mname(block) + " is a " +
                     std::string(block_type_name(it->second.type)) + " page, expected " +
                     std::string(block_type_name(expected)));
    }
    return thinp::PageRef(it->second.page);
  }
  if (meta_reserved_.contains(block)) {
    return corrupt("read of never written metadata block " + mname(block));
  }
  TP_ASSIGN_OR_RETURN(cache::PageRef ref, state_.cache->pin(block, expected));
  auto page = std::make_shared<Page>();
  std::memcpy(page->data(), ref.bytes().data(), kMetadataBlockBytes);
  return thinp::PageRef(std::move(page));
}

Status MetadataTxnImpl::write(MBlock block, BlockType type, std::span<const std::byte> body) {
  TP_ASSERT_EQ(body.size(), kPageBodyBytes);
  if (meta_count(block) <= 0) {
    return corrupt("write of unallocated metadata block " + mname(block));
  }
  auto page = std::make_shared<Page>();
  std::memset(page->data(), 0, kBlockHeaderBytes);
  std::memcpy(page->data() + kBlockHeaderBytes, body.data(), body.size());
  pages_[block] = StagedPage{std::move(page), type};
  return ok_status();
}

Result<uint32_t> MetadataTxnImpl::ref_count(MBlock block) {
  const int64_t count = meta_count(block);
  if (count <= 0) return corrupt("ref_count of unallocated metadata block " + mname(block));
  return static_cast<uint32_t>(count);
}

Status MetadataTxnImpl::inc_ref(MBlock block) {
  const int64_t count = meta_count(block);
  if (count <= 0) return corrupt("inc_ref of unallocated metadata block " + mname(block));
  if (count >= int64_t(UINT32_MAX)) return corrupt("count of " + mname(block) + " overflows");
  meta_delta_[block] += 1;
  records_.emplace_back(journal::MetaRefDelta{block, +1});
  return ok_status();
}

Result<bool> MetadataTxnImpl::dec_ref(MBlock block) {
  const int64_t count = meta_count(block);
  if (count <= 0) return corrupt("dec_ref of unallocated metadata block " + mname(block));
  meta_delta_[block] -= 1;
  records_.emplace_back(journal::MetaRefDelta{block, -1});
  if (count == 1) {
    pages_.erase(block);
    return true;
  }
  return false;
}

// --- Data blocks ----------------------------------------------------------------------

Result<std::vector<journal::DataRangeAlloc>> MetadataTxnImpl::allocate_data(ThinId owner,
                                                                            uint64_t blocks) {
  if (blocks == 0) return Status(Errc::invalid_argument, "allocate_data of 0 blocks");
  TP_ASSIGN_OR_RETURN(std::vector<journal::DataRangeAlloc> runs,
                      state_.data->reserve(owner, blocks));
  adopt_data(runs);
  return runs;
}

void MetadataTxnImpl::adopt_data(const std::vector<journal::DataRangeAlloc>& runs) {
  for (const journal::DataRangeAlloc& r : runs) {
    data_reserved_.push_back(r);
    data_deltas_.push_back(journal::DataRangeRefDelta{r.begin, r.length, +1});
    records_.emplace_back(r);
  }
}

std::vector<MetadataTxnImpl::Piece> MetadataTxnImpl::staged_pieces(uint64_t begin,
                                                                   uint64_t length) const {
  const uint64_t end = begin + length;
  std::vector<uint64_t> cuts{begin, end};
  for (const auto& d : data_deltas_) {
    const uint64_t b = d.begin.value(), e = b + d.length;
    if (b > begin && b < end) cuts.push_back(b);
    if (e > begin && e < end) cuts.push_back(e);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  std::vector<Piece> pieces;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    Piece p{cuts[i], cuts[i + 1] - cuts[i], 0};
    for (const auto& d : data_deltas_) {
      if (d.begin.value() <= p.begin && p.begin < d.begin.value() + d.length) p.delta += d.delta;
    }
    pieces.push_back(p);
  }
  return pieces;
}

// Every block of the range must have a count >= need_after + (its staged
// delta) ... i.e. committed + staged >= need_after. Checked against the map
// with the equivalent committed-only bound.
Status MetadataTxnImpl::check_data_range(DBlock begin, uint64_t length, int64_t need_after) const {
  if (length == 0) return Status(Errc::invalid_argument, "data range of length 0");
  if (begin.value() >= state_.data->nr_blocks() ||
      length > state_.data->nr_blocks() - begin.value()) {
    return corrupt("data range " + dname(begin) + "+" + std::to_string(length) +
                   " is outside the data device");
  }
  for (const Piece& p : staged_pieces(begin.value(), length)) {
    const int64_t committed_min = need_after - p.delta;
    if (committed_min <= 0) continue;
    const journal::DataRangeRefDelta probe{DBlock(p.begin), p.length,
                                           static_cast<int32_t>(-committed_min)};
    Status s = state_.data->check(probe);
    if (!s.ok()) {
      return corrupt("data range " + dname(DBlock(p.begin)) + "+" + std::to_string(p.length) +
                     " is not in use: " + s.message());
    }
  }
  return ok_status();
}

Status MetadataTxnImpl::inc_range(DBlock begin, uint64_t length) {
  TP_RETURN_IF_ERROR(check_data_range(begin, length, 1));
  const journal::DataRangeRefDelta r{begin, length, +1};
  data_deltas_.push_back(r);
  records_.emplace_back(r);
  return ok_status();
}

Status MetadataTxnImpl::dec_range(DBlock begin, uint64_t length) {
  TP_RETURN_IF_ERROR(check_data_range(begin, length, 1));
  const journal::DataRangeRefDelta r{begin, length, -1};
  data_deltas_.push_back(r);
  records_.emplace_back(r);
  return ok_status();
}

Result<uint32_t> MetadataTxnImpl::max_ref_count(DBlock begin, uint64_t length) {
  if (length == 0 || begin.value() >= state_.data->nr_blocks() ||
      length > state_.data->nr_blocks() - begin.value()) {
    return corrupt("max_ref_count of a range outside the data device");
  }
  int64_t best = 0;
  for (const Piece& p : staged_pieces(begin.value(), length)) {
    best = std::max<int64_t>(
        best, int64_t(state_.data->max_refcount(DBlock(p.begin), p.length)) + p.delta);
  }
  return static_cast<uint32_t>(best);
}

// --- Handing over -------------------------------------------------------------------

Result<journal::Transaction> MetadataTxnImpl::build() {
  TP_ASSERT(!done_);
  // Every written page is pinned at once until the journal has it: more
  // than the cache holds would wait forever for an unpin.
  if (pages_.size() + 1 > state_.cache->capacity()) {
    return Status(Errc::invalid_argument, "transaction writes " + std::to_string(pages_.size()) +
                                              " pages; the cache holds " +
                                              std::to_string(state_.cache->capacity()));
  }
  journal::Transaction txn;
  for (const journal::Record& r : records_) txn.add(r);
  if (roots_changed_) {
    journal::DeviceDetailsUpdate roots;
    roots.thin = kPoolRootsThin;
    roots.mapping_root = root_;
    roots.transaction_id = transaction_id_;
    roots.snapshot_time = time_.value();
    roots.virtual_blocks = std::max(data_blocks_, state_.data->nr_blocks());
    txn.add(roots);
  }
  for (const auto& [block, staged] : pages_) {
    if (meta_count(block) <= 0) continue;  // freed again in this transaction
    const bool fresh = meta_reserved_.contains(block);
    Result<cache::PageRef> pinned =
        fresh ? state_.cache->pin_new(block, staged.type) : state_.cache->pin(block, staged.type);
    if (!pinned.ok()) return pinned.status();
    const cache::PageRef& ref = *pinned;
    const std::span<const std::byte> now(staged.page->data() + kBlockHeaderBytes, kPageBodyBytes);
    const std::span<const std::byte> was = ref.payload();
    TP_ASSERT_EQ(was.size(), now.size());
    size_t first = 0, last = now.size();
    if (fresh) {  // the rest of the page becomes zero (init)
      while (first < now.size() && now[first] == std::byte{0}) ++first;
      while (last > first && now[last - 1] == std::byte{0}) --last;
      if (first == last) first = 0, last = 1;
    } else {
      while (first < now.size() && now[first] == was[first]) ++first;
      if (first == now.size()) continue;  // unchanged
      while (last > first && now[last - 1] == was[last - 1]) --last;
    }
    txn.write_page(ref, static_cast<uint16_t>(first), now.subspan(first, last - first), fresh);
  }
  return txn;
}

void MetadataTxnImpl::cancel() {
  TP_ASSERT(!done_);
  for (MBlock b : meta_reserved_) state_.meta->cancel(b);
  for (const journal::DataRangeAlloc& r : data_reserved_) state_.data->cancel(r);
  meta_reserved_.clear();
  data_reserved_.clear();
  done_ = true;
}

}  // namespace thinp::pool
