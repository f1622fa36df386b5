// UDF volume structures: volume recognition (ECMA-167 2/8), anchors and volume descriptor
// sequences (3/8.4, 3/10), partition maps with sparing tables, VAT and metadata files
// (UDF 2.2.8-2.2.12, 2.2.13), file set descriptor (4/14.1).
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <map>

#include "imagecore/iso9660/volume.h"
#include "imagecore/udf/udf_volume.h"

namespace imagecore::udf {
namespace {

using Buf = std::vector<std::byte>;

constexpr uint32_t kVrsStart = 32768;
constexpr int kMaxVrsDescriptors = 64;
constexpr uint32_t kMaxVdsBlocks = 512;  // descriptors read from one sequence, all extents
constexpr int kMaxVdsExtents = 16;       // volume descriptor pointers followed
constexpr size_t kMaxSparingBytes = 1u << 20;
constexpr size_t kMaxVatBytes = 64u << 20;
constexpr uint32_t kVatSearchBlocks = 32;  // blocks before the last one searched for the VAT
// The unrecorded tail of an image file of sequential media (mkudffs -m cdr/bdr on a file larger
// than what it writes, a padded copy) is skipped without reading where the file is sparse
// (SEEK_DATA/SEEK_HOLE), and otherwise read backwards in chunks, at most kMaxTailScan bytes:
// 64 MiB reads in well under a second from a disk, which a mount can afford, and covers the
// padding writers leave; a longer run of written zeros after the VAT is reported, not searched.
constexpr uint64_t kMaxTailScan = 64u << 20;
constexpr size_t kTailChunk = 1u << 20;
constexpr int kMaxDataRegions = 4096;  // data regions walked in the window holding the last data

Buf read_bytes(const Source& src, uint64_t off, size_t len) {
  if (off > src.size() || len > src.size() - off)
    throw FormatError(
        fmt::format("{}: block at byte {} lies past the end of the image", src.name(), off));
  Buf b(len);
  src.read(off, b);
  return b;
}

ByteView view(const Buf& b) {
  return ByteView(b.data(), b.size());
}

bool has_vrs(const Source& src) {
  for (uint32_t stride : {2048u, 4096u}) {
    for (int i = 0; i < kMaxVrsDescriptors; ++i) {
      const uint64_t off = kVrsStart + uint64_t{stride} * i;
      if (off + 7 > src.size())
        break;
      const Buf b = read_bytes(src, off, 7);
      const std::string_view id(reinterpret_cast<const char*>(b.data()) + 1, 5);
      if (id == "NSR02" || id == "NSR03")
        return true;
      if (id == "BEA01" || id == "CD001" || id == "CDW02" || id == "BOOT2")
        continue;
      break;  // TEA01, zeros or anything else ends the sequence
    }
  }
  return false;
}

struct Anchor {
  uint32_t bs = 0;
  uint64_t location = 0;
  Buf bytes;
};

// The anchors at the end come first: UDF 2.2.3 records them at 256 and at N-256 or N, N the
// last block of the last session. In an image of one session all three lead to the same
// sequence; in sessions appended one after another (genisoimage -udf -C/-M, a dd of a
// multisession disc) block 256 belongs to the first session and the end to the newest, which
// is the one to show (udfclient does the same).
// The valid anchors, in that order, of the first block size that has one.
std::vector<Anchor> find_anchors(const Source& src) {
  std::vector<Anchor> found;
  for (uint32_t bs : {2048u, 512u, 1024u, 4096u}) {
    const uint64_t blocks = src.size() / bs;
    if (blocks < 257)
      continue;
    const uint64_t last = blocks - 1;
    for (uint64_t loc : {last, last - 256, uint64_t{256}}) {
      Buf b = read_bytes(src, loc * bs, bs);
      if (check_tag(view(b), kTagAnchor, static_cast<uint32_t>(loc)).empty())
        found.push_back(Anchor{bs, loc, std::move(b)});
    }
    if (!found.empty())
      break;
  }
  return found;
}

// The newest copy (highest sequence number) of each descriptor of a sequence.
struct Vds {
  std::optional<Buf> pvd, lvd;
  std::map<uint16_t, Buf> pds;  // by partition number
};

void keep_newer(std::optional<Buf>* slot, Buf b, size_t vdsn_at) {
  if (!*slot || view(b).le32(vdsn_at) >= view(**slot).le32(vdsn_at))
    *slot = std::move(b);
}

void scan_vds(const Source& src, uint32_t bs, uint32_t loc, uint32_t len, Vds* out) {
  uint32_t read = 0;
  for (int hop = 0; hop < kMaxVdsExtents; ++hop) {
    const uint32_t n = len / bs;
    bool next = false;
    for (uint32_t i = 0; i < n && read < kMaxVdsBlocks; ++i, ++read) {
      const uint64_t block = uint64_t{loc} + i;
      if ((block + 1) * bs > src.size())
        return;
      Buf b = read_bytes(src, block * bs, bs);
      const uint16_t id = view(b).le16(tag::kId);
      if (std::string why = check_tag(view(b), id, static_cast<uint32_t>(block)); !why.empty()) {
        spdlog::warn("{}: volume descriptor at block {}: {}", src.name(), block, why);
        continue;
      }
      if (id == kTagTerminator)
        return;
      if (id == kTagPvd) {
        keep_newer(&out->pvd, std::move(b), pvd::kVdsn);
      } else if (id == kTagLvd) {
        keep_newer(&out->lvd, std::move(b), lvd::kVdsn);
      } else if (id == kTagPd) {
        const uint16_t number = view(b).le16(pd::kNumber);
        auto it = out->pds.find(number);
        if (it == out->pds.end() || view(b).le32(pd::kVdsn) >= view(it->second).le32(pd::kVdsn))
          out->pds[number] = std::move(b);
      } else if (id == kTagVdp) {
        len = view(b).le32(16 + 4);  // next volume descriptor sequence extent (3/10.3)
        loc = view(b).le32(16 + 8);
        next = true;
        break;
      }
    }
    if (!next)
      return;
  }
}

std::string trimmed_ident(ByteView regid) {
  std::string s(regid.chars(1, 23));
  while (!s.empty() && (s.back() == '\0' || s.back() == ' '))
    s.pop_back();
  return s;
}

const char* kind_name(Partition::Kind k) {
  switch (k) {
    case Partition::Kind::Physical:
      return "physical";
    case Partition::Kind::Sparable:
      return "sparable";
    case Partition::Kind::Virtual:
      return "virtual";
    case Partition::Kind::Metadata:
      return "metadata";
  }
  return "?";
}

void load_sparing(const Source& src, uint32_t bs, ByteView map, Partition* p) {
  p->packet = map.le16(pmap::kSparePacket);
  if (p->packet == 0)
    throw FormatError(fmt::format("{}: sparable partition has packet length 0", src.name()));
  const unsigned count = std::min<unsigned>(map.u8(pmap::kSpareTableCount), 4);
  const size_t size = std::min<size_t>(map.le32(pmap::kSpareTableSize), kMaxSparingBytes);
  for (unsigned t = 0; t < count; ++t) {
    const uint64_t loc = map.le32(pmap::kSpareTables + 4 * t);
    const size_t len = std::max<size_t>((size + bs - 1) / bs * bs, bs);
    if (loc * bs + len > src.size())
      continue;
    const Buf b = read_bytes(src, loc * bs, len);
    const ByteView d = view(b);
    std::string why = check_tag(d, kTagSparingTable, std::nullopt);
    if (why.empty() && trimmed_ident(d.sub(16, 32)) != "*UDF Sparing Table")
      why = "no sparing table identifier";
    const size_t entries = d.le16(sparing::kEntryCount);
    if (why.empty() && sparing::kEntries + entries * 8 > d.size())
      why = "its entries do not fit";
    if (!why.empty()) {
      spdlog::warn("{}: sparing table at block {}: {}", src.name(), loc, why);
      continue;
    }
    for (size_t i = 0; i < entries; ++i) {
      const uint32_t orig = d.le32(sparing::kEntries + 8 * i);
      if (orig < sparing::kUnused)
        p->spared.emplace_back(orig, d.le32(sparing::kEntries + 8 * i + 4));
    }
    std::sort(p->spared.begin(), p->spared.end());
    return;
  }
  spdlog::warn("{}: no readable sparing table; reading the partition without remapping",
               src.name());
}

// The byte offset where the last data region of a file ends, at most `size`: the bytes after it
// are a hole and read as zeros. Returns `size` when the file system cannot tell (no
// SEEK_DATA/SEEK_HOLE, a block device) or the tail is too fragmented to walk, 0 when the file
// holds no data at all. Looks back from the end in doubling windows, so a long hole costs a
// few calls, not a walk over every data region of the file.
uint64_t data_end(int fd, uint64_t size) {
  for (uint64_t window = kTailChunk;; window *= 2) {
    const uint64_t from = size > window ? size - window : 0;
    off_t d = ::lseek(fd, static_cast<off_t>(from), SEEK_DATA);
    if (d < 0 && errno != ENXIO)
      return size;
    if (d < 0 || static_cast<uint64_t>(d) >= size) {  // no data in [from, size)
      if (from == 0)
        return 0;
      continue;
    }
    for (int region = 0; region < kMaxDataRegions; ++region) {
      const off_t h = ::lseek(fd, d, SEEK_HOLE);
      if (h < 0 || static_cast<uint64_t>(h) >= size)
        return size;
      d = ::lseek(fd, h, SEEK_DATA);
      if (d < 0 && errno != ENXIO)
        return size;
      if (d < 0 || static_cast<uint64_t>(d) >= size)
        return static_cast<uint64_t>(h);
    }
    return size;
  }
}

// The last block of the first `blocks` holding a byte that is not zero: where a drive would
// report the end of the recorded area. nullopt, with `why`, when every block is zero or no such
// block lies within kMaxTailScan bytes read back from the end of the data.
std::optional<uint64_t> last_recorded_block(const Source& src,
                                            uint32_t bs,
                                            uint64_t blocks,
                                            std::string* why) {
  uint64_t end = blocks * bs;
  if (src.fd() >= 0)
    end = std::min(end, (data_end(src.fd(), src.size()) + bs - 1) / bs * bs);
  const uint64_t data_end_at = end;
  Buf chunk;
  for (uint64_t scanned = 0; end > 0 && scanned < kMaxTailScan;) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(kTailChunk, end));
    chunk.resize(len);
    src.read(end - len, chunk);
    auto nz =
        std::find_if(chunk.rbegin(), chunk.rend(), [](std::byte b) { return b != std::byte{0}; });
    if (nz != chunk.rend())
      return (end - len + static_cast<uint64_t>(chunk.rend() - nz) - 1) / bs;
    end -= len;
    scanned += len;
  }
  *why = end == 0 ? std::string("the image holds no recorded block")
                  : fmt::format(
                        "the last {} MiB before byte {} are zeros (a longer unrecorded "
                        "tail is only skipped where the file is sparse)",
                        kMaxTailScan >> 20, data_end_at);
  return std::nullopt;
}

// Reads the VAT whose file entry is within kVatSearchBlocks of block `last`, into p->vat.
// Returns false when there is none, with what was wrong with the last candidate in `error`.
bool vat_near(Volume& v, Partition* p, uint64_t last, std::string* error) {
  const Partition& base = v.parts[p->base];
  std::string& last_error = *error;
  for (uint32_t back = 0; back < kVatSearchBlocks && back <= last; ++back) {
    const uint64_t abs = last - back;
    if (abs < base.start || abs - base.start > UINT32_MAX)
      break;
    const Buf b = read_bytes(*v.src, abs * v.bs, v.bs);
    const uint16_t id = view(b).le16(tag::kId);
    if (id != kTagFe && id != kTagEfe)
      continue;
    try {
      const Icb icb = read_icb(v, p->base, static_cast<uint32_t>(abs - base.start));
      const std::string data = read_content(v, icb, kMaxVatBytes);
      const ByteView d(reinterpret_cast<const std::byte*>(data.data()), data.size());
      size_t begin = 0, end = data.size();
      if (icb.file_type == icb::kVat) {  // UDF 2.00+ (2.2.11): header, then entries
        begin = d.le16(0);
      } else if (data.size() >= 36 && trimmed_ident(d.sub(data.size() - 36, 32)) ==
                                          "*UDF Virtual Alloc Tbl") {  // UDF 1.50
        end = data.size() - 36;
      } else {
        last_error = fmt::format("block {} holds a file entry but no VAT", abs);
        continue;
      }
      if (begin > end)
        throw FormatError("VAT header is longer than the VAT");
      for (size_t at = begin; at + 4 <= end; at += 4)
        p->vat.push_back(d.le32(at));
      spdlog::debug("{}: VAT at block {} with {} entries", v.src->name(), abs, p->vat.size());
      return true;
    } catch (const FormatError& e) {
      last_error = e.what();
    }
  }
  return false;
}

// The VAT is the last block recorded (UDF 2.2.11). A drive reports where that is; an image
// file of the whole medium ends there, or has an unrecorded (zero) tail after it.
void load_vat(Volume& v, Partition* p) {
  const auto fail = [&](const std::string& where, const std::string& detail) {
    return FormatError(fmt::format("{}: virtual partition: no VAT in the {} blocks {}{}{}",
                                   v.src->name(), kVatSearchBlocks, where,
                                   detail.empty() ? "" : ": ", detail));
  };
  std::string detail;
  if (v.blocks > 0 && vat_near(v, p, v.blocks - 1, &detail))
    return;
  std::string why;
  std::optional<uint64_t> last;
  try {
    last = last_recorded_block(*v.src, v.bs, v.blocks, &why);
  } catch (const Error& e) {  // a drive past its recorded area: the end it reported stands
    throw fail("at the end", fmt::format("{}{}searching back for the last recorded block: {}",
                                         detail, detail.empty() ? "" : "; ", e.what()));
  }
  if (!last)
    throw fail("at the end, and no recorded block before them", why);
  if (*last + 1 == v.blocks)
    throw fail("at the end", detail);
  spdlog::debug("{}: last recorded block {} of {}", v.src->name(), *last, v.blocks);
  detail.clear();
  if (!vat_near(v, p, *last, &detail))
    throw fail(fmt::format("up to the last recorded block {} (the image has {})", *last, v.blocks),
               detail);
}

void load_metadata(Volume& v, ByteView map, Partition* p) {
  const uint32_t locs[2] = {map.le32(pmap::kMetaFile), map.le32(pmap::kMetaMirror)};
  std::string errors[2];
  for (int i = 0; i < 2; ++i) {
    if (locs[i] == 0xFFFFFFFF)
      continue;
    try {
      Icb icb = read_icb(v, p->base, locs[i]);
      const uint8_t want = i == 0 ? icb::kMetadata : icb::kMetadataMirror;
      if (icb.file_type != want)
        throw FormatError(fmt::format("file type is {}, not {}", icb.file_type, want));
      if (icb.embedded)
        throw FormatError("its data is embedded");
      p->meta[i] = std::move(icb.extents);
    } catch (const FormatError& e) {
      errors[i] = e.what();
      spdlog::warn("{}: metadata {}file at block {}: {}", v.src->name(), i ? "mirror " : "",
                   locs[i], e.what());
    }
  }
  if (p->meta[0].empty() && p->meta[1].empty())
    throw FormatError(fmt::format("{}: neither the metadata file nor its mirror can be read: {}",
                                  v.src->name(), errors[0]));
  if (p->meta[0].empty())
    std::swap(p->meta[0], p->meta[1]);
}

void load_partitions(Volume& v, const Vds& vds) {
  const ByteView l = view(*vds.lvd);
  const uint32_t table_len = l.le32(lvd::kMapTableLength);
  const uint32_t count = l.le32(lvd::kMapCount);
  if (table_len > l.size() - lvd::kMaps)
    throw FormatError(
        fmt::format("{}: partition map table is longer than its descriptor", v.src->name()));
  const ByteView table = l.sub(lvd::kMaps, table_len);
  std::vector<ByteView> maps;
  for (size_t at = 0; maps.size() < count && at + 2 <= table.size();) {
    const uint8_t len = table.u8(at + 1);
    if (len < 2 || at + len > table.size())
      throw FormatError(fmt::format("{}: partition map {} is damaged", v.src->name(), maps.size()));
    maps.push_back(table.sub(at, len));
    at += len;
  }
  if (maps.empty() || maps.size() > 64)
    throw FormatError(fmt::format("{}: {} partition maps", v.src->name(), maps.size()));
  for (const ByteView& m : maps) {
    Partition p;
    std::string ident;
    if (m.u8(0) == 1 && m.size() >= 6) {
      p.number = m.le16(pmap::kType1Number);
    } else if (m.u8(0) == 2 && m.size() >= 64) {
      p.number = m.le16(pmap::kType2Number);
      ident = trimmed_ident(m.sub(pmap::kType2Ident, 32));
      if (ident == "*UDF Virtual Partition")
        p.kind = Partition::Kind::Virtual;
      else if (ident == "*UDF Sparable Partition")
        p.kind = Partition::Kind::Sparable;
      else if (ident == "*UDF Metadata Partition")
        p.kind = Partition::Kind::Metadata;
      else
        throw Unsupported(
            fmt::format("{}: partition map '{}' is not supported", v.src->name(), ident));
    } else {
      throw FormatError(fmt::format("{}: partition map of type {} and length {}", v.src->name(),
                                    m.u8(0), m.size()));
    }
    auto pd = vds.pds.find(p.number);
    if (pd == vds.pds.end())
      throw FormatError(
          fmt::format("{}: no partition descriptor for partition {}", v.src->name(), p.number));
    p.start = view(pd->second).le32(pd::kStart);
    p.length = view(pd->second).le32(pd::kLength);
    if (p.kind == Partition::Kind::Sparable)
      load_sparing(*v.src, v.bs, m, &p);
    v.parts.push_back(std::move(p));
  }
  // Virtual and metadata partitions live inside the physical (or sparable) one of their number.
  for (size_t i = 0; i < v.parts.size(); ++i) {
    Partition& p = v.parts[i];
    if (p.kind != Partition::Kind::Virtual && p.kind != Partition::Kind::Metadata)
      continue;
    size_t b = 0;
    while (b < v.parts.size() &&
           (v.parts[b].number != p.number || (v.parts[b].kind != Partition::Kind::Physical &&
                                              v.parts[b].kind != Partition::Kind::Sparable)))
      ++b;
    if (b == v.parts.size())
      throw FormatError(fmt::format("{}: {} partition {} has no physical partition under it",
                                    v.src->name(), kind_name(p.kind), p.number));
    p.base = static_cast<uint16_t>(b);
  }
  for (size_t i = 0; i < v.parts.size(); ++i) {
    if (v.parts[i].kind == Partition::Kind::Virtual)
      load_vat(v, &v.parts[i]);
    else if (v.parts[i].kind == Partition::Kind::Metadata)
      load_metadata(v, maps[i], &v.parts[i]);
  }
  for (const auto& [number, b] : vds.pds)
    v.info.partition_blocks += view(b).le32(pd::kLength);
  for (const Partition& p : v.parts)
    v.info.partition_kinds.push_back(kind_name(p.kind));
}

uint16_t domain_revision(ByteView regid) {
  if (trimmed_ident(regid) != "*OSTA UDF Compliant")
    return 0;
  return regid.le16(24);
}

void load_fsd(Volume& v, ByteView lvd_bytes) {
  const Ad loc = read_ad(lvd_bytes, lvd::kFsdLocation, icb::kLong, 0);
  const uint64_t off = block_offset(v, loc.part, loc.block);
  const Buf b = read_bytes(*v.src, off, v.bs);
  if (std::string why = check_tag(view(b), kTagFsd, loc.block); !why.empty())
    throw FormatError(fmt::format("{}: file set descriptor (partition {} block {}): {}",
                                  v.src->name(), loc.part, loc.block, why));
  v.root = read_ad(view(b), fsd::kRoot, icb::kLong, 0);
  if (v.info.revision_bcd == 0)
    v.info.revision_bcd = domain_revision(view(b).sub(fsd::kDomain, 32));
}

}  // namespace

Volume load_volume(const Source& src) {
  if (!has_vrs(src))
    throw NotAnImage(fmt::format("{}: no UDF volume recognition sequence", src.name()));
  const std::vector<Anchor> anchors = find_anchors(src);
  if (anchors.empty())
    throw NotAnImage(
        fmt::format("{}: UDF recognition sequence but no anchor volume descriptor", src.name()));
  Volume v;
  v.src = &src;
  v.bs = anchors.front().bs;
  v.blocks = src.size() / v.bs;
  v.info.block_size = v.bs;
  // The first anchor whose main or reserve sequence is complete; an anchor at the end that leads
  // nowhere (a damaged last session) leaves the one at 256.
  Vds vds;
  std::vector<uint64_t> tried;  // main and reserve locations: a session's anchors agree
  for (const Anchor& anchor : anchors) {
    const ByteView a = view(anchor.bytes);
    const uint64_t main_at = (uint64_t{a.le32(avdp::kMain + 4)} << 32) | a.le32(avdp::kReserve + 4);
    if (std::find(tried.begin(), tried.end(), main_at) != tried.end())
      continue;
    tried.push_back(main_at);
    vds = Vds{};
    scan_vds(src, v.bs, a.le32(avdp::kMain + 4), a.le32(avdp::kMain), &vds);
    if (!vds.lvd || vds.pds.empty()) {
      spdlog::warn(
          "{}: main volume descriptor sequence of the anchor at block {} incomplete; "
          "reading the reserve copy",
          src.name(), anchor.location);
      scan_vds(src, v.bs, a.le32(avdp::kReserve + 4), a.le32(avdp::kReserve), &vds);
    }
    if (vds.lvd && !vds.pds.empty())
      break;
  }
  if (!vds.lvd || vds.pds.empty())
    throw FormatError(
        fmt::format("{}: no logical volume or partition descriptor in either "
                    "volume descriptor sequence",
                    src.name()));
  const ByteView l = view(*vds.lvd);
  if (l.le32(lvd::kBlockSize) != v.bs)
    throw FormatError(fmt::format("{}: logical block size {} differs from the anchor's {}",
                                  src.name(), l.le32(lvd::kBlockSize), v.bs));
  if (vds.pvd) {
    const ByteView p = view(*vds.pvd);
    v.info.volume_id = dstring(p.sub(pvd::kVolumeId, 32));
    v.info.volume_set_id = dstring(p.sub(pvd::kVolumeSetId, 128));
    v.info.recorded = timestamp(p.sub(pvd::kRecorded, 12));
  }
  v.info.logical_volume_id = dstring(l.sub(lvd::kVolumeId, 128));
  v.info.revision_bcd = domain_revision(l.sub(lvd::kDomain, 32));
  load_partitions(v, vds);
  load_fsd(v, l);
  if (v.info.revision_bcd)
    v.info.revision =
        fmt::format("{:x}.{:02x}", v.info.revision_bcd >> 8, v.info.revision_bcd & 0xFF);
  return v;
}

uint64_t block_offset(const Volume& v, uint16_t part, uint32_t block, bool mirror) {
  if (part >= v.parts.size())
    throw FormatError(fmt::format("partition reference {} does not exist", part));
  const Partition& p = v.parts[part];
  uint64_t abs = 0;
  switch (p.kind) {
    case Partition::Kind::Physical:
    case Partition::Kind::Sparable: {
      if (block >= p.length)
        throw FormatError(fmt::format("block {} lies past the end of partition {} ({} blocks)",
                                      block, p.number, p.length));
      abs = p.start + block;
      if (p.kind == Partition::Kind::Sparable) {
        const uint32_t packet = block / p.packet * p.packet;
        auto it = std::lower_bound(p.spared.begin(), p.spared.end(),
                                   std::pair<uint32_t, uint32_t>{packet, 0});
        if (it != p.spared.end() && it->first == packet)
          abs = uint64_t{it->second} + (block - packet);
      }
      break;
    }
    case Partition::Kind::Virtual:
      if (block >= p.vat.size() || p.vat[block] == 0xFFFFFFFF)
        throw FormatError(fmt::format("virtual block {} is not in the VAT", block));
      return block_offset(v, p.base, p.vat[block]);
    case Partition::Kind::Metadata: {
      const std::vector<Extent>& ext = mirror && !p.meta[1].empty() ? p.meta[1] : p.meta[0];
      uint64_t pos = 0;
      const uint64_t want = uint64_t{block} * v.bs;
      bool found = false;
      for (const Extent& e : ext) {
        if (want < pos + e.length) {
          if (e.offset == kZeroExtent)
            throw FormatError(fmt::format("metadata block {} is not recorded", block));
          abs = (e.offset + (want - pos)) / v.bs;
          found = true;
          break;
        }
        pos += e.length;
      }
      if (!found)
        throw FormatError(fmt::format("block {} lies past the end of the metadata file", block));
      break;
    }
  }
  if (abs >= v.blocks)
    throw FormatError(
        fmt::format("block {} of partition {} lies past the end of the image", block, p.number));
  return abs * v.bs;
}

void map_extent(const Volume& v,
                uint16_t part,
                uint32_t block,
                uint64_t bytes,
                std::vector<Extent>* out,
                uint64_t* budget,
                bool mirror) {
  if (bytes == 0)
    return;
  const uint64_t nblocks = (bytes + v.bs - 1) / v.bs;
  if (block + nblocks - 1 > UINT32_MAX)
    throw FormatError(fmt::format("extent at block {} wraps around", block));
  auto push = [&](uint64_t off, uint64_t len) {
    if (off > v.src->size() || len > v.src->size() - off)
      throw FormatError(fmt::format("extent at block {} ({} bytes) lies past the end of the image",
                                    block, bytes));
    if (!out->empty() && out->back().offset != kZeroExtent &&
        out->back().offset + out->back().length == off)
      out->back().length += len;
    else
      out->push_back({off, len});
  };
  if (part < v.parts.size() && v.parts[part].kind == Partition::Kind::Physical) {
    const Partition& p = v.parts[part];
    if (block + nblocks > p.length)
      throw FormatError(
          fmt::format("extent at block {} ({} bytes) lies past the end of partition {} ({} blocks)",
                      block, bytes, p.number, p.length));
    push((p.start + block) * v.bs, bytes);
    return;
  }
  for (uint64_t i = 0; i < nblocks; ++i) {
    if (*budget == 0)
      throw FormatError("file is too fragmented to map");
    --*budget;
    const uint64_t off = block_offset(v, part, static_cast<uint32_t>(block + i), mirror);
    push(off, std::min<uint64_t>(v.bs, bytes - i * v.bs));
  }
}

bool has_metadata_mirror(const Volume& v, uint16_t part) {
  return part < v.parts.size() && v.parts[part].kind == Partition::Kind::Metadata &&
         !v.parts[part].meta[1].empty();
}

}  // namespace imagecore::udf

namespace imagecore {

bool has_udf(const Source& src) {
  try {
    return udf::has_vrs(src) && !udf::find_anchors(src).empty();
  } catch (const std::exception&) {
    return false;
  }
}

UdfInfo read_udf_info(const Source& src) {
  return udf::load_volume(src).info;
}

}  // namespace imagecore
