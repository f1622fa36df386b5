// UDF file entries: ICB chains (ECMA-167 4/14.6-14.7, strategies 4 and 4096), file entries
// and extended file entries (4/14.9, 4/14.17), extended attributes (4/14.10) and allocation
// descriptors with their continuation extents (4/14.5, 4/14.14).
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "imagecore/udf/udf_volume.h"

namespace imagecore::udf {
namespace {

using Buf = std::vector<std::byte>;

constexpr int kMaxIcbHops = 64;              // indirect entries followed for one ICB
constexpr int kMaxAllocationExtents = 1024;  // continuation extents of one file
constexpr uint64_t kMaxFileSize = uint64_t{1} << 50;
constexpr uint64_t kMapBudgetBlocks = uint64_t{1} << 24;

struct Desc {
  Buf bytes;
  uint16_t id = 0;
  std::string why;  // non-empty: the tag is not sound
};

// The descriptor at a logical block, through the metadata mirror when the main copy is bad.
Desc read_desc(const Volume& v, uint16_t part, uint32_t block) {
  Desc d;
  for (int copy = 0; copy < 2; ++copy) {
    const uint64_t off = block_offset(v, part, block, copy == 1);
    d.bytes.assign(v.bs, std::byte{0});
    v.src->read(off, d.bytes);
    const ByteView b(d.bytes.data(), d.bytes.size());
    d.id = b.le16(tag::kId);
    d.why = check_tag(b, d.id, block);
    if (d.why.empty() || !has_metadata_mirror(v, part))
      break;
  }
  return d;
}

std::optional<std::pair<uint32_t, uint32_t>> device_ea(ByteView ea) {
  if (ea.size() < 24 || ea.le16(tag::kId) != kTagEaHeader)
    return std::nullopt;
  for (size_t at = 24; at + 12 <= ea.size();) {
    const uint32_t type = ea.le32(at);
    const uint32_t len = ea.le32(at + 8);
    if (len < 12 || len > ea.size() - at)
      break;
    if (type == 12 && len >= 24)  // device specification (4/14.10.7)
      return std::make_pair(ea.le32(at + 16), ea.le32(at + 20));
    at += len;
  }
  return std::nullopt;
}

class AdWalker {
 public:
  AdWalker(const Volume& v, Icb* icb, bool mirror) : v_(v), icb_(icb), mirror_(mirror) {}

  void walk(ByteView area, icb::AdType type, uint16_t part) {
    std::set<std::pair<uint16_t, uint32_t>> seen;
    int hops = 0;
    const size_t step = ad_size(type);
    for (;;) {
      bool next = false;
      for (size_t at = 0; at + step <= area.size(); at += step) {
        const Ad ad = read_ad(area, at, type, part);
        if (ad.length == 0)
          return;
        if (ad.type == kNextExtent) {
          if (++hops > kMaxAllocationExtents || !seen.emplace(ad.part, ad.block).second)
            throw FormatError("its allocation extents form a loop or are too many");
          aed_ = read_desc(v_, ad.part, ad.block);
          if (!aed_.why.empty() || aed_.id != kTagAed)
            throw FormatError(
                fmt::format("allocation extent at block {}: {}", ad.block,
                            aed_.why.empty() ? "not an allocation extent" : aed_.why));
          const ByteView b(aed_.bytes.data(), aed_.bytes.size());
          const uint32_t len = b.le32(aed::kLength);
          if (len > b.size() - aed::kHeader)
            throw FormatError(fmt::format("allocation extent at block {} is too long", ad.block));
          area = b.sub(aed::kHeader, len);
          next = true;
          break;
        }
        add(ad);
      }
      if (!next)
        return;
    }
  }

  // Pads with zeros up to the file size (unmapped tail reads as a hole, as Linux does).
  void finish() {
    if (pos_ < icb_->size)
      zero(icb_->size - pos_);
  }

 private:
  void add(const Ad& ad) {
    const uint64_t take = std::min<uint64_t>(ad.length, icb_->size - pos_);
    if (take == 0)
      return;
    if (ad.type == kRecorded)
      map_extent(v_, ad.part, ad.block, take, &icb_->extents, &budget_, mirror_);
    else
      zero(take);
    pos_ += take;
  }
  void zero(uint64_t len) {
    auto& e = icb_->extents;
    if (!e.empty() && e.back().offset == kZeroExtent)
      e.back().length += len;
    else
      e.push_back({kZeroExtent, len});
  }

  const Volume& v_;
  Icb* icb_;
  bool mirror_;
  Desc aed_;
  uint64_t pos_ = 0;
  uint64_t budget_ = kMapBudgetBlocks;
};

// Follows indirect entries (and strategy 4096 chains) to the file entry in force.
Desc find_entry(const Volume& v, uint16_t* part, uint32_t* block) {
  for (int hop = 0; hop < kMaxIcbHops; ++hop) {
    Desc d = read_desc(v, *part, *block);
    if (!d.why.empty())
      throw FormatError(fmt::format("file entry: {}", d.why));
    const ByteView b(d.bytes.data(), d.bytes.size());
    if (d.id == kTagIndirect) {
      const Ad next = read_ad(b, ie::kTarget, icb::kLong, 0);
      if (next.length == 0)
        throw FormatError("indirect entry points nowhere");
      *part = next.part;
      *block = next.block;
      continue;
    }
    if (d.id != kTagFe && d.id != kTagEfe)
      throw FormatError(fmt::format("descriptor {} where a file entry was expected", d.id));
    if (b.le16(icb::kStrategy) == 4096 && *block != UINT32_MAX) {
      // 4/A.6: the entry after a direct entry may be an indirect entry to a newer ICB.
      try {
        const Desc n = read_desc(v, *part, *block + 1);
        const ByteView nb(n.bytes.data(), n.bytes.size());
        if (n.why.empty() && n.id == kTagIndirect) {
          const Ad next = read_ad(nb, ie::kTarget, icb::kLong, 0);
          if (next.length != 0) {
            *part = next.part;
            *block = next.block;
            continue;
          }
        }
      } catch (const FormatError&) {
        // no next entry: this one is in force
      }
    }
    return d;
  }
  throw FormatError("its chain of indirect entries does not end");
}

}  // namespace

Icb read_icb(const Volume& v, uint16_t part, uint32_t block, bool mirror) {
  const Desc d = find_entry(v, &part, &block);
  const ByteView b(d.bytes.data(), d.bytes.size());
  const bool ext = d.id == kTagEfe;
  Icb icb;
  icb.file_type = b.u8(icb::kFileType);
  icb.flags = b.le16(icb::kFlags);
  icb.uid = b.le32(fe::kUid);
  icb.gid = b.le32(fe::kGid);
  icb.perm = b.le32(fe::kPerm);
  icb.links = b.le16(fe::kLinks);
  icb.size = b.le32(fe::kSize) | uint64_t{b.le32(fe::kSize + 4)} << 32;
  icb.atime = timestamp(b.sub(ext ? fe::kExtAtime : fe::kAtime, 12));
  icb.mtime = timestamp(b.sub(ext ? fe::kExtMtime : fe::kMtime, 12));
  icb.ctime = timestamp(b.sub(ext ? fe::kExtAttrTime : fe::kAttrTime, 12));
  const size_t header = ext ? fe::kExtHeader : fe::kHeader;
  const uint32_t ea_len = b.le32(ext ? fe::kExtEaLength : fe::kEaLength);
  const uint32_t ad_len = b.le32(ext ? fe::kExtAdLength : fe::kAdLength);
  if (ea_len > b.size() - header || ad_len > b.size() - header - ea_len)
    throw FormatError(
        fmt::format("file entry at block {}: its attribute and descriptor "
                    "lengths ({} and {}) exceed the block",
                    block, ea_len, ad_len));
  if (icb.size > kMaxFileSize)
    throw FormatError(fmt::format("file entry at block {}: size {} is absurd", block, icb.size));
  icb.device = device_ea(b.sub(header, ea_len));
  const ByteView area = b.sub(header + ea_len, ad_len);
  const auto type = static_cast<icb::AdType>(icb.flags & icb::kAdMask);
  if (type == icb::kEmbedded) {
    if (icb.size > area.size()) {
      icb.data_defect = fmt::format("file entry at block {}: {} bytes of embedded data, size {}",
                                    block, area.size(), icb.size);
      return icb;
    }
    icb.embedded = true;
    icb.data.assign(reinterpret_cast<const char*>(area.data()), static_cast<size_t>(icb.size));
    return icb;
  }
  if (type > icb::kExtended) {
    icb.data_defect = fmt::format("file entry at block {}: allocation descriptor type {}", block,
                                  static_cast<int>(type));
    return icb;
  }
  AdWalker walker(v, &icb, mirror);
  try {
    walker.walk(area, type, part);
  } catch (const FormatError& e) {
    icb.extents.clear();
    icb.data_defect = fmt::format("file entry at block {}: {}", block, e.what());
    return icb;
  }
  walker.finish();
  return icb;
}

std::string read_content(const Volume& v, const Icb& icb, size_t max) {
  if (!icb.data_defect.empty())
    throw FormatError(icb.data_defect);
  if (icb.size > max)
    throw FormatError(fmt::format("{} bytes is more than the {} allowed", icb.size, max));
  if (icb.embedded)
    return icb.data;
  std::string out(static_cast<size_t>(icb.size), '\0');
  size_t at = 0;
  for (const Extent& e : icb.extents) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(e.length, out.size() - at));
    if (e.offset != kZeroExtent)
      v.src->read(e.offset, std::as_writable_bytes(std::span(out.data() + at, take)));
    at += take;
  }
  return out;
}

}  // namespace imagecore::udf
