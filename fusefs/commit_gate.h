// The commit gate of a stage mount. Changes pass while it is open; a commit closes it, waits
// until no change is under way and no file is open for writing, takes its snapshot, and opens
// it again. Changes on files already open for writing (writes, and a cp -a's futimens before
// its close) go on while the gate drains, so their writers can finish and close; they are held
// only once it is fully paused, when no such file is left.
//
// Nothing waits here but the commit: a request that may not pass is not blocked on its FUSE
// worker but kept (Deferred) and run again by resume(). Blocking would let the held requests
// take every worker, and the close (release) that the commit waits for could never be served.
// No FUSE in here. Thread-safe: one mutex, never held while anything else is locked or called.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace fusefs {

class CommitGate {
 public:
  enum class Kind {
    Change,  // anything that changes the store: passes only while the gate is open
    Write,   // a change through a file open for writing: passes until fully paused
  };
  // A request held while the gate is closed: `run` asks the gate again (on resume()),
  // `drop` answers it when it will never run (shut()).
  struct Deferred {
    std::function<void()> run;
    std::function<void()> drop;
  };
  enum class Paused { Yes, Busy, Cancelled };

  // Counts a change of `kind` under way and returns true when it may pass now; false: call
  // defer(). Never waits. Throws nothing.
  bool try_enter(Kind kind);
  // Keeps `later` until resume() and returns true; or, when the gate opened meanwhile,
  // counts the change as try_enter() does and returns false (run it now). After shut() the
  // request is dropped at once (true). Throws bad_alloc.
  bool defer(Kind kind, Deferred later);
  // Ends a change counted by try_enter() or defer(). Throws nothing.
  void leave();
  // A handle was opened for writing; pause() waits until it is closed. Throws nothing.
  void writer_opened();
  // A handle opened for writing was closed. Throws nothing.
  void writer_closed();

  // Closes the gate (after any other pause has ended) and waits up to `timeout` until no
  // handle is open for writing and no change is under way, asking `cancelled` (when given)
  // about every 100 ms. Yes: paused until resume(). Busy: the timeout passed first;
  // Cancelled: `cancelled` said so first. Then the gate stays closed to new changes, so the
  // caller can name what is still busy, and the caller must call resume(). Throws nothing.
  Paused pause(std::chrono::milliseconds timeout, const std::function<bool()>& cancelled = {});
  // Opens the gate again and runs the requests held meanwhile, on the calling thread (each
  // asks the gate again). Throws nothing (a held request answers its own errors).
  void resume();
  // The session ended: drops the requests held and any held later. Throws nothing.
  void shut();
  // Grows with every change and every write: unchanged for a while means quiet.
  uint64_t change_count();
  // How many requests are held. Throws nothing.
  size_t deferred();

 private:
  enum class State { Open, Draining, Paused };
  bool passes(Kind kind) const;
  std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::Open;
  bool shut_ = false;
  unsigned writers_ = 0;  // handles open for writing
  unsigned changes_ = 0;  // changes under way
  uint64_t change_count_ = 0;
  std::vector<Deferred> held_;
};

}  // namespace fusefs
