// The fuzz targets: one entry point per decoder of untrusted bytes.
//
// Each target `<name>` is defined in fuzz/<name>_fuzz_target.cc and has
//   int fuzz_<name>(const uint8_t* data, size_t size);
//       Feeds any bytes to the decoder, in whatever ways reach deepest (e.g.
//       once as-is and once with the checksum fixed up so the field checks
//       run). Must never crash, leak or assert; it aborts (a finding) only if
//       the decoder breaks its own contract, e.g. accepts bytes that do not
//       re-encode to themselves.
//   Status check_<name>(const uint8_t* data, size_t size);
//       The decoder's verdict on the bytes as they are: ok if they decode.
//       The corpus replay uses it: seeds named valid-* must be ok, bad-* not.
//   std::vector<FuzzSeed> seeds_<name>();
//       Seed inputs built from the encoder (valid ones and corruptions), which
//       fuzz/corpus/<name>/ holds as files. Regenerate the files with
//       `fuzz_replay_test --gtest_also_run_disabled_tests
//        --gtest_filter='*RegenerateCorpus*'` after a format change.
//
// fuzz/<name>_fuzz.cc holds only LLVMFuzzerTestOneInput, calling fuzz_<name>;
// it is built with clang when THINP_FUZZ=ON. Everything else is plain C++
// that g++ builds into the replay test. See fuzz/README.md to add a target.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/status.h"

namespace thinp::fuzz {

// A named input for the corpus. `name` is a file name: valid-*, bad-* or
// anything else (no expectation beyond not crashing).
struct FuzzSeed {
  std::string name;
  std::vector<uint8_t> bytes;
};

int fuzz_superblock(const uint8_t* data, size_t size);
Status check_superblock(const uint8_t* data, size_t size);
std::vector<FuzzSeed> seeds_superblock();

int fuzz_block_header(const uint8_t* data, size_t size);
Status check_block_header(const uint8_t* data, size_t size);
std::vector<FuzzSeed> seeds_block_header();

int fuzz_data_space_map_page(const uint8_t* data, size_t size);
Status check_data_space_map_page(const uint8_t* data, size_t size);
std::vector<FuzzSeed> seeds_data_space_map_page();

int fuzz_device_node(const uint8_t* data, size_t size);
Status check_device_node(const uint8_t* data, size_t size);
std::vector<FuzzSeed> seeds_device_node();

int fuzz_journal_block(const uint8_t* data, size_t size);
Status check_journal_block(const uint8_t* data, size_t size);
std::vector<FuzzSeed> seeds_journal_block();

int fuzz_mapping_node(const uint8_t* data, size_t size);
Status check_mapping_node(const uint8_t* data, size_t size);
std::vector<FuzzSeed> seeds_mapping_node();

int fuzz_metadata_space_map_page(const uint8_t* data, size_t size);
Status check_metadata_space_map_page(const uint8_t* data, size_t size);
std::vector<FuzzSeed> seeds_metadata_space_map_page();

struct FuzzTarget {
  std::string_view name;  // also the corpus directory: fuzz/corpus/<name>/
  int (*fuzz)(const uint8_t*, size_t);
  Status (*check)(const uint8_t*, size_t);
  std::vector<FuzzSeed> (*seeds)();
};

// Every target, in name order.
std::span<const FuzzTarget> fuzz_targets();

// Aborts with `what` (a fuzz finding) when `cond` is false. Works without
// assertions and prints before aborting, so libFuzzer shows the reason.
void fuzz_require(bool cond, const char* what);

}  // namespace thinp::fuzz
