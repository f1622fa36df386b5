// Builds tiny UDF images byte by byte (ECMA-167 3rd edition, OSTA UDF), so tests can make
// structures no well-behaved writer would: loops, bad tags, extents past the end.
// Layout: VRS at 32 KiB, main VDS at 64 KiB, reserve 16 blocks later, anchor at 256, one physical
// partition from block kPartStart; FSD at partition block 0, root ICB at partition block 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace testing_udf {

using Bytes = std::vector<std::byte>;
inline constexpr uint32_t kPartStart = 260;

inline void put16(std::byte* p, uint16_t v) {
  p[0] = std::byte(v);
  p[1] = std::byte(v >> 8);
}
inline void put32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = std::byte(v >> (8 * i));
}
inline void put64(std::byte* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v));
  put32(p + 4, static_cast<uint32_t>(v >> 32));
}

// CRC-ITU-T as ECMA-167 1/7.2.6 defines it, written independently of the reader's.
inline uint16_t crc(const std::byte* p, size_t n) {
  uint16_t c = 0;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<uint16_t>(static_cast<uint8_t>(p[i]) << 8);
    for (int k = 0; k < 8; ++k)
      c = static_cast<uint16_t>((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
  }
  return c;
}

// Fills in a descriptor tag: identifier, version, location, CRC over [16, len), checksum.
inline void tag(std::byte* d, uint16_t id, uint32_t location, size_t len) {
  put16(d, id);
  put16(d + 2, 3);
  put32(d + 12, location);
  put16(d + 10, static_cast<uint16_t>(len - 16));
  put16(d + 8, crc(d + 16, len - 16));
  unsigned sum = 0;
  for (int i = 0; i < 16; ++i)
    if (i != 4)
      sum += static_cast<uint8_t>(d[i]);
  d[4] = std::byte(sum);
}

// 12-byte timestamp (1/7.3), local time with `tz` minutes east of UTC.
inline void
timestamp(std::byte* p, int year, int mon, int day, int h, int mi, int s, int cs, int tz = 0) {
  put16(p, static_cast<uint16_t>(0x1000 | (tz & 0xFFF)));
  put16(p + 2, static_cast<uint16_t>(year));
  p[4] = std::byte(mon);
  p[5] = std::byte(day);
  p[6] = std::byte(h);
  p[7] = std::byte(mi);
  p[8] = std::byte(s);
  p[9] = std::byte(cs);
}

// A d-string field of `size` bytes, 8-bit CS0.
inline void dstring(std::byte* p, size_t size, std::string_view s) {
  p[0] = std::byte(8);
  std::memcpy(p + 1, s.data(), s.size());
  p[size - 1] = std::byte(s.size() + 1);
}

inline void regid(std::byte* p, std::string_view ident, uint16_t suffix16 = 0) {
  std::memcpy(p + 1, ident.data(), ident.size());
  put16(p + 24, suffix16);
}

inline Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// UDF permission bits (4/14.9.5) from a POSIX mode.
inline uint32_t udf_perm(uint32_t mode) {
  return (mode & 7) | ((mode >> 3) & 7) << 5 | ((mode >> 6) & 7) << 10;
}

// short_ad (4/14.14.1): type 0 recorded, 1 allocated, 2 not allocated, 3 next extent.
inline Bytes short_ad(uint32_t len, uint32_t block, uint8_t type = 0) {
  Bytes b(8);
  put32(b.data(), len | uint32_t{type} << 30);
  put32(b.data() + 4, block);
  return b;
}

inline Bytes long_ad(uint32_t len, uint32_t block, uint16_t part = 0) {
  Bytes b(16);
  put32(b.data(), len);
  put32(b.data() + 4, block);
  put16(b.data() + 8, part);
  return b;
}

// A name as CS0: 8-bit when every character fits, else 16-bit (UTF-16BE, BMP only).
inline Bytes cs0(std::u16string_view name) {
  bool wide = false;
  for (char16_t c : name)
    wide = wide || c > 0xFF;
  Bytes b{std::byte(wide ? 16 : 8)};
  for (char16_t c : name) {
    if (wide)
      b.push_back(std::byte(c >> 8));
    b.push_back(std::byte(c));
  }
  return b;
}

// File identifier descriptor (4/14.4) pointing at an ICB in partition 0.
inline Bytes fid(const Bytes& name, uint32_t icb_block, uint8_t chars = 0) {
  const size_t used = 38 + name.size();
  Bytes f((used + 3) & ~size_t{3});
  put16(f.data() + 16, 1);
  f[18] = std::byte(chars);
  f[19] = std::byte(name.size());
  const Bytes icb = long_ad(2048, icb_block);
  std::memcpy(f.data() + 20, icb.data(), 16);
  if (!name.empty())
    std::memcpy(f.data() + 38, name.data(), name.size());
  tag(f.data(), 257, 0, f.size());
  return f;
}
inline Bytes fid(std::u16string_view name, uint32_t icb_block, uint8_t chars = 0) {
  return fid(cs0(name), icb_block, chars);
}

// What goes into one file entry.
struct Fe {
  uint8_t type = 5;  // 4 directory, 5 file, 12 symlink, 6/7 devices, 9 fifo
  uint32_t uid = 0, gid = 0;
  uint32_t mode = 0644;
  uint16_t icb_flags = 0;  // besides the AD type: setuid 0x40, setgid 0x80, sticky 0x100
  uint8_t ad_type = 0;     // 0 short, 1 long, 3 embedded
  uint16_t links = 1;
  uint64_t size = 0;
  uint16_t strategy = 4;
  Bytes ea;
  Bytes ads;  // allocation descriptors, or the embedded data
  bool extended = false;
};

class Image {
 public:
  explicit Image(uint32_t blocks = 400, uint32_t bs = 2048, uint16_t rev = 0x0201)
      : bs_(bs), blocks_(blocks), bytes_(size_t{blocks} * bs) {
    vrs();
    volume(65536 / bs, rev);  // clear of the recognition sequence at 32 KiB
    volume(65536 / bs + 16, rev);
    anchor(256);
    fsd(rev);
  }

  uint32_t bs() const { return bs_; }
  Bytes& bytes() { return bytes_; }
  std::byte* block(uint32_t part_block) { return &bytes_[size_t{kPartStart + part_block} * bs_]; }

  // The next free partition blocks (root is block 1; allocation starts at 2).
  uint32_t alloc(uint32_t n = 1) {
    const uint32_t b = next_;
    next_ += n;
    return b;
  }

  // Writes a (extended) file entry at a partition block.
  void fe(uint32_t at, const Fe& f) {
    std::byte* d = block(at);
    std::memset(d, 0, bs_);
    const size_t header = f.extended ? 216 : 176;
    put16(d + 16 + 4, f.strategy);
    put16(d + 16 + 8, 1);
    d[16 + 11] = std::byte(f.type);
    put16(d + 16 + 18, static_cast<uint16_t>(f.icb_flags | f.ad_type));
    put32(d + 36, f.uid);
    put32(d + 40, f.gid);
    put32(d + 44, udf_perm(f.mode));
    put16(d + 48, f.links);
    put64(d + 56, f.size);
    const size_t t0 = f.extended ? 80 : 72;  // access, modification, attribute times
    timestamp(d + t0, 2021, 3, 4, 5, 6, 7, 0);
    timestamp(d + t0 + 12, 2020, 1, 2, 3, 4, 5, 6, 60);  // 02:04:05.06 UTC
    timestamp(d + (f.extended ? 116 : 96), 2022, 5, 6, 7, 8, 9, 0);
    put32(d + (f.extended ? 208 : 168), static_cast<uint32_t>(f.ea.size()));
    put32(d + (f.extended ? 212 : 172), static_cast<uint32_t>(f.ads.size()));
    if (!f.ea.empty())
      std::memcpy(d + header, f.ea.data(), f.ea.size());
    if (!f.ads.empty())
      std::memcpy(d + header + f.ea.size(), f.ads.data(), f.ads.size());
    tag(d, f.extended ? 266 : 261, at, header + f.ea.size() + f.ads.size());
  }

  // A regular file with its data in fresh blocks; returns its ICB block.
  uint32_t file(std::string_view content, Fe f = {}) {
    const uint32_t icb = alloc();
    const uint32_t n = static_cast<uint32_t>((content.size() + bs_ - 1) / bs_);
    const uint32_t data = alloc(n);
    if (!content.empty())
      std::memcpy(block(data), content.data(), content.size());
    f.size = content.size();
    f.ads = content.empty() ? Bytes{} : short_ad(static_cast<uint32_t>(content.size()), data);
    fe(icb, f);
    return icb;
  }

  // A file whose data sits in its file entry.
  uint32_t embedded(std::string_view content, Fe f = {}) {
    const uint32_t icb = alloc();
    f.ad_type = 3;
    f.size = content.size();
    f.ads.assign(reinterpret_cast<const std::byte*>(content.data()),
                 reinterpret_cast<const std::byte*>(content.data()) + content.size());
    fe(icb, f);
    return icb;
  }

  // A directory at `at` holding a parent FID and `fids`, its data in one fresh extent. FIDs
  // are tagged with the block that holds them.
  void dir(uint32_t at, uint32_t parent, const std::vector<Bytes>& fids, Fe f = {}) {
    Bytes data = fid(Bytes{}, parent, 8 | 2);
    for (const Bytes& x : fids)
      data = data + x;
    const uint32_t n = static_cast<uint32_t>((data.size() + bs_ - 1) / bs_);
    const uint32_t where = alloc(n);
    std::memcpy(block(where), data.data(), data.size());
    f.type = 4;
    f.mode = f.mode == 0644 ? 0755 : f.mode;
    f.size = data.size();
    f.ads = short_ad(static_cast<uint32_t>(data.size()), where);
    fe(at, f);
  }

  // An indirect entry (4/14.7) at `at` pointing at `target`.
  void indirect(uint32_t at, uint32_t target) {
    std::byte* d = block(at);
    std::memset(d, 0, bs_);
    d[16 + 11] = std::byte(3);
    const Bytes ad = long_ad(bs_, target);
    std::memcpy(d + 36, ad.data(), 16);
    tag(d, 259, at, 52);
  }

 private:
  void vrs() {
    const char* ids[] = {"BEA01", "NSR03", "TEA01"};
    for (int i = 0; i < 3; ++i) {
      std::byte* d = &bytes_[32768 + size_t{2048} * i];
      std::memcpy(d + 1, ids[i], 5);
      d[6] = std::byte(1);
    }
  }
  std::byte* abs(uint32_t b) { return &bytes_[size_t{b} * bs_]; }
  void volume(uint32_t at, uint16_t rev) {
    std::byte* p = abs(at);  // PVD (3/10.1)
    dstring(p + 24, 32, "TESTVOL");
    dstring(p + 72, 128, "TESTSET");
    timestamp(p + 376, 2020, 1, 2, 3, 4, 5, 0);
    tag(p, 1, at, 512);
    p = abs(at + 1);  // PD (3/10.5)
    put16(p + 22, 0);
    put32(p + 188, kPartStart);
    put32(p + 192, blocks_ - kPartStart);
    tag(p, 5, at + 1, 512);
    p = abs(at + 2);  // LVD (3/10.6)
    dstring(p + 84, 128, "TESTLV");
    put32(p + 212, bs_);
    regid(p + 216, "*OSTA UDF Compliant", rev);
    const Bytes fsd_ad = long_ad(bs_, 0);
    std::memcpy(p + 248, fsd_ad.data(), 16);
    put32(p + 264, 6);
    put32(p + 268, 1);
    p[440] = std::byte(1);
    p[441] = std::byte(6);
    put16(p + 442, 1);
    put16(p + 444, 0);
    tag(p, 6, at + 2, 446);
    tag(abs(at + 3), 8, at + 3, 512);  // terminator
  }
  void anchor(uint32_t at) {
    std::byte* p = abs(at);
    put32(p + 16, 16 * bs_);
    put32(p + 20, 65536 / bs_);
    put32(p + 24, 16 * bs_);
    put32(p + 28, 65536 / bs_ + 16);
    tag(p, 2, at, 512);
  }
  void fsd(uint16_t rev) {
    std::byte* p = block(0);
    const Bytes root = long_ad(bs_, 1);
    std::memcpy(p + 400, root.data(), 16);
    regid(p + 416, "*OSTA UDF Compliant", rev);
    tag(p, 256, 0, 512);
  }

  uint32_t bs_;
  uint32_t blocks_;
  Bytes bytes_;
  uint32_t next_ = 2;
};

}  // namespace testing_udf
