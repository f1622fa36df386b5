#include "imagecore/media/eltorito.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <deque>
#include <unordered_set>

#include "imagecore/base/bytes.h"
#include "imagecore/iso9660/ecma119.h"

namespace imagecore {
namespace {

using ecma119::kBlockSize;

// Boot record volume descriptor (El Torito 2.0): system id at 7, catalog LBA at 0x47.
constexpr size_t kBootSystemId = 7;
constexpr size_t kCatalogPointer = 0x47;
constexpr size_t kEntrySize = 32;
// Catalog bytes read: 4 blocks hold 256 entries, far more than kMaxBootEntries need.
constexpr uint64_t kMaxCatalogBytes = 4 * kBlockSize;
// Tree entries visited while looking for the files that hold boot images.
constexpr size_t kMaxTreeEntries = 20000;
// xorriso's limit for an EFI image that runs to the end of the medium (1 GiB).
constexpr uint64_t kMaxEndlessEfiBlocks = uint64_t{1} << 19;

std::string platform_name(uint8_t id) {
  switch (id) {
    case 0:
      return "bios";
    case 1:
      return "ppc";
    case 2:
      return "mac";
    case 0xEF:
      return "efi";
  }
  return fmt::format("0x{:02x}", id);
}

std::string emulation_name(uint8_t media) {
  static const char* const kNames[] = {"noemul", "fd1.2m", "fd1.44m", "fd2.88m", "hdd"};
  return media < 5 ? kNames[media] : fmt::format("0x{:02x}", media);
}

void add_note(BootCatalog* c, const std::string& what) {
  if (!c->note.empty())
    c->note += "; ";
  c->note += what;
}

// 2.2 initial/default entry and 2.4 section entry share this layout.
BootEntry parse_entry(ByteView e, uint8_t platform) {
  BootEntry b;
  b.platform_id = platform;
  b.platform = platform_name(platform);
  b.bootable = e.u8(0) != 0;  // 0x88; libisofs takes any non-zero value
  b.media = e.u8(1) & 0x0F;
  b.emulation = emulation_name(b.media);
  b.load_segment = e.le16(2);
  b.system_type = e.u8(4);
  b.sector_count = e.le16(6);
  b.load_lba = e.le32(8);
  return b;
}

// The entries of the catalog in `cat` (2.1 validation entry, then entries and sections).
void parse_catalog(ByteView cat, BootCatalog* out) {
  if (cat.size() < 2 * kEntrySize || cat.u8(0) != 1 || cat.u8(30) != 0x55 || cat.u8(31) != 0xAA) {
    add_note(out, fmt::format("no valid boot catalog at LBA {}", out->catalog_lba));
    return;
  }
  uint16_t sum = 0;
  for (size_t i = 0; i < kEntrySize; i += 2)
    sum = static_cast<uint16_t>(sum + cat.le16(i));
  if (sum != 0)
    add_note(out, "the boot catalog's validation entry has a bad checksum");
  out->entries.push_back(parse_entry(cat.sub(kEntrySize, kEntrySize), cat.u8(1)));
  bool last = false;
  size_t at = 2 * kEntrySize;
  while (!last && at + kEntrySize <= cat.size() && (cat.u8(at) & 0xFE) == 0x90) {
    last = cat.u8(at) == 0x91;
    const uint8_t platform = cat.u8(at + 1);
    const unsigned count = cat.le16(at + 2);
    at += kEntrySize;
    for (unsigned i = 0; i < count; ++i, at += kEntrySize) {
      if (at + kEntrySize > cat.size()) {
        add_note(out, "the boot catalog's entries run past its end");
        return;
      }
      if (out->entries.size() >= kMaxBootEntries) {
        add_note(out, fmt::format("only the first {} boot entries are shown", kMaxBootEntries));
        return;
      }
      out->entries.push_back(parse_entry(cat.sub(at, kEntrySize), platform));
      // 2.5 extension entries (0x44) continue a section entry's selection criteria.
      while (at + 2 * kEntrySize <= cat.size() && cat.u8(at + kEntrySize) == 0x44)
        at += kEntrySize;
    }
  }
}

// What the tree says about the boot images: which file holds each, and where every file's
// data starts (for the distance to the next claimed block).
struct TreeScan {
  std::vector<uint64_t> file_starts;  // in blocks
  std::vector<const Node*> holder;    // per entry, or null
  std::vector<std::string> holder_path;
  std::vector<Node> holders;
  bool capped = false;
};

TreeScan scan_tree(const FileTree& tree, const std::vector<BootEntry>& entries) {
  TreeScan scan;
  scan.holder_path.resize(entries.size());
  std::vector<std::optional<Node>> found(entries.size());
  std::deque<std::pair<Ino, std::string>> queue{{kRootIno, ""}};
  std::unordered_set<Ino> seen{kRootIno};
  size_t visited = 0;
  while (!queue.empty()) {
    auto [ino, path] = std::move(queue.front());
    queue.pop_front();
    std::shared_ptr<const Directory> dir;
    try {
      dir = tree.list(ino);
    } catch (const Error& e) {
      spdlog::debug("boot images: skipping directory {}: {}", path, e.what());
      continue;
    }
    for (const Node& n : dir->entries) {
      if (++visited > kMaxTreeEntries) {
        scan.capped = true;
        break;
      }
      if (n.name.empty() || n.name == "." || n.name == "..")
        continue;
      const std::string child = path + "/" + n.name;
      if (n.attr.type == FileType::Directory) {
        if (seen.insert(n.attr.ino).second)
          queue.emplace_back(n.attr.ino, child);
        continue;
      }
      if (n.attr.type != FileType::Regular || n.has_inline_data)
        continue;
      for (const Extent& x : n.extents) {
        if (x.offset == kZeroExtent)
          continue;
        const uint64_t start = x.offset / kBlockSize;
        const uint64_t blocks = (x.length + kBlockSize - 1) / kBlockSize;
        scan.file_starts.push_back(start);
        for (size_t i = 0; i < entries.size(); ++i)
          if (!found[i] && entries[i].load_lba >= start && entries[i].load_lba - start < blocks) {
            found[i] = n;
            scan.holder_path[i] = child;
          }
      }
    }
    if (scan.capped)
      break;
  }
  scan.holders.reserve(entries.size());
  for (auto& f : found)
    scan.holders.push_back(f ? *f : Node{});
  for (size_t i = 0; i < entries.size(); ++i)
    scan.holder.push_back(found[i] ? &scan.holders[i] : nullptr);
  return scan;
}

// Blocks other structures claim, as libisofs lists them for its boot image size estimate
// (iso_impsysa_reduce_next_above): descriptors, path tables and root of the session and of
// LBA 16, MBR and GPT partition starts and ends, the volume's end.
std::vector<uint64_t> structure_claims(const Source& src, uint64_t session_start) {
  std::vector<uint64_t> claims;
  const uint64_t src_blocks = src.size() / kBlockSize;
  std::array<std::byte, kBlockSize> b;
  uint32_t session_blocks = 0;
  for (uint64_t pvd : {session_start + 16, uint64_t{16}}) {
    claims.push_back(pvd);
    if (pvd >= src_blocks)
      continue;
    src.read(pvd * kBlockSize, b);
    ByteView d(b.data(), b.size());
    if (d.u8(0) != 1 || d.chars(1, 5) != "CD001")
      continue;
    if (pvd == session_start + 16)
      session_blocks = d.le32(80);
    else if (d.le32(80) > session_blocks)
      continue;
    // libisofs reads all four path table pointers little-endian, the M ones included.
    for (size_t off : {140, 144, 148, 152, 158})
      claims.push_back(d.le32(off));
  }
  claims.push_back(session_blocks);
  if (session_start + 1 > src_blocks)
    return claims;
  // MBR (first 512 bytes of the session's system area).
  src.read(session_start * kBlockSize, b);
  ByteView sa(b.data(), b.size());
  if (sa.u8(510) == 0x55 && sa.u8(511) == 0xAA) {
    for (size_t i = 0; i < 4; ++i) {
      const uint64_t start = sa.le32(454 + 16 * i), count = sa.le32(458 + 16 * i);
      if (count == 0)
        continue;
      claims.push_back(start / 4);
      claims.push_back((start + count) / 4);
    }
  }
  // GPT header at byte 512, its entries where it says (usually byte 1024).
  if (sa.chars(512, 8) == "EFI PART") {
    const uint64_t entries_lba = sa.le32(512 + 72);
    const uint32_t count = std::min<uint32_t>(sa.le32(512 + 80), 1024);
    const uint32_t size = sa.le32(512 + 84);
    const uint64_t base = session_start * kBlockSize + entries_lba * 512;
    if (size >= 128 && size <= 4096 && entries_lba < 64 &&
        base + uint64_t{count} * size <= src.size()) {
      std::vector<std::byte> raw(uint64_t{count} * size);
      src.read(base, raw);
      ByteView ents(raw.data(), raw.size());
      for (uint32_t i = 0; i < count; ++i) {
        ByteView e = ents.sub(size_t{i} * size, size);
        const uint64_t first = e.le32(32) | uint64_t{e.le32(36)} << 32;
        const uint64_t last = e.le32(40) | uint64_t{e.le32(44)} << 32;
        if (e.le32(0) == 0 && e.le32(4) == 0 && e.le32(8) == 0 && e.le32(12) == 0)
          continue;  // unused entry: type GUID is zero
        claims.push_back(first / 4);
        if (last >= first)
          claims.push_back((last + 1) / 4);
      }
    }
  }
  return claims;
}

// The size an image implies by itself when nothing else gives one.
uint64_t implied_size(const Source& src, const BootEntry& e) {
  switch (e.media) {
    case 1:
      return 1228800;
    case 2:
      return 1474560;
    case 3:
      return 2949120;
    default:
      break;
  }
  const uint64_t at = uint64_t{e.load_lba} * kBlockSize;
  if (at + 512 <= src.size()) {
    std::array<std::byte, 512> s;
    src.read(at, s);
    ByteView d(s.data(), s.size());
    if (d.u8(510) == 0x55 && d.u8(511) == 0xAA) {
      if (e.media == 4) {  // hard disk: the end of the furthest MBR partition
        uint64_t end = 0;
        for (size_t i = 0; i < 4; ++i)
          end = std::max<uint64_t>(end, uint64_t{d.le32(454 + 16 * i)} + d.le32(458 + 16 * i));
        if (end > 0)
          return end * 512;
      }
      // FAT boot sector (BPB): bytes per sector at 11, total sectors at 19 or 32.
      const uint16_t bps = d.le16(11);
      const uint64_t total = d.le16(19) != 0 ? d.le16(19) : d.le32(32);
      if (bps >= 512 && bps <= 4096 && (bps & (bps - 1)) == 0 && total > 0)
        return total * bps;
    }
  }
  return uint64_t{e.sector_count} * 512;
}

void size_entries(const Source& src,
                  uint64_t session_start,
                  const FileTree* tree,
                  BootCatalog* cat) {
  std::vector<BootEntry>& entries = cat->entries;
  TreeScan scan;
  if (tree) {
    scan = scan_tree(*tree, entries);
    if (scan.capped)
      add_note(cat, fmt::format("the tree has more than {} entries: sizes of boot images "
                                "outside files are upper bounds",
                                kMaxTreeEntries));
  }
  std::vector<uint64_t> claims = structure_claims(src, session_start);
  claims.insert(claims.end(), scan.file_starts.begin(), scan.file_starts.end());
  claims.push_back(cat->catalog_lba);
  const uint64_t src_blocks = src.size() / kBlockSize;
  for (size_t i = 0; i < entries.size(); ++i) {
    BootEntry& e = entries[i];
    e.file_name = fmt::format("{}-{}-{}.img", e.number, e.platform, e.emulation);
    uint64_t blocks = (uint64_t{e.sector_count} + 3) / 4;
    if (i < scan.holder.size() && scan.holder[i]) {
      // A boot image that is a file of the tree is that file, byte for byte (xorriso's
      // extraction pads it to whole blocks; a user copying it wants the file).
      e.tree_path = scan.holder_path[i];
      blocks = 0;
      e.size = scan.holder[i]->attr.size;
    } else {
      uint64_t next = 0;
      auto reduce = [&](uint64_t claim) {
        if (claim > e.load_lba && (next == 0 || claim < next))
          next = claim;
      };
      for (uint64_t c : claims)
        reduce(c);
      for (const BootEntry& other : entries)
        if (other.load_lba != e.load_lba)
          reduce(other.load_lba);
      if (next > 0)
        blocks = std::max(blocks, next - e.load_lba);
      if (blocks == 0 && e.platform_id == 0xEF && e.load_lba < src_blocks &&
          src_blocks - e.load_lba <= kMaxEndlessEfiBlocks)
        blocks = src_blocks - e.load_lba;
    }
    if (e.tree_path.empty()) {
      e.size = blocks * kBlockSize;
      if (e.size == 0)
        e.size = implied_size(src, e);
    }
    const uint64_t at = uint64_t{e.load_lba} * kBlockSize;
    const uint64_t room = at < src.size() ? src.size() - at : 0;
    if (e.size > room || room == 0) {
      add_note(cat, fmt::format("boot image {} at LBA {} runs past the end of the image", e.number,
                                e.load_lba));
      e.size = room;
    }
  }
}

}  // namespace

std::optional<BootCatalog> read_boot_catalog(const Source& src,
                                             uint64_t session_start_lba,
                                             const FileTree* tree) {
  const uint64_t src_blocks = src.size() / kBlockSize;
  std::optional<uint32_t> catalog;
  std::array<std::byte, kBlockSize> b;
  for (uint64_t i = 0; i < ecma119::kMaxDescriptors; ++i) {
    const uint64_t lba = session_start_lba + ecma119::kSystemAreaBlocks + i;
    if (lba >= src_blocks)
      break;
    src.read(lba * kBlockSize, b);
    ByteView d(b.data(), b.size());
    if (d.chars(1, 5) != "CD001" || d.u8(0) == ecma119::vd::kTerminator)
      break;
    if (d.u8(0) == ecma119::vd::kBootRecord &&
        d.chars(kBootSystemId, 23) == "EL TORITO SPECIFICATION") {
      catalog = d.le32(kCatalogPointer);
      break;
    }
  }
  if (!catalog)
    return std::nullopt;
  BootCatalog cat;
  cat.catalog_lba = *catalog;
  if (*catalog >= src_blocks) {
    add_note(&cat,
             fmt::format("the boot catalog's LBA {} lies past the end of the image", *catalog));
    return cat;
  }
  const uint64_t at = uint64_t{*catalog} * kBlockSize;
  std::vector<std::byte> raw(std::min(kMaxCatalogBytes, src.size() - at));
  src.read(at, raw);
  parse_catalog(ByteView(raw.data(), raw.size()), &cat);
  for (size_t i = 0; i < cat.entries.size(); ++i)
    cat.entries[i].number = static_cast<unsigned>(i + 1);
  size_entries(src, session_start_lba, tree, &cat);
  if (!cat.note.empty())
    spdlog::warn("{}: El Torito: {}", src.name(), cat.note);
  return cat;
}

}  // namespace imagecore
