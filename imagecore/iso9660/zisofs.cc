#include "imagecore/iso9660/zisofs.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "imagecore/base/bytes.h"
#include "imagecore/base/error.h"

namespace imagecore {
namespace {
// zisofs file header (mkzftree, libisofs zisofs.c): magic, uncompressed size (LE32),
// header size / 4, log2 of the block size, two reserved bytes.
constexpr unsigned char kMagic[8] = {0x37, 0xE4, 0x53, 0x96, 0xC9, 0xDB, 0xD6, 0x07};
constexpr size_t kHeaderSize = 16;
}  // namespace

ZisofsReader::ZisofsReader(const Source& src, const Node& node)
    : src_(src), node_(node), where_(fmt::format("{}: zisofs file '{}'", src.name(), node.name)) {
  if (!node.defect.empty())
    throw FormatError(node.defect);
  for (const Extent& e : node.extents)
    stored_size_ += e.length;
  size_ = node.zf.uncompressed_size;
  if (size_ == 0)
    return;
  std::byte hdr[kHeaderSize];
  if (stored_size_ < kHeaderSize)
    throw FormatError(where_ + " is shorter than its header");
  read_stored(0, hdr);
  ByteView h(hdr, kHeaderSize);
  if (std::memcmp(hdr, kMagic, sizeof kMagic) != 0)
    throw FormatError(where_ + " has no zisofs header");
  const uint8_t log2 = h.u8(13);
  if (log2 < 15 || log2 > 17 || log2 != node.zf.block_size_log2)
    throw FormatError(fmt::format("{} has a bad block size 2^{}", where_, log2));
  if (h.le32(8) != size_)
    throw FormatError(fmt::format("{} says {} bytes in its header but {} in Rock Ridge", where_,
                                  h.le32(8), size_));
  block_size_ = 1u << log2;
  blocks_ = (size_ + block_size_ - 1) / block_size_;
  const uint64_t table_at = uint64_t{h.u8(12)} * 4;
  const uint64_t table_bytes = (blocks_ + 1) * 4;
  if (table_at < kHeaderSize || table_at + table_bytes > stored_size_)
    throw FormatError(where_ + " has a block table outside its data");
  std::vector<std::byte> raw(table_bytes);
  read_stored(table_at, raw);
  ByteView t(raw.data(), raw.size());
  pointers_.resize(blocks_ + 1);
  for (uint64_t i = 0; i <= blocks_; ++i)
    pointers_[i] = t.le32(i * 4);
}

void ZisofsReader::read_stored(uint64_t off, std::span<std::byte> out) const {
  size_t done = 0;
  uint64_t pos = 0;
  for (const Extent& e : node_.extents) {
    if (done == out.size())
      break;
    if (off < pos + e.length) {
      const uint64_t skip = off - pos;
      const size_t take =
          static_cast<size_t>(std::min<uint64_t>(out.size() - done, e.length - skip));
      src_.read(e.offset + skip, out.subspan(done, take));
      done += take;
      off += take;
    }
    pos += e.length;
  }
  if (done != out.size())
    throw FormatError(where_ + " points past its stored data");
}

void ZisofsReader::load_block(uint64_t index) {
  if (index == cached_index_)
    return;
  const uint64_t want = std::min<uint64_t>(block_size_, size_ - index * block_size_);
  cached_.assign(block_size_, std::byte{0});
  const uint32_t from = pointers_[index], to = pointers_[index + 1];
  if (to < from || to > stored_size_ || to - from > 2 * block_size_ + 1024)
    throw FormatError(fmt::format("{}: block {} has bad pointers {}..{}", where_, index, from, to));
  if (to > from) {  // an empty block is all zero bytes
    compressed_.resize(to - from);
    read_stored(from, compressed_);
    uLongf out_len = block_size_;
    const int rc = ::uncompress(reinterpret_cast<Bytef*>(cached_.data()), &out_len,
                                reinterpret_cast<const Bytef*>(compressed_.data()), to - from);
    if (rc != Z_OK || out_len != want) {
      cached_index_ = UINT64_MAX;
      throw FormatError(
          fmt::format("{}: block {} does not inflate to {} bytes", where_, index, want));
    }
  }
  cached_index_ = index;
}

size_t ZisofsReader::read(uint64_t off, std::span<std::byte> out) {
  if (off >= size_)
    return 0;
  const size_t total = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - off));
  std::lock_guard lock(mu_);
  size_t done = 0;
  while (done < total) {
    const uint64_t index = (off + done) / block_size_;
    const uint64_t in_block = (off + done) % block_size_;
    load_block(index);
    const size_t take =
        static_cast<size_t>(std::min<uint64_t>(total - done, block_size_ - in_block));
    std::memcpy(out.data() + done, cached_.data() + in_block, take);
    done += take;
  }
  return done;
}

}  // namespace imagecore
