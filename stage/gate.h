// What serves a store while a commit or a discard changes it as a whole. A stage mount's
// FUSE layer (fusefs::StageFs) stops changes, takes up the new base, and makes the kernel drop
// what it cached; the CLI passes those steps in. Without a mount nothing serves the store and
// the defaults do nothing, but for resume_with_new_base(), which resets the store.
//
// Order, for a commit: pause(); then either resume() (nothing to commit, a dry run, --to, or
// a failure), or, once the new session is probed and opened (only resume() if that fails),
// remember_cached(), resume_with_new_base() (resume() if that throws), and forget_cached(). For a
// discard: pause(), remember_cached(), the discard, resume(), forget_cached() (only resume() when
// the discard throws).
#pragma once

#include "burner/target.h"
#include "stage/base.h"
#include "stage/store.h"

namespace stage {

class Gate {
 public:
  virtual ~Gate() = default;
  // Stops changes to the store and waits for those under way. Throws to refuse the operation
  // (imagecore::Error(EBUSY) while files stay open for writing); nothing is paused then.
  virtual void pause() {}
  // Changes go on after pause().
  virtual void resume() {}
  // After a commit appended a session: `base`, the newest session of `t`, becomes the
  // store's base with nothing staged, and changes go on. Throws when the store cannot be
  // reset (still paused then).
  virtual void resume_with_new_base(Store& store, const Base& base, const burner::TargetInfo& t) {
    (void)t;
    store.reset_to_new_base(base.tree, base.start_lba, base.blocks);
  }
  // While paused, before the store changes as a whole: remember what clients may have cached
  // (the names the kernel holds).
  virtual void remember_cached() {}
  // After that change: make the clients drop what remember_cached() found.
  virtual void forget_cached() {}
};

}  // namespace stage
