#include "tools/size_arg.h"

#include <charconv>
#include <string>

namespace thinp::tools {
namespace {

Result<uint64_t> parse_u64(std::string_view text, std::string_view what) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) {
    return Status(Errc::invalid_argument,
                  std::string(what) + " '" + std::string(text) + "' is not a whole number");
  }
  return v;
}

}  // namespace

Result<uint64_t> parse_size(std::string_view text) {
  const std::string original(text);
  for (std::string_view tail : {"iB", "ib", "B", "b"}) {
    if (text.size() > tail.size() && text.ends_with(tail)) {
      text.remove_suffix(tail.size());
      break;
    }
  }
  unsigned shift = 0;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      case 't': case 'T': shift = 40; break;
      default: break;
    }
    if (shift != 0) text.remove_suffix(1);
  }
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) {
    return Status(Errc::invalid_argument,
                  "size '" + original + "' is not a number with an optional k/M/G/T suffix");
  }
  if (shift != 0 && v > (UINT64_MAX >> shift)) {
    return Status(Errc::invalid_argument, "size '" + original + "' is too large");
  }
  return v << shift;
}

Result<SeedRange> parse_seed_range(std::string_view text) {
  const size_t dots = text.find("..");
  if (dots == std::string_view::npos) {
    return Status(Errc::invalid_argument,
                  "seed range '" + std::string(text) + "' is not of the form A..B");
  }
  TP_ASSIGN_OR_RETURN(uint64_t first, parse_u64(text.substr(0, dots), "seed"));
  TP_ASSIGN_OR_RETURN(uint64_t last, parse_u64(text.substr(dots + 2), "seed"));
  if (first > last) {
    return Status(Errc::invalid_argument,
                  "seed range '" + std::string(text) + "' is empty (first seed after last)");
  }
  return SeedRange{first, last};
}

}  // namespace thinp::tools
