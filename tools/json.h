// A string as a JSON string literal (quotes, backslashes and control
// characters escaped), for the --json output of the benchmarks.
#pragma once

#include <cstdio>
#include <string>

namespace thinp::tools {

inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace thinp::tools
