// Assertions that stay on in release builds.
//
// A broken invariant is a bug, not an error value: it aborts with the file,
// line, the expression and, for comparisons, both operands. Cheap checks go
// everywhere (preconditions, both sides of an IO); expensive whole-structure
// checks belong behind a flag the simulator turns on.
#pragma once

#include <sstream>
#include <string>

namespace thinp::detail {

[[noreturn]] void assert_fail(const char* file, int line, const char* expr, const std::string& detail);

template <typename T>
std::string assert_show(const T& v) {
  std::ostringstream os;
  if constexpr (requires(std::ostream& o, const T& x) { o << x; }) {
    os << v;
  } else {
    os << "<unprintable>";
  }
  return os.str();
}

}  // namespace thinp::detail

#define TP_ASSERT(cond)                                                 \
  do {                                                                  \
    if (!(cond)) [[unlikely]]                                           \
      ::thinp::detail::assert_fail(__FILE__, __LINE__, #cond, "");      \
  } while (0)

#define TP_ASSERT_MSG(cond, msg)                                        \
  do {                                                                  \
    if (!(cond)) [[unlikely]]                                           \
      ::thinp::detail::assert_fail(__FILE__, __LINE__, #cond, (msg));   \
  } while (0)

#define TP_ASSERT_OP(a, op, b)                                                            \
  do {                                                                                    \
    const auto& tp_a_ = (a);                                                              \
    const auto& tp_b_ = (b);                                                              \
    if (!(tp_a_ op tp_b_)) [[unlikely]]                                                   \
      ::thinp::detail::assert_fail(__FILE__, __LINE__, #a " " #op " " #b,                 \
                                   ::thinp::detail::assert_show(tp_a_) + " vs " +         \
                                       ::thinp::detail::assert_show(tp_b_));              \
  } while (0)

#define TP_ASSERT_EQ(a, b) TP_ASSERT_OP(a, ==, b)
#define TP_ASSERT_NE(a, b) TP_ASSERT_OP(a, !=, b)
#define TP_ASSERT_LT(a, b) TP_ASSERT_OP(a, <, b)
#define TP_ASSERT_LE(a, b) TP_ASSERT_OP(a, <=, b)
#define TP_ASSERT_GT(a, b) TP_ASSERT_OP(a, >, b)
#define TP_ASSERT_GE(a, b) TP_ASSERT_OP(a, >=, b)

#define TP_UNREACHABLE() ::thinp::detail::assert_fail(__FILE__, __LINE__, "unreachable", "")
