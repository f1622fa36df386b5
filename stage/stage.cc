#include "stage/stage.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <tuple>

#include "imagecore/base/error.h"
#include "stage/base.h"

namespace stage {

Room room_of(const burner::TargetInfo& t) {
  Room r;
  if (t.capacity_blocks)
    r.capacity_bytes = *t.capacity_blocks * burner::kBlockSize;
  r.used_by_target_bytes = t.next_writable * burner::kBlockSize;
  r.session_overhead_bytes = kSessionOverhead;
  return r;
}

std::optional<uint64_t> free_bytes_after_commit(const burner::TargetInfo& t,
                                                uint64_t staged_bytes) {
  const uint64_t free_blocks = t.free_blocks();
  if (free_blocks == UINT64_MAX)
    return std::nullopt;
  const uint64_t room = free_blocks * burner::kBlockSize;
  const uint64_t used = staged_bytes + kSessionOverhead;
  return room > used ? room - used : 0;
}

Stage open_for_mount(const std::string& target,
                     std::optional<uint64_t> capacity,
                     const std::string& store_dir,
                     const std::string& mountpoint,
                     const std::string& target_lock_path) {
  Stage s;
  s.target = target;
  s.capacity = capacity;
  s.info = burner::probe_target(target, capacity);
  if (s.info.state == burner::TargetState::NotAppendable)
    throw imagecore::Unsupported(s.info.reason);
  s.lock = std::make_unique<TargetLock>(target_lock_path, target, store_dir);
  StoreOptions so;
  so.target = target;
  so.mountpoint = mountpoint;
  so.default_uid = ::getuid();
  so.default_gid = ::getgid();
  s.store = std::make_unique<Store>(store_dir, so);
  s.store->update_lock_owner();
  const std::optional<uint64_t> recorded = s.store->recorded_capacity();
  if (capacity) {
    if (recorded && *recorded != *capacity)
      spdlog::warn("{}: --capacity {} replaces the {} bytes recorded with the staged changes",
                   target, *capacity, *recorded);
    if (recorded != capacity)
      s.store->record_capacity(*capacity);
  } else if (recorded) {
    // Kept with the store: a restage or a restart after a crash keeps the limit.
    s.capacity = recorded;
    burner::apply_capacity(s.info, recorded);
    if (s.info.state == burner::TargetState::NotAppendable)
      throw imagecore::Unsupported(s.info.reason);
  }
  adopt_base(*s.store, open_base(s.info), target, false);
  return s;
}

Stage open_store(const std::string& store_dir, bool drop_stale) {
  Stage s;
  StoreOptions so;
  so.default_uid = ::getuid();
  so.default_gid = ::getgid();
  s.store = std::make_unique<Store>(store_dir, so);
  s.target = s.store->recorded_target();
  s.capacity = s.store->recorded_capacity();
  s.info = burner::probe_target(s.target, s.capacity);
  adopt_base(*s.store, open_base(s.info), s.target, drop_stale);
  return s;
}

std::vector<StagedChange> discard(Store& store, const std::vector<std::string>& paths, Gate& gate) {
  gate.pause();
  gate.remember_cached();
  std::vector<StagedChange> dropped;
  try {
    dropped = store.staged_changes();
    if (paths.empty())
      store.discard_all();
    else
      store.discard(paths);
    const auto before = [](const StagedChange& a, const StagedChange& b) {
      return std::tie(a.path, a.kind, a.from, a.modified) <
             std::tie(b.path, b.kind, b.from, b.modified);
    };
    std::vector<StagedChange> left = store.staged_changes();
    std::sort(left.begin(), left.end(), before);
    std::erase_if(dropped, [&](const StagedChange& c) {
      return std::binary_search(left.begin(), left.end(), c, before);
    });
  } catch (...) {
    gate.resume();
    throw;
  }
  gate.resume();
  gate.forget_cached();
  return dropped;
}

}  // namespace stage
