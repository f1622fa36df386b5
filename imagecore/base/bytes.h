// Bounds-checked views of on-disc bytes. Every field access goes through ByteView, so a
// record that claims more bytes than it has throws instead of reading out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "imagecore/base/error.h"

namespace imagecore {

// A read-only window on bytes with checked little/big-endian field reads.
class ByteView {
 public:
  ByteView() = default;
  ByteView(const std::byte* data, size_t size) : data_(data), size_(size) {}
  explicit ByteView(std::span<const std::byte> s) : data_(s.data()), size_(s.size()) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::byte* data() const { return data_; }

  uint8_t u8(size_t off) const {
    need(off, 1);
    return static_cast<uint8_t>(data_[off]);
  }
  uint16_t le16(size_t off) const { return static_cast<uint16_t>(u8(off) | u8(off + 1) << 8); }
  uint16_t be16(size_t off) const { return static_cast<uint16_t>(u8(off) << 8 | u8(off + 1)); }
  uint32_t le32(size_t off) const {
    need(off, 4);
    return static_cast<uint32_t>(u8(off)) | static_cast<uint32_t>(u8(off + 1)) << 8 |
           static_cast<uint32_t>(u8(off + 2)) << 16 | static_cast<uint32_t>(u8(off + 3)) << 24;
  }
  uint32_t be32(size_t off) const {
    need(off, 4);
    return static_cast<uint32_t>(u8(off)) << 24 | static_cast<uint32_t>(u8(off + 1)) << 16 |
           static_cast<uint32_t>(u8(off + 2)) << 8 | static_cast<uint32_t>(u8(off + 3));
  }
  // ECMA-119 7.3.3 "both-byte orders": the little-endian half is used, as Linux and libisofs do.
  uint32_t both32(size_t off) const {
    need(off, 8);
    return le32(off);
  }
  uint16_t both16(size_t off) const {
    need(off, 4);
    return le16(off);
  }
  ByteView sub(size_t off, size_t len) const {
    need(off, len);
    return ByteView(data_ + off, len);
  }
  ByteView from(size_t off) const {
    need(off, 0);
    return ByteView(data_ + off, size_ - off);
  }
  std::string_view chars(size_t off, size_t len) const {
    need(off, len);
    return std::string_view(reinterpret_cast<const char*>(data_ + off), len);
  }

 private:
  void need(size_t off, size_t len) const {
    if (off > size_ || len > size_ - off)
      throw FormatError("record field lies outside its record");
  }
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace imagecore
