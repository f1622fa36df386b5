// Mounting a filesystem and running its multithreaded session loop until it is unmounted.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <functional>
#include <string>
#include <vector>

namespace fusefs {

struct SessionOptions {
  std::string mountpoint;
  bool foreground = false;                // stay attached to the terminal (-f)
  bool debug = false;                     // libfuse's request trace (-d), implies foreground
  std::vector<std::string> fuse_options;  // passed as "-o OPT" to libfuse
  // Workers reading requests. A fixed pool: libfuse's multithreaded loop starts and ends
  // threads with the load and hands successive requests to different threads, which on
  // these VMs cost 2-3x in latency (see README, Performance).
  unsigned threads = 2;
  // Kernel readahead for the mount in KiB (0: leave the kernel's 128). Larger windows let
  // sequential reads arrive as several large requests in flight. Needs root (sysfs).
  unsigned readahead_kb = 0;
  // Called once the mount is live (after libfuse daemonized, when it does), before requests
  // are served: where a caller starts its own threads or reports success to a parent.
  std::function<void()> after_mount;
  // Called with the session once it exists: for filesystems that tell the kernel to drop
  // cached entries (fuse_lowlevel_notify_inval_*).
  std::function<void(fuse_session*)> on_session;
};

enum class ServeResult { Ok, BadOptions, MountFailed, Failed };

// Creates a session over `ops` with `userdata`, mounts it (the mount is live when this
// returns in the parent after daemonizing), serves until unmount or a signal, and unmounts.
// Messages for failures go to the log.
ServeResult serve(const fuse_lowlevel_ops& ops, void* userdata, const SessionOptions& opts);

}  // namespace fusefs
