// The stage daemon: the process behind a stage mount. It owns the store, the FUSE filesystem
// over it and its mount, the control socket that `discfs commit`, `status` and `discard`
// talk to (cli/control.h), and the --auto-commit thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "burner/commit.h"
#include "cli/control.h"
#include "cli/detach.h"
#include "cli/exit_codes.h"
#include "cli/stage_command.h"
#include "fusefs/stage_fs.h"
#include "stage/stage.h"
#include "stage/store.h"

namespace discfs {

// Where the lock of a target lives: beside the mount registry, named after its real path.
std::string target_lock_path(const std::string& target);

// The daemon of one stage: open() in the process that will serve, then serve().
class StageDaemon {
 public:
  // Serves `target` (its real path) with `capacity` (nullopt: the store's recorded one, else
  // the target's own) for `args`, which must outlive the daemon.
  StageDaemon(const StageArgs& args, std::string target, std::optional<uint64_t> capacity);

  // Opens the store at `store_dir` (absolute) and the base for a mount on `mountpoint` (its
  // real path); throws Error with the sentence for the user.
  void open(const std::string& store_dir, const std::string& mountpoint);

  // After open(): mounts the stage on `mountpoint` (its real path), starts the control
  // socket and the auto-commit timer, registers the mount for the other verbs, tells
  // `detach` that the stage is live, and serves until unmounted. A failure is told to
  // `detach`; one after the mount went live unmounts again. Returns the exit code.
  ExitCode serve(const std::string& mountpoint, Detach& detach);

 private:
  // Starts the control socket and the auto-commit thread; throws Error when the socket
  // cannot listen.
  void start();
  // Stops them again (what start() got to). Never throws.
  void stop();
  // Answers one control request (status, discard, commit); throws Error for the reply.
  void handle(const std::vector<std::string>& req, Reply& reply);
  // One commit at a time; writes wait while it runs. Throws what stage::commit() throws.
  burner::CommitResult commit(burner::CommitOptions o, std::chrono::seconds wait);
  // Commits once nothing has changed for --auto-commit seconds and something is staged.
  void auto_commit_loop();

  const StageArgs& args_;
  std::string target_;
  std::optional<uint64_t> capacity_;
  std::string store_dir_;
  stage::Stage stage_;  // the target's lock and the store, outliving fs_
  std::unique_ptr<fusefs::StageFs> fs_;
  std::unique_ptr<ControlServer> control_;
  std::mutex commit_mu_;
  std::thread auto_thread_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
};

}  // namespace discfs
