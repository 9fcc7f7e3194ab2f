#include "tools/bench_command.h"

#include <iostream>

namespace thinp::tools {

int run_bench(const BenchArgs& args) {
  if (!args.raw) {
    std::cerr << "thinp: error: only --raw benchmarks exist so far (the engine's come with the pool)\n";
    return 2;
  }
  std::cerr << "thinp: error: raw benchmark not wired yet\n";
  return 2;
}

}  // namespace thinp::tools
