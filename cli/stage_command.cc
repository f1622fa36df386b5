#include "cli/stage_command.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "burner/commit.h"
#include "burner/target.h"
#include "cli/cancel_signal.h"
#include "cli/change_list.h"
#include "cli/control.h"
#include "cli/detach.h"
#include "cli/flat_json.h"
#include "cli/logging.h"
#include "cli/mount_command.h"
#include "cli/progress.h"
#include "cli/stage_daemon.h"
#include "cli/stage_report.h"
#include "imagecore/base/error.h"
#include "imagecore/base/json.h"
#include "stage/commit.h"
#include "stage/gate.h"
#include "stage/stage.h"
#include "stage/store.h"
#include "stage/target_lock.h"

namespace discfs {
namespace {

using imagecore::Error;
using imagecore::json_string;

// The real path of a target that may not exist yet (its directory must).
std::string absolute_target(const std::string& path) {
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real))
    return real;
  const std::filesystem::path p = std::filesystem::absolute(path);
  const std::string dir = p.parent_path().string();
  if (!::realpath(dir.c_str(), real))
    throw Error(errno, fmt::format("{}: the folder {} does not exist", path, dir));
  return (std::filesystem::path(real) / p.filename()).string();
}

// The --capacity in bytes; nullopt when not given. Throws Failure(Usage) when it does not
// parse.
std::optional<uint64_t> capacity_of(const std::string& value) {
  if (value.empty())
    return std::nullopt;
  try {
    return burner::parse_capacity(value);
  } catch (const Error& e) {
    if (e.code() == EINVAL)
      throw Failure(ExitCode::Usage, e.what());
    throw;
  }
}

// Refuses a command line that names both a stage MOUNTPOINT and --store DIR, or neither.
// Throws Failure(Usage) naming `verb`.
void require_one_stage(std::string_view verb,
                       const std::string& mountpoint,
                       const std::string& store) {
  if (mountpoint.empty() == store.empty())
    throw Failure(ExitCode::Usage,
                  fmt::format("{} wants a stage MOUNTPOINT or --store DIR (one of them)", verb));
}

// The store directory a verb acts on: --store, or the one registered for the mount point.
std::string store_for(const std::string& mountpoint, const std::string& store) {
  if (!store.empty())
    return store;
  char real[PATH_MAX];
  if (!::realpath(mountpoint.c_str(), real))
    throw Error(errno, fmt::format("{}: {}", mountpoint, std::strerror(errno)));
  std::ifstream in(registry_file(real));
  std::string dir;
  if (!std::getline(in, dir) || dir.empty())
    throw Error(ENOENT, fmt::format("{}: no stage mount of discfs is there", mountpoint));
  return dir;
}

// Runs a request on the daemon of `store`; nullopt when no daemon serves it. `cancel_fd` as
// control_request() takes it.
std::optional<ControlResult> ask_daemon(
    const std::string& store,
    const std::vector<std::string>& request,
    const std::function<void(const std::vector<std::string>&)>& on_line,
    int cancel_fd = -1) {
  try {
    return control_request(store + "/control.sock", request, on_line, cancel_fd);
  } catch (const Error& e) {
    if (e.code() == ENOENT || e.code() == ECONNREFUSED)
      return std::nullopt;
    throw;
  }
}

// A commit of `store`, which no daemon serves, from this process. Throws what
// stage::commit() throws, and Error(EBUSY) when another stage holds the target.
CommitReport commit_here(const std::string& store, const CommitArgs& args, ProgressBar& bar) {
  stage::Stage d = stage::open_store(store, false);
  d.lock = std::make_unique<stage::TargetLock>(target_lock_path(d.target), d.target, store);
  burner::CommitOptions o;
  o.target = d.target;
  o.capacity_bytes = d.capacity;
  o.dummy = args.dummy;
  if (!args.to.empty())
    o.to_path = args.to;
  o.volid = args.volid;
  o.joliet = !args.no_joliet;
  o.md5 = !args.no_md5;
  o.progress = [&](uint64_t done, uint64_t total) { bar.update(done, total); };
  o.phase = [&](const char* name) { bar.phase(name); };
  o.cancel = &CancelOnSignal::requested;
  stage::Gate nothing_serves_it;
  return CommitReport{stage::commit(*d.store, o, nothing_serves_it), args.to};
}

// A commit of the stage of `args`: by its daemon, or, with --store and no daemon, from here.
// `cancel` is readable once the user interrupted. Throws imagecore::Error with the sentence
// for the user.
CommitReport commit_stage(const CommitArgs& args, ProgressBar& bar, const CancelOnSignal& cancel) {
  const std::string store = store_for(args.mountpoint, args.store);
  bool written = false;
  const std::vector<std::string> req = {"commit",
                                        fmt::format("dummy={}", args.dummy ? 1 : 0),
                                        "to=" + args.to,
                                        "volid=" + args.volid,
                                        fmt::format("joliet={}", args.no_joliet ? 0 : 1),
                                        fmt::format("md5={}", args.no_md5 ? 0 : 1),
                                        fmt::format("wait={}", args.wait)};
  std::optional<ControlResult> r = ask_daemon(
      store, req,
      [&](const auto& words) {
        if (words[0] == "progress" && words.size() >= 3) {
          bar.update(std::stoull(words[1]), std::stoull(words[2]));
        } else if (words[0] == "phase" && words.size() >= 2) {
          written = written || words[1] == "written";
          bar.phase(words[1]);
        } else if (words[0] == "cancel") {
          bar.note(written ? "interrupted after the commit point: the session is written; "
                             "finishing"
                           : "cancelling the commit...");
        } else if (words[0] == "info" && words.size() >= 2) {
          bar.note(words[1]);
        }
      },
      cancel.fd());
  if (r) {
    if (!r->ok)
      throw Error(r->err, r->text);
    return commit_from_json(r->text);
  }
  if (args.store.empty())
    throw Error(ENOENT,
                fmt::format("{}: the stage daemon of this mount is not running", args.mountpoint));
  return commit_here(store, args, bar);
}

// The status of `store`: from its daemon, or from the store when no daemon serves it.
// Throws imagecore::Error with the sentence for the user.
StatusReport status_of(const std::string& store) {
  if (std::optional<ControlResult> r = ask_daemon(store, {"status"}, [](const auto&) {})) {
    if (!r->ok)
      throw Error(r->err, r->text);
    return status_from_json(r->text);
  }
  stage::Stage d = stage::open_store(store, false);
  return status_report(*d.store, d.target,
                       stage::free_bytes_after_commit(d.info, d.store->staged_bytes()));
}

// Whether to drop everything staged in `store`, asked of the user: on a terminal, after
// showing what is staged; elsewhere a whole discard needs --all. Throws Failure(Usage) when
// not on a terminal.
bool confirm_discard_all(const std::string& store) {
  if (!::isatty(STDIN_FILENO))
    throw Failure(ExitCode::Usage,
                  "discard without PATH drops every staged change: add --all to mean it");
  const StatusReport report = status_of(store);
  if (report.changes && report.changes->empty()) {
    std::cout << "nothing is staged; nothing dropped\n";
    return false;
  }
  if (report.changes)
    std::cerr << to_text(*report.changes)
              << fmt::format("Drop all {} staged changes above? [y/N] ", report.changes->size());
  else
    std::cerr << "Drop every staged change? [y/N] ";
  std::string answer;
  if (!std::getline(std::cin, answer) || (answer != "y" && answer != "Y" && answer != "yes")) {
    std::cout << "nothing dropped\n";
    return false;
  }
  return true;
}

// What a daemon's answer to "discard" says was dropped; nullopt from a daemon older than
// that answer. Throws imagecore::Error(EPROTO) when `json` is malformed.
std::optional<std::vector<stage::StagedChange>> dropped_in(const std::string& json) {
  const auto members = parse_flat_json(json);
  const auto it = members.find("dropped");
  if (it == members.end())
    return std::nullopt;
  return changes_from_json(it->second);
}

}  // namespace

std::string default_store_dir(const std::string& target_realpath) {
  std::string base;
  if (const char* s = std::getenv("XDG_STATE_HOME"); s && *s)
    base = s;
  else if (const char* h = std::getenv("HOME"); h && *h)
    base = std::string(h) + "/.local/state";
  else
    base = "/var/tmp";
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the real path: one store per target
  for (unsigned char c : target_realpath)
    h = (h ^ c) * 1099511628211ull;
  return fmt::format("{}/discfs/{}-{:016x}", base,
                     std::filesystem::path(target_realpath).filename().string(), h);
}

CLI::App* add_stage_command(CLI::App& app, StageArgs& a) {
  CLI::App* c = app.add_subcommand(
      "stage",
      "Mount a writable staging folder over TARGET's newest session; 'discfs commit' "
      "turns what changed into a new session.");
  c->add_option("TARGET", a.target,
                "Image file (created by the first commit if missing) or block device")
      ->required();
  c->add_option("MOUNTPOINT", a.mountpoint, "Existing directory to mount on")->required();
  c->add_option("--store", a.store,
                "Where staged changes are kept (default: $XDG_STATE_HOME/discfs/NAME-HASH)");
  c->add_option("--capacity", a.capacity,
                "Room on the medium: cd, dvd, dvd-dl, bd, bd-dl or bytes (K/M/G/T); kept with "
                "the store for later stages; default: the store's, else unlimited for image "
                "files, the size of a block device");
  c->add_option("--auto-commit", a.auto_commit, "Commit after SECS seconds without changes")
      ->check(CLI::Range(1, 86400 * 365));
  c->add_option("-o", a.options,
                "FUSE mount options, comma-separated (allow_other, ...; nosuid,nodev unless "
                "suid or dev is given)");
  c->add_flag("-f,--foreground", a.foreground, "Stay in the foreground");
  c->add_flag("-d,--debug", a.debug, "Trace FUSE requests (implies -f)");
  c->add_option("--threads", a.threads, "Threads answering requests (default 2)")
      ->check(CLI::Range(1, 64));
  return c;
}

CLI::App* add_commit_command(CLI::App& app, CommitArgs& a) {
  CLI::App* c = app.add_subcommand(
      "commit",
      "Write what is staged as one new session on the target, check it, and clear "
      "the staging area. Ctrl-C before the commit point cancels it (exit 130).");
  c->add_option("MOUNTPOINT", a.mountpoint, "The stage mount");
  c->add_option("--store", a.store, "The store directory (works without a mount too)");
  c->add_option("--to", a.to,
                "Write base plus changes as a new single-session image here "
                "instead; the target is left as it is");
  c->add_option("--volid", a.volid, "Volume identifier of the new session");
  c->add_flag("--dummy", a.dummy, "Go through every step without writing anything");
  c->add_flag("--no-joliet", a.no_joliet, "Leave out the Joliet tree");
  c->add_flag("--no-md5", a.no_md5, "Record no MD5 tags (the session cannot then be checked)");
  c->add_option("--wait", a.wait,
                "Seconds to wait for files still open for writing "
                "(default 30)");
  c->add_flag("--json", a.json, "Progress and result as JSON lines on standard output");
  return c;
}

CLI::App* add_status_command(CLI::App& app, StatusArgs& a) {
  CLI::App* c =
      app.add_subcommand("status", "Show what is staged, path by path, and the room left.");
  c->add_option("MOUNTPOINT", a.mountpoint, "The stage mount");
  c->add_option("--store", a.store, "The store directory (works without a mount too)");
  c->add_flag("--json", a.json, "One JSON object");
  return c;
}

CLI::App* add_discard_command(CLI::App& app, DiscardArgs& a) {
  CLI::App* c = app.add_subcommand(
      "discard",
      "Drop staged changes at the given paths, or all of them with --all, and list what was "
      "dropped.");
  c->add_option("MOUNTPOINT", a.mountpoint, "The stage mount");
  c->add_option("PATH", a.paths, "Paths on the stage (\"/docs/a.txt\")");
  c->add_flag("--all", a.all,
              "Drop every staged change (without PATH or --all, discard asks on a terminal "
              "and refuses otherwise)");
  c->add_option("--store", a.store, "The store directory (works without a mount too)");
  return c;
}

ExitCode run_stage(const StageArgs& args) {
  const bool foreground = args.foreground || args.debug;
  set_up_logging(args.debug ? spdlog::level::debug : spdlog::level::warn,
                 foreground ? Syslog::No : Syslog::Yes);
  const std::string target = absolute_target(args.target);
  const std::optional<uint64_t> capacity = capacity_of(args.capacity);
  require_mount_point(args.mountpoint);
  char real[PATH_MAX];
  const std::string mountpoint = ::realpath(args.mountpoint.c_str(), real) ? real : args.mountpoint;
  // Absolute: the mount registry hands it to verbs run from other directories.
  const std::string store_dir =
      std::filesystem::absolute(args.store.empty() ? default_store_dir(target) : args.store);
  Detach detach;
  try {
    if (!foreground)
      detach.fork_and_wait();  // the parent exits with the daemon's verdict
  } catch (const Error& e) {
    throw Failure(ExitCode::Internal, e.what());  // no pipe or no fork: not the target's fault
  }

  StageDaemon daemon(args, target, capacity);
  try {
    std::filesystem::create_directories(store_dir);
    daemon.open(store_dir, mountpoint);
  } catch (...) {
    // Forked: the waiting parent prints the sentence and exits with the code.
    const ExitStatus status = exit_status_for(std::current_exception());
    return detach.fail(status.code, status.message);
  }
  return daemon.serve(mountpoint, detach);
}

ExitCode run_commit(const CommitArgs& given) {
  CommitArgs args = given;
  set_up_logging(spdlog::level::warn, Syslog::No);
  require_one_stage("commit", args.mountpoint, args.store);
  // --to is resolved here, against the caller's directory, not the daemon's.
  if (!args.to.empty())
    args.to = std::filesystem::absolute(args.to).lexically_normal().string();
  ProgressBar bar(args.json);
  CancelOnSignal cancel;
  try {
    const CommitReport report = commit_stage(args, bar, cancel);
    bar.done();
    if (CancelOnSignal::requested)
      bar.note("the interrupt came after the commit point: the session was written");
    if (args.json)
      std::cout << "{\"event\":\"done\",\"result\":" << to_json(report) << "}\n";
    else
      std::cout << to_text(report);
    return ExitCode::Ok;
  } catch (const std::exception& e) {
    bar.done();
    const auto* error = dynamic_cast<const Error*>(&e);
    if (error && error->code() == ECANCELED) {
      const std::string sentence =
          "commit cancelled: nothing was written, the target still shows its previous "
          "session, and the staged changes are kept";
      if (args.json)
        std::cout << "{\"event\":\"cancelled\",\"message\":" << json_string(sentence) << "}\n";
      throw Failure(ExitCode::Cancelled, sentence);
    }
    if (args.json)
      std::cout << "{\"event\":\"error\",\"message\":" << json_string(e.what()) << "}\n";
    // main prints the sentence; exit 7 when busy, else 8
    throw CommitFailure(error ? error->code() : EIO, e.what());
  }
}

ExitCode run_status(const StatusArgs& args) {
  set_up_logging(spdlog::level::warn, Syslog::No);
  require_one_stage("status", args.mountpoint, args.store);
  const StatusReport report = status_of(store_for(args.mountpoint, args.store));
  std::cout << (args.json ? to_json(report) + "\n" : to_text(report));
  return ExitCode::Ok;
}

ExitCode run_discard(const DiscardArgs& args) {
  set_up_logging(spdlog::level::warn, Syslog::No);
  require_one_stage("discard", args.mountpoint, args.store);
  if (args.all && !args.paths.empty())
    throw Failure(ExitCode::Usage, "discard takes PATHs or --all, not both");
  const std::string store = store_for(args.mountpoint, args.store);
  if (!args.all && args.paths.empty() && !confirm_discard_all(store))
    return ExitCode::Ok;
  std::vector<std::string> req{"discard"};
  req.insert(req.end(), args.paths.begin(), args.paths.end());
  std::vector<stage::StagedChange> dropped;
  if (std::optional<ControlResult> r = ask_daemon(store, req, [](const auto&) {})) {
    if (!r->ok)
      throw Error(r->err, r->text);
    const std::optional<std::vector<stage::StagedChange>> said = dropped_in(r->text);
    if (!said) {
      std::cout << "discarded\n";  // a daemon older than the list
      return ExitCode::Ok;
    }
    dropped = *said;
  } else {
    stage::Stage d = stage::open_store(store, args.paths.empty());
    stage::Gate nothing_serves_it;
    dropped = stage::discard(*d.store, args.paths, nothing_serves_it);
  }
  if (dropped.empty())
    std::cout << "nothing was staged there; nothing dropped\n";
  else
    std::cout << fmt::format("dropped {} staged change{}:\n", dropped.size(),
                             dropped.size() == 1 ? "" : "s")
              << to_text(dropped);
  return ExitCode::Ok;
}

}  // namespace discfs
