#include "engine/space_map/space_map_replay.h"

#include <variant>

namespace thinp::space_map {

bool apply_space_map_record(const journal::Record& record, Lsn lsn, MetadataSpaceMap& metadata,
                            DataSpaceMap& data) {
  if (const auto* m = std::get_if<journal::MetaRefDelta>(&record)) {
    metadata.apply(*m, lsn);
    return true;
  }
  if (const auto* d = std::get_if<journal::DataRangeRefDelta>(&record)) {
    data.apply(*d, lsn);
    return true;
  }
  if (const auto* a = std::get_if<journal::DataRangeAlloc>(&record)) {
    data.apply(*a, lsn);
    return true;
  }
  return false;
}

}  // namespace thinp::space_map
