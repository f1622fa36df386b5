// IsoFs: extended attributes of the Rock Ridge tree (AAIP AL entries, see aaip.h) and the
// per-file MD5s of the libisofs checksum array.
//
// Where a node's AL entries are. libisofs writes them into the record that names the node
// in its parent and, for the root only, into the root's "." record (rockridge.c). A file's
// inode number is that record's offset already; a directory's number is its extent, so its
// record is found by scanning the parent (reached through "..") once and keeping an index of
// the parent's subdirectory records in a small LRU. A relocated directory's ".." names
// rr_moved, where its RE record carries the entries.

#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "imagecore/iso9660/ecma119.h"
#include "imagecore/iso9660/iso_fs.h"
#include "imagecore/iso9660/rockridge.h"

namespace imagecore {
namespace {

using namespace ecma119;

constexpr uint64_t kMaxIndexedDirectoryBytes = 512ull << 20;  // as for listings
constexpr size_t kMd5Bytes = 16;
constexpr char kMd5Name[] = "user.discfs.md5";

bool is_dot(ByteView r) {
  return r.u8(dr::kNameLength) == 1 && r.u8(dr::kName) <= 1;
}

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

size_t list_bytes(const std::vector<Xattr>& v) {
  size_t n = 64;
  for (const Xattr& x : v)
    n += x.name.size() + x.value.size() + 64;
  return n;
}

}  // namespace

std::vector<Xattr> IsoFs::xattrs(Ino ino) const {
  if (!has_xattrs())
    return {};
  {
    std::lock_guard lock(xattr_mutex_);
    if (auto hit = xattr_cache_.get(ino))
      return **hit;
  }
  auto list = std::make_shared<const std::vector<Xattr>>(load_xattrs(ino));
  std::lock_guard lock(xattr_mutex_);
  xattr_cache_.put(ino, list, list_bytes(*list));
  return *list;
}

std::vector<Xattr> IsoFs::load_xattrs(Ino ino) const {
  const std::optional<uint64_t> found = attr_record(ino);
  if (!found)
    return {};
  const uint64_t rec_off = *found;
  std::vector<std::byte> sector(kBlockSize);
  const uint64_t sector_at = rec_off / kBlockSize * kBlockSize;
  if (sector_at + kBlockSize > src_->size())
    throw FormatError(fmt::format("{}: the record at byte {} lies past the end of the image",
                                  src_->name(), rec_off));
  src_->read(sector_at, sector);
  ByteView s(sector.data(), sector.size());
  const size_t in_sector = rec_off - sector_at;
  const uint8_t len = s.u8(in_sector);
  if (len < dr::kMinLength || in_sector + len > kBlockSize)
    throw FormatError(fmt::format("{}: no directory record at byte {} (LBA {})", src_->name(),
                                  rec_off, rec_off / kBlockSize));
  ByteView rec = s.sub(in_sector, len);
  const size_t name_len = rec.u8(dr::kNameLength);
  const bool is_dir = rec.u8(dr::kFlags) & dr::kDirectory;
  // The root "." record holds SUSP SP at offset 0: the skip length does not apply to it.
  const uint8_t skip = ino == kRootIno ? 0 : su_skip_;
  const size_t su_at = dr::kName + name_len + (name_len % 2 == 0 ? 1 : 0) + skip;

  AaipCollector aaip;
  RockRidge rr;
  rr.aaip = &aaip;
  if (su_at < rec.size()) {
    try {
      parse_system_use(*src_, rec.from(su_at), rec_off, &rr);
    } catch (const FormatError& e) {
      // The attributes read before the damage are still shown.
      spdlog::warn("{}: the system use entries of the record at LBA {} are damaged: {}",
                   src_->name(), rec_off / kBlockSize, e.what());
    }
  }
  if (aaip.empty())
    return {};
  AaipAttributes attrs = aaip_to_linux(aaip.pairs(), rr.mode, is_dir);

  const bool regular = !is_dir && (!rr.px || (rr.mode & S_IFMT) == S_IFREG);
  // The array holds the MD5 of the bytes as written: for zisofs the compressed ones, which no
  // reader of the file sees, so it is not shown there.
  if (attrs.md5_index && regular && !rr.zf) {
    if (std::optional<std::string> md5 = recorded_md5(*attrs.md5_index)) {
      std::erase_if(attrs.xattrs, [](const Xattr& x) { return x.name == kMd5Name; });
      attrs.xattrs.push_back({kMd5Name, std::move(*md5)});
    }
  }
  return std::move(attrs.xattrs);
}

std::optional<uint64_t> IsoFs::attr_record(Ino ino) const {
  if (ino == kRootIno)
    return uint64_t{root_.extent_lba} * kBlockSize;
  if ((ino & kDirTag) && !(ino & kLinkTag))
    return dir_record(static_cast<uint32_t>(ino & 0xffffffffu));
  return file_record(ino);
}

std::optional<uint64_t> IsoFs::dir_record(uint32_t lba) const {
  // The parent, from the directory's ".." record.
  std::vector<std::byte> sector(kBlockSize);
  const uint64_t at = uint64_t{lba} * kBlockSize;
  if (at + kBlockSize > src_->size())
    throw FormatError(
        fmt::format("{}: directory at LBA {} lies past the end of the image", src_->name(), lba));
  src_->read(at, sector);
  ByteView s(sector.data(), sector.size());
  const uint8_t dot_len = s.u8(0);
  if (dot_len < dr::kMinLength || !is_dot(s.sub(0, dot_len)))
    throw FormatError(fmt::format("{}: no directory starts at LBA {}", src_->name(), lba));
  const uint8_t dotdot_len = s.u8(dot_len);
  if (dotdot_len < dr::kMinLength || !is_dot(s.sub(dot_len, dotdot_len)))
    throw FormatError(fmt::format("{}: directory at LBA {} has no \"..\"", src_->name(), lba));
  const uint32_t parent = s.both32(dot_len + dr::kExtent);

  RecordIndex index;
  {
    std::lock_guard lock(xattr_mutex_);
    if (auto hit = dir_records_.get(parent))
      index = *hit;
  }
  if (!index) {
    // Every subdirectory record of the parent, by extent; the first of equal extents counts.
    const uint64_t begin = uint64_t{parent} * kBlockSize;
    if (begin + kBlockSize > src_->size())
      throw FormatError(fmt::format("{}: directory at LBA {} lies past the end of the image",
                                    src_->name(), parent));
    src_->read(begin, sector);
    const uint64_t size = ByteView(sector.data(), sector.size()).both32(dr::kDataLength);
    const uint64_t end = std::min(begin + std::min(size, kMaxIndexedDirectoryBytes), src_->size());
    std::vector<std::byte> buf(end - begin);
    src_->read(begin, buf);
    ByteView all(buf.data(), buf.size());
    auto records = std::make_shared<std::vector<std::pair<uint32_t, uint64_t>>>();
    for (uint64_t pos = 0; pos < buf.size();) {
      const uint64_t sector_end =
          std::min<uint64_t>(pos / kBlockSize * kBlockSize + kBlockSize, buf.size());
      const uint8_t len = all.u8(pos);
      if (len < dr::kMinLength || pos + len > sector_end ||
          dr::kName + all.u8(pos + dr::kNameLength) > len) {
        pos = sector_end;  // padding or a bad record: the rest of the sector is skipped
        continue;
      }
      ByteView r = all.sub(pos, len);
      if ((r.u8(dr::kFlags) & dr::kDirectory) && !is_dot(r))
        records->emplace_back(r.both32(dr::kExtent), begin + pos);
      pos += len;
    }
    // The first of equal extents counts.
    std::stable_sort(records->begin(), records->end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    index = records;
    std::lock_guard lock(xattr_mutex_);
    dir_records_.put(parent, index, 64 + records->size() * sizeof(records->front()));
  }
  auto it = std::lower_bound(index->begin(), index->end(), lba,
                             [](const auto& e, uint32_t key) { return e.first < key; });
  if (it == index->end() || it->first != lba) {
    spdlog::debug("{}: directory at LBA {} is not listed in its parent at LBA {}", src_->name(),
                  lba, parent);
    return std::nullopt;
  }
  return it->second;
}

void IsoFs::load_checksum_area() const {
  std::call_once(checksum_once_, [&] {
    std::optional<ChecksumArea> ca;
    try {
      AaipCollector aaip;
      RockRidge rr;
      rr.aaip = &aaip;
      std::vector<std::byte> sector(kBlockSize);
      const uint64_t at = uint64_t{vol_.primary.extent_lba} * kBlockSize;
      src_->read(at, sector);
      ByteView s(sector.data(), sector.size());
      ByteView rec = s.sub(0, s.u8(0));
      const size_t name_len = rec.u8(dr::kNameLength);
      const size_t su_at = dr::kName + name_len + (name_len % 2 == 0 ? 1 : 0);
      if (su_at < rec.size())
        parse_system_use(*src_, rec.from(su_at), at, &rr);
      ca = aaip_to_linux(aaip.pairs(), rr.mode, true).checksum_area;
    } catch (const Error& e) {
      spdlog::warn("{}: the root's attributes cannot be read: {}", src_->name(), e.what());
      return;
    }
    if (!ca)
      return;
    // libisofs trusts the array only when its last entry is the MD5 of the ones before.
    const uint64_t begin = uint64_t{ca->end_lba} * kBlockSize;
    if (ca->count < 2 || begin > src_->size() ||
        uint64_t{ca->count} * kMd5Bytes > src_->size() - begin) {
      spdlog::warn("{}: the MD5 checksum array (LBA {}, {} entries) lies outside the image",
                   src_->name(), ca->end_lba, ca->count);
      return;
    }
    std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1)
      return;
    std::vector<std::byte> buf(64 * 1024);
    uint64_t left = uint64_t{ca->count - 1} * kMd5Bytes, pos = begin;
    while (left > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      src_->read(pos, std::span(buf.data(), n));
      EVP_DigestUpdate(ctx.get(), buf.data(), n);
      pos += n;
      left -= n;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &digest_len);
    std::vector<std::byte> recorded(kMd5Bytes);
    src_->read(pos, recorded);
    if (digest_len != kMd5Bytes || std::memcmp(digest, recorded.data(), kMd5Bytes) != 0) {
      spdlog::warn("{}: the MD5 checksum array at LBA {} is damaged; file MD5s are not shown",
                   src_->name(), ca->end_lba);
      return;
    }
    checksum_area_ = ca;
  });
}

std::optional<std::string> IsoFs::recorded_md5(uint32_t index) const {
  try {
    load_checksum_area();
  } catch (const Error& e) {
    spdlog::warn("{}: the MD5 checksum array cannot be read: {}", src_->name(), e.what());
    return std::nullopt;
  }
  if (!checksum_area_)
    return std::nullopt;
  // Entry 0 is the session, the last one the array's own MD5: neither is a file's.
  if (index == 0 || index >= checksum_area_->count - 1)
    return std::nullopt;
  std::vector<std::byte> md5(kMd5Bytes);
  src_->read(uint64_t{checksum_area_->end_lba} * kBlockSize + uint64_t{index} * kMd5Bytes, md5);
  return hex_digest(ByteView(md5.data(), md5.size()));
}

}  // namespace imagecore
