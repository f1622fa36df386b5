// `discfs stage`, `commit`, `status` and `discard`: the writable staging mount of a target
// and the verbs that act on it, through the stage daemon's control socket (cli/control.h)
// or, with --store and no daemon running, directly on the store.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace discfs {

struct StageArgs {
  std::string target;
  std::string mountpoint;
  std::string store;  // empty: $XDG_STATE_HOME/discfs/<target name>-<hash>
  std::string capacity;
  unsigned auto_commit = 0;  // seconds of quiet before committing; 0: never
  std::vector<std::string> options;
  bool foreground = false;
  bool debug = false;
  unsigned threads = 2;
};

struct CommitArgs {
  std::string mountpoint;  // or store
  std::string store;
  std::string to;
  std::string volid;
  bool dummy = false;
  bool no_joliet = false;
  bool no_md5 = false;
  bool json = false;
  unsigned wait = 30;  // seconds to wait for files open for writing
};

struct StatusArgs {
  std::string mountpoint;
  std::string store;
  bool json = false;
};

struct DiscardArgs {
  std::string mountpoint;
  std::string store;
  std::vector<std::string> paths;
  bool all = false;  // every staged change; without it and without paths, ask on a terminal
};

// Add the verbs and their options to `app`, filling `args` when parsed.
CLI::App* add_stage_command(CLI::App& app, StageArgs& args);
CLI::App* add_commit_command(CLI::App& app, CommitArgs& args);
CLI::App* add_status_command(CLI::App& app, StatusArgs& args);
CLI::App* add_discard_command(CLI::App& app, DiscardArgs& args);

// Run the verbs. Each returns the exit code, or throws what exit_status_for turns into one
// (a failed commit as CommitFailure); run_stage reports errors found after it forked through
// the waiting parent instead.
ExitCode run_stage(const StageArgs& args);
ExitCode run_commit(const CommitArgs& args);
ExitCode run_status(const StatusArgs& args);
ExitCode run_discard(const DiscardArgs& args);

// The default store directory of a target: $XDG_STATE_HOME/discfs/NAME-HASH (XDG_STATE_HOME
// defaults to ~/.local/state), NAME the target's file name and HASH of its real path.
std::string default_store_dir(const std::string& target_realpath);

}  // namespace discfs
