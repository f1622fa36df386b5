// Whether a folder can take a mount, checked before `discfs mount` and `discfs stage` mount
// on it: a second mount on an occupied folder would hide the first (and its stage from
// `discfs status` and `commit`), and a dead mount is best named as such.
#pragma once

#include <string>

namespace fusefs {

struct MountPointCheck {
  enum class State {
    Ok,            // an existing folder with nothing mounted on it
    Missing,       // no such folder
    NotDirectory,  // something else is there, or it cannot be looked at
    Stale,         // a FUSE mount whose daemon has gone ("Transport endpoint is not connected")
    Mounted,       // something is mounted on it already
  };
  State state = State::Ok;
  std::string sentence;  // for the user, naming the folder; empty when Ok
};

// Looks at `path` and at the mount table. Does not throw (but std::bad_alloc).
MountPointCheck check_mount_point(const std::string& path);

}  // namespace fusefs
