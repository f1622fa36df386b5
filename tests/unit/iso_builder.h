// Builds tiny ISO 9660 images byte by byte (ECMA-119 8.4, 9.1), so tests can make structures
// no well-behaved writer would: loops, extents past the end, CE chains.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace testing_iso {

using Bytes = std::vector<std::byte>;
inline constexpr uint32_t kBlock = 2048;

inline void both32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    b[at + i] = std::byte(v >> (8 * i));
    b[at + 7 - i] = std::byte(v >> (8 * i));
  }
}
inline void both16(Bytes& b, size_t at, uint16_t v) {
  b[at] = std::byte(v);
  b[at + 1] = std::byte(v >> 8);
  b[at + 2] = std::byte(v >> 8);
  b[at + 3] = std::byte(v);
}

// One directory record (9.1) with an optional system use area.
inline Bytes record(uint32_t extent,
                    uint32_t size,
                    uint8_t flags,
                    std::string_view name,
                    const Bytes& su = {}) {
  size_t len = 33 + name.size() + (name.size() % 2 == 0 ? 1 : 0) + su.size();
  len += len % 2;
  Bytes r(len);
  r[0] = std::byte(len);
  both32(r, 2, extent);
  both32(r, 10, size);
  r[18] = std::byte(120);  // 2020-01-01 00:00:00 UTC
  r[19] = std::byte(1);
  r[20] = std::byte(1);
  r[25] = std::byte(flags);
  both16(r, 28, 1);
  r[32] = std::byte(name.size());
  std::memcpy(r.data() + 33, name.data(), name.size());
  if (!su.empty())
    std::memcpy(r.data() + 33 + name.size() + (name.size() % 2 == 0 ? 1 : 0), su.data(), su.size());
  return r;
}

// A SUSP/RRIP entry: signature, length, version 1, payload.
inline Bytes susp(std::string_view sig, const Bytes& payload) {
  Bytes e(4 + payload.size());
  e[0] = std::byte(sig[0]);
  e[1] = std::byte(sig[1]);
  e[2] = std::byte(e.size());
  e[3] = std::byte(1);
  std::memcpy(e.data() + 4, payload.data(), payload.size());
  return e;
}
inline Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
inline Bytes text(std::string_view s) {
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

class Image {
 public:
  explicit Image(uint32_t blocks) : bytes_(size_t{blocks} * kBlock) {}

  // PVD at LBA 16 and a terminator at 17; root directory at `root_lba` of `root_size` bytes.
  void volume(uint32_t root_lba, uint32_t root_size) {
    Bytes& b = bytes_;
    const size_t p = 16 * kBlock;
    b[p] = std::byte(1);
    std::memcpy(b.data() + p + 1, "CD001", 5);
    b[p + 6] = std::byte(1);
    both32(b, p + 80, static_cast<uint32_t>(bytes_.size() / kBlock));
    both16(b, p + 128, kBlock);
    Bytes root = record(root_lba, root_size, 2, std::string_view("\0", 1));
    std::memcpy(b.data() + p + 156, root.data(), 34);
    b[p + 881] = std::byte(1);
    const size_t t = 17 * kBlock;
    b[t] = std::byte(255);
    std::memcpy(b.data() + t + 1, "CD001", 5);
    b[t + 6] = std::byte(1);
  }

  // A directory at `lba`: ".", "..", then `records`, packed into its blocks.
  void directory(uint32_t lba,
                 uint32_t size,
                 uint32_t parent,
                 const std::vector<Bytes>& records,
                 const Bytes& dot_su = {}) {
    std::vector<Bytes> all{record(lba, size, 2, std::string_view("\0", 1), dot_su),
                           record(parent, kBlock, 2, std::string_view("\1", 1))};
    all.insert(all.end(), records.begin(), records.end());
    size_t at = size_t{lba} * kBlock;
    for (const Bytes& r : all) {
      if (at % kBlock + r.size() > kBlock)
        at = (at / kBlock + 1) * kBlock;
      put(at, r);
      at += r.size();
    }
  }

  void put(size_t at, const Bytes& b) { std::memcpy(bytes_.data() + at, b.data(), b.size()); }
  void put(size_t at, std::string_view s) { std::memcpy(bytes_.data() + at, s.data(), s.size()); }
  Bytes& bytes() { return bytes_; }

 private:
  Bytes bytes_;
};

}  // namespace testing_iso
