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
#include <thread>

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
// Each seed runs in a forked child so that an assertion failure (abort) in one
// seed is reported as that seed's failure instead of ending the sweep. The
// child writes "P" or "F<message>" to a pipe; a child that dies without a
// verdict is a failure named by its signal or exit code.

namespace {

struct Child {
  uint64_t seed;
  int fd;
  std::string output;
};

void run_child(const ScenarioInfo& info, const SimSweepArgs& args, uint64_t seed, int fd) {
  ScenarioOptions opts;
  opts.seed = seed;
  opts.ops = args.ops;
  opts.bugs = args.bugs;
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
    return fmt::format("crashed with signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  }
  return fmt::format("exited with code {} and no verdict", WEXITSTATUS(status));
}

}  // namespace

int run_sim_sweep(const SimSweepArgs& args) {
  const ScenarioInfo* info = lookup(args.scenario);
  if (info == nullptr) return 2;
  const unsigned jobs =
      args.jobs != 0 ? args.jobs : std::max(1u, std::thread::hardware_concurrency());
  const uint64_t total = args.seeds.last - args.seeds.first + 1;
  const bool progress = ::isatty(STDERR_FILENO) != 0;

  std::map<pid_t, Child> running;
  std::map<uint64_t, std::string> failures;  // ordered by seed
  uint64_t next = args.seeds.first, done = 0;
  bool launched_all = false;
  std::cout.flush();
  while (!launched_all || !running.empty()) {
    while (!launched_all && running.size() < jobs) {
      int fds[2];
      if (::pipe(fds) != 0) {
        std::cerr << "thinp: error: pipe: " << std::strerror(errno) << "\n";
        return 2;
      }
      const pid_t pid = ::fork();
      if (pid < 0) {
        std::cerr << "thinp: error: fork: " << std::strerror(errno) << "\n";
        return 2;
      }
      if (pid == 0) {
        ::close(fds[0]);
        run_child(*info, args, next, fds[1]);
      }
      ::close(fds[1]);
      running.emplace(pid, Child{next, fds[0], {}});
      launched_all = (next == args.seeds.last);
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
      failures[c.seed] = describe_exit(status);
    } else if (c.output[0] != 'P') {
      failures[c.seed] = c.output.substr(1);
    }
    running.erase(it);
    ++done;
    if (progress) {
      std::cerr << fmt::format("\r[{}/{}] {} failed", done, total, failures.size()) << std::flush;
    }
  }
  if (progress) std::cerr << "\n";
  for (const auto& [seed, why] : failures) {
    std::cout << fmt::format("seed {} FAILED: {}\n  replay: {}\n", seed, why,
                             replay_command(args.scenario, seed, args.ops, args.bugs));
  }
  std::cout << fmt::format("{} passed, {} failed\n", total - failures.size(), failures.size());
  return failures.empty() ? 0 : 1;
}

}  // namespace thinp::tools
