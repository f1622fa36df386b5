#include "fusefs/mount_point.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "imagecore/base/mount_table.h"

namespace fusefs {
namespace {

MountPointCheck stale(const std::string& path) {
  return {MountPointCheck::State::Stale,
          fmt::format("{}: a mount whose program has stopped is still there ({}); remove it "
                      "with 'fusermount3 -u {}' and mount again",
                      path, std::strerror(ENOTCONN), path)};
}

}  // namespace

MountPointCheck check_mount_point(const std::string& path) {
  using State = MountPointCheck::State;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT)
      return {State::Missing, fmt::format("{}: the mount point does not exist (make the folder "
                                          "first)",
                                          path)};
    if (e == ENOTCONN)
      return stale(path);
    return {State::NotDirectory,
            fmt::format("{}: cannot use the mount point: {}", path, std::strerror(e))};
  }
  if (!S_ISDIR(st.st_mode))
    return {State::NotDirectory, fmt::format("{}: the mount point is not a folder", path)};
  char real[PATH_MAX];
  const std::string where = ::realpath(path.c_str(), real)
                                ? std::string(real)
                                : std::filesystem::absolute(path).lexically_normal().string();
  const std::optional<imagecore::MountEntry> m = imagecore::mount_at(where);
  // A FUSE mount whose daemon died may still answer stat from the kernel's cache; statfs
  // always asks the daemon.
  struct statvfs vfs {};
  if (m && ::statvfs(path.c_str(), &vfs) != 0 && errno == ENOTCONN)
    return stale(path);
  if (m)
    return {State::Mounted,
            fmt::format("{}: {} from {} is mounted there already; unmount it first or choose "
                        "another folder",
                        path, m->fstype, m->source)};
  return {};
}

}  // namespace fusefs
