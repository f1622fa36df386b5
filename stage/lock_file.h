// A lock file: an exclusive flock on a file that also holds a few lines naming its holder, so
// that a process refused the lock can say who has it. The store's lock (STORE/lock) and the
// per-target lock (stage/target_lock.h) are both lock files.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

namespace stage {

class LockFile {
 public:
  // Turns the text the holder recorded ("" when none) into the sentence for the user.
  using BusyMessage = std::function<std::string(const std::string& holder)>;
  // True when the holder that recorded `holder` is on its way out (its mount is gone), so
  // that the lock is worth waiting for.
  using HolderLeaving = std::function<bool(const std::string& holder)>;

  // Opens or creates `path` with permissions `mode` and locks it. When another open file
  // holds the lock and `leaving` says its holder is on its way out, tries again for up to
  // `max_wait`; otherwise does not wait. Throws imagecore::Error(EBUSY, busy(holder)) when
  // the lock stays held, and Error(errno) naming the path when it cannot be opened or locked.
  // The lock is held until destruction; a forked child shares it.
  LockFile(const std::string& path,
           mode_t mode,
           const BusyMessage& busy,
           const HolderLeaving& leaving = {},
           std::chrono::milliseconds max_wait = std::chrono::milliseconds(0));
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
