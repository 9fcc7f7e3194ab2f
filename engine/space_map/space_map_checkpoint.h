// SpaceMapCheckpoint: the space maps' part in a journal checkpoint.
//
// The space maps keep their own pages (not in the block cache), so they take
// part in a checkpoint as a journal::CheckpointParticipant
// (engine/journal/checkpoint.h):
//
//   write_pages(D)   encodes the dirty pages of both maps whose LSN is <= D
//                    (the write-ahead rule) and writes them, without FLUSH;
//   pages_durable()  after the checkpointer's FLUSH: marks those pages
//                    written (clean unless they changed meanwhile);
//   oldest_needed_lsn()  the oldest record either map still needs from the
//                    journal: the tail may not pass it.
//
// Live records reach the maps through the journal's record applier
// (Journal::set_record_applier calling apply_space_map_record), which runs
// inside commit in LSN order; this class only moves pages.
//
// A data page that overflows (DataSpaceMap::encode_dirty_pages: no_space)
// fails write_pages, so the checkpoint fails and the tail stays: the pool
// keeps running on the journal and should report the condition.
//
// Tasks: write_pages suspends for IO (task only); the maps may change while
// it waits, which the page generations in EncodedPage account for. The other
// two calls never suspend.
#pragma once

#include <optional>
#include <vector>

#include "engine/base/status.h"
#include "engine/io/block_device.h"
#include "engine/journal/checkpoint.h"
#include "engine/space_map/data_space_map.h"
#include "engine/space_map/metadata_space_map.h"

namespace thinp::space_map {

class SpaceMapCheckpoint final : public journal::CheckpointParticipant {
 public:
  // `device` is the metadata device; all three must outlive this object.
  SpaceMapCheckpoint(BlockDevice& device, MetadataSpaceMap& metadata, DataSpaceMap& data)
      : device_(device), metadata_(metadata), data_(data) {}

  Status write_pages(Lsn durable) override;
  void pages_durable() override;
  std::optional<Lsn> oldest_needed_lsn() const override;

  uint64_t pages_written() const { return pages_written_; }

 private:
  BlockDevice& device_;
  MetadataSpaceMap& metadata_;
  DataSpaceMap& data_;
  std::vector<EncodedPage> written_metadata_;  // since the last write_pages
  std::vector<EncodedPage> written_data_;
  uint64_t pages_written_ = 0;
};

}  // namespace thinp::space_map
