#include "stage/lock_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "imagecore/base/error.h"

namespace stage {

using imagecore::Error;

LockFile::LockFile(const std::string& path, mode_t mode, const BusyMessage& busy) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode);
  if (fd_ < 0) {
    const int e = errno;
    throw Error(e, fmt::format("{}: cannot open: {}", path, std::strerror(e)));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0)
    return;
  const int e = errno;
  // A holder's text is a process id and a path or two: PATH_MAX and some.
  char buf[4200] = {};
  const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
  ::close(fd_);
  fd_ = -1;
  if (e != EWOULDBLOCK)
    throw Error(e, fmt::format("{}: cannot lock: {}", path, std::strerror(e)));
  throw Error(EBUSY, busy(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0)));
}

LockFile::~LockFile() {
  if (fd_ >= 0)
    ::close(fd_);
}

bool LockFile::record(const std::string& holder) {
  return ::ftruncate(fd_, 0) == 0 &&
         ::pwrite(fd_, holder.data(), holder.size(), 0) == static_cast<ssize_t>(holder.size());
}

}  // namespace stage
