// Mounting a filesystem and running its multithreaded session loop until it is unmounted.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <string>
#include <vector>

namespace fusefs {

struct SessionOptions {
  std::string mountpoint;
  bool foreground = false;                // stay attached to the terminal (-f)
  bool debug = false;                     // libfuse's request trace (-d), implies foreground
  std::vector<std::string> fuse_options;  // passed as "-o OPT" to libfuse
  unsigned max_threads = 16;
};

enum class ServeResult { Ok, BadOptions, MountFailed, Failed };

// Creates a session over `ops` with `userdata`, mounts it (the mount is live when this
// returns in the parent after daemonizing), serves until unmount or a signal, and unmounts.
// Messages for failures go to the log.
ServeResult serve(const fuse_lowlevel_ops& ops, void* userdata, const SessionOptions& opts);

}  // namespace fusefs
