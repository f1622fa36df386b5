#include "imagecore/tree_compare.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "imagecore/base/error.h"
#include "imagecore/base/fd.h"
#include "imagecore/iso9660/zisofs.h"

namespace imagecore {
namespace {

constexpr size_t kChunk = 256 * 1024;

[[noreturn]] void fail_errno(const std::string& path, const char* what) {
  const int e = errno;
  throw Error(e, path + ": " + what + ": " + std::strerror(e));
}

const char* type_name(FileType t) {
  switch (t) {
    case FileType::Regular:
      return "regular file";
    case FileType::Directory:
      return "directory";
    case FileType::Symlink:
      return "symbolic link";
    case FileType::CharDevice:
      return "character device";
    case FileType::BlockDevice:
      return "block device";
    case FileType::Fifo:
      return "fifo";
    case FileType::Socket:
      return "socket";
  }
  return "file";
}

FileType type_of(mode_t m) {
  if (S_ISDIR(m))
    return FileType::Directory;
  if (S_ISLNK(m))
    return FileType::Symlink;
  if (S_ISCHR(m))
    return FileType::CharDevice;
  if (S_ISBLK(m))
    return FileType::BlockDevice;
  if (S_ISFIFO(m))
    return FileType::Fifo;
  if (S_ISSOCK(m))
    return FileType::Socket;
  return FileType::Regular;
}

std::string time_text(int64_t sec) {
  const time_t t = static_cast<time_t>(sec);
  struct tm tm {};
  if (!::gmtime_r(&t, &tm))
    return std::to_string(sec);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class Comparer {
 public:
  Comparer(const FileTree& tree, const CompareProgress& progress)
      : tree_(tree), progress_(progress) {}

  void walk(Ino dir_ino, int dir_fd, const std::string& rel) {
    // Both sides by name, in name order.
    std::map<std::string, Node> image;
    for (const Node& n : tree_.list(dir_ino)->entries)
      image.emplace(n.name, n);
    std::map<std::string, struct stat> disk;
    {
      const int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
      if (dup < 0)
        fail_errno(shown(rel), "cannot list");
      DIR* d = ::fdopendir(dup);
      if (!d) {
        ::close(dup);
        fail_errno(shown(rel), "cannot list");
      }
      std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
      ::rewinddir(d);  // the duplicate shares the offset of an earlier listing
      errno = 0;
      while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name == "." || name == "..")
          continue;
        struct stat st {};
        if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
          fail_errno(shown(join(rel, name)), "cannot stat");
        disk.emplace(name, st);
        errno = 0;
      }
      if (errno != 0)
        fail_errno(shown(rel), "cannot list");
    }
    auto i = image.begin();
    auto k = disk.begin();
    while (i != image.end() || k != disk.end()) {
      if (k == disk.end() || (i != image.end() && i->first < k->first)) {
        add(TreeDifference::Kind::Extra, join(rel, i->first), "");
        ++i;
      } else if (i == image.end() || k->first < i->first) {
        add(TreeDifference::Kind::Missing, join(rel, k->first), "");
        ++k;
      } else {
        entry(dir_fd, join(rel, i->first), i->first, i->second, k->second);
        ++i;
        ++k;
      }
    }
  }

  std::vector<TreeDifference> result() { return std::move(out_); }
  uint64_t total = 0;

  // The bytes of regular files in `dir`, for progress.
  static uint64_t bytes_below(int dir_fd) {
    uint64_t sum = 0;
    const int dup = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0)
      return 0;
    DIR* d = ::fdopendir(dup);
    if (!d) {
      ::close(dup);
      return 0;
    }
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    ::rewinddir(d);
    while (const dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0)
        continue;
      struct stat st {};
      if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        continue;
      if (S_ISREG(st.st_mode)) {
        sum += static_cast<uint64_t>(st.st_size);
      } else if (S_ISDIR(st.st_mode)) {
        Fd sub(::openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.get() >= 0)
          sum += bytes_below(sub.get());
      }
    }
    return sum;
  }

 private:
  static std::string join(const std::string& rel, const std::string& name) {
    return rel.empty() ? name : rel + "/" + name;
  }
  std::string shown(const std::string& rel) const { return rel.empty() ? "." : rel; }

  void add(TreeDifference::Kind kind, const std::string& path, std::string what) {
    out_.push_back({kind, path, std::move(what)});
  }

  void entry(int dir_fd,
             const std::string& rel,
             const std::string& name,
             const Node& n,
             const struct stat& st) {
    const FileType disk_type = type_of(st.st_mode);
    if (n.attr.type != disk_type) {
      add(TreeDifference::Kind::Changed, rel,
          fmt::format("type: {} in the image, {} in the directory", type_name(n.attr.type),
                      type_name(disk_type)));
      return;
    }
    if (n.attr.has_posix) {
      const uint32_t disk_perm = st.st_mode & 07777;
      if (n.attr.perm != disk_perm)
        add(TreeDifference::Kind::Changed, rel,
            fmt::format("mode: {:04o} in the image, {:04o} in the directory", n.attr.perm,
                        disk_perm));
      if (n.attr.has_owner && (n.attr.uid != st.st_uid || n.attr.gid != st.st_gid))
        add(TreeDifference::Kind::Changed, rel,
            fmt::format("owner: {}:{} in the image, {}:{} in the directory", n.attr.uid, n.attr.gid,
                        st.st_uid, st.st_gid));
    }
    if (n.attr.mtime.sec != static_cast<int64_t>(st.st_mtim.tv_sec))
      add(TreeDifference::Kind::Changed, rel,
          fmt::format("mtime: {} in the image, {} in the directory", time_text(n.attr.mtime.sec),
                      time_text(st.st_mtim.tv_sec)));
    switch (n.attr.type) {
      case FileType::Directory: {
        Fd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.get() < 0)
          fail_errno(rel, "cannot open");
        walk(n.attr.ino, sub.get(), rel);
        break;
      }
      case FileType::Symlink: {
        std::string target(static_cast<size_t>(std::max<off_t>(st.st_size, 0)) + 1, '\0');
        const ssize_t len = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
        if (len < 0)
          fail_errno(rel, "cannot read the link");
        target.resize(static_cast<size_t>(len));
        if (target != n.symlink)
          add(TreeDifference::Kind::Changed, rel,
              fmt::format("link target: '{}' in the image, '{}' in the directory", n.symlink,
                          target));
        break;
      }
      case FileType::CharDevice:
      case FileType::BlockDevice:
        if (n.attr.rdev != static_cast<uint64_t>(st.st_rdev))
          add(TreeDifference::Kind::Changed, rel,
              fmt::format("device: {}:{} in the image, {}:{} in the directory", major(n.attr.rdev),
                          minor(n.attr.rdev), major(st.st_rdev), minor(st.st_rdev)));
        break;
      case FileType::Regular:
        content(dir_fd, rel, name, n, st);
        break;
      default:
        break;
    }
  }

  void content(int dir_fd,
               const std::string& rel,
               const std::string& name,
               const Node& n,
               const struct stat& st) {
    const uint64_t disk_size = static_cast<uint64_t>(st.st_size);
    if (n.attr.size != disk_size) {
      add(TreeDifference::Kind::Changed, rel,
          fmt::format("size: {} bytes in the image, {} in the directory", n.attr.size, disk_size));
      done_ += disk_size;
      return;
    }
    Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0)
      fail_errno(rel, "cannot open");
    std::optional<ZisofsReader> zisofs;
    std::vector<std::byte> a(kChunk), b(kChunk);
    try {
      if (n.zisofs)
        zisofs.emplace(tree_.source(), n);
      for (uint64_t off = 0; off < disk_size;) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, disk_size - off));
        const size_t got = zisofs ? zisofs->read(off, std::span<std::byte>(a.data(), want))
                                  : tree_.read(n, off, std::span<std::byte>(a.data(), want));
        size_t have = 0;
        while (have < want) {
          const ssize_t r =
              ::pread(fd.get(), b.data() + have, want - have, static_cast<off_t>(off + have));
          if (r < 0)
            fail_errno(rel, "cannot read");
          if (r == 0)
            break;
          have += static_cast<size_t>(r);
        }
        if (got != want || have != want || std::memcmp(a.data(), b.data(), want) != 0) {
          add(TreeDifference::Kind::Changed, rel,
              fmt::format("content: differs from byte {}", first_difference(a, b, off, want)));
          done_ += disk_size - off;
          report();
          return;
        }
        off += want;
        done_ += want;
        report();
      }
    } catch (const FormatError& e) {
      add(TreeDifference::Kind::Changed, rel,
          std::string("content: unreadable in the image: ") + e.what());
    }
  }

  static uint64_t first_difference(const std::vector<std::byte>& a,
                                   const std::vector<std::byte>& b,
                                   uint64_t off,
                                   size_t n) {
    for (size_t i = 0; i < n; ++i)
      if (a[i] != b[i])
        return off + i;
    return off + n;
  }

  void report() {
    if (progress_)
      progress_(done_, total);
  }

  const FileTree& tree_;
  const CompareProgress& progress_;
  std::vector<TreeDifference> out_;
  uint64_t done_ = 0;
};

}  // namespace

std::vector<TreeDifference> compare_tree(const FileTree& tree,
                                         const std::string& dir,
                                         const CompareProgress& progress) {
  Fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0)
    fail_errno(dir, "cannot open the directory");
  Comparer c(tree, progress);
  if (progress)
    c.total = Comparer::bytes_below(root.get());
  c.walk(kRootIno, root.get(), "");
  return c.result();
}

const char* difference_kind_name(TreeDifference::Kind k) {
  switch (k) {
    case TreeDifference::Kind::Missing:
      return "missing";
    case TreeDifference::Kind::Extra:
      return "extra";
    case TreeDifference::Kind::Changed:
      return "changed";
  }
  return "changed";
}

}  // namespace imagecore
