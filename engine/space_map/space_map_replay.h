// Routes a journal record to the space map it changes: the one call both the
// live commit path and recovery replay make for every record (see
// space_map_page.h for the decide / log / apply protocol it is part of).
#pragma once

#include "engine/base/units.h"
#include "engine/journal/record.h"
#include "engine/space_map/data_space_map.h"
#include "engine/space_map/metadata_space_map.h"

namespace thinp::space_map {

// Applies `record` at `lsn` if it is a MetaRefDelta, DataRangeRefDelta or
// DataRangeAlloc and returns true; returns false, changing nothing, for every
// other record type (the caller routes those elsewhere).
bool apply_space_map_record(const journal::Record& record, Lsn lsn, MetadataSpaceMap& metadata,
                            DataSpaceMap& data);

}  // namespace thinp::space_map
