#include "tools/pool_command.h"

#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <random>

#include "engine/pool/pool.h"
#include "engine/real/reactor.h"
#include "engine/real/real_device.h"

namespace thinp::tools {

int fail(const Status& s) {
  std::string msg = s.to_string();
  for (char& c : msg) {
    if (c == '\n') c = ' ';
  }
  std::cerr << "thinp: error: " << msg << "\n";
  return kExitFailure;
}

int usage_fail(const std::string& what) {
  std::cerr << "thinp: error: " << what << "\n";
  return kExitUsage;
}

namespace {

Result<Devices> open_devices(real::Reactor& reactor, const PoolDeviceArgs& args,
                             DeviceOpenMode mode) {
  real::OpenOptions o;
  o.read_only = mode.read_only;
  o.exclusive = mode.exclusive;
  Devices d;
  TP_ASSIGN_OR_RETURN(d.metadata, real::open_real_device(reactor, args.device, o));
  if (!args.data_device.empty()) {
    TP_ASSIGN_OR_RETURN(d.data, real::open_real_device(reactor, args.data_device, o));
  }
  return d;
}

Result<std::unique_ptr<pool::Pool>> open_pool(Runtime& rt, Devices& d) {
  return pool::Pool::open(rt, *d.metadata, d.data.get(), pool::PoolOptions{});
}

std::string kib(uint64_t bytes) { return std::to_string(bytes / 1024) + " KiB"; }

void print_store_status(const pool::StoreStatus& s, const std::string& device) {
  std::printf("pool on %s\n", device.c_str());
  std::printf("data blocks: %llu used, %llu free, %llu total (%s each)\n",
              (unsigned long long)s.data_used, (unsigned long long)s.data_free,
              (unsigned long long)s.data_blocks, kib(s.data_block_bytes).c_str());
  std::printf("metadata blocks: %llu used, %llu free, %llu total (4 KiB each)\n",
              (unsigned long long)s.metadata_used, (unsigned long long)s.metadata_free,
              (unsigned long long)s.metadata_blocks);
  std::printf("journal: %llu of %llu blocks in use after recovery, durable LSN %llu\n",
              (unsigned long long)s.journal_used_blocks, (unsigned long long)s.journal_blocks,
              (unsigned long long)s.durable_lsn.value());
  std::printf("transaction id: %llu, device tree root: m:%llu\n",
              (unsigned long long)s.transaction_id, (unsigned long long)s.device_tree_root.value());
  std::printf("flags: last shutdown %s, needs_check=%s\n",
              s.clean_shutdown ? "clean" : "unclean (journal recovered)",
              s.needs_check ? "yes" : "no");
}

void print_pool_status(const pool::PoolStatus& s, const std::vector<pool::ThinInfo>& thins,
                       const std::string& device) {
  print_store_status(s.store, device);
  if (s.mode_reason.empty()) {
    std::printf("mode: %s\n", pool::pool_mode_name(s.mode));
  } else {
    std::printf("mode: %s (%s)\n", pool::pool_mode_name(s.mode), s.mode_reason.c_str());
  }
  std::printf("thins: %zu\n", thins.size());
  for (const pool::ThinInfo& t : thins) {
    std::printf("thin %llu: %llu bytes (%llu blocks), %llu blocks mapped, pinned: %s\n",
                (unsigned long long)t.thin.value(),
                (unsigned long long)(t.virtual_blocks * s.store.data_block_bytes),
                (unsigned long long)t.virtual_blocks, (unsigned long long)t.mapped_blocks,
                t.pinned ? "yes" : "no");
  }
}

}  // namespace

int run_on_reactor(const PoolDeviceArgs& args, DeviceOpenMode mode,
                   const std::function<int(Runtime&, Devices&)>& body) {
  real::ReactorOptions ro;
  ro.seed = std::random_device{}();  // the pool uuid and journal session come from it
  real::Reactor reactor(ro);
  Result<Devices> devices = open_devices(reactor, args, mode);
  if (!devices.ok()) return fail(devices.status());
  int code = kExitFailure;
  reactor.spawn("pool command", [&] { code = body(reactor, *devices); });
  const real::ReactorOutcome outcome = reactor.run();
  if (outcome != real::ReactorOutcome::idle) {
    return fail(Status(Errc::aborted, std::string("reactor ended: ") +
                                          real::reactor_outcome_name(outcome) + " " +
                                          reactor.failure()));
  }
  return code;
}

int run_with_pool(const PoolDeviceArgs& args,
                  const std::function<int(pool::Pool&, const Devices&)>& body) {
  return run_on_reactor(args, DeviceOpenMode{}, [&](Runtime& rt, Devices& d) {
    auto pool = open_pool(rt, d);
    if (!pool.ok()) return fail(pool.status());
    const int code = body(**pool, d);
    Status closed = (*pool)->close();
    if (code == 0 && !closed.ok()) return fail(closed.with_context("closing the pool"));
    return code;
  });
}

int run_format(const FormatArgs& args) {
  return run_on_reactor(args.devices, DeviceOpenMode{}, [&](Runtime& rt, Devices& d) {
    pool::FormatOptions f;
    f.data_block_bytes = args.data_block_bytes;
    f.metadata_bytes = args.metadata_bytes;
    f.force = args.force;
    Status s = pool::Pool::format(rt, *d.metadata, d.data.get(), f);
    if (!s.ok()) return fail(s);
    auto pool = open_pool(rt, d);
    if (!pool.ok()) return fail(pool.status().with_context("reopening the new pool"));
    const pool::StoreStatus st = (*pool)->status().store;
    Status closed = (*pool)->close();
    if (!closed.ok()) return fail(closed);
    std::printf("formatted %s: %llu data blocks of %s, %llu metadata blocks\n",
                args.devices.device.c_str(), (unsigned long long)st.data_blocks,
                kib(st.data_block_bytes).c_str(), (unsigned long long)st.metadata_blocks);
    return 0;
  });
}

// Opening recovers the journal and writes the superblock, so status and
// check need the device writable.
int run_status(const PoolDeviceArgs& args) {
  return run_with_pool(args, [&](pool::Pool& pool, const Devices&) {
    print_pool_status(pool.status(), pool.thins(), args.device);
    return 0;
  });
}

int run_check(const PoolDeviceArgs& args) {
  return run_with_pool(args, [&](pool::Pool& pool, const Devices&) {
    auto findings = pool.check();
    if (!findings.ok()) return fail(findings.status());
    for (const pool::CheckFinding& f : *findings) std::printf("%s\n", f.what.c_str());
    if (!findings->empty()) {
      std::printf("%zu problems found\n", findings->size());
      return kExitFailure;
    }
    std::printf("clean: no problems found\n");
    return 0;
  });
}

}  // namespace thinp::tools
