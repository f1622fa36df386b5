// The stage daemon: the process behind a stage mount. It owns the store, the FUSE filesystem
// over it, the control socket that `discfs commit`, `status` and `discard` talk to
// (cli/control.h), and the --auto-commit thread.
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
#include "cli/stage_command.h"
#include "fusefs/stage_fs.h"
#include "stage/stage.h"
#include "stage/store.h"

namespace discfs {

// Where the lock of a target lives: beside the mount registry, named after its real path.
std::string target_lock_path(const std::string& target);

class StageDaemon {
 public:
  // Serves `target` (its real path) with `capacity` (nullopt: the target's own) for `args`,
  // which must outlive the daemon.
  StageDaemon(const StageArgs& args, std::string target, std::optional<uint64_t> capacity);

  // Opens the store and the base; throws Error with the sentence for the user.
  void open(const std::string& store_dir);

  // The target's real path.
  const std::string& target() const { return target_; }
  // The filesystem and the store, once open() succeeded.
  fusefs::StageFs& fs() { return *fs_; }
  stage::Store& store() { return *stage_.store; }

  // Starts the control socket and the auto-commit timer (in the daemon, once mounted).
  // Throws imagecore::Error when the socket cannot listen.
  void start();

  // Stops the auto-commit timer and the control socket. Never throws.
  void stop();

  // One commit at a time; writes wait while it runs. Throws what stage::commit() throws.
  burner::CommitResult commit(burner::CommitOptions o, std::chrono::seconds wait);

 private:
  void handle(const std::vector<std::string>& req, Reply& reply);
  void auto_commit_loop();

  const StageArgs& args_;
  std::string target_;
  std::optional<uint64_t> capacity_;
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
