// DiskMedia: the durable state of a simulated disk, the part that survives a
// crash.
//
// A SimDisk (sim_disk.h) is the volatile half: its write cache and in-flight
// requests die with it. The media is owned by the caller, outlives any number
// of SimDisks, and is what a "reboot" finds: a scenario destroys its
// Scheduler and SimDisk, lets SimDisk::crash() decide what of the volatile
// state reached the media, and builds a new SimDisk over the same DiskMedia.
//
// Storage is sparse, one entry per sector ever written, so a large device
// costs only what a run touches. A sector never written reads as zeros.
// Single-threaded, like everything in the simulator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

namespace thinp::sim {

using SectorBytes = std::vector<std::byte>;

class DiskMedia {
 public:
  // sector_bytes must be 512 or 4096; the device holds sector_count sectors.
  DiskMedia(uint32_t sector_bytes, uint64_t sector_count);
  DiskMedia(const DiskMedia&) = delete;
  DiskMedia& operator=(const DiskMedia&) = delete;

  uint32_t sector_bytes() const { return sector_bytes_; }
  uint64_t sector_count() const { return sector_count_; }
  uint64_t size_bytes() const { return sector_count_ * sector_bytes_; }

  // Copies sector `sector` into `out` (exactly sector_bytes long).
  void read_sector(uint64_t sector, std::span<std::byte> out) const;
  // Replaces sector `sector` with `in` (exactly sector_bytes long).
  void write_sector(uint64_t sector, std::span<const std::byte> in);

  // hash_bytes() of the sector's content; the hash of zeros if never written.
  uint64_t sector_hash(uint64_t sector) const;
  // hash_bytes() of one all-zero sector of this geometry.
  uint64_t zero_sector_hash() const { return zero_hash_; }

  // Latent corruption: flips bit `bit` (0 .. 8*sector_bytes-1) of a sector
  // that has been written. Returns the sector's hash after the flip.
  uint64_t flip_bit(uint64_t sector, uint64_t bit);

  // Sectors ever written, in the order they were first written (a
  // deterministic order, so a seeded choice among them replays).
  uint64_t written_sector_count() const { return first_written_.size(); }
  uint64_t written_sector(uint64_t index) const { return first_written_.at(index); }

 private:
  uint32_t sector_bytes_;
  uint64_t sector_count_;
  uint64_t zero_hash_;
  std::map<uint64_t, SectorBytes> sectors_;
  std::vector<uint64_t> first_written_;
};

}  // namespace thinp::sim
