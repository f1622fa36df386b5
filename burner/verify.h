// Reading a written session back and checking it against its libisofs MD5 tags.
#pragma once

#include <cstdint>
#include <string>

namespace burner {

// What verify_session() found.
struct SessionCheck {
  uint64_t start_lba = 0;
  uint64_t tag_lba = 0;  // the session tag: the session's checksummed blocks end here
  uint64_t blocks = 0;   // tag_lba + 1 - start_lba
};

// Reads the session starting at `start_lba` of `path` (after flushing it and dropping it from
// the page cache, so the medium is read), follows its superblock, tree and session MD5 tags
// and checks the session MD5 over every block. Throws imagecore::Error (EIO) naming `path`
// and the LBA when a tag is missing or a checksum does not match.
SessionCheck verify_session(const std::string& path, uint64_t start_lba);

}  // namespace burner
