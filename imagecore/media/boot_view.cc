#include "imagecore/media/boot_view.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "imagecore/base/error.h"

namespace imagecore {
namespace {

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

}  // namespace

std::shared_ptr<const FileTree> make_boot_view(std::shared_ptr<const FileTree> base,
                                               const BootCatalog& catalog) {
  return std::make_shared<BootView>(std::move(base), catalog);
}

}  // namespace imagecore
