// The lock of a target, beside the lock of each store: two stages of one target through two
// stores would commit over each other. A stage mount holds it for its life; a commit without
// a daemon holds it while it runs.
#pragma once

#include <string>

#include "stage/lock_file.h"

namespace stage {

class TargetLock {
 public:
  // Locks `target` through the lock file `lock_path` (its folder is created), recording this
  // process and `store` as the holder. Throws imagecore::Error(EBUSY) "TARGET: already staged
  // or being committed (process N, store DIR)" naming the holder, and Error(errno) when the
  // lock file cannot be opened.
  TargetLock(const std::string& lock_path, const std::string& target, const std::string& store);

 private:
  LockFile file_;
};

}  // namespace stage
