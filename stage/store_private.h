// Private to stage/: helpers the store's source files share. Not for fusefs/ or cli/.
#pragma once

#include <time.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>

#include "stage/store.h"

namespace stage::internal {

inline constexpr int kMaxDepth = 4096;  // deeper than any path Linux can name

// The wall-clock time, for the times of entries changed on the stage.
inline Timestamp now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return Timestamp{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

// strerror(e) as a string.
inline std::string errno_text(int e) {
  return std::strerror(e);
}

// A descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// The stage path of `name` in the folder at stage path `parent`.
inline std::string child_path(const std::string& parent, std::string_view name) {
  return parent == "/" ? "/" + std::string(name) : parent + "/" + std::string(name);
}

// The store's row for base node `n` at `base_path`: its attributes, with defaults for what
// the base does not record (permissions without Rock Ridge, owners), and data=Base for
// regular files. attr.ino is 0 (the store assigns one).
StoreEntry entry_from_base(const Node& n,
                           const std::string& base_path,
                           uint32_t default_uid,
                           uint32_t default_gid);

}  // namespace stage::internal
