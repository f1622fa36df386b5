// A lock file: an exclusive flock on a file that also holds a few lines naming its holder, so
// that a process refused the lock can say who has it. The store's lock (STORE/lock) and the
// per-target lock (stage/target_lock.h) are both lock files.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace stage {

class LockFile {
 public:
  // Turns the text the holder recorded ("" when none) into the sentence for the user.
  using BusyMessage = std::function<std::string(const std::string& holder)>;

  // Opens or creates `path` with permissions `mode` and locks it without waiting. Throws
  // imagecore::Error(EBUSY, busy(holder)) when another open file holds the lock, and
  // Error(errno) naming the path when it cannot be opened or locked. The lock is held until
  // destruction; a forked child shares it.
  LockFile(const std::string& path, mode_t mode, const BusyMessage& busy);
  ~LockFile();
  LockFile(const LockFile&) = delete;
  LockFile& operator=(const LockFile&) = delete;

  const std::string& path() const { return path_; }
  // Replaces the holder text. False (errno set) when it cannot be written.
  bool record(const std::string& holder);

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace stage
