#include "imagecore/media/sessions_view.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string>
#include <vector>

#include "imagecore/base/error.h"
#include "imagecore/dir_cache.h"

namespace imagecore {
namespace {

class SessionsView : public FileTree {
 public:
  using Child = SessionTree;

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

}  // namespace

std::shared_ptr<const FileTree> make_sessions_view(std::shared_ptr<const Source> src,
                                                   std::vector<SessionTree> sessions,
                                                   size_t cache_bytes) {
  return std::make_shared<SessionsView>(std::move(src), std::move(sessions), cache_bytes);
}

}  // namespace imagecore
