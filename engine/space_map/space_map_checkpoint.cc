#include "engine/space_map/space_map_checkpoint.h"

#include <cstring>
#include <string>

namespace thinp::space_map {

namespace {

Status write_page(BlockDevice& device, const EncodedPage& page) {
  TP_ASSERT_EQ(page.bytes.size(), kMetadataBlockBytes);
  AlignedBuffer buffer(kMetadataBlockBytes);  // O_DIRECT alignment
  std::memcpy(buffer.data(), page.bytes.data(), kMetadataBlockBytes);
  Status s = device.write(page.location.value() * kMetadataBlockBytes, buffer.span());
  if (!s.ok()) {
    return s.with_context("writing space map page at block " +
                          std::to_string(page.location.value()));
  }
  return ok_status();
}

}  // namespace

Status SpaceMapCheckpoint::write_pages(Lsn durable) {
  // A failed checkpoint never reached pages_durable: start over.
  written_metadata_.clear();
  written_data_.clear();
  // Encode both before the first write suspends, so each page is a snapshot
  // of the map at one instant with an LSN <= durable.
  std::vector<EncodedPage> metadata_pages = metadata_.encode_dirty_pages(durable);
  TP_ASSIGN_OR_RETURN(std::vector<EncodedPage> data_pages, data_.encode_dirty_pages(durable));
  for (EncodedPage& p : metadata_pages) {
    TP_RETURN_IF_ERROR(write_page(device_, p));
    ++pages_written_;
    written_metadata_.push_back(std::move(p));
  }
  for (EncodedPage& p : data_pages) {
    TP_RETURN_IF_ERROR(write_page(device_, p));
    ++pages_written_;
    written_data_.push_back(std::move(p));
  }
  return ok_status();
}

void SpaceMapCheckpoint::pages_durable() {
  for (const EncodedPage& p : written_metadata_) metadata_.mark_written(p);
  for (const EncodedPage& p : written_data_) data_.mark_written(p);
  written_metadata_.clear();
  written_data_.clear();
}

std::optional<Lsn> SpaceMapCheckpoint::oldest_needed_lsn() const {
  const std::optional<Lsn> m = metadata_.oldest_unwritten_lsn();
  const std::optional<Lsn> d = data_.oldest_unwritten_lsn();
  if (m && d) return std::min(*m, *d);
  return m ? m : d;
}

}  // namespace thinp::space_map
