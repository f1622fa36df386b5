// The commit gate of a stage mount. Changes pass while it is open; a commit closes it, waits
// until no change is under way and no file is open for writing, takes its snapshot, and opens
// it again. Writes on handles already open go on while the gate drains (so their writers can
// finish and close) and wait only once it is fully paused. No FUSE in here. Thread-safe: one
// mutex, never held while anything else is locked or called.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace fusefs {

class CommitGate {
 public:
  // Waits while the gate is closed, then counts a change under way. Throws nothing.
  void enter_change();
  // Ends a change counted by enter_change(). Throws nothing.
  void leave_change();
  // Waits while the gate is fully paused, then counts a write (a change on a handle already
  // open, which needs no enter_change()). Throws nothing.
  void wait_for_writes();
  // A handle was opened for writing; pause() waits until it is closed. Throws nothing.
  void writer_opened();
  // A handle opened for writing was closed. Throws nothing.
  void writer_closed();

  // Closes the gate (after any other pause has ended) and waits up to `timeout` until no
  // handle is open for writing and no change is under way. True: paused until resume().
  // False: the timeout passed first; the gate stays closed to new changes, so the caller can
  // name what is still busy, and the caller must call resume(). Throws nothing.
  bool pause(std::chrono::milliseconds timeout);
  // Opens the gate again. Throws nothing.
  void resume();
  // Grows with every change and every write: unchanged for a while means quiet.
  uint64_t change_count();

 private:
  enum class State { Open, Draining, Paused };
  std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::Open;
  unsigned writers_ = 0;  // handles open for writing
  unsigned changes_ = 0;  // changes under way
  uint64_t change_count_ = 0;
};

}  // namespace fusefs
