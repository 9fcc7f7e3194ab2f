#include "engine/format/block_header.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/format/checksum.h"

namespace thinp {
namespace {

TEST(Checksum, Crc32cKnownVector) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32c(std::as_bytes(std::span(s.data(), s.size()))), 0xe3069283u);
}

TEST(BlockHeader, SealedBlockVerifiesAndEveryCheckCanFail) {
  std::vector<std::byte> block(kMetadataBlockBytes, std::byte{0x5a});
  seal_block(block, BlockType::journal, MBlock(7), Lsn(99));
  EXPECT_TRUE(verify_block(block, BlockType::journal, MBlock(7)).ok());
  EXPECT_EQ(peek_block_header(block).lsn, Lsn(99));

  const Status wrong_type = verify_block(block, BlockType::superblock, MBlock(7));
  EXPECT_EQ(wrong_type.code(), Errc::corruption);
  EXPECT_NE(wrong_type.message().find("holds a block of type journal"), std::string::npos);

  const Status wrong_place = verify_block(block, BlockType::journal, MBlock(8));
  EXPECT_NE(wrong_place.message().find("misdirected"), std::string::npos);

  std::vector<std::byte> reserved = block;
  put_u64(reserved, 24, 1);
  put_u32(reserved, 0, crc32c(std::span<const std::byte>(reserved).subspan(4)));
  EXPECT_NE(verify_block(reserved, BlockType::journal, MBlock(7)).message().find("reserved"),
            std::string::npos);

  block[1000] ^= std::byte{1};
  EXPECT_NE(verify_block(block, BlockType::journal, MBlock(7)).message().find("checksum"),
            std::string::npos);
}

}  // namespace
}  // namespace thinp
