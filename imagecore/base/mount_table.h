// The kernel's table of mounts as this process sees it (/proc/self/mountinfo): what is
// mounted on a folder, for the checks before a mount and for a lock whose holder's mount is
// gone.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace imagecore {

struct MountEntry {
  std::string mount_point;  // absolute, as the kernel names it (octal escapes decoded)
  std::string fstype;       // "fuse.discfs", "ext4", ...
  std::string source;       // the device or fsname, "none" when the kernel has none
  std::string device;       // "major:minor" of the mounted file system ("0:52" for a FUSE mount)
};

// Every mount in /proc/self/mountinfo, oldest first; empty when the table cannot be read.
// Does not throw (but std::bad_alloc).
std::vector<MountEntry> read_mount_table();

// The mount on top at `path` (an absolute path without symlinks, compared as it is), or
// nullopt when nothing is mounted exactly there. Does not throw (but std::bad_alloc).
std::optional<MountEntry> mount_at(const std::string& path);

}  // namespace imagecore
