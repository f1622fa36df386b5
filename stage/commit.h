// The commit protocol: turning what a store stages into a new session of its target, once,
// for every caller (a stage daemon with its mount paused, `discfs commit --store` without
// one, and any later verb that writes a session).
//
// Steps: pause the gate; probe the target; refuse when its newest session is not the one
// the store stages on (another program wrote to it); when nothing is staged, write nothing; record
// the session about to be written (Store::set_pending_session) so that a process stopped after it
// became the newest is recovered by adopt_base(); burner::commit() the snapshot; on failure forget
// the pending session and resume; on success open the new session and make it the store's base,
// with nothing staged.
#pragma once

#include <optional>

#include "burner/commit.h"
#include "burner/target.h"
#include "stage/gate.h"
#include "stage/store.h"

namespace stage {

// A commit that would append a session identical to the newest one (nothing staged, no new
// volume id, neither dry nor --to) writes nothing, as xorriso's -commit does without pending
// changes. Returns the result to report then (unchanged=true, naming the newest session of
// `t`, or session 0 for a blank target, which stays blank), or nullopt when there is
// something to write. Throws Error when the store cannot be read.
std::optional<burner::CommitResult> nothing_to_commit(Store& store,
                                                      const burner::CommitOptions& o,
                                                      const burner::TargetInfo& t);

// Commits what `store` stages with options `o` (o.target is the target, o.capacity_bytes its
// --capacity) while `gate` is paused. Returns what was written, or what nothing_to_commit()
// says. After an appended session the store stages nothing on the new base; if only that
// reset fails, the error is logged and the result returned (the session is in force; the
// next adopt_base() of the store clears it). o.phase hears each step (burner/commit.h);
// o.cancel is honoured up to the commit point (Error(ECANCELED)). Throws Error(ESTALE) when
// the target changed since the store's base was taken, what gate.pause() throws, and
// imagecore::Error naming the target when the commit fails; the target then still shows its
// previous session, the staged changes stay, and no session is pending.
burner::CommitResult commit(Store& store, const burner::CommitOptions& o, Gate& gate);

}  // namespace stage
