// thinp: the command-line front end.
//
// One binary for simulation runs and sweeps, pool administration and
// benchmarks on real devices. Every error is one line on stderr, prefixed
// "thinp: error:", with exit code 2 for bad arguments and 1 for a failed run
// or check; nothing here exits with a code of 128 or more.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "tools/bench_command.h"
#include "tools/bench_isolation.h"
#include "tools/pool_command.h"
#include "tools/sim_command.h"
#include "tools/size_arg.h"
#include "tools/thin_command.h"

namespace thinp::tools {
namespace {

constexpr int kUsageError = 2;

int usage_error(const std::string& what) {
  std::cerr << "thinp: error: " << what << "\n";
  return kUsageError;
}

// CLI11 messages can span lines; keep the first, which names the problem.
std::string first_line(const std::string& s) {
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

CLI::App* find_subcommand(CLI::App& app, const std::string& name) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_name() == name) return sub;
  }
  return nullptr;
}

// CLI11 reports an unknown verb as "A subcommand is required"; this walks the
// command words first so that the message names the word that is wrong.
// Returns "" when the words are fine.
std::string unknown_command_word(CLI::App& app, int argc, char** argv) {
  CLI::App* level = &app;
  std::string path = "thinp";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    // Only a level that must be followed by a verb (thinp, thinp sim) can
    // have a wrong one; elsewhere the words are options for CLI11 to judge.
    if (level->get_require_subcommand_min() == 0) return "";
    if (word == "-h" || word == "--help" || word == "--version") return "";
    if (word.starts_with("-")) return "unknown option '" + word + "' for '" + path + "'";
    CLI::App* sub = find_subcommand(*level, word);
    if (sub == nullptr) return "unknown command '" + word + "' for '" + path + "'";
    level = sub;
    path += " " + word;
  }
  return "";
}

int run(int argc, char** argv) {
  CLI::App app{"thinp: thin provisioning v2 engine, simulator and tools", "thinp"};
  app.set_version_flag("--version", std::string("thinp ") + THINP_VERSION);
  app.require_subcommand(1);

  // --- sim ------------------------------------------------------------------
  CLI::App* sim = app.add_subcommand("sim", "deterministic simulation runs and sweeps");
  sim->require_subcommand(1);

  SimRunArgs run_args;
  CLI::App* sim_run = sim->add_subcommand("run", "run one seed of a scenario");
  sim_run->add_option("--scenario", run_args.scenario, "scenario name (disk, ...)")->required();
  sim_run->add_option("--seed", run_args.seed, "seed")->required();
  sim_run->add_option("--ops", run_args.ops, "workload length (default: the scenario's)");
  sim_run->add_flag("--verbose", run_args.verbose, "log every event");
  sim_run->add_option("--bug", run_args.bugs, "inject a named deliberate bug (for checker tests)");
  sim_run->add_option("--save-trace", run_args.save_trace, "save the IO trace to this file");
  sim_run->add_option("--crash-at", run_args.crash_at,
                      "lose power after this many events of the first boot (crash-sweep replay)");
  sim_run->add_option("--crash-state", run_args.crash_state, "which crash state (with --crash-at)");

  std::string replay_trace;
  CLI::App* sim_replay =
      sim->add_subcommand("replay", "re-check a saved IO trace against the model");
  sim_replay->add_option("--trace", replay_trace, "a trace saved by sim run --save-trace")
      ->required();

  SimSweepArgs sweep_args;
  std::string seeds_text;
  CLI::App* sim_sweep = sim->add_subcommand("sweep", "run a range of seeds of a scenario");
  sim_sweep->add_option("--scenario", sweep_args.scenario, "scenario name")->required();
  sim_sweep->add_option("--seeds", seeds_text, "seed range A..B (inclusive)")->required();
  sim_sweep->add_option("--ops", sweep_args.ops, "workload length (default: the scenario's)");
  sim_sweep->add_option("--jobs", sweep_args.jobs, "parallel runs (default: one per core)");
  sim_sweep->add_option("--bug", sweep_args.bugs, "inject a named deliberate bug");

  SimCrashSweepArgs crash_args;
  CLI::App* sim_crash = sim->add_subcommand(
      "crash-sweep",
      "crash one seed at every crash point (sampled beyond --points), recover, check");
  sim_crash->add_option("--scenario", crash_args.scenario, "scenario name (pool)")->required();
  sim_crash->add_option("--seed", crash_args.seed, "seed")->required();
  sim_crash->add_option("--points", crash_args.points, "crash points to try (default 200)");
  sim_crash->add_option("--states", crash_args.states, "crash states per point (default 2)");
  sim_crash->add_option("--ops", crash_args.ops, "workload length (default: the scenario's)");
  sim_crash->add_option("--jobs", crash_args.jobs, "parallel runs (default: one per core)");
  sim_crash->add_option("--bug", crash_args.bugs, "inject a named deliberate bug");

  // --- bench ----------------------------------------------------------------
  BenchArgs bench_args;
  std::string bs_text = "4k";
  CLI::App* bench = app.add_subcommand(
      "bench",
      "benchmarks on a real device or file (without --raw: formats a pool on it, destroying its "
      "data; a device that holds a pool is refused unless --force)");
  bench->add_option("--device", bench_args.device, "file, loop device or block device");
  bench->add_flag("--raw", bench_args.raw, "drive the block device directly, without the engine");
  bench->add_option("--workload", bench_args.workload,
                    "randread|randwrite|read|write; without --raw also "
                    "provision|overwrite|break-sharing");
  bench->add_option("--bs", bs_text, "IO size (e.g. 4k)");
  bench->add_option("--qd", bench_args.queue_depth, "queue depth");
  bench->add_option("--seconds", bench_args.seconds, "run time");
  bench->add_flag("--json", bench_args.json, "print one JSON object");
  // Without --raw the benchmark formats a pool on the device (tools/bench_pool.h).
  std::string bench_size_text, bench_block_text = "64k";
  bench->add_option("--data-device", bench_args.data_device, "engine: separate data device");
  bench->add_option("--size", bench_size_text, "engine: thin size (default: the data area)");
  bench->add_option("--block-size", bench_block_text, "engine: data block size (default 64k)");
  bench->add_option("--flush-every", bench_args.flush_every, "engine: flush after N writes");
  bench->add_flag("--force", bench_args.force,
                  "engine: format over a device that already holds a pool (its data is lost)");
  bench->add_option("--profile", bench_args.profile_path, "engine: write a gperftools CPU profile");

  MetadataBenchArgs metadata_args;
  CLI::App* bench_metadata =
      bench->add_subcommand("metadata", "metadata bytes per mapping of a mapping tree");
  bench_metadata->add_option("--mappings", metadata_args.mappings, "number of mappings")
      ->required();
  bench_metadata
      ->add_option("--pattern", metadata_args.pattern, "sequential|random-virtual|random-data")
      ->required();
  bench_metadata->add_flag("--json", metadata_args.json, "print one JSON object");

  IsolationBenchOptions isolation_args;
  bool isolation_json = false;
  CLI::App* bench_isolation = bench->add_subcommand(
      "isolation", "simulator: thin B's latency with and without thin A's provisioning storm");
  bench_isolation->add_option("--seed", isolation_args.seed, "seed");
  bench_isolation->add_option("--a-tasks", isolation_args.a_tasks, "storm tasks on thin A");
  bench_isolation->add_option("--channels", isolation_args.channels, "IOs served at once");
  bench_isolation->add_flag("--json", isolation_json, "print one JSON object");

  // --- pool administration ----------------------------------------------------
  FormatArgs format_args;
  std::string format_bs_text = "64k", format_meta_text;
  CLI::App* format = app.add_subcommand("format", "format a new pool on a device (or a pair)");
  format->add_option("--device", format_args.devices.device, "metadata (and data) device")
      ->required();
  format->add_option("--data-device", format_args.devices.data_device, "separate data device");
  format->add_option("--block-size", format_bs_text, "data block size (e.g. 64k)");
  format->add_option("--metadata-size", format_meta_text, "metadata area of a one-device pool");
  format->add_flag("--force", format_args.force, "overwrite an existing pool");
  PoolDeviceArgs status_args, check_args;
  CLI::App* status =
      app.add_subcommand("status", "print a pool's geometry, space use, mode and thins");
  status->add_option("--device", status_args.device, "metadata device")->required();
  status->add_option("--data-device", status_args.data_device, "separate data device");
  CLI::App* check = app.add_subcommand("check", "verify a pool's metadata and reference counts");
  check->add_option("--device", check_args.device, "metadata device")->required();
  check->add_option("--data-device", check_args.data_device, "separate data device");

  // --- thins ---------------------------------------------------------------------
  // Every thin verb names the pool's device(s); most name one thin.
  auto add_devices = [](CLI::App* sub, PoolDeviceArgs& d) {
    sub->add_option("--device", d.device, "metadata (and data) device")->required();
    sub->add_option("--data-device", d.data_device, "separate data device");
  };
  auto add_thin = [&](CLI::App* sub, ThinArgs& t) {
    add_devices(sub, t.devices);
    sub->add_option("--thin", t.thin, "thin id")->required();
  };
  ThinArgs create_args, delete_args, write_args, read_args, mappings_args, pin_args, unpin_args;
  std::string create_size_text, write_offset_text, write_input, read_offset_text, read_length_text,
      read_output;
  CLI::App* create = app.add_subcommand("create", "create a thin volume");
  add_thin(create, create_args);
  create->add_option("--size", create_size_text, "virtual size (e.g. 64M)")->required();
  PoolDeviceArgs snapshot_devices;
  uint64_t snapshot_origin = 0, snapshot_thin = 0;
  CLI::App* snapshot = app.add_subcommand("snapshot", "snapshot a thin as a new thin");
  add_devices(snapshot, snapshot_devices);
  snapshot->add_option("--origin", snapshot_origin, "thin to snapshot")->required();
  snapshot->add_option("--thin", snapshot_thin, "id of the new snapshot")->required();
  CLI::App* del = app.add_subcommand("delete", "delete a thin (frees what only it maps)");
  add_thin(del, delete_args);
  CLI::App* write = app.add_subcommand("write", "write a file into a thin and flush it");
  add_thin(write, write_args);
  write->add_option("--offset", write_offset_text, "byte offset (e.g. 1M)")->required();
  write->add_option("--input", write_input, "file to write (- for stdin)")->required();
  CLI::App* read = app.add_subcommand("read", "read a byte range of a thin into a file");
  add_thin(read, read_args);
  read->add_option("--offset", read_offset_text, "byte offset (e.g. 1M)")->required();
  read->add_option("--length", read_length_text, "bytes to read (e.g. 4M)")->required();
  read->add_option("--output", read_output, "output file (- for stdout)")->required();
  CLI::App* mappings =
      app.add_subcommand("mappings", "print a pinned thin's mapped runs (works on a live pool)");
  add_thin(mappings, mappings_args);
  CLI::App* pin = app.add_subcommand("pin", "pin a thin's tree for thinp mappings");
  add_thin(pin, pin_args);
  CLI::App* unpin = app.add_subcommand("unpin", "release a pinned thin");
  add_thin(unpin, unpin_args);
  PoolDeviceArgs grow_devices;
  CLI::App* grow = app.add_subcommand("grow", "grow the data area to fill its (enlarged) device");
  add_devices(grow, grow_devices);

  const std::string bad_word = unknown_command_word(app, argc, argv);
  if (!bad_word.empty()) return usage_error(bad_word + " (see thinp --help)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(first_line(e.what()));
  }

  if (sim_run->parsed()) return run_sim_run(run_args);
  if (sim_replay->parsed()) return run_sim_replay_trace(replay_trace);
  if (sim_crash->parsed()) return run_sim_crash_sweep(crash_args);
  if (sim_sweep->parsed()) {
    auto seeds = parse_seed_range(seeds_text);
    if (!seeds.ok()) return usage_error(seeds.status().message());
    sweep_args.seeds = *seeds;
    return run_sim_sweep(sweep_args);
  }
  if (format->parsed()) {
    auto bs = parse_size(format_bs_text);
    if (!bs.ok()) return usage_error(bs.status().message());
    format_args.data_block_bytes = *bs;
    if (!format_meta_text.empty()) {
      auto ms = parse_size(format_meta_text);
      if (!ms.ok()) return usage_error(ms.status().message());
      format_args.metadata_bytes = *ms;
    }
    return run_format(format_args);
  }
  if (status->parsed()) return run_status(status_args);
  if (check->parsed()) return run_check(check_args);
  if (create->parsed()) {
    auto size = parse_size(create_size_text);
    if (!size.ok()) return usage_error(size.status().message());
    if (*size == 0) return usage_error("--size must be more than 0");
    return run_create_thin(create_args, *size);
  }
  if (snapshot->parsed()) return run_snapshot(snapshot_devices, snapshot_origin, snapshot_thin);
  if (del->parsed()) return run_delete_thin(delete_args);
  if (write->parsed()) {
    auto offset = parse_size(write_offset_text);
    if (!offset.ok()) return usage_error(offset.status().message());
    return run_write(write_args, *offset, write_input);
  }
  if (read->parsed()) {
    auto offset = parse_size(read_offset_text);
    if (!offset.ok()) return usage_error(offset.status().message());
    auto length = parse_size(read_length_text);
    if (!length.ok()) return usage_error(length.status().message());
    return run_read(read_args, *offset, *length, read_output);
  }
  if (mappings->parsed()) return run_mappings(mappings_args);
  if (pin->parsed()) return run_pin(pin_args);
  if (grow->parsed()) return run_grow(grow_devices);
  if (unpin->parsed()) return run_unpin(unpin_args);
  if (bench_metadata->parsed()) return run_metadata_bench_command(metadata_args);
  if (bench_isolation->parsed()) return run_isolation_bench_command(isolation_args, isolation_json);
  if (bench->parsed()) {
    if (bench_args.device.empty())
      return usage_error("bench needs --device PATH (or the metadata verb)");
    if (bench_args.workload.empty()) return usage_error("bench needs --workload");
    auto bs = parse_size(bs_text);
    if (!bs.ok()) return usage_error(bs.status().message());
    bench_args.block_bytes = *bs;
    auto data_bs = parse_size(bench_block_text);
    if (!data_bs.ok()) return usage_error(data_bs.status().message());
    bench_args.data_block_bytes = *data_bs;
    if (!bench_size_text.empty()) {
      auto size = parse_size(bench_size_text);
      if (!size.ok()) return usage_error(size.status().message());
      if (*size == 0) return usage_error("--size must be more than 0");
      bench_args.thin_bytes = *size;
    }
    return run_bench(bench_args);
  }
  return usage_error("no command given (see thinp --help)");
}

}  // namespace
}  // namespace thinp::tools

int main(int argc, char** argv) {
  try {
    return thinp::tools::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "thinp: error: " << e.what() << "\n";
    return 1;
  }
}
