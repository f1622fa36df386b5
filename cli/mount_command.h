// `discfs mount`: options, checks before the mount, and serving.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace discfs {

struct MountArgs {
  std::string source;
  std::string mountpoint;
  std::vector<std::string> options;  // -o values, comma lists not yet split
  bool foreground = false;
  bool debug = false;
  std::string tree = "auto";
  unsigned session = 0;   // 1 = oldest; 0: the newest
  bool sessions = false;  // every session side by side as MOUNTPOINT/1 ... /N
  bool boot = false;      // El Torito boot images under MOUNTPOINT/.boot
  size_t cache_mib = 8;
  unsigned readahead_kb = 4096;
  unsigned threads = 2;
  bool from_mount_helper = false;  // called as "discfs SOURCE MOUNTPOINT -o OPTS" (mount.fuse3)
};

// Refuses a mount point that cannot take a mount (fusefs::check_mount_point): exit 7 (Busy)
// naming what is mounted there already, exit 6 (MountFailed) for a missing folder, a stale
// mount or anything else. Throws Failure.
void require_mount_point(const std::string& path);

// Adds the "mount" verb and its options to `app`, filling `args` when parsed.
CLI::App* add_mount_command(CLI::App& app, MountArgs& args);

// Checks the source and the mount point, mounts, and serves until unmounted. Throws
// Failure(Usage) for bad options, Failure(MountFailed) for a mount point that is not a
// directory or a mount that fails, and imagecore::Error when the source cannot be opened
// (see exit_status_for).
ExitCode run_mount(const MountArgs& args);

}  // namespace discfs
