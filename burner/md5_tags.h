// The MD5 checksum tags libisofs records in a session (libisofs md5.c; doc/checksums.txt):
// blocks of text that name their own position, the range of blocks they cover and its MD5.
// Read here, with libisofs's own decoder, for the check after a commit and for `discfs info`.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

namespace burner {

// Which tag of a session's chain (libisofs's tag type numbers).
enum class Md5TagType { Session = 1, Superblock = 2, Tree = 3 };

// One decoded tag.
struct Md5Tag {
  uint64_t lba = 0;          // where it is, which is where it says it is
  uint64_t range_start = 0;  // the first block its MD5 covers
  uint64_t range_size = 0;   // how many blocks its MD5 covers
  uint64_t next = 0;         // where the next tag of the chain is (superblock, tree), or 0
  std::array<char, 16> md5{};
};

// Reads the 2048-byte block at an LBA into `out`; false when there is none (past the end).
using BlockReader = std::function<bool(uint64_t lba, std::span<char, 2048> out)>;

// The tag of `type` in the block at `lba`, decoded by libisofs; nullopt when the block holds
// none, the tag's own checksum does not match, or it names another position (then it is file
// data, such as an image stored in the image). Needs no library set-up. Throws what `read`
// throws.
std::optional<Md5Tag> read_md5_tag(const BlockReader& read, uint64_t lba, Md5TagType type);

// The superblock tag of the session at `start_lba`. libisofs writes it after the session's
// volume descriptors and, when it loads a session, looks for it only in the session's blocks
// 16 to 31 (fs_image.c, iso_src_check_sb_tree); so does this. nullopt when the session has
// none (written without MD5 tags, or not by libisofs). Throws what `read` throws.
std::optional<Md5Tag> find_superblock_tag(const BlockReader& read, uint64_t start_lba);

}  // namespace burner
