// Ctrl-C (SIGINT), SIGTERM and SIGHUP as a cancel request for long work (commit, burn,
// blank, create, rip), installed for the lifetime of one CancelOnSignal.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iterator>

namespace discfs {

// Ctrl-C (SIGINT), SIGTERM and SIGHUP while long work runs cancel it instead of ending the
// client at once: a commit stops before its commit point if it can, and the user hears whether
// the session was written; create removes its temporary file; rip saves its map for a rerun.
// The handler only sets a flag and writes to a pipe (async-signal-safe).
class CancelOnSignal {
 public:
  CancelOnSignal() {
    requested = false;
    if (::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0)
      fds_[0] = fds_[1] = -1;
    write_fd = fds_[1];
    struct sigaction sa {};
    sa.sa_handler = [](int) {
      requested = true;
      if (write_fd >= 0) {
        const char c = 'c';
        [[maybe_unused]] ssize_t n = ::write(write_fd, &c, 1);
      }
    };
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kSignals); ++i)
      ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~CancelOnSignal() {
    for (size_t i = 0; i < std::size(kSignals); ++i)
      ::sigaction(kSignals[i], &old_[i], nullptr);
    write_fd = -1;
    for (int fd : fds_)
      if (fd >= 0)
        ::close(fd);
  }
  CancelOnSignal(const CancelOnSignal&) = delete;
  CancelOnSignal& operator=(const CancelOnSignal&) = delete;
  // Readable once a signal came.
  int fd() const { return fds_[0]; }

  static inline std::atomic<bool> requested{false};

 private:
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
  static inline volatile int write_fd = -1;
  int fds_[2] = {-1, -1};
  struct sigaction old_[std::size(kSignals)]{};
};

}  // namespace discfs
