// Staged file contents: copy-up from the base, recorded sizes, and the accounting of staged
// bytes against the target's room and the store's disk.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <span>

#include "burner/limits.h"
#include "imagecore/base/error.h"
#include "imagecore/iso9660/zisofs.h"
#include "stage/store.h"
#include "stage/store_private.h"

namespace stage {

using namespace imagecore;
using namespace internal;

namespace {

void write_all(int fd, const std::byte* p, size_t n, uint64_t off, const std::string& where) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR)
        continue;
      const int e = errno;
      throw Error(e, fmt::format("{}: cannot write the staged copy: {}", where, errno_text(e)));
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
}

}  // namespace

uint64_t Store::local_size(Ino ino) {
  auto it = local_sizes_.find(ino);
  return it == local_sizes_.end() ? 0 : it->second;
}

StoreEntry Store::make_local(Ino ino, std::optional<uint64_t> truncate_to) {
  std::lock_guard lock(mu_);
  StoreEntry e = row(ino);
  if (e.attr.type == FileType::Directory)
    throw Error(EISDIR, "is a folder");
  if (e.attr.type != FileType::Regular)
    throw Error(EINVAL, "not a regular file");
  const std::string path = local_path(ino);
  const bool local = e.data == StoreEntry::Data::Local;
  if (local && !truncate_to)
    return e;
  const uint64_t final_size = truncate_to ? *truncate_to : e.attr.size;
  if (final_size > burner::kMaxFileBytes)
    throw Error(EFBIG, fmt::format("{} bytes: larger than a session can hold ({} bytes)",
                                   final_size, burner::kMaxFileBytes));
  const uint64_t old = local ? local_size(ino) : 0;
  if (final_size > old && staged_bytes_ + (final_size - old) > limit_)
    throw Error(ENOSPC, fmt::format("{}: the staged files would not fit on the target", dir_));
  if (final_size > old && !disk_has_room(final_size - old))
    throw Error(ENOSPC, fmt::format("{}: the store's disk is full", dir_));
  const Timestamp t = now();
  if (local)
    truncate_local(path, final_size);
  else
    copy_up(e, path, final_size);
  Txn txn(*this);
  if (truncate_to) {
    Stmt(*this,
         "UPDATE inodes SET data=2, size=?, mtime_s=?, mtime_ns=?, ctime_s=?, ctime_ns=? "
         "WHERE ino=?")
        .u(1, final_size)
        .time(2, t)
        .time(4, t)
        .u(6, ino)
        .run();
  } else {
    Stmt(*this, "UPDATE inodes SET data=2, size=? WHERE ino=?").u(1, final_size).u(2, ino).run();
  }
  txn.commit();
  staged_bytes_ = staged_bytes_ - std::min(staged_bytes_, old) + final_size;
  local_sizes_[ino] = final_size;
  return row(ino);
}

void Store::truncate_local(const std::string& path, uint64_t size) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (fd.fd < 0 || ::ftruncate(fd.fd, static_cast<off_t>(size)) != 0 || ::fdatasync(fd.fd) != 0) {
    const int err = errno;
    throw Error(err, fmt::format("{}: cannot truncate the staged file: {}", path, errno_text(err)));
  }
}

// The base contents go into a temporary file, made durable, then renamed: a crash leaves
// either no copy or a whole one.
void Store::copy_up(const StoreEntry& e, const std::string& path, uint64_t size) {
  if (!base_)
    throw Error(EIO,
                fmt::format("{}: inode {} refers to a base that is not loaded", dir_, e.attr.ino));
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.fd < 0) {
    const int err = errno;
    throw Error(err, fmt::format("{}: cannot create: {}", tmp, errno_text(err)));
  }
  const uint64_t copy = std::min(size, e.attr.size);
  if (copy > 0) {
    const Node n = base_->stat(e.base_ino);
    if (!n.defect.empty())
      throw FormatError(n.defect);
    std::unique_ptr<ZisofsReader> zr;
    if (n.zisofs)
      zr = std::make_unique<ZisofsReader>(base_->source(), n);
    std::vector<std::byte> buf(1 << 20);
    for (uint64_t off = 0; off < copy;) {
      std::span<std::byte> out(buf.data(), std::min<uint64_t>(buf.size(), copy - off));
      const size_t got = zr ? zr->read(off, out) : base_->read(n, off, out);
      if (got == 0)
        throw FormatError(fmt::format("{}: ends early at byte {}", e.base_path, off));
      write_all(fd.fd, buf.data(), got, off, tmp);
      off += got;
    }
  }
  if (::ftruncate(fd.fd, static_cast<off_t>(size)) != 0 || ::fdatasync(fd.fd) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0 || ::fsync(data_dir_fd_) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(
        err, fmt::format("{}: cannot stage a copy of {}: {}", path, e.base_path, errno_text(err)));
  }
}

void Store::record_size(Ino ino,
                        uint64_t size,
                        Timestamp mtime,
                        std::optional<Timestamp> ctime,
                        std::optional<Timestamp> atime) {
  std::lock_guard lock(mu_);
  const Timestamp c = ctime.value_or(mtime);
  Txn txn(*this);
  Stmt(*this,
       "UPDATE inodes SET size=?, mtime_s=?, mtime_ns=?, ctime_s=?, ctime_ns=?, "
       "atime_s=coalesce(?, atime_s), atime_ns=coalesce(?, atime_ns) WHERE ino=? AND data=2")
      .u(1, size)
      .time(2, mtime)
      .time(4, c)
      .opt_i(6, atime ? std::optional<int64_t>(atime->sec) : std::nullopt)
      .opt_i(7, atime ? std::optional<int64_t>(atime->nsec) : std::nullopt)
      .u(8, ino)
      .run();
  txn.commit();
  if (db_->changes() == 0)
    return;
  const uint64_t old = local_size(ino);
  staged_bytes_ = staged_bytes_ - std::min(staged_bytes_, old) + size;
  local_sizes_[ino] = size;
}

void Store::sync_data_dir() {
  if (::fsync(data_dir_fd_) != 0) {
    const int e = errno;
    throw Error(e, fmt::format("{}/data: cannot sync: {}", dir_, errno_text(e)));
  }
}

uint64_t Store::staged_bytes() {
  std::lock_guard lock(mu_);
  return staged_bytes_;
}

void Store::set_limit(uint64_t max_staged_bytes) {
  std::lock_guard lock(mu_);
  limit_ = max_staged_bytes;
}

bool Store::disk_has_room(uint64_t bytes) const {
  struct statvfs v {};
  if (::fstatvfs(data_dir_fd_, &v) != 0)
    return true;  // cannot tell: the write itself will say
  const uint64_t avail = uint64_t{v.f_bavail} * v.f_frsize;
  return avail >= bytes && avail - bytes >= kDiskReserve;
}

bool Store::try_grow(Ino ino, uint64_t new_size) {
  std::lock_guard lock(mu_);
  const uint64_t cur = local_size(ino);
  if (new_size <= cur)
    return true;
  if (staged_bytes_ + (new_size - cur) > limit_ || !disk_has_room(new_size - cur))
    return false;
  staged_bytes_ += new_size - cur;
  local_sizes_[ino] = new_size;
  return true;
}

}  // namespace stage
