// The reference walker: counts the references that live trees hold on
// metadata and data blocks, so they can be compared with the counts the
// space maps keep (DESIGN.md invariant 4). Tests run it after every step;
// `thinp check` will run it over a pool.
//
// What counts as a reference:
//   - each root the caller names (a mapping-tree root held by a thin, the
//     device tree's root held by the superblock) is one reference to it;
//   - each distinct node is walked once, however many parents share it, and
//     holds one reference to each child it names;
//   - each distinct mapping leaf holds one reference to every data block of
//     each of its runs.
// The walk also checks structure as it goes: every node decodes with the
// expected block type, keys increase, and every run lies inside the range
// its parent gives the node (checked for every parent of a shared node).
// Errors: corruption naming the node, or what the store returned.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "engine/base/status.h"
#include "engine/base/units.h"
#include "engine/btree/node_store.h"
#include "engine/btree/range_counts.h"

namespace thinp {

struct RefCensus {
  std::map<MBlock, uint32_t> meta;  // references found to each metadata block
  RangeCounts data;                 // references found to each data block
  uint64_t mapping_nodes = 0;       // distinct mapping nodes walked
  uint64_t mapping_leaves = 0;
  uint64_t device_nodes = 0;
  uint64_t mapped_runs = 0;  // runs in distinct leaves

  // Walked mapping nodes: the virtual range [first, end) their runs span
  // (first > end for an empty subtree), for re-checking a shared node's
  // bounds against each further parent.
  std::map<MBlock, std::pair<uint64_t, uint64_t>> walked;
};

// Adds one reference to `root` and the references of the mapping tree below
// it that have not been walked yet.
Status census_mapping_tree(NodeStore& store, MBlock root, RefCensus& census);

// Adds one reference to `root` and the device tree's references; with
// `with_mapping_trees`, also each thin's mapping tree (its details' root).
Status census_device_tree(NodeStore& store, MBlock root, RefCensus& census,
                          bool with_mapping_trees);

// corruption unless the counts found equal the counts kept: every block with
// a kept count is referenced that many times, and nothing else is referenced.
// The message lists the first differences ("m:12 referenced 2 times, count
// 1"; a leak shows as "referenced 0 times").
Status check_census(const RefCensus& found, const std::map<MBlock, uint32_t>& meta_counts,
                    const RangeCounts& data_counts);

}  // namespace thinp
