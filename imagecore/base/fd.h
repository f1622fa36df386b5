// A file descriptor closed when it goes out of scope.
#pragma once

#include <unistd.h>

namespace imagecore {

struct Fd {
  int fd = -1;

  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd; }
};

}  // namespace imagecore
