#include "stage/target_lock.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "imagecore/base/mount_table.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>

namespace stage {

namespace {

// Creates the lock file's folder first (the runtime folder may be new).
const std::string& with_folder(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  return path;
}

constexpr std::string_view kMountedOn = ", mounted on ";

// A holder that recorded a mount point where no discfs mount is any more: a stage just
// unmounted, whose daemon is closing its store.
bool mount_gone(const std::string& holder) {
  const size_t at = holder.rfind(kMountedOn);
  if (at == std::string::npos)
    return false;
  const std::string mountpoint = holder.substr(at + kMountedOn.size());
  const std::optional<imagecore::MountEntry> m = imagecore::mount_at(mountpoint);
  return !m || m->fstype != "fuse.discfs";
}

}  // namespace

TargetLock::TargetLock(const std::string& lock_path,
                       const std::string& target,
                       const std::string& store)
    : file_(
          with_folder(lock_path),
          0600,
          [&target](std::string holder) {
            std::replace(holder.begin(), holder.end(), '\n', ' ');
            return fmt::format("{}: already staged or being committed ({})", target,
                               holder.empty() ? "another process" : holder);
          },
          mount_gone,
          kLeavingWait) {
  holder_ = fmt::format("process {}, store {}", ::getpid(), store);
  if (!file_.record(holder_))
    spdlog::debug("{}: cannot record the holder", lock_path);
}

void TargetLock::mounted_on(const std::string& mountpoint) {
  if (!file_.record(holder_ + std::string(kMountedOn) + mountpoint))
    spdlog::debug("{}: cannot record the holder's mount", file_.path());
}

}  // namespace stage
