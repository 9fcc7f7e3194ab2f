#include "sim/sim_disk_media.h"

#include <algorithm>

#include "engine/base/assert.h"
#include "engine/base/hash.h"

namespace thinp::sim {

DiskMedia::DiskMedia(uint32_t sector_bytes, uint64_t sector_count)
    : sector_bytes_(sector_bytes), sector_count_(sector_count) {
  TP_ASSERT(sector_bytes == 512 || sector_bytes == 4096);
  TP_ASSERT_GT(sector_count, 0u);
  const SectorBytes zeros(sector_bytes, std::byte{0});
  zero_hash_ = hash_bytes(zeros);
}

void DiskMedia::read_sector(uint64_t sector, std::span<std::byte> out) const {
  TP_ASSERT_LT(sector, sector_count_);
  TP_ASSERT_EQ(out.size(), size_t{sector_bytes_});
  auto it = sectors_.find(sector);
  if (it == sectors_.end()) {
    std::fill(out.begin(), out.end(), std::byte{0});
  } else {
    std::copy(it->second.begin(), it->second.end(), out.begin());
  }
}

void DiskMedia::write_sector(uint64_t sector, std::span<const std::byte> in) {
  TP_ASSERT_LT(sector, sector_count_);
  TP_ASSERT_EQ(in.size(), size_t{sector_bytes_});
  auto [it, inserted] = sectors_.try_emplace(sector);
  if (inserted) first_written_.push_back(sector);
  it->second.assign(in.begin(), in.end());
}

uint64_t DiskMedia::sector_hash(uint64_t sector) const {
  TP_ASSERT_LT(sector, sector_count_);
  auto it = sectors_.find(sector);
  return it == sectors_.end() ? zero_hash_ : hash_bytes(it->second);
}

uint64_t DiskMedia::flip_bit(uint64_t sector, uint64_t bit) {
  TP_ASSERT_LT(bit, uint64_t{sector_bytes_} * 8);
  auto it = sectors_.find(sector);
  TP_ASSERT_MSG(it != sectors_.end(), "bit flips are only injected into written sectors");
  it->second[bit / 8] ^= std::byte(1u << (bit % 8));
  return hash_bytes(it->second);
}

}  // namespace thinp::sim
