#include "imagecore/iso9660/iso_fs.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <unordered_set>
#include <vector>

#include "imagecore/base/bytes.h"
#include "imagecore/dir_cache.h"
#include "imagecore/iso9660/ecma119.h"
#include "imagecore/iso9660/rockridge.h"
#include "imagecore/names.h"

namespace imagecore {
namespace {

using namespace ecma119;

constexpr uint64_t kMaxDirectoryBytes = 512ull << 20;  // larger is taken as damage
constexpr size_t kMaxSections = 4096;                  // multi-extent sections per file
constexpr size_t kMaxRememberedDefects = 4096;         // damaged directories named in errors

uint64_t round_up_block(uint64_t n) {
  return (n + kBlockSize - 1) / kBlockSize * kBlockSize;
}

// ECMA-119 9.1: identifier bytes 0 and 1 are "." and "..".
bool is_dot_record(ByteView r) {
  return r.u8(dr::kNameLength) == 1 && r.u8(dr::kName) <= 1;
}

// The data extents of one record (one section of a file), interleaving unfolded (9.1.7-8).
void add_record_extents(ByteView r, std::vector<Extent>* out) {
  const uint64_t lba = uint64_t{r.both32(dr::kExtent)} + r.u8(dr::kExtAttrLength);
  const uint64_t length = r.both32(dr::kDataLength);
  const uint64_t unit = r.u8(dr::kFileUnitSize), gap = r.u8(dr::kInterleaveGap);
  if (unit == 0 || gap == 0 || length == 0) {
    out->push_back({lba * kBlockSize, length});
    return;
  }
  uint64_t left = length, at = lba;
  for (size_t n = 0; left > 0 && n < (1u << 20); ++n) {
    const uint64_t take = std::min(left, unit * kBlockSize);
    out->push_back({at * kBlockSize, take});
    left -= take;
    at += unit + gap;
  }
}

FileType type_from_mode(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFLNK:
      return FileType::Symlink;
    case S_IFCHR:
      return FileType::CharDevice;
    case S_IFBLK:
      return FileType::BlockDevice;
    case S_IFIFO:
      return FileType::Fifo;
    case S_IFSOCK:
      return FileType::Socket;
    default:
      return FileType::Regular;
  }
}

}  // namespace

Tree parse_tree(std::string_view s) {
  if (s == "auto")
    return Tree::Auto;
  if (s == "rockridge" || s == "rr")
    return Tree::RockRidge;
  if (s == "joliet")
    return Tree::Joliet;
  if (s == "iso9660")
    return Tree::Iso9660;
  if (s == "udf")
    return Tree::Udf;
  throw Error(EINVAL,
              fmt::format("unknown tree '{}' (use auto, rockridge, udf, joliet or iso9660)", s));
}

const char* tree_name(Tree t) {
  switch (t) {
    case Tree::Auto:
      return "auto";
    case Tree::RockRidge:
      return "rockridge";
    case Tree::Joliet:
      return "joliet";
    case Tree::Iso9660:
      return "iso9660";
    case Tree::Udf:
      return "udf";
  }
  return "?";
}

std::string IsoFs::kind() const {
  switch (tree_) {
    case Tree::RockRidge:
      return "Rock Ridge";
    case Tree::Joliet:
      return "Joliet";
    default:
      return root_.extent_lba == (vol_.enhanced ? vol_.enhanced->extent_lba : ~0u) ? "ISO 9660:1999"
                                                                                   : "ISO 9660";
  }
}

// ---------------------------------------------------------------------------------------------
// IsoFs

IsoFs::IsoFs(std::shared_ptr<const Source> src, Options opts)
    : src_(std::move(src)),
      opts_(opts),
      cache_(std::make_unique<DirectoryCache>(opts.dir_cache_bytes)) {
  vol_ = read_volume_descriptors(*src_, opts.session_start_lba);

  // Rock Ridge is announced by SUSP SP in the primary root's "." record (SUSP 5.3); images
  // from old writers without SP are accepted when that record carries RRIP entries.
  bool has_rr = false;
  const uint64_t root_at = uint64_t{vol_.primary.extent_lba} * kBlockSize;
  if (root_at + kBlockSize <= src_->size()) {  // else check_root() below says what is wrong
    RockRidge rr;
    try {
      std::vector<std::byte> sector(kBlockSize);
      src_->read(root_at, sector);
      ByteView dot(sector.data(), sector.size());
      ByteView rec = dot.sub(0, dot.u8(dr::kLength));
      const size_t name_len = rec.u8(dr::kNameLength);
      const size_t su_at = dr::kName + name_len + (name_len % 2 == 0 ? 1 : 0);
      if (su_at < rec.size())
        parse_system_use(*src_, rec.from(su_at), root_at, &rr);
    } catch (const FormatError& e) {
      // What was read before the damage still counts: an intact SP keeps Rock Ridge on.
      spdlog::warn("{}: the root's system use entries (LBA {}) are damaged: {}", src_->name(),
                   vol_.primary.extent_lba, e.what());
    }
    has_rr = rr.sp || rr.any;
    su_skip_ = rr.sp ? rr.sp_skip : 0;
    aaip_ = rr.er_aaip || rr.al;
  }

  if (opts.tree == Tree::Udf)
    throw Unsupported(fmt::format("{}: UDF is not an ISO 9660 tree", src_->name()));
  if (opts.tree == Tree::RockRidge && !has_rr)
    throw Unsupported(fmt::format("{}: the image has no Rock Ridge tree", src_->name()));
  if (opts.tree == Tree::Joliet && !vol_.joliet)
    throw Unsupported(fmt::format("{}: the image has no Joliet tree", src_->name()));
  std::vector<Tree> candidates{opts.tree};
  if (opts.tree == Tree::Auto) {
    candidates.clear();
    if (has_rr)
      candidates.push_back(Tree::RockRidge);
    if (vol_.joliet)
      candidates.push_back(Tree::Joliet);
    candidates.push_back(Tree::Iso9660);
  }
  // In auto mode a tree whose root is damaged gives way to the next one that reads.
  std::string first_error;
  for (Tree t : candidates) {
    tree_ = t;
    rock_ridge_ = t == Tree::RockRidge;
    joliet_names_ = t == Tree::Joliet;
    // Plain ISO 9660 in auto mode prefers the 9660:1999 tree: same data, longer names.
    const bool enhanced = t == Tree::Iso9660 && opts.tree == Tree::Auto && vol_.enhanced;
    root_ = joliet_names_ ? *vol_.joliet : enhanced ? *vol_.enhanced : vol_.primary;
    try {
      check_root();
      if (!first_error.empty())
        spdlog::warn("{}; showing the {} tree instead", first_error, tree_name(t));
      return;
    } catch (const FormatError& e) {
      if (first_error.empty())
        first_error = e.what();
    }
  }
  throw FormatError(first_error);
}

void IsoFs::check_root() const {
  const uint64_t end = uint64_t{root_.extent_lba} * kBlockSize + root_.data_length;
  if (root_.data_length == 0 || end > src_->size())
    throw FormatError(fmt::format(
        "{}: the {} root directory (LBA {}, {} bytes) lies outside "
        "the image of {} bytes",
        src_->name(), tree_name(tree_), root_.extent_lba, root_.data_length, src_->size()));
  try {
    stat_dir(root_.extent_lba);
  } catch (const FormatError& e) {
    throw FormatError(fmt::format("{} (the root of the {} tree)", e.what(), tree_name(tree_)));
  }
}

IsoFs::~IsoFs() = default;

Ino IsoFs::dir_ino(uint32_t lba) const {
  return lba == root_.extent_lba ? kRootIno : kDirTag | lba;
}

template <typename Emit>
void IsoFs::walk_records(uint64_t begin,
                         uint64_t end,
                         size_t limit,
                         Emit&& emit,
                         uint32_t* dotdot_lba) const {
  if (end < begin || end - begin > kMaxDirectoryBytes)
    throw FormatError(
        fmt::format("{}: directory at byte {} claims {} bytes", src_->name(), begin, end - begin));
  if (end > src_->size())
    throw FormatError(fmt::format("{}: directory at LBA {} runs past the end of the image",
                                  src_->name(), begin / kBlockSize));
  std::vector<std::byte> buf(end - begin);
  src_->read(begin, buf);
  ByteView all(buf.data(), buf.size());

  std::vector<Extent> pending;
  size_t pending_at = 0;
  size_t emitted = 0;
  uint64_t pos = 0;
  // Turns the records gathered in `pending` into one entry; `defect` marks a broken chain.
  auto flush = [&](const char* defect) {
    ByteView first = all.sub(pending_at, all.u8(pending_at));
    Node node;
    const bool multi = pending.size() > 1;
    if (make_node(std::span(first.data(), first.size()), begin + pending_at, std::move(pending),
                  su_skip_, false, &node)) {
      if (defect && node.defect.empty())
        node.defect = fmt::format("{}: multi-extent file '{}' (LBA {}): {}", src_->name(),
                                  node.name, (begin + pending_at) / kBlockSize, defect);
      if (multi && node.attr.type == FileType::Regular) {
        std::lock_guard lock(side_mutex_);
        multi_extent_end_[begin + pending_at] = end;
      }
      emit(std::move(node));
      ++emitted;
    }
    pending.clear();
  };
  while (pos < buf.size() && emitted < limit) {
    const uint64_t sector_end = std::min<uint64_t>(
        (begin + pos) / kBlockSize * kBlockSize + kBlockSize - begin, buf.size());
    const uint8_t len = all.u8(pos);
    if (len == 0) {  // the rest of this sector is padding (6.8.1.1)
      pos = sector_end;
      continue;
    }
    if (len < dr::kMinLength || pos + len > sector_end ||
        dr::kName + all.u8(pos + dr::kNameLength) > len) {
      spdlog::warn("{}: bad directory record at byte {} (LBA {}), rest of the sector skipped",
                   src_->name(), begin + pos, (begin + pos) / kBlockSize);
      pos = sector_end;
      continue;
    }
    ByteView rec = all.sub(pos, len);
    const uint8_t flags = rec.u8(dr::kFlags);
    if (is_dot_record(rec)) {
      if (dotdot_lba && rec.u8(dr::kName) == 1)
        *dotdot_lba = rec.both32(dr::kExtent);
      pos += len;
      continue;
    }
    // A multi-extent chain (9.1.6) continues only with records of the same name.
    const std::string_view name = rec.chars(dr::kName, rec.u8(dr::kNameLength));
    if (!pending.empty() &&
        name != all.chars(pending_at + dr::kName, all.u8(pending_at + dr::kNameLength))) {
      flush("its last section is missing");
      if (emitted >= limit)
        break;
    }
    if (pending.empty())
      pending_at = pos;
    add_record_extents(rec, &pending);
    pos += len;
    if ((flags & dr::kMultiExtent) && !(flags & dr::kDirectory) && pending.size() < kMaxSections)
      continue;  // later sections follow
    flush(nullptr);
  }
  if (!pending.empty() && emitted < limit)
    flush("its last section is missing");
}

bool IsoFs::make_node(std::span<const std::byte> first_rec,
                      uint64_t rec_off,
                      std::vector<Extent> extents,
                      uint8_t su_skip,
                      bool dot,
                      Node* out) const {
  ByteView r(first_rec);
  const uint8_t flags = r.u8(dr::kFlags);
  if ((flags & dr::kAssociated) && !dot)
    return false;
  const size_t name_len = r.u8(dr::kNameLength);
  std::string_view raw_name = r.chars(dr::kName, name_len);
  const bool is_dir = flags & dr::kDirectory;
  Node& n = *out;

  RockRidge rr;
  if (rock_ridge_) {
    const size_t su_at = dr::kName + name_len + (name_len % 2 == 0 ? 1 : 0) + su_skip;
    if (su_at < r.size()) {
      try {
        parse_system_use(*src_, r.from(su_at), rec_off, &rr);
      } catch (const FormatError& e) {
        std::string what =
            fmt::format("{}: the Rock Ridge entries of '{}' (record at LBA {}) are damaged: {}",
                        src_->name(), plain_name(raw_name), rec_off / kBlockSize, e.what());
        // A file's data can no longer be trusted; a directory's entries still can.
        if (is_dir)
          spdlog::warn("{}", what);
        else
          n.defect = std::move(what);
      }
    }
    if ((rr.relocated || rr.nm_special) && !dot)
      return false;
  }
  if (dot)
    n.name = ".";
  else if (rock_ridge_ && rr.nm)
    n.name = rr.name;
  else if (joliet_names_)
    n.name = joliet_name(raw_name);
  else
    n.name = plain_name(raw_name);
  if (!sanitize_name(&n.name))
    return false;

  if (rr.child_link && !dot) {  // RRIP 4.1.5.1: a deep directory relocated to rr_moved
    std::string name = std::move(n.name), defect = std::move(n.defect);
    try {
      n = stat_dir(*rr.child_link);
    } catch (const Error& e) {
      n = Node{};
      n.attr.type = FileType::Directory;
      n.attr.ino = dir_ino(*rr.child_link);
      n.defect = e.what();
    }
    n.name = std::move(name);
    if (n.defect.empty())
      n.defect = std::move(defect);
    return true;
  }

  Attr& a = n.attr;
  a.mtime = a.atime = a.ctime = decode_short_date(r.sub(dr::kDate, 7));
  if (rr.px) {
    a.has_posix = true;
    a.perm = rr.mode & 07777;
    a.uid = rr.uid;
    a.gid = rr.gid;
    a.nlink = rr.nlink;
  }
  if (rr.mtime)
    a.mtime = *rr.mtime;
  if (rr.atime)
    a.atime = *rr.atime;
  if (rr.ctime)
    a.ctime = *rr.ctime;

  const uint32_t lba = r.both32(dr::kExtent);
  if (is_dir) {
    a.type = FileType::Directory;
    a.ino = dir_ino(lba);
    a.size = r.both32(dr::kDataLength);
    if (a.size == 0 && n.defect.empty())  // 9.1: every directory holds "." and ".."
      n.defect = fmt::format("{}: directory {}at LBA {} has no data", src_->name(),
                             dot ? "" : "'" + n.name + "' ", lba);
    if (uint64_t{lba} * kBlockSize + a.size > src_->size() && n.defect.empty())
      n.defect = fmt::format("{}: directory {}at LBA {} lies past the end of the image",
                             src_->name(), dot ? "" : "'" + n.name + "' ", lba);
    return true;
  }

  a.type = rr.px ? type_from_mode(rr.mode) : FileType::Regular;
  if (rr.sl && !rr.px)
    a.type = FileType::Symlink;
  if (rr.px && (rr.mode & S_IFMT) == S_IFDIR && n.defect.empty())
    n.defect = fmt::format(
        "{}: '{}' at byte {} is a directory in Rock Ridge but a file in ISO "
        "9660",
        src_->name(), n.name, rec_off);
  a.ino = rec_off;
  a.nlink_unmatched = a.type != FileType::Directory && rr.nlink > 1 && !rr.serial;
  if (rr.serial && rr.nlink > 1) {
    std::lock_guard lock(side_mutex_);
    auto [it, fresh] = link_records_.try_emplace(*rr.serial, rec_off);
    (void)fresh;
    a.ino = kLinkTag | *rr.serial;
  }

  switch (a.type) {
    case FileType::Symlink:
      n.symlink = rr.symlink;
      a.size = n.symlink.size();
      return true;
    case FileType::CharDevice:
    case FileType::BlockDevice:
      a.rdev = rr.rdev;
      return true;
    case FileType::Fifo:
    case FileType::Socket:
      return true;
    default:
      break;
  }

  n.extents = std::move(extents);
  uint64_t total = 0;
  for (const Extent& e : n.extents) {
    total += e.length;
    if (e.length > 0 && (e.offset > src_->size() || e.length > src_->size() - e.offset) &&
        n.defect.empty())
      n.defect = fmt::format("{}: data of '{}' (LBA {}, {} bytes) lies past the end of the image",
                             src_->name(), n.name, e.offset / kBlockSize, e.length);
  }
  a.size = total;
  if (rr.zf) {
    n.zisofs = true;
    n.zf = rr.zisofs;
    a.size = rr.zisofs.uncompressed_size;
    if (rr.zf_algorithm != "pz" && n.defect.empty())
      n.defect = fmt::format("{}: '{}' uses zisofs algorithm '{}', which is not supported",
                             src_->name(), n.name, rr.zf_algorithm);
  }
  return true;
}

Node IsoFs::stat_dir(uint32_t lba) const {
  const uint64_t at = uint64_t{lba} * kBlockSize;
  if (at + kBlockSize > src_->size())
    throw FormatError(
        fmt::format("{}: directory at LBA {} lies past the end of the image", src_->name(), lba));
  std::vector<std::byte> sector(kBlockSize);
  src_->read(at, sector);
  ByteView s(sector.data(), sector.size());
  const uint8_t len = s.u8(0);
  if (len < dr::kMinLength || !is_dot_record(s.sub(0, len)) || !(s.u8(dr::kFlags) & dr::kDirectory))
    throw FormatError(fmt::format("{}: no directory starts at LBA {}", src_->name(), lba));
  // The root "." record holds SUSP SP at offset 0: the skip length does not apply to it.
  const uint8_t skip = lba == vol_.primary.extent_lba ? 0 : su_skip_;
  Node n;
  make_node(std::span(sector.data(), len), at, {}, skip, true, &n);
  n.name.clear();
  n.attr.type = FileType::Directory;
  n.attr.ino = dir_ino(lba);
  return n;
}

std::shared_ptr<Directory> IsoFs::parse_dir(uint32_t lba) const {
  const Node self = stat_dir(lba);
  if (!self.defect.empty())
    throw FormatError(self.defect);
  const uint64_t begin = uint64_t{lba} * kBlockSize;
  auto dir = std::make_shared<Directory>();
  uint32_t parent_lba = lba;
  walk_records(
      begin, begin + round_up_block(self.attr.size), SIZE_MAX,
      [&](Node&& n) {
        if (n.attr.type == FileType::Directory &&
            (n.attr.ino == self.attr.ino || n.attr.ino == kRootIno ||
             n.attr.ino == dir_ino(parent_lba))) {
          spdlog::warn(
              "{}: directory at LBA {} lists '{}', which is itself, its parent or the "
              "root (a loop): hidden",
              src_->name(), lba, n.name);
          return;
        }
        if (n.attr.type == FileType::Directory && !n.defect.empty()) {
          std::lock_guard lock(side_mutex_);
          if (damaged_dirs_.size() < kMaxRememberedDefects)
            damaged_dirs_.emplace(n.attr.ino, n.defect);
        }
        dir->entries.push_back(std::move(n));
      },
      &parent_lba);
  dir->parent = dir_ino(parent_lba);
  if (rock_ridge_ && lba == root_.extent_lba) {
    // RRIP relocation directory: hidden when nothing but relocated directories is in it, as
    // xorriso and bsdtar hide it.
    std::erase_if(dir->entries, [&](const Node& n) { return is_hidden_relocation_dir(n); });
  }
  dir->finish();
  return dir;
}

bool IsoFs::is_hidden_relocation_dir(const Node& n) const {
  if (n.attr.type != FileType::Directory || (n.name != "rr_moved" && n.name != ".rr_moved"))
    return false;
  try {
    return parse_dir(static_cast<uint32_t>(n.attr.ino & ~kDirTag))->entries.empty();
  } catch (const Error&) {
    return false;
  }
}

std::shared_ptr<const Directory> IsoFs::list(Ino ino) const {
  if (auto hit = cache_->get(ino))
    return hit;
  {
    // Say which directory is damaged by its name, as its parent's listing found it.
    std::lock_guard lock(side_mutex_);
    if (auto it = damaged_dirs_.find(ino); it != damaged_dirs_.end())
      throw FormatError(it->second);
  }
  uint32_t lba;
  if (ino == kRootIno)
    lba = root_.extent_lba;
  else if ((ino & kDirTag) && !(ino & kLinkTag))
    lba = static_cast<uint32_t>(ino & 0xffffffffu);
  else
    throw Error(ENOTDIR, "not a directory");
  std::shared_ptr<const Directory> dir = parse_dir(lba);
  cache_->put(ino, dir);
  return dir;
}

Node IsoFs::lookup(Ino parent, std::string_view name) const {
  auto dir = list(parent);
  const Node* n = dir->find(name);
  if (!n)
    throw Error(ENOENT, "no such entry");
  return *n;
}

std::optional<uint64_t> IsoFs::link_record(uint32_t serial) const {
  std::lock_guard lock(side_mutex_);
  auto it = link_records_.find(serial);
  if (it == link_records_.end())
    return std::nullopt;
  return it->second;
}

void IsoFs::scan_for_link(uint32_t serial) const {
  std::lock_guard scan(scan_mutex_);
  if (links_scanned_ || link_record(serial))
    return;
  // Breadth first from the root, through the directory cache: parsing a directory records
  // the serials of the hard links in it. Stops at the first directory that names `serial`.
  std::vector<Ino> queue{kRootIno};
  std::unordered_set<Ino> seen{kRootIno};
  size_t dirs = 0;
  for (size_t i = 0; i < queue.size(); ++i) {
    std::shared_ptr<const Directory> dir;
    try {
      dir = list(queue[i]);
    } catch (const Error& e) {
      spdlog::debug("{}: looking for hard link {}: {}", src_->name(), serial, e.what());
      continue;
    }
    ++dirs;
    if (link_record(serial)) {
      spdlog::debug("{}: hard link {} found after {} directories", src_->name(), serial, dirs);
      return;
    }
    for (const Node& n : dir->entries) {
      if (n.attr.type == FileType::Directory && n.defect.empty() && seen.insert(n.attr.ino).second)
        queue.push_back(n.attr.ino);
    }
  }
  spdlog::debug("{}: hard link {} not found in {} directories", src_->name(), serial, dirs);
  links_scanned_ = true;
}

uint64_t IsoFs::file_record(Ino ino) const {
  uint64_t rec = ino;
  if (ino & kLinkTag) {
    const auto serial = static_cast<uint32_t>(ino);
    std::optional<uint64_t> found = link_record(serial);
    if (!found) {
      // Asked before any directory that names it was parsed in this process (a stage
      // serving a store made by an earlier one, or a kernel that kept the number).
      scan_for_link(serial);
      found = link_record(serial);
    }
    if (!found)
      throw Error(ENOENT, fmt::format("inode {} is not known", ino));
    rec = *found;
  }
  if (rec < uint64_t{kSystemAreaBlocks} * kBlockSize || rec >= src_->size())
    throw Error(ENOENT, fmt::format("inode {} is not known", ino));
  return rec;
}

Node IsoFs::stat(Ino ino) const {
  if (ino == kRootIno)
    return stat_dir(root_.extent_lba);
  if ((ino & kDirTag) && !(ino & kLinkTag))
    return stat_dir(static_cast<uint32_t>(ino & 0xffffffffu));
  const uint64_t rec = file_record(ino);
  uint64_t end = rec / kBlockSize * kBlockSize + kBlockSize;
  bool end_known = false;
  {
    std::lock_guard lock(side_mutex_);
    if (auto it = multi_extent_end_.find(rec); it != multi_extent_end_.end()) {
      end = it->second;
      end_known = true;
    }
  }
  if (!end_known && rec + dr::kFlags + 1 <= src_->size()) {
    // A multi-extent file whose directory was not parsed in this process: its later
    // sections may follow in the next sectors of the directory, as far as the longest
    // chain allowed reaches (the walk stops at the record that ends the chain).
    std::byte head[dr::kFlags + 1];
    src_->read(rec, head);
    if (std::to_integer<uint8_t>(head[dr::kFlags]) & dr::kMultiExtent)
      end = round_up_block(end + kMaxSections * dr::kMinLength);
  }
  std::optional<Node> found;
  walk_records(rec, std::min(end, src_->size()), 1, [&](Node&& n) { found = std::move(n); });
  if (!found)
    throw FormatError(fmt::format("{}: no file record at byte {}", src_->name(), rec));
  found->attr.ino = ino;
  return std::move(*found);
}

}  // namespace imagecore
