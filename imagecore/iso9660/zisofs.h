// Transparent reading of zisofs-compressed files (RRIP ZF "pz", the format of mkzftree and
// libisofs): a header, a table of block pointers, and zlib streams of 2^block_size_log2 bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "imagecore/base/source.h"
#include "imagecore/node.h"

namespace imagecore {

// Reads the uncompressed bytes of one zisofs file. Safe to share between threads; keeps the
// pointer table and the last block it inflated.
class ZisofsReader {
 public:
  // Checks the file header against the ZF entry. Throws FormatError.
  ZisofsReader(const Source& src, const Node& node);
  // Reads up to out.size() bytes at `off`; returns how many (short at end of file). Throws
  // FormatError for damaged blocks.
  size_t read(uint64_t off, std::span<std::byte> out);

 private:
  void read_stored(uint64_t off, std::span<std::byte> out) const;
  void load_block(uint64_t index);

  const Source& src_;
  Node node_;
  std::string where_;
  uint64_t stored_size_ = 0;
  uint64_t size_ = 0;
  uint32_t block_size_ = 0;
  uint64_t blocks_ = 0;
  std::mutex mu_;
  std::vector<uint32_t> pointers_;
  uint64_t cached_index_ = UINT64_MAX;
  std::vector<std::byte> cached_;
  std::vector<std::byte> compressed_;
};

}  // namespace imagecore
