// A store opened by this process together with its target: what a stage daemon serves, and
// what `discfs commit`, `status` and `discard --store` act on when no daemon does. Also the
// room a target has left, in the numbers a stage mount and `status` report.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "burner/target.h"
#include "stage/gate.h"
#include "stage/store.h"
#include "stage/target_lock.h"

namespace stage {

// Extra room a session needs beyond its file data: the 64 KiB alignment of sessions, volume
// descriptors, and the directory tree (about 300 bytes an entry with Rock Ridge, Joliet and
// MD5; see libburnia-notes). A fixed allowance keeps statfs simple and errs on the safe side
// for trees up to about 10,000 entries.
inline constexpr uint64_t kSessionOverhead = 4u << 20;

// What a target can still take, in bytes: the numbers behind a stage mount's statfs and its
// ENOSPC (fusefs::StageLimits).
struct Room {
  uint64_t capacity_bytes = 0;  // 0: unlimited
  uint64_t used_by_target_bytes = 0;
  uint64_t session_overhead_bytes = kSessionOverhead;
};

// The room of target `t`.
Room room_of(const burner::TargetInfo& t);

// Bytes a commit could still add to `t` with `staged_bytes` staged (its free blocks less the
// staged bytes and kSessionOverhead, 0 when they do not fit); nullopt when `t` is unlimited.
std::optional<uint64_t> free_bytes_after_commit(const burner::TargetInfo& t, uint64_t staged_bytes);

// A store and its target, opened by this process. Destroy `store` before `lock`.
struct Stage {
  std::string target;                // the target's path
  std::optional<uint64_t> capacity;  // --capacity in bytes: given, else the store's recorded one
  burner::TargetInfo info;           // the target as it was when opened, with `capacity`
  std::unique_ptr<TargetLock> lock;  // held by a mount, and by a commit without a daemon
  std::unique_ptr<Store> store;      // its base is the newest session of the target
};

// For a stage mount on `mountpoint` (an absolute path): probes `target` with `capacity`
// (imagecore::Unsupported with the reason when it cannot take another session), locks it
// through `target_lock_path` (waiting briefly for a stage just unmounted, see TargetLock),
// opens or creates the store `store_dir` (entries without owners belong to this process's
// user) and serves the target's newest session on it. A given `capacity` is recorded in the
// store, replacing the one recorded before; without one, the recorded one applies. Throws
// Error(EBUSY) naming the holder of the target or the store, Unsupported for a store made on
// another session, and what Store() and open_base() throw.
Stage open_for_mount(const std::string& target,
                     std::optional<uint64_t> capacity,
                     const std::string& store_dir,
                     const std::string& mountpoint,
                     const std::string& target_lock_path);

// With no daemon: opens the store `store_dir` and the target recorded in it (probed with the
// store's recorded --capacity), serving the target's newest session. A store made on an older
// session is emptied when `drop_stale`, refused with Unsupported otherwise. The target is not
// locked. Throws what Store() and adopt_base() throw.
Stage open_store(const std::string& store_dir, bool drop_stale);

// Drops staged changes while `gate` is paused: those at the stage paths `paths`
// (Store::discard), or all of them when `paths` is empty. Returns what was dropped: the
// staged changes that are gone after it. Throws what gate.pause() and the store throw; the
// gate is resumed either way.
std::vector<StagedChange> discard(Store& store, const std::vector<std::string>& paths, Gate& gate);

}  // namespace stage
