#include "stage/commit.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>

#include "stage/base.h"

namespace stage {

namespace {

// The session is written and in force; only the store could not be cleared. Keeps the mount
// usable: the next 'discfs stage' of this store sees the pending session and clears it then.
void fail_to_reset(const burner::CommitOptions& o,
                   const burner::CommitResult& r,
                   const std::exception& e,
                   Gate& gate) {
  spdlog::error(
      "{}: session {} is committed, but the staging area could not be reset: {}; "
      "unmount and stage again",
      o.target, r.session, e.what());
  gate.resume();
}

// After an appended session: the new session becomes the base, nothing is staged.
void start_on_new_session(Store& store,
                          const burner::CommitOptions& o,
                          const burner::CommitResult& r,
                          Gate& gate) {
  // Probed before the names the kernel holds are taken, which keeps every request out.
  burner::TargetInfo t;
  Base base;
  try {
    t = burner::probe_target(o.target, o.capacity_bytes);
    base = open_base(t);
  } catch (const std::exception& e) {
    fail_to_reset(o, r, e, gate);
    return;
  }
  gate.remember_cached();
  try {
    gate.resume_with_new_base(store, base, t);
  } catch (const std::exception& e) {
    fail_to_reset(o, r, e, gate);
  }
  gate.forget_cached();
}

}  // namespace

std::optional<burner::CommitResult> nothing_to_commit(Store& store,
                                                      const burner::CommitOptions& o,
                                                      const burner::TargetInfo& t) {
  if (o.dummy || o.to_path || !o.volid.empty())
    return std::nullopt;
  if (!store.status().empty())
    return std::nullopt;
  burner::CommitResult r;
  r.unchanged = true;
  r.session = static_cast<int>(t.sessions.size());
  if (const burner::SessionInfo* n = t.newest()) {
    r.start_lba = n->start_lba;
    r.blocks = n->blocks;
  }
  return r;
}

namespace {

// Refuses (Error(ESTALE)) a commit whose target no longer ends with the session the store
// stages on.
void refuse_if_target_moved_on(Store& store,
                               const burner::CommitOptions& o,
                               const burner::TargetInfo& t) {
  const burner::SessionInfo* newest = t.newest();
  const bool appendable = t.state == burner::TargetState::Appendable && newest;
  const uint64_t start = appendable ? newest->start_lba : 0;
  const uint64_t blocks = appendable ? newest->blocks : 0;
  if (!store.has_base() || store.base_matches(start, blocks))
    return;
  throw imagecore::Error(
      ESTALE,
      fmt::format("{}: the target has changed since it was staged (another program wrote to "
                  "it; its newest session now starts at block {}); nothing was written and the "
                  "staged changes are kept in {}: copy out what you need, unmount, drop them "
                  "with 'discfs discard --all --store {}' and stage again",
                  o.target, start, store.dir(), store.dir()));
}

}  // namespace

burner::CommitResult commit(Store& store, const burner::CommitOptions& o, Gate& gate) {
  if (o.phase)
    o.phase("waiting for open files");
  gate.pause();
  burner::CommitResult r;
  const bool grows = !o.dummy && !o.to_path;
  try {
    if (o.cancel && o.cancel->load())
      throw imagecore::Error(ECANCELED,
                             o.target + ": commit cancelled; the previous session stays in force");
    const burner::TargetInfo t = burner::probe_target(o.target, o.capacity_bytes);
    // What the session would be written on must be what the changes were staged on: a
    // session another program appended meanwhile would vanish from the newest tree.
    refuse_if_target_moved_on(store, o, t);
    if (grows) {
      if (std::optional<burner::CommitResult> same = nothing_to_commit(store, o, t)) {
        gate.resume();
        spdlog::info("{}: nothing staged, nothing committed", o.target);
        return *same;
      }
      store.set_pending_session(t.next_writable);
    }
    burner::CommitOptions with_pending = o;
    if (grows)
      with_pending.session_start = [&store](uint64_t lba) { store.set_pending_session(lba); };
    r = burner::commit(with_pending, store.snapshot());
  } catch (...) {
    if (grows)
      store.clear_pending_session();
    gate.resume();
    throw;
  }
  if (o.phase && !o.dummy)
    o.phase("written");
  if (!grows) {
    gate.resume();
    return r;
  }
  start_on_new_session(store, o, r, gate);
  spdlog::info("{}: session {} committed ({} blocks at LBA {})", o.target, r.session, r.blocks,
               r.start_lba);
  return r;
}

}  // namespace stage
