// The libisofs superblock MD5 tag, as `discfs info` and the check after a commit look for it.
// Tags are written here in libisofs's text format (md5.c, iso_md5_write_tag) with their
// self-checksums made by OpenSSL, so the decoder is checked against an independent MD5.
#include "burner/md5_tags.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <string>
#include <vector>

namespace burner {
namespace {

constexpr size_t kBlock = 2048;

std::string md5_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i)
    hex += fmt::format("{:02x}", md[i]);
  return hex;
}

// A superblock tag as libisofs writes it, with a correct self-checksum.
std::string sb_tag(uint64_t pos, uint64_t range_start, uint64_t range_size, uint64_t next) {
  const std::string body =
      fmt::format("libisofs_sb_checksum_tag_v1 pos={} range_start={} range_size={} next={} md5={}",
                  pos, range_start, range_size, next, std::string(32, 'a'));
  return body + " self=" + md5_hex(body) + "\n";
}

// An image of `blocks` zero blocks that a BlockReader reads from.
struct Image {
  explicit Image(size_t blocks) : bytes(blocks * kBlock) {}
  void put(uint64_t lba, const std::string& text) {
    std::memcpy(bytes.data() + lba * kBlock, text.data(), text.size());
  }
  BlockReader reader() {
    return [this](uint64_t lba, std::span<char, 2048> out) {
      if ((lba + 1) * kBlock > bytes.size())
        return false;
      std::memcpy(out.data(), bytes.data() + lba * kBlock, kBlock);
      return true;
    };
  }
  std::vector<char> bytes;
};

TEST(SuperblockTag, FoundAfterTheVolumeDescriptors) {
  Image img(64);
  img.put(32 + 21, sb_tag(32 + 21, 32, 21, 32 + 40));
  const std::optional<Md5Tag> t = find_superblock_tag(img.reader(), 32);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->lba, 53u);
  EXPECT_EQ(t->range_start, 32u);
  EXPECT_EQ(t->range_size, 21u);
  EXPECT_EQ(t->next, 72u);
  EXPECT_EQ(t->md5[0], static_cast<char>(0xaa));
}

TEST(SuperblockTag, NoneInASessionWithoutTags) {
  Image img(64);
  EXPECT_FALSE(find_superblock_tag(img.reader(), 0));
}

TEST(SuperblockTag, OnlyWhereLibisofsLooksForIt) {
  Image img(64);
  img.put(32, sb_tag(32, 0, 32, 40));  // block 32 of session 0: past libisofs's blocks 16-31
  EXPECT_FALSE(find_superblock_tag(img.reader(), 0));
}

TEST(SuperblockTag, ATagNamingAnotherBlockIsData) {
  Image img(64);
  img.put(21, sb_tag(37, 16, 21, 40));  // e.g. copied from an image stored as a file
  EXPECT_FALSE(find_superblock_tag(img.reader(), 0));
}

TEST(SuperblockTag, ADamagedTagIsNone) {
  Image img(64);
  std::string tag = sb_tag(21, 0, 21, 40);
  tag[tag.find("range_size=21") + 11] = '3';  // the self-checksum no longer matches
  img.put(21, tag);
  EXPECT_FALSE(find_superblock_tag(img.reader(), 0));
}

TEST(SuperblockTag, ABlockWithoutAnEndIsNotReadPastIt) {
  // A crafted block that starts like a tag and holds no NUL: libisofs's decoder searches it
  // with strstr, which ASan catches if the block is not terminated.
  Image img(64);
  img.put(21, "libisofs_sb_checksum_tag_v1 pos=21 " + std::string(kBlock - 35, 'x'));
  EXPECT_FALSE(find_superblock_tag(img.reader(), 0));
}

TEST(SuperblockTag, AnImageThatEndsEarlyHasNone) {
  Image img(20);
  EXPECT_FALSE(find_superblock_tag(img.reader(), 0));
}

TEST(Md5Tag, ReadsTheTypeAskedFor) {
  Image img(64);
  img.put(21, sb_tag(21, 0, 21, 40));
  EXPECT_TRUE(read_md5_tag(img.reader(), 21, Md5TagType::Superblock));
  EXPECT_FALSE(read_md5_tag(img.reader(), 21, Md5TagType::Tree));
  EXPECT_FALSE(read_md5_tag(img.reader(), 99, Md5TagType::Superblock));
}

}  // namespace
}  // namespace burner
