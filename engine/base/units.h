// The engine's units. See strong_int.h for why each is its own type.
#pragma once

#include <cstdint>

#include "engine/base/strong_int.h"

namespace thinp {

struct ThinIdTag { static constexpr const char* prefix = "thin:"; };
struct VBlockTag { static constexpr const char* prefix = "v:"; };
struct DBlockTag { static constexpr const char* prefix = "d:"; };
struct MBlockTag { static constexpr const char* prefix = "m:"; };
struct SectorTag { static constexpr const char* prefix = "s:"; };
struct LsnTag { static constexpr const char* prefix = "lsn:"; };
struct SnapTimeTag { static constexpr const char* prefix = "t:"; };
struct TransactionIdTag { static constexpr const char* prefix = "txn:"; };

using ThinId = StrongInt<ThinIdTag>;          // a thin volume's caller-chosen id
using VBlock = StrongInt<VBlockTag>;          // a block in a thin's virtual address space
using DBlock = StrongInt<DBlockTag>;          // a block on the data device
using MBlock = StrongInt<MBlockTag>;          // a 4 KiB block on the metadata device
using Sector = StrongInt<SectorTag>;          // a 512-byte sector
using Lsn = StrongInt<LsnTag>;                // a journal sequence number
using SnapTime = StrongInt<SnapTimeTag, uint32_t>;  // a snapshot epoch
using TransactionId = StrongInt<TransactionIdTag>;  // userland's transaction id

inline constexpr uint64_t kSectorBytes = 512;
inline constexpr uint64_t kMetadataBlockBytes = 4096;

}  // namespace thinp
