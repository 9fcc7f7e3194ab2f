#include "tools/pool_command.h"

#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <random>

#include "engine/pool/metadata_store.h"
#include "engine/real/reactor.h"
#include "engine/real/real_device.h"

namespace thinp::tools {
namespace {

int fail(const Status& s) {
  std::string msg = s.to_string();
  for (char& c : msg) {
    if (c == '\n') c = ' ';
  }
  std::cerr << "thinp: error: " << msg << "\n";
  return 1;
}

// The devices of one command, opened on one reactor.
struct Devices {
  std::unique_ptr<BlockDevice> metadata;
  std::unique_ptr<BlockDevice> data;
};

Result<Devices> open_devices(real::Reactor& reactor, const PoolDeviceArgs& args, bool read_only) {
  real::OpenOptions o;
  o.read_only = read_only;
  Devices d;
  TP_ASSIGN_OR_RETURN(d.metadata, real::open_real_device(reactor, args.device, o));
  if (!args.data_device.empty()) {
    TP_ASSIGN_OR_RETURN(d.data, real::open_real_device(reactor, args.data_device, o));
  }
  return d;
}

// Runs `body` as the only task on a fresh reactor over the devices and
// returns its exit code (1 if the reactor ends otherwise than idle).
int run_on_reactor(const PoolDeviceArgs& args, bool read_only,
                   const std::function<int(Runtime&, Devices&)>& body) {
  real::ReactorOptions ro;
  ro.seed = std::random_device{}();  // the pool uuid and journal session come from it
  real::Reactor reactor(ro);
  Result<Devices> devices = open_devices(reactor, args, read_only);
  if (!devices.ok()) return fail(devices.status());
  int code = 1;
  reactor.spawn("pool command", [&] { code = body(reactor, *devices); });
  const real::ReactorOutcome outcome = reactor.run();
  if (outcome != real::ReactorOutcome::idle) {
    return fail(Status(Errc::aborted, std::string("reactor ended: ") +
                                          real::reactor_outcome_name(outcome) + " " +
                                          reactor.failure()));
  }
  return code;
}

Result<std::unique_ptr<pool::MetadataStore>> open_store(Runtime& rt, Devices& d) {
  return pool::MetadataStore::open(rt, *d.metadata, d.data.get(), pool::OpenOptions{});
}

std::string kib(uint64_t bytes) { return std::to_string(bytes / 1024) + " KiB"; }

void print_status(const pool::StoreStatus& s, const std::string& device) {
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

}  // namespace

int run_format(const FormatArgs& args) {
  return run_on_reactor(args.devices, false, [&](Runtime& rt, Devices& d) {
    pool::FormatOptions f;
    f.data_block_bytes = args.data_block_bytes;
    f.metadata_bytes = args.metadata_bytes;
    f.force = args.force;
    Status s = pool::MetadataStore::format(rt, *d.metadata, d.data.get(), f);
    if (!s.ok()) return fail(s);
    auto store = open_store(rt, d);
    if (!store.ok()) return fail(store.status().with_context("reopening the new pool"));
    const pool::StoreStatus st = (*store)->status();
    Status closed = (*store)->close();
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
  return run_on_reactor(args, false, [&](Runtime& rt, Devices& d) {
    auto store = open_store(rt, d);
    if (!store.ok()) return fail(store.status());
    const pool::StoreStatus st = (*store)->status();
    Status closed = (*store)->close();
    if (!closed.ok()) return fail(closed);
    print_status(st, args.device);
    return 0;
  });
}

int run_check(const PoolDeviceArgs& args) {
  return run_on_reactor(args, false, [&](Runtime& rt, Devices& d) {
    auto store = open_store(rt, d);
    if (!store.ok()) return fail(store.status());
    auto findings = (*store)->check();
    Status closed = (*store)->close();
    if (!findings.ok()) return fail(findings.status());
    if (!closed.ok()) return fail(closed);
    for (const pool::CheckFinding& f : *findings) std::printf("%s\n", f.what.c_str());
    if (!findings->empty()) {
      std::printf("%zu problems found\n", findings->size());
      return 1;
    }
    std::printf("clean: no problems found\n");
    return 0;
  });
}

}  // namespace thinp::tools
