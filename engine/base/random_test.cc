#include "engine/base/random.h"

#include <gtest/gtest.h>

#include "engine/base/hash.h"
#include "engine/base/status.h"
#include "engine/base/units.h"

namespace thinp {
namespace {

TEST(Random, SameSeedSameStreamAndKnownFirstValue) {
  Random a(42), b(42), c(43);
  const uint64_t first = a.next_u64();
  EXPECT_EQ(first, b.next_u64());
  EXPECT_NE(first, c.next_u64());
  // Pinned: a change of algorithm would silently change every replay.
  Random d(0);
  EXPECT_EQ(d.next_u64(), 0x99ec5f36cb75f2b4ULL);
}

TEST(Random, UniformStaysInBoundsAndCoversRange) {
  Random r(1);
  int seen[10] = {};
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = r.uniform(10);
    ASSERT_LT(v, 10u);
    ++seen[v];
  }
  for (int n : seen) EXPECT_GT(n, 800);
}

TEST(Hash, DigestDependsOnOrder) {
  Digest a, b;
  a.add_u64(1);
  a.add_u64(2);
  b.add_u64(2);
  b.add_u64(1);
  EXPECT_NE(a.value(), b.value());
}

TEST(Status, ResultCarriesValueOrError) {
  Result<int> good(5);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 5);
  Result<int> bad(Status(Errc::no_space, "pool full"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().to_string(), "no_space: pool full");
  EXPECT_EQ(bad.status().with_context("provision").message(), "provision: pool full");
}

TEST(Units, DistinctTypesDoNotMix) {
  static_assert(!std::is_convertible_v<DBlock, VBlock>);
  static_assert(!std::is_convertible_v<uint64_t, DBlock>);
  DBlock d(10);
  EXPECT_EQ((d + 5).value(), 15u);
  EXPECT_EQ(DBlock(20) - d, 10u);
}

}  // namespace
}  // namespace thinp
