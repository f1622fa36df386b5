// The lock of a target, beside the lock of each store: two stages of one target through two
// stores would commit over each other. A stage mount holds it for its life; a commit without
// a daemon holds it while it runs.
#pragma once

#include <chrono>
#include <string>

#include "stage/lock_file.h"

namespace stage {

class TargetLock {
 public:
  // Locks `target` through the lock file `lock_path` (its folder is created), recording this
  // process, `store` and the stage's `mountpoint` (an absolute path; empty for a commit
  // without a mount) as the holder. A holder whose mount is gone is closing its stage: waits
  // up to kLeavingWait for it. Throws imagecore::Error(EBUSY) "TARGET: already staged or
  // being committed (process N, store DIR, mounted on MNT)" naming the holder, and
  // Error(errno) when the lock file cannot be opened.
  TargetLock(const std::string& lock_path,
             const std::string& target,
             const std::string& store,
             const std::string& mountpoint = "");

  // How long a stage waits for one just unmounted to let go of the target.
  static constexpr std::chrono::seconds kLeavingWait{10};

 private:
  LockFile file_;
};

}  // namespace stage
