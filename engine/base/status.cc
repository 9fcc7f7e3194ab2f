#include "engine/base/status.h"

namespace thinp {

std::string_view errc_name(Errc e) {
  switch (e) {
    case Errc::ok:
      return "ok";
    case Errc::io_error:
      return "io_error";
    case Errc::no_space:
      return "no_space";
    case Errc::corruption:
      return "corruption";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::not_found:
      return "not_found";
    case Errc::already_exists:
      return "already_exists";
    case Errc::read_only:
      return "read_only";
    case Errc::unsupported:
      return "unsupported";
    case Errc::busy:
      return "busy";
    case Errc::timed_out:
      return "timed_out";
    case Errc::aborted:
      return "aborted";
    case Errc::conflict:
      return "conflict";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  std::string s(errc_name(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

}  // namespace thinp
