// Status and Result<T>: the error values that cross the engine's API.
//
// The engine never lets an exception cross its API. An error the caller can
// act on (an IO error, no space, corruption found, bad input) is returned as a
// Status; a broken invariant is an assertion (see assert.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "engine/base/assert.h"

namespace thinp {

enum class Errc : uint8_t {
  ok = 0,
  io_error,          // the device reported an error
  no_space,          // the device or pool is full
  corruption,        // bytes failed a checksum, type, location or bounds check
  invalid_argument,  // the caller asked for something malformed
  not_found,
  already_exists,
  read_only,    // the device or pool refuses writes
  unsupported,  // e.g. a newer on-disk format version
  busy,         // e.g. a device already in use
  timed_out,
  aborted,   // e.g. a task cancelled by a simulated crash
  conflict,  // a compare-and-swap found another value; nothing changed
};

std::string_view errc_name(Errc e);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == Errc::ok; }
  Errc code() const { return code_; }
  const std::string& message() const { return message_; }

  // "io_error: read of 4096 bytes at 8192 failed" (or "ok").
  std::string to_string() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status with_context(std::string_view context) const;

 private:
  Errc code_ = Errc::ok;
  std::string message_;
};

inline Status ok_status() { return Status(); }

// A value or an error. `Result<T> r = f(); if (!r.ok()) return r.status();`
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    TP_ASSERT(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    TP_ASSERT(ok());
    return *value_;
  }
  const T& value() const& {
    TP_ASSERT(ok());
    return *value_;
  }
  T&& value() && {
    TP_ASSERT(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace thinp

// Returns early from the enclosing function when `expr` (a Status) fails.
#define TP_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::thinp::Status tp_status_ = (expr);     \
    if (!tp_status_.ok()) return tp_status_; \
  } while (0)

#define TP_CONCAT_INNER(a, b) a##b
#define TP_CONCAT(a, b) TP_CONCAT_INNER(a, b)

// `TP_ASSIGN_OR_RETURN(auto x, f());` binds the value or returns the error.
#define TP_ASSIGN_OR_RETURN(lhs, expr) \
  TP_ASSIGN_OR_RETURN_IMPL(TP_CONCAT(tp_result_, __LINE__), lhs, expr)
#define TP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
