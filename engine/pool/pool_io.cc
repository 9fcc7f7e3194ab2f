// The pool's IO path: read, write (in place, provisioning, breaking
// sharing), discard, flush, and the tracking of dropped references that
// keeps a crash from resurrecting a mapping to rewritten data (pool.h,
// "Ordering"). Management, open and close are in pool.cc.
#include <algorithm>
#include <cstring>
#include <string>

#include "engine/base/assert.h"
#include "engine/pool/pool_impl.h"

namespace thinp::pool {

namespace {

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kIoBufferAlignment == 0; }

}  // namespace

void PoolImpl::note_dropped(Lsn lsn, uint64_t begin, uint64_t length) {
  dropped_.push_back(Dropped{lsn, begin, length});
}

Status PoolImpl::wait_for_drops(uint64_t begin, uint64_t length) {
  const Lsn durable = store_->durable_lsn();
  std::erase_if(dropped_, [&](const Dropped& d) { return d.lsn <= durable; });
  std::optional<Lsn> need;
  for (const Dropped& d : dropped_) {
    if (d.begin < begin + length && begin < d.begin + d.length) {
      need = std::max(need.value_or(d.lsn), d.lsn);
    }
  }
  if (!need.has_value()) return ok_status();
  ++drop_waits_;
  Status s = store_->make_durable(*need);
  return s.ok() ? s : metadata_error(s);
}

// --- IO ------------------------------------------------------------------------------

Status PoolImpl::read(ThinId thin, uint64_t offset, std::span<std::byte> out) {
  TP_RETURN_IF_ERROR(check_io(offset, out.size(), false));
  TP_ASSIGN_OR_RETURN(ThinPtr t, find(thin));
  TP_RETURN_IF_ERROR(check_bounds(*t, offset, out.size()));
  if (out.empty()) return ok_status();
  const uint64_t b0 = offset / block_bytes_;
  const uint64_t b1 = (offset + out.size() + block_bytes_ - 1) / block_bytes_;
  RangeGuard cells(t->cells, b0, b1, true);
  if (t->deleted) return Status(Errc::not_found, thin_name(thin) + " was deleted");
  TP_ASSIGN_OR_RETURN(std::vector<Extent> extents, lookup(*t, b0, b1 - b0, false));
  for (const Extent& e : extents) {
    // The part of the IO inside this extent, in bytes of the thin.
    const uint64_t lo = std::max(offset, e.vbegin.value() * block_bytes_);
    const uint64_t hi = std::min(offset + out.size(), (e.vbegin.value() + e.length) * block_bytes_);
    std::span<std::byte> dst = out.subspan(lo - offset, hi - lo);
    if (!e.mapped) {
      std::memset(dst.data(), 0, dst.size());
      continue;
    }
    const uint64_t dev = data_offset(e.dbegin.value()) + (lo - e.vbegin.value() * block_bytes_);
    if (aligned(dst.data())) {
      TP_RETURN_IF_ERROR(data_.read(dev, dst));
    } else {
      AlignedBuffer bounce(dst.size());
      TP_RETURN_IF_ERROR(data_.read(dev, bounce.span()));
      std::memcpy(dst.data(), bounce.data(), dst.size());
    }
  }
  return ok_status();
}

Status PoolImpl::write(ThinId thin, uint64_t offset, std::span<const std::byte> in, bool fua) {
  TP_RETURN_IF_ERROR(check_io(offset, in.size(), true));
  TP_ASSIGN_OR_RETURN(ThinPtr t, find(thin));
  TP_RETURN_IF_ERROR(check_bounds(*t, offset, in.size()));
  if ((t->details.flags & kThinFlagPinned) != 0) {
    return Status(Errc::read_only, thin_name(thin) + " is pinned: unpin it to write");
  }
  if (in.empty()) return ok_status();
  const uint64_t b0 = offset / block_bytes_;
  const uint64_t b1 = (offset + in.size() + block_bytes_ - 1) / block_bytes_;
  RangeGuard cells(t->cells, b0, b1, false);
  if (t->deleted) return Status(Errc::not_found, thin_name(thin) + " was deleted");
  TP_ASSIGN_OR_RETURN(std::vector<Extent> extents, lookup(*t, b0, b1 - b0, true));

  std::vector<NewMapping> pieces;
  for (const Extent& e : extents) {
    if (!e.mapped || e.shared) {
      pieces.push_back(NewMapping{e.vbegin.value(), e.length, e.mapped, e.dbegin.value()});
      continue;
    }
    // Provisioned and not shared: straight to the data device.
    const uint64_t lo = std::max(offset, e.vbegin.value() * block_bytes_);
    const uint64_t hi = std::min(offset + in.size(), (e.vbegin.value() + e.length) * block_bytes_);
    std::span<const std::byte> src = in.subspan(lo - offset, hi - lo);
    const uint64_t dev = data_offset(e.dbegin.value()) + (lo - e.vbegin.value() * block_bytes_);
    // Exclusive now, but maybe only through a drop a crash could undo.
    TP_RETURN_IF_ERROR(wait_for_drops(e.dbegin.value(), e.length));
    if (aligned(src.data())) {
      TP_RETURN_IF_ERROR(data_.write(dev, src, fua));
    } else {
      AlignedBuffer bounce(src.size());
      std::memcpy(bounce.data(), src.data(), src.size());
      TP_RETURN_IF_ERROR(data_.write(dev, bounce.span(), fua));
    }
    writes_in_place_ += e.length;
  }
  if (pieces.empty()) {
    // FUA: the data is durable; so must be the mapping of a block
    // provisioned by an earlier write that no flush has covered yet.
    if (!fua) return ok_status();
    Status s = store_->make_durable(store_->committed_lsn());
    return s.ok() ? s : metadata_error(s);
  }
  return write_new_blocks(*t, offset, in, pieces, fua);
}

Status PoolImpl::write_new_blocks(Thin& t, uint64_t offset, std::span<const std::byte> in,
                                  const std::vector<NewMapping>& pieces, bool fua) {
  uint64_t blocks = 0;
  for (const NewMapping& p : pieces) blocks += p.length;
  TP_ASSIGN_OR_RETURN(std::vector<journal::DataRangeAlloc> runs, reserve(t.details.thin, blocks));
  // A block freed by a transaction a crash could undo is still someone's.
  for (const journal::DataRangeAlloc& r : runs) {
    Status s = wait_for_drops(r.begin.value(), r.length);
    if (!s.ok()) {
      store_->release_data(runs);
      return s;
    }
  }

  // Lay the new blocks out in order: piece by piece, run by run.
  struct Placed {
    uint64_t vbegin, dbegin, length;
    const NewMapping* piece;
  };
  std::vector<Placed> placed;
  size_t run = 0;
  uint64_t used_in_run = 0;
  for (const NewMapping& p : pieces) {
    uint64_t done = 0;
    while (done < p.length) {
      const uint64_t n = std::min(p.length - done, runs[run].length - used_in_run);
      placed.push_back(Placed{p.vbegin + done, runs[run].begin.value() + used_in_run, n, &p});
      done += n;
      used_in_run += n;
      if (used_in_run == runs[run].length) {
        ++run;
        used_in_run = 0;
      }
    }
  }

  // Write each placed range: whole blocks, the bytes the IO does not cover
  // zeroed (a hole) or copied from the old block (sharing broken).
  // Written with FUA so that the mapping, once durable, never points at data
  // that is not (pool.h).
  const bool new_block_fua = !options_.unsafe_new_blocks_without_fua;
  auto write_placed = [&](const Placed& pl) -> Status {
    const uint64_t vlo = pl.vbegin * block_bytes_;
    const uint64_t vhi = (pl.vbegin + pl.length) * block_bytes_;
    const uint64_t lo = std::max(offset, vlo);
    const uint64_t hi = std::min(offset + in.size(), vhi);
    const bool partial = lo != vlo || hi != vhi;
    const uint64_t old_d =
        pl.piece->was_mapped ? pl.piece->old_dbegin + (pl.vbegin - pl.piece->vbegin) : 0;
    if (partial && !pl.piece->was_mapped && !zero_new_blocks_) {
      // Zeroing off: only the bytes written reach the new block.
      AlignedBuffer buf(hi - lo);
      std::memcpy(buf.data(), in.data() + (lo - offset), hi - lo);
      return data_.write(data_offset(pl.dbegin) + (lo - vlo), buf.span(), new_block_fua);
    }
    AlignedBuffer buf(vhi - vlo);  // zero-filled
    if (partial && pl.piece->was_mapped) {
      // Only the first and last blocks can be partial: copy just those.
      for (uint64_t edge : {pl.vbegin, pl.vbegin + pl.length - 1}) {
        const uint64_t elo = edge * block_bytes_, ehi = elo + block_bytes_;
        if (lo <= elo && hi >= ehi) continue;  // fully overwritten
        TP_RETURN_IF_ERROR(data_.read(data_offset(old_d + (edge - pl.vbegin)),
                                      buf.span().subspan(elo - vlo, block_bytes_)));
        if (pl.length == 1) break;
      }
    }
    std::memcpy(buf.data() + (lo - vlo), in.data() + (lo - offset), hi - lo);
    return data_.write(data_offset(pl.dbegin), buf.span(), new_block_fua);
  };
  for (const Placed& pl : placed) {
    Status s = write_placed(pl);
    if (!s.ok()) {
      store_->release_data(runs);
      return s;
    }
  }

  uint64_t broken = 0;
  LockGuard tl(t.tree_mu);
  Result<Lsn> lsn = commit_tree_change(
      t, runs,
      [&](MappingTree& tree, DeviceDetails& d) -> Status {
        for (const Placed& pl : placed) {
          TP_ASSIGN_OR_RETURN(const uint64_t before, tree.insert(Run{VBlock(pl.vbegin), pl.length,
                                                                     DBlock(pl.dbegin), time_}));
          d.mapped_blocks += pl.length - before;
          broken += before;
        }
        return ok_status();
      },
      fua);
  if (!lsn.ok()) return lsn.status();
  for (const Placed& pl : placed) {
    if (pl.piece->was_mapped) {
      note_dropped(*lsn, pl.piece->old_dbegin + (pl.vbegin - pl.piece->vbegin), pl.length);
    }
  }
  provisioned_blocks_ += blocks - broken;
  shares_broken_ += broken;
  return ok_status();
}

Status PoolImpl::discard(ThinId thin, uint64_t offset, uint64_t length) {
  TP_RETURN_IF_ERROR(check_io(offset, length, true));
  TP_ASSIGN_OR_RETURN(ThinPtr t, find(thin));
  TP_RETURN_IF_ERROR(check_bounds(*t, offset, length));
  if ((t->details.flags & kThinFlagPinned) != 0) {
    return Status(Errc::read_only, thin_name(thin) + " is pinned: unpin it to discard");
  }
  const uint64_t b0 = (offset + block_bytes_ - 1) / block_bytes_;
  const uint64_t b1 = (offset + length) / block_bytes_;
  if (b0 >= b1) return ok_status();  // no whole block inside
  RangeGuard cells(t->cells, b0, b1, false);
  if (t->deleted) return Status(Errc::not_found, thin_name(thin) + " was deleted");
  TP_RETURN_IF_ERROR(trim(*t, b0, b1));
  out_of_space_ = false;
  return ok_status();
}

Status PoolImpl::trim(Thin& t, uint64_t b0, uint64_t b1) {
  // One transaction per kDiscardRunsPerTxn runs, so that unmapping a large
  // fragmented range never builds a transaction larger than the journal
  // takes. (A discard is not atomic; each piece is.)
  uint64_t pos = b0;
  while (pos < b1) {
    LockGuard tl(t.tree_mu);
    std::vector<Run> unmapped;
    uint64_t end = b1;
    Result<Lsn> lsn = commit_tree_change(
        t, {},
        [&](MappingTree& tree, DeviceDetails& d) -> Status {
          Status walked = tree.for_each(VBlock(pos), b1 - pos, [&](const Run& r) {
            if (unmapped.size() == kDiscardRunsPerTxn) {
              end = r.vbegin.value();
              return Status(Errc::aborted, "enough runs for one transaction");
            }
            unmapped.push_back(r);
            return ok_status();
          });
          if (!walked.ok() && walked.code() != Errc::aborted) return walked;
          TP_ASSIGN_OR_RETURN(const uint64_t removed, tree.remove(VBlock(pos), end - pos));
          d.mapped_blocks -= removed;
          return ok_status();
        },
        false);
    if (!lsn.ok()) return lsn.status();
    for (const Run& r : unmapped) note_dropped(*lsn, r.dbegin.value(), r.length);
    pos = end;
  }
  return ok_status();
}

Status PoolImpl::flush() {
  if (closed_) return Status(Errc::read_only, "pool is closed");
  if (mode_ == PoolMode::fail) return Status(Errc::io_error, "pool has failed: " + mode_reason_);
  const Lsn lsn = store_->committed_lsn();
  TP_RETURN_IF_ERROR(data_.flush());
  Status s = store_->make_durable(lsn);
  if (!s.ok()) return metadata_error(s);
  return ok_status();
}

}  // namespace thinp::pool
