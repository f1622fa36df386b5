// Daemonizing a verb whose errors are found after the fork: the parent waits on a pipe for
// the child's verdict and exits with it, printing its sentence.
//
// Why `discfs stage` does not call fuse_daemonize() as `mount` does: fuse_daemonize forks
// after the mount, and its waiting parent exits 0 or 1 with no message. That is enough for
// `mount`, which has opened everything before it forks. The stage daemon can only open its
// store after the fork (fusefs::StageFs starts threads, which a fork does not carry), and
// what goes wrong then (the target or the store is busy, the store is damaged, the mount or
// the control socket is refused) must still reach the user as one sentence and the
// documented exit code. So the parent waits until the child reports, through the pipe.
#pragma once

#include <string>

#include "cli/exit_codes.h"

namespace discfs {

class Detach {
 public:
  // Forks. In the parent this never returns: it waits for the child's report, prints its
  // sentence as "discfs: SENTENCE" and exits with its code (Internal, with a sentence
  // pointing to the system log, when the child ended without reporting). In the child it
  // returns in a new session. Throws imagecore::Error when it cannot make the pipe or fork.
  void fork_and_wait();
  // Tells the waiting parent how it went (once); on success detaches from the terminal.
  // Does nothing when not forked. Throws only std::bad_alloc.
  void report(ExitCode code, const std::string& message);
  // Reports a failure: to the waiting parent when forked (see report()), else on standard
  // error as "discfs: MESSAGE". Returns `code`. Throws only std::bad_alloc.
  ExitCode fail(ExitCode code, const std::string& message);
  // Whether this is the forked child.
  bool child() const { return child_; }

 private:
  int pipe_[2] = {-1, -1};
  bool child_ = false;
  bool reported_ = false;
};

}  // namespace discfs
