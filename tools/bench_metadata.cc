#include "tools/bench_metadata.h"

#include <cstdio>
#include <numeric>
#include <vector>

#include "engine/base/random.h"
#include "engine/btree/mapping_tree.h"
#include "engine/btree/memory_node_store.h"
#include "engine/btree/ref_census.h"

namespace thinp::tools {
namespace {

constexpr uint64_t kMappingsMax = uint64_t(1) << 28;
constexpr uint64_t kSeed = 0x7468696e70320001;  // fixed: the report is reproducible

// N distinct values from [0, space), in random order (a partial
// Fisher-Yates shuffle).
std::vector<uint64_t> distinct_random(Random& rng, uint64_t n, uint64_t space) {
  std::vector<uint64_t> all(space);
  std::iota(all.begin(), all.end(), 0);
  for (uint64_t i = 0; i < n; ++i) std::swap(all[i], all[i + rng.uniform(space - i)]);
  all.resize(n);
  return all;
}

Result<uint64_t> tree_height(NodeStore& store, MBlock root) {
  uint64_t height = 1;
  MBlock b = root;
  while (true) {
    TP_ASSIGN_OR_RETURN(PageRef page, store.read(b, BlockType::mapping_node));
    TP_ASSIGN_OR_RETURN(MappingNode node, decode_mapping_node(page_body(*page)));
    if (node.leaf) return height;
    b = node.children[0].block;
    ++height;
  }
}

}  // namespace

Result<MetadataBenchReport> run_metadata_bench(uint64_t mappings, std::string pattern) {
  if (mappings == 0 || mappings > kMappingsMax) {
    return Status(Errc::invalid_argument,
                  "--mappings must be in [1, " + std::to_string(kMappingsMax) + "]");
  }
  if (pattern != "sequential" && pattern != "random-virtual" && pattern != "random-data") {
    return Status(Errc::invalid_argument,
                  "unknown pattern '" + pattern + "' (sequential, random-virtual, random-data)");
  }
  MemoryNodeStore store;
  MemoryDataRefs data;
  TP_ASSIGN_OR_RETURN(MappingTree tree, MappingTree::create(store, data));
  Random rng(kSeed);
  std::vector<uint64_t> random;
  if (pattern != "sequential") random = distinct_random(rng, mappings, 4 * mappings);
  for (uint64_t i = 0; i < mappings; ++i) {
    uint64_t v = i, d = i;
    if (pattern == "random-virtual") v = random[i];
    if (pattern == "random-data") d = random[i];
    // The allocator's reference, which the tree takes over.
    TP_RETURN_IF_ERROR(data.allocate_range(DBlock(d), 1));
    TP_RETURN_IF_ERROR(tree.insert(Run{VBlock(v), 1, DBlock(d), SnapTime(0)}).status());
  }

  MetadataBenchReport r;
  r.pattern = pattern;
  r.mappings = mappings;
  RefCensus census;
  TP_RETURN_IF_ERROR(census_mapping_tree(store, tree.root(), census));
  TP_RETURN_IF_ERROR(check_census(census, store.ref_counts(), data.counts()));
  r.runs = census.mapped_runs;
  r.leaf_nodes = census.mapping_leaves;
  r.internal_nodes = census.mapping_nodes - census.mapping_leaves;
  TP_ASSIGN_OR_RETURN(r.height, tree_height(store, tree.root()));
  r.metadata_bytes = store.live_blocks() * kMetadataBlockBytes;
  r.bytes_per_mapping = double(r.metadata_bytes) / double(mappings);
  r.runs_per_leaf = double(r.runs) / double(r.leaf_nodes);
  r.build_page_writes = store.cost().page_writes;
  TP_ASSIGN_OR_RETURN(r.share_break, run_share_break_bench(1000000));
  return r;
}

Result<ShareBreakCost> run_share_break_bench(uint64_t leaf_blocks) {
  if (leaf_blocks < 2) return Status(Errc::invalid_argument, "the leaf must map at least 2 blocks");
  MemoryNodeStore store;
  MemoryDataRefs data;
  TP_ASSIGN_OR_RETURN(MappingTree origin, MappingTree::create(store, data));
  TP_RETURN_IF_ERROR(data.allocate_range(DBlock(0), leaf_blocks));
  TP_RETURN_IF_ERROR(origin.insert(Run{VBlock(0), leaf_blocks, DBlock(0), SnapTime(0)}).status());
  TP_ASSIGN_OR_RETURN(MBlock snap_root, origin.clone());
  MappingTree snap = MappingTree::open(store, data, snap_root);

  // The origin's first write after the snapshot: one block in the middle,
  // to a freshly allocated data block.
  const DBlock fresh(leaf_blocks);
  TP_RETURN_IF_ERROR(data.allocate_range(fresh, 1));
  store.reset_cost();
  data.reset_cost();
  TP_RETURN_IF_ERROR(origin.insert(Run{VBlock(leaf_blocks / 2), 1, fresh, SnapTime(1)}).status());

  ShareBreakCost c;
  c.leaf_blocks = leaf_blocks;
  c.page_writes = store.cost().page_writes;
  c.page_write_bytes = store.cost().page_write_bytes;
  c.meta_ref_deltas = store.cost().meta_ref_deltas;
  c.data_range_deltas = data.cost().data_range_deltas;
  c.journal_records = c.page_writes + c.meta_ref_deltas + c.data_range_deltas;

  // Both trees still hold what they should.
  RefCensus census;
  TP_RETURN_IF_ERROR(census_mapping_tree(store, origin.root(), census));
  TP_RETURN_IF_ERROR(census_mapping_tree(store, snap.root(), census));
  TP_RETURN_IF_ERROR(check_census(census, store.ref_counts(), data.counts()));
  return c;
}

std::string format_metadata_bench(const MetadataBenchReport& r, bool json) {
  using ull = unsigned long long;
  const ShareBreakCost& s = r.share_break;
  char buf[1024];
  if (json) {
    std::snprintf(buf, sizeof buf,
                  "{\"pattern\":\"%s\",\"mappings\":%llu,\"runs\":%llu,\"nodes\":%llu,"
                  "\"leaf_nodes\":%llu,\"internal_nodes\":%llu,\"height\":%llu,"
                  "\"metadata_bytes\":%llu,\"bytes_per_mapping\":%.4f,\"runs_per_leaf\":%.1f,"
                  "\"build_page_writes\":%llu,\"share_break\":{\"leaf_blocks\":%llu,"
                  "\"page_writes\":%llu,\"page_write_bytes\":%llu,\"meta_ref_deltas\":%llu,"
                  "\"data_range_deltas\":%llu,\"journal_records\":%llu}}",
                  r.pattern.c_str(), ull(r.mappings), ull(r.runs),
                  ull(r.leaf_nodes + r.internal_nodes), ull(r.leaf_nodes), ull(r.internal_nodes),
                  ull(r.height), ull(r.metadata_bytes), r.bytes_per_mapping, r.runs_per_leaf,
                  ull(r.build_page_writes), ull(s.leaf_blocks), ull(s.page_writes),
                  ull(s.page_write_bytes), ull(s.meta_ref_deltas), ull(s.data_range_deltas),
                  ull(s.journal_records));
    return buf;
  }
  std::snprintf(buf, sizeof buf,
                "%s: %llu mappings in %llu runs, %llu leaves + %llu internal nodes (height %llu), "
                "%llu metadata bytes = %.4f bytes/mapping (%.1f runs/leaf); breaking sharing of a "
                "leaf mapping %llu blocks: %llu page writes (%llu bytes) + %llu metadata and %llu "
                "data refcount records = %llu journal records",
                r.pattern.c_str(), ull(r.mappings), ull(r.runs), ull(r.leaf_nodes),
                ull(r.internal_nodes), ull(r.height), ull(r.metadata_bytes), r.bytes_per_mapping,
                r.runs_per_leaf, ull(s.leaf_blocks), ull(s.page_writes), ull(s.page_write_bytes),
                ull(s.meta_ref_deltas), ull(s.data_range_deltas), ull(s.journal_records));
  return buf;
}

}  // namespace thinp::tools
