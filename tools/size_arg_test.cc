#include "tools/size_arg.h"

#include <gtest/gtest.h>

namespace thinp::tools {
namespace {

TEST(SizeArg, SuffixesAreBinaryMultiples) {
  EXPECT_EQ(*parse_size("512"), 512u);
  EXPECT_EQ(*parse_size("4k"), 4096u);
  EXPECT_EQ(*parse_size("64K"), 65536u);
  EXPECT_EQ(*parse_size("1M"), 1048576u);
  EXPECT_EQ(*parse_size("2G"), 2147483648u);
  EXPECT_EQ(*parse_size("4KiB"), 4096u);
  EXPECT_EQ(*parse_size("1T"), 1ULL << 40);
}

TEST(SizeArg, RejectsMalformedSizesWithTheirText) {
  for (const char* bad : {"", "k", "-4k", "4.5M", "4q", "12 k", "99999999999999999999"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Errc::invalid_argument);
  }
  EXPECT_NE(parse_size("4q").status().message().find("'4q'"), std::string::npos);
  EXPECT_FALSE(parse_size("20000000T").ok());  // overflows 64 bits
}

TEST(SizeArg, SeedRanges) {
  auto r = parse_seed_range("1..500");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 1u);
  EXPECT_EQ(r->last, 500u);
  EXPECT_TRUE(parse_seed_range("7..7").ok());
  EXPECT_FALSE(parse_seed_range("5..1").ok());
  EXPECT_FALSE(parse_seed_range("1-5").ok());
  EXPECT_FALSE(parse_seed_range("a..5").ok());
}

}  // namespace
}  // namespace thinp::tools
