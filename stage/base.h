// The session a store stages on: the newest session of its target, and how a store takes it
// up (including a store whose last commit wrote that session but was stopped before it could
// clear itself).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "burner/target.h"
#include "imagecore/tree.h"
#include "stage/store.h"

namespace stage {

// The newest session of a target, to stage on or to commit after.
struct Base {
  std::shared_ptr<const imagecore::FileTree> tree;  // null for a blank target
  uint64_t start_lba = 0;
  uint64_t blocks = 0;
};

// Opens the newest session of `t` as Rock Ridge (what discfs and xorriso write), or as
// whatever tree it has when it has none; an empty Base when `t` is blank or cannot take a
// session. Throws what imagecore::open_tree throws (NotAnImage, FormatError, Error(errno)).
Base open_base(const burner::TargetInfo& t);

// Serves `base` from `store`. A store made on another session is recognised when its own
// commit wrote that session (Store::pending_session()) but was stopped before clearing the
// store: the changes are on the target now and nothing is staged any more (logged as a
// warning). Otherwise such a store is emptied when `drop_stale`, or refused with
// imagecore::Unsupported saying how to drop it. `target` names the target in messages.
// Throws Error when the store cannot be read or written.
void adopt_base(Store& store, const Base& base, const std::string& target, bool drop_stale);

}  // namespace stage
