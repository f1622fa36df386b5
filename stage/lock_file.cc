#include "stage/lock_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "imagecore/base/error.h"

namespace stage {

using imagecore::Error;

namespace {

// The text the holder of the lock on `fd` recorded.
std::string holder_text(int fd) {
  // A holder's text is a process id and a path or two: PATH_MAX and some.
  char buf[4200] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace

LockFile::LockFile(const std::string& path,
                   mode_t mode,
                   const BusyMessage& busy,
                   const HolderLeaving& leaving,
                   std::chrono::milliseconds max_wait)
    : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, mode);
  if (fd_ < 0) {
    const int e = errno;
    throw Error(e, fmt::format("{}: cannot open: {}", path, std::strerror(e)));
  }
  // A stage unmounted a moment ago still holds its locks while its daemon closes the store:
  // worth a short wait rather than "already staged" (the flock goes with the process).
  const auto give_up = std::chrono::steady_clock::now() + max_wait;
  for (;;) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0)
      return;
    const int e = errno;
    const std::string holder = e == EWOULDBLOCK ? holder_text(fd_) : "";
    if (e == EWOULDBLOCK && leaving && std::chrono::steady_clock::now() < give_up &&
        leaving(holder)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    ::close(fd_);
    fd_ = -1;
    if (e != EWOULDBLOCK)
      throw Error(e, fmt::format("{}: cannot lock: {}", path, std::strerror(e)));
    throw Error(EBUSY, busy(holder));
  }
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
