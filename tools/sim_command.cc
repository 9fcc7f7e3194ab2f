#include "tools/sim_command.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "scenarios/disk_scenario.h"
#include "scenarios/scenario.h"
#include "sim/trace.h"

namespace thinp::tools {
namespace {

using scenarios::ScenarioInfo;
using scenarios::ScenarioOptions;
using scenarios::ScenarioResult;

const ScenarioInfo* lookup(const std::string& name) {
  const ScenarioInfo* info = scenarios::find_scenario(name);
  if (info == nullptr) {
    std::string known;
    for (const ScenarioInfo& s : scenarios::all_scenarios()) {
      known += known.empty() ? "" : ", ";
      known += s.name;
    }
    std::cerr << "thinp: error: unknown scenario '" << name << "' (known: " << known << ")\n";
  }
  return info;
}

std::string bug_flags(const std::vector<std::string>& bugs) {
  std::string s;
  for (const std::string& b : bugs) s += " --bug " + b;
  return s;
}

}  // namespace

std::string replay_command(const std::string& scenario, uint64_t seed, uint64_t ops,
                           const std::vector<std::string>& bugs) {
  std::string cmd = fmt::format("thinp sim run --scenario {} --seed {}", scenario, seed);
  if (ops != 0) cmd += fmt::format(" --ops {}", ops);
  return cmd + bug_flags(bugs) + " --verbose";
}

int run_sim_run(const SimRunArgs& args) {
  const ScenarioInfo* info = lookup(args.scenario);
  if (info == nullptr) return 2;
  ScenarioOptions opts;
  opts.seed = args.seed;
  opts.ops = args.ops;
  opts.verbose = args.verbose;
  opts.log = args.verbose ? &std::cout : nullptr;
  opts.bugs = args.bugs;
  opts.trace_path = args.save_trace;
  opts.crash_after_events = args.crash_at;
  opts.crash_state = args.crash_state;
  if (args.crash_at != 0 && !info->crash_points) {
    std::cerr << "thinp: error: scenario '" << args.scenario << "' has no crash points\n";
    return 2;
  }
  const ScenarioResult r = info->run(opts);
  if (r.passed) {
    std::cout << fmt::format("scenario={} seed={} {} digest={:016x}\n", args.scenario, args.seed,
                             r.summary, r.digest);
    return 0;
  }
  std::cout << fmt::format("FAILED scenario={} seed={} {}: {}\n", args.scenario, args.seed,
                           r.summary, r.failure);
  std::cout << "replay: " << replay_command(args.scenario, args.seed, args.ops, args.bugs) << "\n";
  return 1;
}

int run_sim_replay_trace(const std::string& trace_path) {
  auto trace = sim::load_trace(trace_path);
  if (!trace.ok()) {
    std::cerr << "thinp: error: " << trace.status().message() << "\n";
    return 2;
  }
  auto stats = scenarios::replay_disk_trace(*trace);
  if (!stats.ok()) {
    std::cout << "FAILED replay of " << trace_path << ": " << stats.status().message() << "\n";
    return 1;
  }
  std::cout << fmt::format("replayed {}: {} events, every read allowed by the disk model\n",
                           trace_path, trace->events.size());
  return 0;
}

// --- sweep ------------------------------------------------------------------
// Each run goes to a forked child so that an assertion failure (abort) in one
// run is reported as that run's failure instead of ending the sweep. The
// child writes "P" or "F<message>" to a pipe; a child that dies without a
// verdict is a failure named by its signal or exit code.

namespace {

struct Child {
  size_t index;
  int fd;
  std::string output;
};

void run_child(const ScenarioInfo& info, const ScenarioOptions& opts, int fd) {
  const ScenarioResult r = info.run(opts);
  // Bounded, so that the child never blocks on a full pipe while the parent
  // waits for it to exit.
  std::string verdict = r.passed ? "P" : "F" + r.failure;
  if (verdict.size() > 8192) verdict.resize(8192);
  size_t off = 0;
  while (off < verdict.size()) {
    ssize_t n = ::write(fd, verdict.data() + off, verdict.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  std::fflush(nullptr);
  ::_exit(0);
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    return fmt::format("crashed with signal {} ({})", WTERMSIG(status),
                       strsignal(WTERMSIG(status)));
  }
  return fmt::format("exited with code {} and no verdict", WEXITSTATUS(status));
}

// Runs every element of `runs` in a forked child, `jobs` at a time, with a
// progress line on a terminal. Returns the failures by index (ordered), or
// nullopt if a pipe or fork failed (reported on stderr).
std::optional<std::map<size_t, std::string>> run_forked(const ScenarioInfo& info,
                                                        const std::vector<ScenarioOptions>& runs,
                                                        unsigned jobs) {
  if (jobs == 0) jobs = std::max(1u, std::thread::hardware_concurrency());
  const bool progress = ::isatty(STDERR_FILENO) != 0;
  std::map<pid_t, Child> running;
  std::map<size_t, std::string> failures;
  size_t next = 0, done = 0;
  std::cout.flush();
  while (next < runs.size() || !running.empty()) {
    while (next < runs.size() && running.size() < jobs) {
      int fds[2];
      if (::pipe(fds) != 0) {
        std::cerr << "thinp: error: pipe: " << std::strerror(errno) << "\n";
        return std::nullopt;
      }
      const pid_t pid = ::fork();
      if (pid < 0) {
        std::cerr << "thinp: error: fork: " << std::strerror(errno) << "\n";
        return std::nullopt;
      }
      if (pid == 0) {
        ::close(fds[0]);
        run_child(info, runs[next], fds[1]);
      }
      ::close(fds[1]);
      running.emplace(pid, Child{next, fds[0], {}});
      ++next;
    }
    // Drain the output of every child, then reap one.
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) continue;
    auto it = running.find(pid);
    if (it == running.end()) continue;
    Child& c = it->second;
    char buf[4096];
    for (ssize_t n; (n = ::read(c.fd, buf, sizeof buf)) > 0;) c.output.append(buf, n);
    ::close(c.fd);
    if (c.output.empty()) {
      failures[c.index] = describe_exit(status);
    } else if (c.output[0] != 'P') {
      failures[c.index] = c.output.substr(1);
    }
    running.erase(it);
    ++done;
    if (progress) {
      std::cerr << fmt::format("\r[{}/{}] {} failed", done, runs.size(), failures.size())
                << std::flush;
    }
  }
  if (progress) std::cerr << "\n";
  return failures;
}

}  // namespace

int run_sim_sweep(const SimSweepArgs& args) {
  const ScenarioInfo* info = lookup(args.scenario);
  if (info == nullptr) return 2;
  std::vector<ScenarioOptions> runs;
  for (uint64_t seed = args.seeds.first;; ++seed) {
    ScenarioOptions opts;
    opts.seed = seed;
    opts.ops = args.ops;
    opts.bugs = args.bugs;
    runs.push_back(opts);
    if (seed == args.seeds.last) break;
  }
  const auto failures = run_forked(*info, runs, args.jobs);
  if (!failures.has_value()) return 2;
  for (const auto& [i, why] : *failures) {
    std::cout << fmt::format("seed {} FAILED: {}\n  replay: {}\n", runs[i].seed, why,
                             replay_command(args.scenario, runs[i].seed, args.ops, args.bugs));
  }
  std::cout << fmt::format("{} passed, {} failed\n", runs.size() - failures->size(),
                           failures->size());
  return failures->empty() ? 0 : 1;
}

int run_sim_crash_sweep(const SimCrashSweepArgs& args) {
  const ScenarioInfo* info = lookup(args.scenario);
  if (info == nullptr) return 2;
  if (!info->crash_points) {
    std::cerr << "thinp: error: scenario '" << args.scenario
              << "' has no crash points (crash-sweep supports: pool)\n";
    return 2;
  }
  if (args.points == 0 || args.states == 0) {
    std::cerr << "thinp: error: --points and --states must be at least 1\n";
    return 2;
  }
  // Record: the uncut run of the seed says how many crash points it has
  // (and is checked like every other).
  ScenarioOptions base;
  base.seed = args.seed;
  base.ops = args.ops;
  base.bugs = args.bugs;
  ScenarioOptions uncut = base;
  uncut.crash_after_events = UINT64_MAX;
  const ScenarioResult recorded = info->run(uncut);
  if (!recorded.passed) {
    std::cout << fmt::format(
        "FAILED: the uncut run of seed {} fails: {}\n  replay: {} --crash-at {}\n", args.seed,
        recorded.failure, replay_command(args.scenario, args.seed, args.ops, args.bugs),
        UINT64_MAX);
    return 1;
  }
  const uint64_t events = recorded.crash_points;
  // Every crash point up to the budget; beyond it, points evenly spaced
  // over the whole boot (first and last included).
  std::vector<uint64_t> points;
  if (events <= args.points) {
    for (uint64_t p = 1; p <= events; ++p) points.push_back(p);
  } else {
    for (uint64_t i = 0; i < args.points; ++i) {
      points.push_back(1 + (args.points == 1 ? 0 : i * (events - 1) / (args.points - 1)));
    }
  }
  std::vector<ScenarioOptions> runs;
  for (uint64_t p : points) {
    for (uint64_t s = 1; s <= args.states; ++s) {
      ScenarioOptions opts = base;
      opts.crash_after_events = p;
      opts.crash_state = s;
      runs.push_back(opts);
    }
  }
  std::cout << fmt::format(
      "crash-sweep: scenario {} seed {}: {} crash points in the first boot, {} chosen x {} crash "
      "states = {} runs\n",
      args.scenario, args.seed, events, points.size(), args.states, runs.size());
  const auto failures = run_forked(*info, runs, args.jobs);
  if (!failures.has_value()) return 2;
  for (const auto& [i, why] : *failures) {
    std::cout << fmt::format(
        "crash point {} state {} FAILED: {}\n  replay: {} --crash-at {} --crash-state {}\n",
        runs[i].crash_after_events, runs[i].crash_state, why,
        replay_command(args.scenario, args.seed, args.ops, args.bugs), runs[i].crash_after_events,
        runs[i].crash_state);
  }
  std::cout << fmt::format("{} passed, {} failed\n", runs.size() - failures->size(),
                           failures->size());
  return failures->empty() ? 0 : 1;
}

}  // namespace thinp::tools
