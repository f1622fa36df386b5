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
  // process and `store` as the holder. A holder that recorded a mount (mounted_on) which is
  // gone from the mount table is closing its stage: waits up to kLeavingWait for it. Throws
  // imagecore::Error(EBUSY) "TARGET: already staged or being committed (process N, store
  // DIR, mounted on MNT)" naming the holder, and Error(errno) when the lock file cannot be
  // opened.
  TargetLock(const std::string& lock_path, const std::string& target, const std::string& store);

  // Adds the stage's live mount (its absolute path) to the holder's record, once mounted:
  // from then on its disappearance means this holder is leaving.
  void mounted_on(const std::string& mountpoint);

  // How long a stage waits for one just unmounted to let go of the target.
  static constexpr std::chrono::seconds kLeavingWait{10};

 private:
  LockFile file_;
  std::string holder_;
};

}  // namespace stage
