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
#include "tools/pool_command.h"
#include "tools/sim_command.h"
#include "tools/size_arg.h"

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

  std::string replay_trace;
  CLI::App* sim_replay = sim->add_subcommand("replay", "re-check a saved IO trace against the model");
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

  // --- bench ----------------------------------------------------------------
  BenchArgs bench_args;
  std::string bs_text = "4k";
  CLI::App* bench = app.add_subcommand("bench", "benchmarks on a real device or file");
  bench->add_option("--device", bench_args.device, "file, loop device or block device");
  bench->add_flag("--raw", bench_args.raw, "drive the block device directly, without the engine");
  bench->add_option("--workload", bench_args.workload, "randread|randwrite|read|write")
;
  bench->add_option("--bs", bs_text, "IO size (e.g. 4k)");
  bench->add_option("--qd", bench_args.queue_depth, "queue depth");
  bench->add_option("--seconds", bench_args.seconds, "run time");
  bench->add_flag("--json", bench_args.json, "print one JSON object");

  MetadataBenchArgs metadata_args;
  CLI::App* bench_metadata =
      bench->add_subcommand("metadata", "metadata bytes per mapping of a mapping tree");
  bench_metadata->add_option("--mappings", metadata_args.mappings, "number of mappings")
      ->required();
  bench_metadata
      ->add_option("--pattern", metadata_args.pattern, "sequential|random-virtual|random-data")
      ->required();
  bench_metadata->add_flag("--json", metadata_args.json, "print one JSON object");

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
  CLI::App* status = app.add_subcommand("status", "print a pool's geometry and space use");
  status->add_option("--device", status_args.device, "metadata device")->required();
  status->add_option("--data-device", status_args.data_device, "separate data device");
  CLI::App* check = app.add_subcommand("check", "verify a pool's metadata and reference counts");
  check->add_option("--device", check_args.device, "metadata device")->required();
  check->add_option("--data-device", check_args.data_device, "separate data device");

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
  if (bench_metadata->parsed()) return run_metadata_bench_command(metadata_args);
  if (bench->parsed()) {
    if (bench_args.device.empty()) return usage_error("bench needs --device PATH (or the metadata verb)");
    if (bench_args.workload.empty()) return usage_error("bench needs --workload");
    auto bs = parse_size(bs_text);
    if (!bs.ok()) return usage_error(bs.status().message());
    bench_args.block_bytes = *bs;
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
