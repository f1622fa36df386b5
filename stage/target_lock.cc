#include "stage/target_lock.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

namespace stage {

namespace {

// Creates the lock file's folder first (the runtime folder may be new).
const std::string& with_folder(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  return path;
}

}  // namespace

TargetLock::TargetLock(const std::string& lock_path,
                       const std::string& target,
                       const std::string& store)
    : file_(with_folder(lock_path), 0600, [&target](std::string holder) {
        std::replace(holder.begin(), holder.end(), '\n', ' ');
        return fmt::format("{}: already staged or being committed ({})", target,
                           holder.empty() ? "another process" : holder);
      }) {
  if (!file_.record(fmt::format("process {}, store {}", ::getpid(), store)))
    spdlog::debug("{}: cannot record the holder", lock_path);
}

}  // namespace stage
