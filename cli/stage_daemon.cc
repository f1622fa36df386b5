#include "cli/stage_daemon.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "cli/change_list.h"
#include "cli/fuse_options.h"
#include "cli/stage_report.h"
#include "fusefs/session.h"
#include "imagecore/base/error.h"
#include "stage/commit.h"
#include "stage/gate.h"

namespace discfs {
namespace {

using imagecore::Error;

fusefs::StageLimits limits_for(const burner::TargetInfo& t) {
  const stage::Room r = stage::room_of(t);
  fusefs::StageLimits l;
  l.capacity_bytes = r.capacity_bytes;
  l.used_by_target_bytes = r.used_by_target_bytes;
  l.session_overhead_bytes = r.session_overhead_bytes;
  return l;
}

// key=value words of a control request.
std::string arg(const std::vector<std::string>& req, const std::string& key) {
  for (size_t i = 1; i < req.size(); ++i)
    if (req[i].rfind(key + "=", 0) == 0)
      return req[i].substr(key.size() + 1);
  return "";
}

// A stage mount's side of a commit or a discard (stage::Gate): the FUSE gate of StageFs and
// the kernel's caches.
class MountGate : public stage::Gate {
 public:
  // `busy_text` is the sentence for files still open for writing after `wait`.
  // `cancel` (may be null) stops the wait for open files.
  MountGate(fusefs::StageFs& fs,
            std::chrono::seconds wait,
            std::function<std::string(const std::vector<std::string>& busy)> busy_text,
            const std::atomic<bool>* cancel = nullptr)
      : fs_(fs), wait_(wait), busy_text_(std::move(busy_text)), cancel_(cancel) {}

  void pause() override {
    std::function<bool()> cancelled;
    if (cancel_)
      cancelled = [this] { return cancel_->load(); };
    const std::vector<std::string> busy = fs_.pause_writes(wait_, cancelled);
    if (!busy.empty())
      throw Error(EBUSY, busy_text_(busy));
  }
  void resume() override { fs_.resume(); }
  void resume_with_new_base(stage::Store&,
                            const stage::Base& base,
                            const burner::TargetInfo& t) override {
    fs_.resume_with_new_base(base.tree, base.start_lba, base.blocks, limits_for(t));
  }
  void remember_cached() override { names_ = fs_.kernel_names(); }
  void forget_cached() override { fs_.forget_in_kernel(names_); }

 private:
  fusefs::StageFs& fs_;
  std::chrono::seconds wait_;
  std::function<std::string(const std::vector<std::string>&)> busy_text_;
  const std::atomic<bool>* cancel_;
  std::vector<fusefs::StageFs::KernelName> names_;
};

// The exit code of a stage whose session ended with `result`, reported through `detach` when
// forked and not yet reported.
ExitCode verdict(fusefs::ServeResult result, const std::string& mountpoint, Detach& detach) {
  switch (result) {
    case fusefs::ServeResult::Ok:
      return ExitCode::Ok;
    case fusefs::ServeResult::BadOptions:
      return detach.fail(ExitCode::Usage, "bad mount options (see above)");
    case fusefs::ServeResult::MountFailed:
      return detach.fail(ExitCode::MountFailed, "cannot mount on " + mountpoint);
    case fusefs::ServeResult::Failed:
      return detach.fail(ExitCode::Internal, "the FUSE session failed");
  }
  return ExitCode::Internal;
}

// How the stage of `target` is mounted: in this process, which has detached already if it
// was to, with the -o options after the stage's own.
fusefs::SessionOptions session_options(const StageArgs& args, const std::string& target) {
  fusefs::SessionOptions so;
  so.mountpoint = args.mountpoint;
  so.foreground = true;
  so.debug = args.debug;
  so.threads = args.threads;
  so.fuse_options = safe_mount_defaults();
  for (const char* o : {"default_permissions", "subtype=discfs"})
    so.fuse_options.push_back(o);
  so.fuse_options.push_back(fsname_option(target));
  for (const std::string& o : parse_stage_options(args.options))
    so.fuse_options.push_back(o);
  return so;
}

}  // namespace

std::string target_lock_path(const std::string& target) {
  return registry_file("target:" + target) + ".lock";
}

StageDaemon::StageDaemon(const StageArgs& args,
                         std::string target,
                         std::optional<uint64_t> capacity)
    : args_(args), target_(std::move(target)), capacity_(capacity) {}

void StageDaemon::open(const std::string& store_dir, const std::string& mountpoint) {
  store_dir_ = store_dir;
  stage_ =
      stage::open_for_mount(target_, capacity_, store_dir, mountpoint, target_lock_path(target_));
  capacity_ = stage_.capacity;  // the store's recorded one when none was given
  fs_ = std::make_unique<fusefs::StageFs>(*stage_.store, limits_for(stage_.info));
}

ExitCode StageDaemon::serve(const std::string& mountpoint, Detach& detach) {
  const std::string registry = registry_file(mountpoint);
  fusefs::SessionOptions so = session_options(args_, target_);
  fuse_session* session = nullptr;
  so.on_session = [&](fuse_session* se) {
    session = se;
    fs_->set_session(se);
  };
  bool started = false, start_failed = false;
  so.after_mount = [&] {
    try {
      start();
      stage_.lock->mounted_on(mountpoint);
      std::filesystem::create_directories(std::filesystem::path(registry).parent_path());
      std::ofstream(registry) << store_dir_ << "\n";
      started = true;
      detach.report(ExitCode::Ok, "");
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", mountpoint, e.what());
      detach.report(ExitCode::Internal, e.what());
      // The user was told the stage failed: no mount may stay behind that nothing commits.
      start_failed = true;
      fuse_session_exit(session);
    }
  };
  const fusefs::ServeResult result = fusefs::serve(fusefs::StageFs::ops(), fs_.get(), so);
  if (started) {
    std::error_code ec;
    std::filesystem::remove(registry, ec);
  }
  stop();
  return start_failed ? ExitCode::Internal : verdict(result, args_.mountpoint, detach);
}

void StageDaemon::start() {
  control_ = std::make_unique<ControlServer>(
      stage_.store->dir() + "/control.sock",
      [this](const std::vector<std::string>& req, Reply& reply) { handle(req, reply); });
  if (args_.auto_commit > 0)
    auto_thread_ = std::thread([this] { auto_commit_loop(); });
}

void StageDaemon::stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (auto_thread_.joinable())
    auto_thread_.join();
  control_.reset();
}

void StageDaemon::handle(const std::vector<std::string>& req, Reply& reply) {
  const std::string& verb = req.at(0);
  if (verb == "status") {
    reply.ok(to_json(status_report(*stage_.store, target_, fs_->free_bytes())));
  } else if (verb == "discard") {
    const std::vector<std::string> paths(req.begin() + 1, req.end());
    MountGate gate(*fs_, std::chrono::seconds(10), [](const std::vector<std::string>& busy) {
      return fmt::format("files are still open for writing: {}", fmt::join(busy, ", "));
    });
    reply.ok("{\"dropped\":" + to_json(stage::discard(*stage_.store, paths, gate)) + "}");
  } else if (verb == "commit") {
    burner::CommitOptions o;
    o.dummy = arg(req, "dummy") == "1";
    o.to_path = arg(req, "to").empty() ? std::nullopt : std::optional(arg(req, "to"));
    if (o.to_path && !o.to_path->starts_with('/'))  // the client resolves it against its own cwd
      throw Error(EINVAL,
                  fmt::format("{}: --to must reach the daemon as an absolute path", *o.to_path));
    o.volid = arg(req, "volid");
    o.joliet = arg(req, "joliet") != "0";
    o.md5 = arg(req, "md5") != "0";
    const std::string wait = arg(req, "wait");
    const auto secs = wait.empty() ? 30 : std::strtoul(wait.c_str(), nullptr, 10);
    o.progress = [&reply](uint64_t done, uint64_t total) { reply.progress(done, total); };
    o.phase = [&reply](const char* name) { reply.phase(name); };
    // The client cancels (Ctrl-C) by sending "cancel" or by going away; stage::commit
    // honours it up to the commit point.
    std::atomic<bool> cancel{false}, finished{false};
    std::thread watch([&] {
      while (!finished && !cancel)
        if (reply.cancel_requested(100))
          cancel = true;
    });
    struct Join {
      std::atomic<bool>& finished;
      std::thread& t;
      ~Join() {
        finished = true;
        t.join();
      }
    } join{finished, watch};
    o.cancel = &cancel;
    reply.ok(to_json(CommitReport{commit(o, std::chrono::seconds(secs)), arg(req, "to")}));
  } else {
    throw Error(EINVAL, fmt::format("unknown request '{}'", verb));
  }
}

burner::CommitResult StageDaemon::commit(burner::CommitOptions o, std::chrono::seconds wait) {
  std::lock_guard one(commit_mu_);
  o.target = target_;
  o.capacity_bytes = capacity_;
  MountGate gate(
      *fs_, wait,
      [wait](const std::vector<std::string>& busy) {
        return fmt::format(
            "files are still open for writing after {} s: {}; close them and commit again",
            wait.count(), fmt::join(busy, ", "));
      },
      o.cancel);
  return stage::commit(*stage_.store, o, gate);
}

void StageDaemon::auto_commit_loop() {
  std::string last;
  auto quiet_since = std::chrono::steady_clock::now();
  std::unique_lock lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
    lock.unlock();
    try {
      const stage::StoreStatus s = stage_.store->status();
      const std::string now = fmt::format("{} {} {} {} {} {}", s.added, s.changed, s.deleted,
                                          s.renamed, s.bytes_staged, fs_->change_count());
      const bool staged = !s.empty();
      if (now != last) {
        last = now;
        quiet_since = std::chrono::steady_clock::now();
      } else if (staged && std::chrono::steady_clock::now() - quiet_since >=
                               std::chrono::seconds(args_.auto_commit)) {
        commit(burner::CommitOptions{}, std::chrono::seconds(0));
        last.clear();
      }
    } catch (const std::exception& e) {
      spdlog::error("{}: automatic commit failed: {}", target_, e.what());
      quiet_since = std::chrono::steady_clock::now();  // try again after the next quiet
    }
    lock.lock();
  }
}

}  // namespace discfs
