#include "engine/base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace thinp::detail {

void assert_fail(const char* file, int line, const char* expr, const std::string& detail) {
  if (detail.empty()) {
    std::fprintf(stderr, "assertion failed at %s:%d: %s\n", file, line, expr);
  } else {
    std::fprintf(stderr, "assertion failed at %s:%d: %s (%s)\n", file, line, expr, detail.c_str());
  }
  std::fflush(stderr);
  std::abort();
}

}  // namespace thinp::detail
