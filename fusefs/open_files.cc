#include "fusefs/open_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fusefs/clock.h"
#include "imagecore/base/error.h"

namespace fusefs {

using imagecore::Error;
using imagecore::Ino;
using imagecore::Timestamp;
using stage::StoreEntry;

namespace {

// Bytes written to a staged file between two starts of its writeback.
constexpr uint64_t kKickBytes = 8u << 20;

[[noreturn]] void throw_errno(const std::string& what) {
  const int e = errno;
  throw Error(e, fmt::format("{}: {}", what, std::strerror(e)));
}

}  // namespace

OpenFiles::~OpenFiles() {
  for (auto& [ino, f] : open_) {
    if (f->fd >= 0)
      ::close(f->fd);
    if (f->direct_fd >= 0)
      ::close(f->direct_fd);
  }
}

std::shared_ptr<OpenFile> OpenFiles::open(const StoreEntry& e, bool writable) {
  std::shared_ptr<OpenFile> f;
  {
    std::lock_guard lock(mu_);
    auto& slot = open_[e.attr.ino];
    if (!slot) {
      slot = std::make_shared<OpenFile>();
      slot->ino = e.attr.ino;
    }
    f = slot;
    ++f->opens;  // pins the slot while it is set up below
  }
  try {
    std::lock_guard lock(f->mu);
    if (e.data == StoreEntry::Data::Local && f->fd < 0) {
      open_local(*f);
      f->size = e.attr.size;
      f->mtime = e.attr.mtime;
      f->ctime = e.attr.ctime;
    } else if (e.data == StoreEntry::Data::Base && f->fd < 0 && !f->base) {
      f->base = store_.base();
      if (!f->base)
        throw Error(EIO, "the base session is not loaded");
      f->node = f->base->stat(e.base_ino);
      if (!f->node.defect.empty())
        throw imagecore::FormatError(f->node.defect);
      if (f->node.zisofs)
        f->zisofs = std::make_unique<imagecore::ZisofsReader>(f->base->source(), f->node);
      f->size = e.attr.size;
      f->mtime = e.attr.mtime;
      f->ctime = e.attr.ctime;
    } else if (!f->dirty && !f->writers) {
      f->size = e.attr.size;
      f->mtime = e.attr.mtime;
      f->ctime = e.attr.ctime;
    }
  } catch (...) {
    close(f, false);
    throw;
  }
  if (writable) {
    std::lock_guard lock(f->mu);
    ++f->writers;
    gate_.writer_opened();
  }
  return f;
}

bool OpenFiles::close(const std::shared_ptr<OpenFile>& f, bool writable) {
  bool last = false;
  {
    std::lock_guard lock(f->mu);
    if (writable) {
      --f->writers;
      if (f->dirty || f->times_pending) {
        try {
          sync(*f);
        } catch (const std::exception& e) {
          spdlog::error("{}", e.what());
        }
      }
    }
  }
  if (writable)
    gate_.writer_closed();
  {
    std::lock_guard lock(mu_);
    if (--f->opens == 0) {
      open_.erase(f->ino);
      last = true;
    }
  }
  if (last) {
    std::lock_guard lock(f->mu);
    if (f->fd >= 0)
      ::close(f->fd);
    if (f->direct_fd >= 0)
      ::close(f->direct_fd);
    f->fd = f->direct_fd = -1;
  }
  return last;
}

void OpenFiles::sync(OpenFile& f) {
  if (f.fd < 0 || !(f.dirty || f.times_pending))
    return;
  struct stat st {};
  if (::fstat(f.fd, &st) != 0)
    throw_errno(store_.local_path(f.ino));
  // The data, the file's name in data/ (a new file) and the record of its size and times
  // are synced at the same time, so a close waits about one sync, not three. The record may
  // reach the disk before the data: after a crash the store takes a staged file's size
  // from the file itself, and nothing was promised before this returns.
  std::future<int> data, name;
  if (f.dirty) {
    data = syncer_.submit([fd = f.fd] { return ::fdatasync(fd) == 0 ? 0 : errno; });
    if (f.new_file)
      name = syncer_.submit([this] {
        try {
          store_.sync_data_dir();
          return 0;
        } catch (const Error& e) {
          return e.code();
        }
      });
  }
  std::exception_ptr recorded;
  try {
    store_.record_size(f.ino, static_cast<uint64_t>(st.st_size), f.mtime, f.ctime, f.atime);
  } catch (...) {
    recorded = std::current_exception();
  }
  const int data_err = data.valid() ? data.get() : 0;
  const int name_err = name.valid() ? name.get() : 0;
  if (data_err)
    throw Error(data_err, fmt::format("{}: cannot sync the staged data: {}",
                                      store_.local_path(f.ino), std::strerror(data_err)));
  if (name_err)
    throw Error(name_err,
                fmt::format("{}/data: cannot sync: {}", store_.dir(), std::strerror(name_err)));
  if (recorded)
    std::rethrow_exception(recorded);
  f.new_file = false;
  f.dirty = false;
  f.times_pending = false;
  f.atime.reset();
}

void OpenFiles::open_local(OpenFile& f) {
  const std::string path = store_.local_path(f.ino);
  f.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (f.fd < 0)
    throw_errno(path);
  f.base.reset();
  f.zisofs.reset();
}

StoreEntry OpenFiles::truncate(OpenFile& f, uint64_t size) {
  if (f.dirty)
    sync(f);
  StoreEntry e = store_.make_local(f.ino, size);
  if (f.fd < 0)
    open_local(f);
  f.size = size;
  f.mtime = e.attr.mtime;
  f.ctime = e.attr.ctime;
  return e;
}

// Times set on a file that is open for writing (cp -a's futimens before close) are kept
// with its data: stored by the flush that makes the data durable, as the write times are,
// not in a transaction of their own.
bool OpenFiles::defer_times(OpenFile& f,
                            std::optional<Timestamp> atime,
                            std::optional<Timestamp> mtime,
                            Timestamp now) {
  if (!f.writers || f.fd < 0)
    return false;
  if (atime)
    f.atime = atime;
  if (mtime)
    f.mtime = *mtime;
  f.ctime = now;
  f.times_pending = true;
  return true;
}

void OpenFiles::show_pending(Ino ino, struct stat& st) {
  const std::shared_ptr<OpenFile> f = find(ino);
  if (!f)
    return;
  auto timespec_of = [](const Timestamp& t) {
    return timespec{static_cast<time_t>(t.sec), static_cast<long>(t.nsec)};
  };
  std::lock_guard lock(f->mu);
  if (f->dirty || f->writers) {
    st.st_size = static_cast<off_t>(f->size);
    st.st_mtim = timespec_of(f->mtime);
  }
  if (f->dirty || f->times_pending)
    st.st_ctim = timespec_of(f->ctime);
  if (f->atime)
    st.st_atim = timespec_of(*f->atime);
}

std::shared_ptr<OpenFile> OpenFiles::find(Ino ino) {
  std::lock_guard lock(mu_);
  auto it = open_.find(ino);
  return it == open_.end() ? nullptr : it->second;
}

bool OpenFiles::is_open(Ino ino) {
  std::lock_guard lock(mu_);
  return open_.count(ino) != 0;
}

std::vector<std::string> OpenFiles::writer_paths() {
  std::vector<std::shared_ptr<OpenFile>> files;
  {
    std::lock_guard lock(mu_);
    for (const auto& [ino, f] : open_)
      files.push_back(f);
  }
  std::vector<std::string> names;
  for (const std::shared_ptr<OpenFile>& f : files) {
    {
      std::lock_guard lock(f->mu);
      if (!f->writers)
        continue;
    }
    std::string path;
    try {
      path = store_.path_of(f->ino);
    } catch (const Error&) {
    }
    names.push_back(path.empty() ? fmt::format("(inode {}, deleted)", f->ino) : path);
  }
  return names;
}

std::vector<std::byte> OpenFiles::read(OpenFile& f, size_t size, off_t off) {
  const auto offset = static_cast<uint64_t>(off);
  const size_t want =
      offset >= f.size ? 0 : static_cast<size_t>(std::min<uint64_t>(size, f.size - offset));
  std::vector<std::byte> buf(want);
  size_t got = 0;
  if (f.fd >= 0) {
    while (got < want) {
      const ssize_t n = ::pread(f.fd, buf.data() + got, want - got, off + got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        throw_errno(store_.local_path(f.ino));
      if (n == 0)
        break;
      got += static_cast<size_t>(n);
    }
  } else if (f.zisofs) {
    got = f.zisofs->read(offset, buf);
  } else if (f.base) {
    got = f.base->read(f.node, offset, buf);
  }
  buf.resize(got);
  return buf;
}

size_t OpenFiles::write(OpenFile& f, const char* data, size_t size, off_t off) {
  if (f.fd < 0)
    throw Error(EBADF, "not open for writing");
  // As the kernel does at a file system's largest size: what fits is written, then EFBIG.
  if (static_cast<uint64_t>(off) >= stage::kMaxFileBytes)
    throw Error(EFBIG, "larger than a session can hold");
  size = std::min<uint64_t>(size, stage::kMaxFileBytes - static_cast<uint64_t>(off));
  const uint64_t end = static_cast<uint64_t>(off) + size;
  if (end > f.size && !store_.try_grow(f.ino, end))
    throw Error(ENOSPC, "the staged files would not fit on the target");
  size_t done = 0;
  int wfd = write_fd(f, data, size, off);
  while (done < size) {
    const ssize_t n = ::pwrite(wfd, data + done, size - done, off + done);
    if (n < 0 && errno == EINVAL && wfd == f.direct_fd) {
      // The store's filesystem refuses this direct write: go through the page cache.
      ::close(f.direct_fd);
      f.direct_fd = -1;
      f.direct_refused = true;
      wfd = f.fd;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      throw_errno(store_.local_path(f.ino));
    done += static_cast<size_t>(n);
  }
  f.size = std::max(f.size, end);
  f.mtime = f.ctime = now();
  f.dirty = true;
  f.unkicked += done;
  if (f.unkicked >= kKickBytes) {
    // Start writing the data out now, without waiting, so the disk works while the
    // copy goes on and the fdatasync at close has little left to do.
    ::sync_file_range(f.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    f.unkicked = 0;
  }
  return done;
}

void OpenFiles::allocate(OpenFile& f, int mode, off_t off, off_t len) {
  if (f.fd < 0)
    throw Error(EBADF, "not open for writing");
  const uint64_t end = static_cast<uint64_t>(off) + static_cast<uint64_t>(len);
  if (end > stage::kMaxFileBytes)
    throw Error(EFBIG, "larger than a session can hold");
  if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f.size && !store_.try_grow(f.ino, end))
    throw Error(ENOSPC, "the staged files would not fit on the target");
  if (::fallocate(f.fd, mode, off, len) != 0)
    throw_errno(store_.local_path(f.ino));
  if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f.size) {
    f.size = end;
    f.mtime = f.ctime = now();
    f.dirty = true;
  }
}

// Big writes of whole aligned blocks (cp's 1 MiB requests) go past the page cache
// (O_DIRECT), straight from the request buffer (session.cc aligns write payloads) to the
// disk: no copy into cache pages, which on the 2-vCPU VM measured made a 4 GiB copy 3x
// slower once it outgrew the memory already in use, and the copy does not push the
// user's working set out of the cache. Small and unaligned writes go through the cache.
int OpenFiles::write_fd(OpenFile& f, const char* data, size_t size, off_t off) {
  constexpr uintptr_t kAlign = 4096;
  if (f.direct_refused || size < (256u << 10) || reinterpret_cast<uintptr_t>(data) % kAlign ||
      size % kAlign || static_cast<uintptr_t>(off) % kAlign)
    return f.fd;
  if (f.direct_fd < 0) {
    const std::string path = store_.local_path(f.ino);
    f.direct_fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (f.direct_fd < 0) {
      f.direct_refused = true;
      return f.fd;
    }
  }
  return f.direct_fd;
}

}  // namespace fusefs
