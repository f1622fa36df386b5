// UdfFs: nodes from file entries, directories from file identifier descriptors (ECMA-167
// 4/14.4), symbolic links from path components (4/14.16).
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/sysmacros.h>

#include <algorithm>

#include "imagecore/dir_cache.h"
#include "imagecore/names.h"
#include "imagecore/udf/udf_fs.h"
#include "imagecore/udf/udf_volume.h"

namespace imagecore {
namespace {

constexpr size_t kMaxDirBytes = 64u << 20;
constexpr size_t kMaxSymlinkBytes = 64u << 10;
constexpr size_t kMaxRemembered = 4096;  // damaged nodes and directory names kept for messages
constexpr uint32_t kUnsetId = 0xFFFFFFFF;

// Path components (4/14.16.1) as a POSIX path, as Linux shows them.
std::string symlink_target(ByteView pc) {
  std::string out;
  for (size_t at = 0; at < pc.size();) {
    if (pc.size() - at < 4)
      throw FormatError("its path components are truncated");
    const uint8_t type = pc.u8(at);
    const uint8_t len = pc.u8(at + 1);
    const ByteView ident = pc.sub(at + 4, len);
    at += 4 + size_t{len};
    std::string part;
    switch (type) {
      case 1:
        if (len > 0)
          continue;  // a root agreed between originator and recipient: ignored
        [[fallthrough]];
      case 2:
        out = "/";
        continue;
      case 3:
        part = "..";
        break;
      case 4:
        part = ".";
        break;
      case 5:
        part = udf::cs0_to_utf8(ident);
        if (part.empty())
          throw FormatError("a path component has an empty name");
        break;
      default:
        throw FormatError(fmt::format("path component of type {}", type));
    }
    if (!out.empty() && out.back() != '/')
      out += '/';
    out += part;
  }
  return out;
}

uint32_t posix_perm(const udf::Icb& icb) {
  const uint32_t p = icb.perm;
  uint32_t mode = (p & 7) | ((p >> 5) & 7) << 3 | ((p >> 10) & 7) << 6;
  if (icb.flags & udf::icb::kSetuid)
    mode |= 04000;
  if (icb.flags & udf::icb::kSetgid)
    mode |= 02000;
  if (icb.flags & udf::icb::kSticky)
    mode |= 01000;
  return mode;
}

// The node's type, or nullopt for an ICB file type that is no file.
std::optional<FileType> file_type(uint8_t t) {
  namespace u = udf::icb;
  switch (t) {
    case u::kUnspecified:
    case u::kRegular:
    case u::kRealTime:
      return FileType::Regular;
    case u::kDirectory:
      return FileType::Directory;
    case u::kSymlink:
      return FileType::Symlink;
    case u::kBlockDevice:
      return FileType::BlockDevice;
    case u::kCharDevice:
      return FileType::CharDevice;
    case u::kFifo:
      return FileType::Fifo;
    case u::kSocket:
      return FileType::Socket;
    default:
      return std::nullopt;
  }
}

}  // namespace

UdfFs::UdfFs(std::shared_ptr<const Source> src, size_t dir_cache_bytes)
    : src_(std::move(src)),
      vol_(std::make_unique<udf::Volume>(udf::load_volume(*src_))),
      cache_(std::make_unique<DirectoryCache>(dir_cache_bytes)) {
  const Node root = make_node(vol_->root.part, vol_->root.block, "");
  if (!root.defect.empty())
    throw FormatError(root.defect);
  if (root.attr.type != FileType::Directory)
    throw FormatError(fmt::format("{}: the UDF root is not a directory", src_->name()));
}

UdfFs::~UdfFs() = default;

const UdfInfo& UdfFs::info() const {
  return vol_->info;
}

std::string UdfFs::kind() const {
  return vol_->info.revision.empty() ? "UDF" : "UDF " + vol_->info.revision;
}

Ino UdfFs::ino_of(uint16_t part, uint32_t block) const {
  if (part == vol_->root.part && block == vol_->root.block)
    return kRootIno;
  return kIcbTag | Ino{part} << 32 | block;
}

std::string UdfFs::describe(Ino ino) const {
  if (ino == kRootIno)
    return "the root directory";
  std::lock_guard lock(side_mutex_);
  if (auto it = dir_names_.find(ino); it != dir_names_.end())
    return fmt::format("directory '{}'", it->second);
  return fmt::format("directory at partition {} block {}", (ino >> 32) & 0xFFFF, ino & 0xFFFFFFFF);
}

Node UdfFs::make_node(uint16_t part, uint32_t block, std::string name) const {
  Node n;
  n.name = std::move(name);
  Attr& a = n.attr;
  a.ino = ino_of(part, block);
  a.has_posix = true;
  bool attrs_read = false;
  try {
    udf::Icb icb = udf::read_icb(*vol_, part, block);
    const std::optional<FileType> type = file_type(icb.file_type);
    if (!type)
      throw FormatError(fmt::format("ICB file type {} is not a file", icb.file_type));
    a.type = *type;
    a.perm = posix_perm(icb);
    // An owner the image leaves unset (-1) is not a user: the mount shows its own.
    a.has_owner = icb.uid != kUnsetId && icb.gid != kUnsetId;
    a.uid = a.has_owner ? icb.uid : 0;
    a.gid = a.has_owner ? icb.gid : 0;
    // Linux counts a directory's own name as UDF does not (the parent's FID) plus its ".".
    a.nlink = std::max<uint32_t>(icb.links, 1) + (a.type == FileType::Directory ? 1 : 0);
    a.size = icb.size;
    a.mtime = icb.mtime.value_or(Timestamp{});
    a.atime = icb.atime.value_or(a.mtime);
    a.ctime = icb.ctime.value_or(a.mtime);
    if (icb.device && (a.type == FileType::BlockDevice || a.type == FileType::CharDevice))
      a.rdev = makedev(icb.device->first, icb.device->second);
    attrs_read = true;
    if (a.type == FileType::Symlink) {
      const std::string pc = udf::read_content(*vol_, icb, kMaxSymlinkBytes);
      n.symlink =
          symlink_target(ByteView(reinterpret_cast<const std::byte*>(pc.data()), pc.size()));
      a.size = n.symlink.size();
    } else if (!icb.data_defect.empty()) {
      throw FormatError(icb.data_defect);  // the attributes above stand
    } else if (a.type == FileType::Regular) {
      if (icb.embedded) {
        n.has_inline_data = true;
        n.inline_data = std::move(icb.data);
      } else {
        n.extents = std::move(icb.extents);
      }
    }
  } catch (const FormatError& e) {
    n.defect = fmt::format("{}: '{}' (partition {} block {}): {}", src_->name(),
                           n.name.empty() ? "/" : n.name, part, block, e.what());
    n.attr_defect = !attrs_read;
  }
  return n;
}

std::shared_ptr<Directory> UdfFs::parse_dir(Ino ino) const {
  uint16_t part = vol_->root.part;
  uint32_t block = vol_->root.block;
  if (ino != kRootIno) {
    part = static_cast<uint16_t>(ino >> 32);
    block = static_cast<uint32_t>(ino);
  }
  std::string data;
  try {
    const udf::Icb self = udf::read_icb(*vol_, part, block);
    if (self.file_type != udf::icb::kDirectory)
      throw Error(ENOTDIR, "not a directory");
    data = udf::read_content(*vol_, self, kMaxDirBytes);
  } catch (const FormatError& e) {
    throw FormatError(fmt::format("{}: {}: {}", src_->name(), describe(ino), e.what()));
  }
  try {
    return parse_fids(ino, data);
  } catch (const FormatError& e) {
    // A listing in a metadata partition has a second copy in the mirror file (UDF 2.2.13).
    if (!udf::has_metadata_mirror(*vol_, part))
      throw;
    try {
      const udf::Icb self = udf::read_icb(*vol_, part, block, true);
      auto dir = parse_fids(ino, udf::read_content(*vol_, self, kMaxDirBytes));
      spdlog::warn("{}; read through the metadata mirror instead", e.what());
      return dir;
    } catch (const FormatError&) {
      throw e;
    }
  }
}

std::shared_ptr<Directory> UdfFs::parse_fids(Ino ino, const std::string& data) const {
  const ByteView d(reinterpret_cast<const std::byte*>(data.data()), data.size());
  auto dir = std::make_shared<Directory>();
  Ino parent = kRootIno;
  std::vector<uint8_t> fid_dir;  // the FID's directory bit, per entry
  size_t at = 0;
  while (at + udf::fid::kHeader <= d.size()) {
    const ByteView rest = d.from(at);
    std::string why = udf::check_tag(rest, udf::kTagFid, std::nullopt);
    const uint8_t name_len = rest.u8(udf::fid::kNameLength);
    const uint16_t iu_len = rest.le16(udf::fid::kImpUseLength);
    const size_t used = udf::fid::kHeader + iu_len + name_len;
    if (why.empty() && used > rest.size())
      why = "it runs past the end of the directory";
    if (!why.empty()) {
      bool zeros = true;
      for (size_t i = 0; i < rest.size() && zeros; ++i)
        zeros = rest.u8(i) == 0;
      if (zeros)
        break;  // padding after the last identifier
      throw FormatError(fmt::format("{}: {}: file identifier at byte {}: {}", src_->name(),
                                    describe(ino), at, why));
    }
    at += (used + 3) & ~size_t{3};
    const uint8_t chars = rest.u8(udf::fid::kCharacteristics);
    const udf::Ad icb = udf::read_ad(rest, udf::fid::kIcb, udf::icb::kLong, 0);
    // Hidden entries (UDF 2.3.4.2: e.g. mkudffs's "Non-Allocatable Space") are left out, as
    // the Linux kernel and udfclient leave them out.
    if (chars & (udf::fid::kDeleted | udf::fid::kHidden))
      continue;
    if (chars & udf::fid::kParent) {
      parent = ino_of(icb.part, icb.block);
      continue;
    }
    std::string name = udf::cs0_to_utf8(rest.sub(udf::fid::kHeader + iu_len, name_len));
    if (icb.length == 0 || !sanitize_name(&name)) {
      spdlog::warn("{}: {}: skipping an entry with {} at byte {}", src_->name(), describe(ino),
                   icb.length == 0 ? "no file entry" : "no usable name", at);
      continue;
    }
    dir->entries.push_back(make_node(icb.part, icb.block, std::move(name)));
    fid_dir.push_back(chars & udf::fid::kDirectory);
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < dir->entries.size(); ++i) {
    Node& n = dir->entries[i];
    if (!n.defect.empty() && fid_dir[i])
      n.attr.type = FileType::Directory;
    if (n.attr.type == FileType::Directory &&
        (n.attr.ino == ino || n.attr.ino == kRootIno || n.attr.ino == parent)) {
      spdlog::warn("{}: {} lists '{}', which is itself, its parent or the root (a loop): hidden",
                   src_->name(), describe(ino), n.name);
      continue;
    }
    {
      std::lock_guard lock(side_mutex_);
      if (!n.defect.empty() && damaged_.size() < kMaxRemembered)
        damaged_.emplace(n.attr.ino, n);
      if (n.attr.type == FileType::Directory && dir_names_.size() < kMaxRemembered)
        dir_names_.emplace(n.attr.ino, n.name);
    }
    kept.push_back(std::move(n));
  }
  dir->entries = std::move(kept);
  dir->parent = parent;
  dir->finish();
  return dir;
}

std::shared_ptr<const Directory> UdfFs::list(Ino ino) const {
  if (auto hit = cache_->get(ino))
    return hit;
  if (ino != kRootIno && (ino >> 48) != (kIcbTag >> 48))
    throw Error(ENOENT, fmt::format("inode {} is not known", ino));
  {
    std::lock_guard lock(side_mutex_);
    if (auto it = damaged_.find(ino); it != damaged_.end()) {
      if (it->second.attr.type != FileType::Directory)
        throw Error(ENOTDIR, "not a directory");
      throw FormatError(it->second.defect);
    }
  }
  std::shared_ptr<const Directory> dir = parse_dir(ino);
  cache_->put(ino, dir);
  return dir;
}

Node UdfFs::lookup(Ino dir, std::string_view name) const {
  auto d = list(dir);
  if (const Node* n = d->find(name))
    return *n;
  throw Error(ENOENT, "no such entry");
}

Node UdfFs::stat(Ino ino) const {
  if (ino == kRootIno)
    return make_node(vol_->root.part, vol_->root.block, "");
  const auto part = static_cast<uint16_t>(ino >> 32);
  const auto block = static_cast<uint32_t>(ino);
  if ((ino >> 48) != (kIcbTag >> 48) || part >= vol_->parts.size() || ino_of(part, block) != ino)
    throw Error(ENOENT, fmt::format("inode {} is not known", ino));
  {
    std::lock_guard lock(side_mutex_);
    if (auto it = damaged_.find(ino); it != damaged_.end()) {
      Node n = it->second;
      n.name.clear();
      return n;
    }
  }
  Node n = make_node(part, block, "");
  if (!n.defect.empty())
    throw FormatError(n.defect);
  return n;
}

}  // namespace imagecore
