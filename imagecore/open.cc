#include "imagecore/open.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string>
#include <vector>

#include "imagecore/base/error.h"
#include "imagecore/dir_cache.h"
#include "imagecore/media/eltorito.h"
#include "imagecore/media/sessions.h"
#include "imagecore/udf/udf_fs.h"

namespace imagecore {
namespace {

// ---------------------------------------------------------------------------------------------
// Every session side by side: the root lists "1".."N", and session k's inode numbers carry k
// in the bits tree.h keeps free for views.

class SessionsView : public FileTree {
 public:
  struct Child {
    std::shared_ptr<const FileTree> tree;  // null when the session could not be opened
    std::string error;                     // why not
  };

  SessionsView(std::shared_ptr<const Source> src, std::vector<Child> children, size_t cache)
      : src_(std::move(src)), children_(std::move(children)), cache_(cache) {
    root_.attr.ino = kRootIno;
    root_.attr.type = FileType::Directory;
    root_.attr.nlink = 2 + static_cast<uint32_t>(children_.size());
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
      if (it->tree) {  // the folder of sessions carries the newest session's root times
        const Attr newest = it->tree->stat(kRootIno).attr;
        root_.attr.mtime = newest.mtime;
        root_.attr.atime = newest.atime;
        root_.attr.ctime = newest.ctime;
        break;
      }
    }
  }

  const Source& source() const override { return *src_; }
  std::string kind() const override {
    for (const Child& c : children_)
      if (c.tree)
        return "sessions (" + c.tree->kind() + ")";
    return "sessions";
  }

  std::shared_ptr<const Directory> list(Ino ino) const override {
    if (auto hit = cache_.get(ino))
      return hit;
    auto out = std::make_shared<Directory>();
    if (ino == kRootIno) {
      for (unsigned k = 1; k <= children_.size(); ++k)
        out->entries.push_back(session_root(k));
    } else {
      auto [k, inner] = split(ino);
      std::shared_ptr<const Directory> d = child(k).list(inner);
      out->entries.reserve(d->entries.size());
      for (const Node& n : d->entries)
        out->entries.push_back(outer(k, n));
      out->parent = inner == kRootIno ? kRootIno : join(k, d->parent);
    }
    out->finish();
    cache_.put(ino, out);
    return out;
  }

  Node lookup(Ino dir, std::string_view name) const override {
    if (dir == kRootIno)
      return FileTree::lookup(dir, name);
    auto [k, inner] = split(dir);
    return outer(k, child(k).lookup(inner, name));
  }

  Node stat(Ino ino) const override {
    if (ino == kRootIno)
      return root_;
    auto [k, inner] = split(ino);
    if (inner == kRootIno)
      return session_root(k);
    return outer(k, child(k).stat(inner));
  }

  std::vector<Extent> map(const Node& n, uint64_t off, uint64_t len) const override {
    auto [k, inner] = split(n.attr.ino);
    return child(k).map(n, off, len);
  }
  size_t read(const Node& n, uint64_t off, std::span<std::byte> out) const override {
    auto [k, inner] = split(n.attr.ino);
    return child(k).read(n, off, out);
  }

  bool has_xattrs() const override {
    for (const Child& c : children_)
      if (c.tree && c.tree->has_xattrs())
        return true;
    return false;
  }
  std::vector<Xattr> xattrs(Ino ino) const override {
    if (ino == kRootIno)
      return {};
    auto [k, inner] = split(ino);
    return child(k).xattrs(inner);
  }

 private:
  static Ino join(unsigned k, Ino inner) {
    if (inner & kViewMask)
      throw FormatError(fmt::format("inode number {} is too large for the sessions view", inner));
    return inner | (Ino{k} << kViewShift);
  }
  std::pair<unsigned, Ino> split(Ino ino) const {
    const auto k = static_cast<unsigned>((ino & kViewMask) >> kViewShift);
    if (k == 0 || k > children_.size())
      throw Error(ENOENT, fmt::format("inode {} is not known", ino));
    return {k, ino & ~kViewMask};
  }
  const FileTree& child(unsigned k) const {
    const Child& c = children_[k - 1];
    if (!c.tree)
      throw FormatError(c.error);
    return *c.tree;
  }
  static Node outer(unsigned k, Node n) {
    n.attr.ino = join(k, n.attr.ino);
    return n;
  }
  Node session_root(unsigned k) const {
    const Child& c = children_[k - 1];
    Node n;
    if (c.tree) {
      n = c.tree->stat(kRootIno);
    } else {
      n.attr.type = FileType::Directory;
      n.defect = c.error;
    }
    n.name = std::to_string(k);
    n.attr.ino = join(k, kRootIno);
    return n;
  }

  std::shared_ptr<const Source> src_;
  std::vector<Child> children_;
  Node root_;
  mutable DirectoryCache cache_;
};

// ---------------------------------------------------------------------------------------------
// The boot images of the El Torito catalog as files of a ".boot" folder in the root.

class BootView : public FileTree {
 public:
  static constexpr Ino kBootDir = 2;

  BootView(std::shared_ptr<const FileTree> base, const BootCatalog& catalog)
      : base_(std::move(base)) {
    const uint64_t image = base_->source().size();
    folder_.name = ".boot";
    folder_.attr.ino = kBootDir;
    folder_.attr.type = FileType::Directory;
    folder_.attr.nlink = 2;
    const Node root = base_->stat(kRootIno);
    folder_.attr.mtime = folder_.attr.atime = folder_.attr.ctime = root.attr.mtime;
    for (const BootEntry& e : catalog.entries) {
      if (files_.size() + kBootDir + 1 >= kSyntheticInoEnd)
        break;
      Node f;
      f.name = e.file_name;
      f.attr.ino = kBootDir + 1 + files_.size();
      f.attr.type = FileType::Regular;
      f.attr.size = e.size;
      f.attr.mtime = f.attr.atime = f.attr.ctime = root.attr.mtime;
      const uint64_t at = uint64_t{e.load_lba} * 2048;
      if (at > image || e.size > image - at)
        f.defect =
            fmt::format("{}: boot image {} (LBA {}, {} bytes) lies past the end of the image",
                        base_->source().name(), e.file_name, e.load_lba, e.size);
      else if (e.size > 0)
        f.extents.push_back({at, e.size});
      files_.push_back(std::move(f));
    }
    boot_dir_ = std::make_shared<Directory>();
    boot_dir_->entries = files_;
    boot_dir_->parent = kRootIno;
    boot_dir_->finish();
  }

  const Source& source() const override { return base_->source(); }
  std::string kind() const override { return base_->kind(); }

  std::shared_ptr<const Directory> list(Ino ino) const override {
    if (ino == kBootDir)
      return boot_dir_;
    if (ino != kRootIno)
      return base_->list(ino);
    std::lock_guard lock(mu_);
    if (!root_dir_) {
      auto d = std::make_shared<Directory>();
      std::shared_ptr<const Directory> base = base_->list(kRootIno);
      d->entries.reserve(base->entries.size() + 1);
      d->entries.push_back(folder_);  // first, so it wins over an image's own ".boot"
      d->entries.insert(d->entries.end(), base->entries.begin(), base->entries.end());
      d->parent = base->parent;
      d->finish();
      root_dir_ = std::move(d);
    }
    return root_dir_;
  }

  Node lookup(Ino dir, std::string_view name) const override {
    if (dir == kRootIno && name == ".boot")
      return folder_;
    if (dir == kBootDir)
      return FileTree::lookup(dir, name);
    return base_->lookup(dir, name);
  }

  Node stat(Ino ino) const override {
    if (ino == kBootDir)
      return folder_;
    if (ino > kBootDir && ino < kBootDir + 1 + files_.size())
      return files_[ino - kBootDir - 1];
    return base_->stat(ino);
  }

  std::vector<Extent> map(const Node& n, uint64_t off, uint64_t len) const override {
    return synthetic(n) ? FileTree::map(n, off, len) : base_->map(n, off, len);
  }
  size_t read(const Node& n, uint64_t off, std::span<std::byte> out) const override {
    return synthetic(n) ? FileTree::read(n, off, out) : base_->read(n, off, out);
  }
  bool has_xattrs() const override { return base_->has_xattrs(); }
  std::vector<Xattr> xattrs(Ino ino) const override {
    return synthetic_ino(ino) ? std::vector<Xattr>{} : base_->xattrs(ino);
  }

 private:
  static bool synthetic_ino(Ino ino) { return ino >= kBootDir && ino < kSyntheticInoEnd; }
  static bool synthetic(const Node& n) { return synthetic_ino(n.attr.ino); }

  std::shared_ptr<const FileTree> base_;
  Node folder_;
  std::vector<Node> files_;
  std::shared_ptr<Directory> boot_dir_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<const Directory> root_dir_;
};

// ---------------------------------------------------------------------------------------------

// One session's tree. `newest` allows UDF, which describes the image as a whole.
std::shared_ptr<const FileTree> open_session(std::shared_ptr<const Source> src,
                                             const OpenOptions& opts,
                                             uint64_t start_lba,
                                             bool newest) {
  Options iso;
  iso.tree = opts.tree;
  iso.dir_cache_bytes = opts.dir_cache_bytes;
  iso.session_start_lba = start_lba;
  if (opts.tree == Tree::Udf) {
    if (!newest)
      throw Unsupported(
          fmt::format("{}: a UDF tree has no older sessions; use --tree to pick an ISO 9660 "
                      "tree",
                      src->name()));
    if (!has_udf(*src))
      throw Unsupported(fmt::format("{}: the image has no UDF tree", src->name()));
    return std::make_shared<UdfFs>(src, opts.dir_cache_bytes);
  }
  if (opts.tree != Tree::Auto || !newest)
    return std::make_shared<IsoFs>(src, iso);

  // Auto: Rock Ridge, else UDF, else Joliet, else plain ISO 9660.
  std::shared_ptr<IsoFs> fs;
  try {
    fs = std::make_shared<IsoFs>(src, iso);
  } catch (const NotAnImage&) {
    if (!has_udf(*src))
      throw;
    return std::make_shared<UdfFs>(src, opts.dir_cache_bytes);
  } catch (const FormatError& e) {
    if (!has_udf(*src))
      throw;
    spdlog::warn("{}; showing the UDF tree instead", e.what());
    return std::make_shared<UdfFs>(src, opts.dir_cache_bytes);
  }
  if (fs->tree() == Tree::RockRidge || !has_udf(*src))
    return fs;
  try {
    return std::make_shared<UdfFs>(src, opts.dir_cache_bytes);
  } catch (const Error& e) {
    spdlog::warn("{}; showing the {} tree instead", e.what(), tree_name(fs->tree()));
    return fs;
  }
}

}  // namespace

std::shared_ptr<const FileTree> open_tree(std::shared_ptr<const Source> src,
                                          const OpenOptions& opts) {
  std::shared_ptr<const FileTree> tree;
  uint64_t boot_session_lba = 0;
  if (opts.all_sessions || opts.session) {
    const SessionTable table = read_session_table(*src);  // logs what is odd in the chain
    const auto count = static_cast<unsigned>(table.sessions.size());
    if (count == 0)
      throw Unsupported(fmt::format("{}: no ISO 9660 session was found", src->name()));
    if (opts.session && (*opts.session == 0 || *opts.session > count))
      throw Unsupported(fmt::format("{}: there is no session {}; the image holds {} session{}",
                                    src->name(), *opts.session, count, count == 1 ? "" : "s"));
    if (count >= (1u << kViewBits))
      throw Unsupported(fmt::format("{}: {} sessions are more than --sessions can show ({})",
                                    src->name(), count, (1u << kViewBits) - 1));
    if (opts.all_sessions) {
      std::vector<SessionsView::Child> children;
      for (const SessionEntry& s : table.sessions) {
        SessionsView::Child c;
        try {
          c.tree = open_session(src, opts, s.start_lba, false);
        } catch (const Error& e) {
          c.error = fmt::format("session {}: {}", s.number, e.what());
          spdlog::warn("{}", c.error);
        }
        children.push_back(std::move(c));
      }
      boot_session_lba = table.sessions.back().start_lba;
      tree = std::make_shared<SessionsView>(src, std::move(children), opts.dir_cache_bytes);
    } else {
      const SessionEntry& s = table.sessions[*opts.session - 1];
      boot_session_lba = s.start_lba;
      tree = open_session(src, opts, s.start_lba, *opts.session == count);
    }
  } else {
    tree = open_session(src, opts, 0, true);
  }
  if (!opts.boot)
    return tree;
  // Boot images are described by the session's volume descriptors; a UDF-only image has
  // none, and a catalog-less image simply shows an empty .boot folder.
  std::optional<BootCatalog> catalog;
  try {
    catalog = read_boot_catalog(*src, boot_session_lba, tree.get());
  } catch (const Error& e) {
    spdlog::warn("{}: the El Torito boot catalog cannot be read: {}", src->name(), e.what());
  }
  if (catalog && !catalog->note.empty())
    spdlog::warn("{}: {}", src->name(), catalog->note);
  return std::make_shared<BootView>(tree, catalog ? *catalog : BootCatalog{});
}

}  // namespace imagecore
