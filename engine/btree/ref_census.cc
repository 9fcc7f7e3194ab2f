#include "engine/btree/ref_census.h"

#include <algorithm>
#include <string>

#include "engine/btree/device_tree.h"
#include "engine/btree/mapping_node.h"

namespace thinp {
namespace {

std::string name(MBlock b) { return "m:" + std::to_string(b.value()); }

constexpr std::pair<uint64_t, uint64_t> kEmptySpan{UINT64_MAX, 0};

std::pair<uint64_t, uint64_t> join(std::pair<uint64_t, uint64_t> a,
                                   std::pair<uint64_t, uint64_t> b) {
  return {std::min(a.first, b.first), std::max(a.second, b.second)};
}

// Walks the subtree at `block` the first time it is met; returns the span of
// its runs and checks it against [lo, hi) on every meeting.
Result<std::pair<uint64_t, uint64_t>> walk_mapping(NodeStore& store, MBlock block, uint64_t lo,
                                                   uint64_t hi, RefCensus& census) {
  ++census.meta[block];
  std::pair<uint64_t, uint64_t> span = kEmptySpan;
  auto seen = census.walked.find(block);
  if (seen != census.walked.end()) {
    span = seen->second;
  } else {
    TP_ASSIGN_OR_RETURN(PageRef page, store.read(block, BlockType::mapping_node));
    Result<MappingNode> decoded = decode_mapping_node(page_body(*page));
    if (!decoded.ok()) return decoded.status().with_context(name(block));
    const MappingNode& node = *decoded;
    ++census.mapping_nodes;
    if (node.leaf) {
      ++census.mapping_leaves;
      for (const Run& r : node.runs) {
        TP_RETURN_IF_ERROR(census.data.add(r.dbegin.value(), r.length, +1));
        span = join(span, {r.vbegin.value(), r.vend().value()});
        ++census.mapped_runs;
      }
    } else {
      const auto& ch = node.children;
      for (size_t i = 0; i < ch.size(); ++i) {
        // Bounds relative to this node's own keys; the node's range is
        // checked through `span` below.
        const uint64_t clo = i == 0 ? 0 : ch[i].key.value();
        const uint64_t chi = i + 1 < ch.size() ? ch[i + 1].key.value() : kVirtualEnd;
        TP_ASSIGN_OR_RETURN(auto child_span, walk_mapping(store, ch[i].block, clo, chi, census));
        span = join(span, child_span);
      }
    }
    census.walked[block] = span;
  }
  if (span.first < span.second && (span.first < lo || span.second > hi)) {
    return Status(Errc::corruption, name(block) + " maps v:" + std::to_string(span.first) +
                                        "..v:" + std::to_string(span.second) +
                                        " outside the range its parent gives it");
  }
  return span;
}

Status walk_device(NodeStore& store, MBlock block, RefCensus& census, bool with_mapping_trees) {
  ++census.meta[block];
  if (census.meta[block] > 1) {
    return Status(Errc::corruption, "device details " + name(block) + " is shared");
  }
  TP_ASSIGN_OR_RETURN(PageRef page, store.read(block, BlockType::device_details));
  Result<DeviceNode> decoded = decode_device_node(page_body(*page));
  if (!decoded.ok()) return decoded.status().with_context(name(block));
  ++census.device_nodes;
  for (const DeviceChild& c : decoded->children) {
    TP_RETURN_IF_ERROR(walk_device(store, c.block, census, with_mapping_trees));
  }
  if (with_mapping_trees) {
    for (const DeviceDetails& d : decoded->entries) {
      TP_RETURN_IF_ERROR(census_mapping_tree(store, d.mapping_root, census)
                             .with_context("thin " + std::to_string(d.thin.value())));
    }
  }
  return ok_status();
}

}  // namespace

Status census_mapping_tree(NodeStore& store, MBlock root, RefCensus& census) {
  return walk_mapping(store, root, 0, kVirtualEnd, census).status();
}

Status census_device_tree(NodeStore& store, MBlock root, RefCensus& census,
                          bool with_mapping_trees) {
  return walk_device(store, root, census, with_mapping_trees);
}

Status check_census(const RefCensus& found, const std::map<MBlock, uint32_t>& meta_counts,
                    const RangeCounts& data_counts) {
  std::string diff;
  int lines = 0;
  auto f = found.meta.begin();
  auto k = meta_counts.begin();
  while ((f != found.meta.end() || k != meta_counts.end()) && lines < 8) {
    MBlock b;
    uint32_t refs = 0, count = 0;
    if (k == meta_counts.end() || (f != found.meta.end() && f->first < k->first)) {
      b = f->first, refs = f->second, ++f;
    } else if (f == found.meta.end() || k->first < f->first) {
      b = k->first, count = k->second, ++k;
    } else {
      b = f->first, refs = f->second, count = k->second, ++f, ++k;
    }
    if (refs != count) {
      diff += name(b) + " referenced " + std::to_string(refs) + " times, count " +
              std::to_string(count) + "\n";
      ++lines;
    }
  }
  if (!(found.data == data_counts)) {
    diff += "data refcounts differ:\n" + RangeCounts::describe_differences(found.data, data_counts);
  }
  if (diff.empty()) return ok_status();
  return Status(Errc::corruption, "reference counts do not match the trees:\n" + diff);
}

}  // namespace thinp
