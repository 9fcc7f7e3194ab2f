// MetadataStore::check: walk the device tree and every mapping tree from the
// committed root (each node read through the cache, so its checksum, type
// and location are verified), then compare the references found with both
// space maps (DESIGN.md invariant 4).
//
// Expected metadata counts: 1 for every block before the tree pool (the
// superblock slots, the journal and the space maps' own pages, marked at
// format), plus the references the walk found. Expected data counts: the
// walk's. Each difference is one finding; a walk that hits a bad node is one
// finding too (the counts are not compared then: they would only repeat it).
#include <string>

#include "engine/btree/ref_census.h"
#include "engine/pool/metadata_store_impl.h"
#include "engine/space_map/data_ref_tally.h"

namespace thinp::pool {

void MetadataStoreImpl::check_metadata_counts(const std::map<MBlock, uint32_t>& found,
                                              std::vector<CheckFinding>& findings) const {
  std::map<MBlock, uint32_t> expected = found;
  for (uint64_t b = 0; b < sb_.layout.tree_pool.begin.value(); ++b) expected[MBlock(b)] += 1;
  for (const auto& [block, count] : expected) {
    if (block.value() >= meta_.nr_blocks()) {
      findings.push_back({"metadata block m:" + std::to_string(block.value()) +
                          " is referenced but lies outside the metadata area"});
    }
  }
  for (const space_map::MetaRefMismatch& m : meta_.diff(expected)) {
    std::string what = "metadata block m:" + std::to_string(m.block.value()) + " has count " +
                       std::to_string(m.actual) + ", referenced " + std::to_string(m.expected) +
                       " times";
    if (m.actual > m.expected) what += m.expected == 0 ? " (leaked)" : " (count too high)";
    if (m.actual < m.expected)
      what += m.actual == 0 ? " (referenced while free)" : " (count too low)";
    findings.push_back({what});
  }
}

Result<std::vector<CheckFinding>> MetadataStoreImpl::check() {
  std::vector<CheckFinding> findings;
  if (closed_) return Status(Errc::read_only, "metadata store is closed");
  // A consistent view: no transaction stages while the walk runs.
  staging_.lock();
  RefCensus census;
  Status walked = ok_status();
  if (root_ != kNoRoot) {
    walked = census_device_tree(committed_nodes_, root_, census, /*with_mapping_trees=*/true);
  }
  if (!walked.ok()) {
    staging_.unlock();
    if (walked.code() == Errc::io_error) return walked;
    findings.push_back({"tree walk failed: " + walked.message()});
    return findings;
  }
  check_metadata_counts(census.meta, findings);
  space_map::DataRefTally tally;
  for (const RangeCounts::Segment& s : census.data.segments()) {
    if (s.end > data_.nr_blocks()) {
      findings.push_back({"data blocks d:" + std::to_string(s.begin) +
                          "..d:" + std::to_string(s.end - 1) +
                          " are mapped but lie outside the data device"});
      continue;
    }
    tally.add(DBlock(s.begin), s.end - s.begin, s.count);
  }
  for (const space_map::DataRefMismatch& m : data_.diff(tally)) {
    std::string what = "data blocks d:" + std::to_string(m.begin.value()) +
                       "..d:" + std::to_string(m.begin.value() + m.length - 1) + " have count " +
                       std::to_string(m.actual) + ", referenced " + std::to_string(m.expected) +
                       " times";
    if (m.actual > m.expected) what += m.expected == 0 ? " (leaked)" : " (count too high)";
    if (m.actual < m.expected) what += m.actual == 0 ? " (mapped while free)" : " (count too low)";
    findings.push_back({what});
  }
  staging_.unlock();
  return findings;
}

}  // namespace thinp::pool
