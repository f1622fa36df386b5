#include "burner/md5_tags.h"

#include "burner/libs.h"

namespace burner {
namespace {

// libisofs searches the tag text with strstr: the block must end in a NUL, or a block that
// starts like a tag but holds no NUL would be read past its end.
using Block = std::array<char, 2048 + 1>;

std::span<char, 2048> payload(Block& b) {
  return std::span<char, 2048>(b.data(), 2048);
}

std::optional<Md5Tag> decode(Block& block, uint64_t lba, Md5TagType type) {
  int found_type = 0;
  uint32_t pos = 0, range_start = 0, range_size = 0, next = 0;
  Md5Tag tag;
  const int ret =
      iso_util_decode_md5_tag(block.data(), &found_type, &pos, &range_start, &range_size, &next,
                              tag.md5.data(), static_cast<int>(type));
  if (ret != 1 || pos != lba)
    return std::nullopt;
  tag.lba = pos;
  tag.range_start = range_start;
  tag.range_size = range_size;
  tag.next = next;
  return tag;
}

}  // namespace

std::optional<Md5Tag> read_md5_tag(const BlockReader& read, uint64_t lba, Md5TagType type) {
  Block block{};
  if (!read(lba, payload(block)))
    return std::nullopt;
  return decode(block, lba, type);
}

std::optional<Md5Tag> find_superblock_tag(const BlockReader& read, uint64_t start_lba) {
  Block block{};
  for (uint64_t lba = start_lba + 16; lba < start_lba + 32; ++lba) {
    if (!read(lba, payload(block)))
      return std::nullopt;  // the blocks after it cannot be read either
    if (std::optional<Md5Tag> tag = decode(block, lba, Md5TagType::Superblock))
      return tag;
  }
  return std::nullopt;
}

}  // namespace burner
