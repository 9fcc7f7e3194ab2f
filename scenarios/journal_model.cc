#include "scenarios/journal_model.h"

#include <algorithm>
#include <sstream>

#include "engine/base/hash.h"

namespace thinp::scenarios {
namespace {

std::string describe_thin_difference(ThinId id, const ThinModel& expected, const ThinModel& found) {
  std::ostringstream os;
  os << id << " (expected " << expected.runs.size() << " runs, " << expected.mapped_blocks()
     << " mapped; found " << found.runs.size() << " runs, " << found.mapped_blocks()
     << " mapped): ";
  if (!details_match(expected.details, found.details)) {
    os << "details expected " << format_details(expected.details) << " found "
       << format_details(found.details);
    return os.str();
  }
  auto e = expected.runs.begin();
  auto f = found.runs.begin();
  while (e != expected.runs.end() && f != found.runs.end() && e->second == f->second) ++e, ++f;
  os << "first different run: expected "
     << (e == expected.runs.end() ? std::string("none") : format_run(e->second)) << " found "
     << (f == found.runs.end() ? std::string("none") : format_run(f->second));
  return os.str();
}

}  // namespace

std::string format_run(const Run& r) {
  std::ostringstream os;
  os << r.vbegin << "+" << r.length << "->" << r.dbegin << "@" << r.time;
  return os.str();
}

std::string format_details(const DeviceDetails& d) {
  std::ostringstream os;
  os << "{mapped=" << d.mapped_blocks << " virtual=" << d.virtual_blocks
     << " created=" << d.creation_time << " snap=" << d.snapshot_time << " " << d.transaction_id
     << " flags=" << d.flags << "}";
  return os.str();
}

bool details_match(const DeviceDetails& a, const DeviceDetails& b) {
  DeviceDetails x = a;
  x.mapping_root = b.mapping_root;  // the store's choice, not modelled
  return x == b;
}

uint64_t ThinModel::map(const Run& run) {
  TP_ASSERT_GT(run.length, 0u);
  const uint64_t before = unmap(run.vbegin, run.length);
  auto [it, inserted] = runs.emplace(run.vbegin, run);
  TP_ASSERT(inserted);
  if (auto next = std::next(it); next != runs.end() && runs_mergeable(it->second, next->second)) {
    it->second.length += next->second.length;
    runs.erase(next);
  }
  if (it != runs.begin()) {
    auto prev = std::prev(it);
    if (runs_mergeable(prev->second, it->second)) {
      prev->second.length += it->second.length;
      runs.erase(it);
    }
  }
  return before;
}

uint64_t ThinModel::unmap(VBlock begin, uint64_t length) {
  const VBlock end = begin + length;
  auto it = runs.lower_bound(begin);
  if (it != runs.begin() && std::prev(it)->second.vend() > begin) it = std::prev(it);
  uint64_t removed = 0;
  while (it != runs.end() && it->first < end) {
    const Run r = it->second;
    it = runs.erase(it);
    removed += std::min(r.vend(), end) - std::max(r.vbegin, begin);
    if (r.vbegin < begin) {
      runs.emplace(r.vbegin, Run{r.vbegin, begin - r.vbegin, r.dbegin, r.time});
    }
    if (r.vend() > end) {
      runs.emplace(end, Run{end, r.vend() - end, r.dbegin + (end - r.vbegin), r.time});
    }
  }
  return removed;
}

uint64_t ThinModel::mapped_in(VBlock begin, uint64_t length) const {
  const VBlock end = begin + length;
  auto it = runs.lower_bound(begin);
  if (it != runs.begin() && std::prev(it)->second.vend() > begin) it = std::prev(it);
  uint64_t mapped = 0;
  for (; it != runs.end() && it->first < end; ++it) {
    mapped += std::min(it->second.vend(), end) - std::max(it->second.vbegin, begin);
  }
  return mapped;
}

uint64_t ThinModel::mapped_blocks() const {
  uint64_t n = 0;
  for (const auto& [v, r] : runs) n += r.length;
  return n;
}

std::string describe_difference(const PoolModel& expected, const PoolModel& found) {
  auto e = expected.thins.begin();
  auto f = found.thins.begin();
  while (e != expected.thins.end() || f != found.thins.end()) {
    if (f == found.thins.end() || (e != expected.thins.end() && e->first < f->first)) {
      std::ostringstream os;
      os << e->first << " missing (expected " << e->second.runs.size() << " runs, "
         << e->second.mapped_blocks() << " mapped)";
      return os.str();
    }
    if (e == expected.thins.end() || f->first < e->first) {
      std::ostringstream os;
      os << f->first << " found but not expected (" << f->second.runs.size() << " runs)";
      return os.str();
    }
    if (!details_match(e->second.details, f->second.details) || e->second.runs != f->second.runs) {
      return describe_thin_difference(e->first, e->second, f->second);
    }
    ++e, ++f;
  }
  return "";
}

uint64_t model_digest(const PoolModel& pool) {
  Digest d;
  for (const auto& [id, thin] : pool.thins) {
    const DeviceDetails& x = thin.details;
    d.add_u64(id.value());
    d.add_u64(x.mapped_blocks);
    d.add_u64(x.virtual_blocks);
    d.add_u64(x.creation_time.value());
    d.add_u64(x.snapshot_time.value());
    d.add_u64(x.transaction_id.value());
    for (const auto& [v, r] : thin.runs) {
      d.add_u64(r.vbegin.value());
      d.add_u64(r.length);
      d.add_u64(r.dbegin.value());
      d.add_u64(r.time.value());
    }
  }
  return d.value();
}

std::string model_summary(const PoolModel& pool) {
  uint64_t runs = 0, mapped = 0;
  for (const auto& [id, thin] : pool.thins) {
    runs += thin.runs.size();
    mapped += thin.mapped_blocks();
  }
  std::ostringstream os;
  os << "thins=" << pool.thins.size() << " runs=" << runs << " mapped=" << mapped;
  return os.str();
}

size_t CommitOracle::stage(PoolModel after, std::string what) {
  TP_ASSERT_EQ(after.transaction_id, staged().transaction_id + 1);
  entries_.push_back(Entry{std::move(after), std::move(what), std::nullopt, false});
  return entries_.size() - 1;
}

Status CommitOracle::acknowledge(size_t index, Lsn lsn) {
  TP_ASSERT_LT(index, entries_.size());
  Entry& e = entries_[index];
  TP_ASSERT(!e.lsn.has_value() && !e.failed);
  e.lsn = lsn;
  ++acknowledged_;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const std::optional<Lsn>& other = entries_[i].lsn;
    if (i == index || !other.has_value()) continue;
    if ((i < index && *other >= lsn) || (i > index && *other <= lsn)) {
      std::ostringstream os;
      os << "LSNs out of commit order: " << describe_entry(i) << " vs " << describe_entry(index);
      return Status(Errc::corruption, os.str());
    }
  }
  return ok_status();
}

void CommitOracle::failed(size_t index) {
  TP_ASSERT_LT(index, entries_.size());
  TP_ASSERT(!entries_[index].lsn.has_value());
  entries_[index].failed = true;
}

void CommitOracle::withdraw(size_t index) {
  TP_ASSERT_EQ(index + 1, entries_.size());
  TP_ASSERT(!entries_[index].lsn.has_value());
  entries_.pop_back();
}

std::string CommitOracle::describe_entry(size_t index) const {
  const Entry& e = entries_[index];
  std::ostringstream os;
  os << "commit #" << index + 1 << " (txn " << e.after.transaction_id << ", ";
  if (e.lsn.has_value()) {
    os << "acknowledged at " << *e.lsn;
  } else {
    os << (e.failed ? "failed" : "in flight");
  }
  os << ": " << e.what << ")";
  return os.str();
}

Result<RecoveredPrefix> CommitOracle::recover(const PoolModel& found,
                                              uint64_t found_transaction_id) {
  RecoveredPrefix r;
  r.staged = entries_.size();
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].lsn.has_value()) r.required = i + 1;
  }
  const uint64_t t0 = base_.transaction_id;
  std::ostringstream os;
  os << "after recovery: ";
  if (found_transaction_id < t0 || found_transaction_id > t0 + entries_.size()) {
    os << "transaction id " << found_transaction_id << " is not that of any prefix (ids " << t0
       << ".." << t0 + entries_.size() << ", " << entries_.size() << " commits staged)";
    return Status(Errc::corruption, os.str());
  }
  r.prefix = found_transaction_id - t0;
  const std::string diff = describe_difference(state_after(r.prefix), found);
  if (r.prefix < r.required || !diff.empty()) {
    os << "the pool is not the state after a prefix of the commit order holding every "
          "acknowledged commit: transaction id "
       << found_transaction_id << " names prefix " << r.prefix << " of " << r.staged
       << ", acknowledged commits need at least " << r.required;
    if (r.prefix < r.required) os << "; lost " << describe_entry(r.required - 1);
    if (!diff.empty()) os << "; pool differs from that prefix: " << diff;
    for (size_t p = r.staged + 1; p-- > 0;) {
      if (p != r.prefix && describe_difference(state_after(p), found).empty()) {
        os << "; it equals the state after prefix " << p;
        break;
      }
    }
    return Status(Errc::corruption, os.str());
  }
  PoolModel next = found;
  next.time = state_after(r.prefix).time;
  next.transaction_id = found_transaction_id;
  base_ = std::move(next);
  entries_.clear();
  acknowledged_ = 0;
  return r;
}

}  // namespace thinp::scenarios
