#include "fusefs/session.h"

#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fusefs {
namespace {

struct ArgsDeleter {
  void operator()(fuse_args* a) const {
    fuse_opt_free_args(a);
    delete a;
  }
};
struct SessionDeleter {
  void operator()(fuse_session* s) const { fuse_session_destroy(s); }
};

// The kernel sets a FUSE mount's readahead when it gets the INIT reply, and a filesystem may
// only lower it there; raising it means writing the bdi's sysfs knob after INIT. A stat of
// the mount point returns only once INIT (and that GETATTR) has been served, so this runs
// on its own thread while the session loop answers.
void raise_readahead(const std::string& mountpoint, unsigned kb) {
  struct stat st {};
  if (::stat(mountpoint.c_str(), &st) != 0)
    return;
  const std::string knob = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                           std::to_string(minor(st.st_dev)) + "/read_ahead_kb";
  std::ofstream out(knob);
  out << kb;
  out.flush();
  if (!out)
    spdlog::debug("{}: cannot set the readahead to {} KiB via {}", mountpoint, kb, knob);
}

// Runs `n` workers on the session until it ends. Only the calling thread takes signals (the
// others block them), so SIGINT/SIGTERM interrupt its read and end the loop; unmounting then
// ends the other workers' reads with ENODEV. Returns 0 or a negative errno.
int run_workers(fuse_session* se, unsigned n, const std::function<void()>& also) {
  std::atomic<int> error{0};
  auto work = [&] {
    fuse_buf buf{};
    while (!fuse_session_exited(se)) {
      const int res = fuse_session_receive_buf(se, &buf);
      if (res == -EINTR)
        continue;
      if (res <= 0) {
        if (res < 0 && res != -ENODEV)
          error = res;
        fuse_session_exit(se);
        break;
      }
      fuse_session_process_buf(se, &buf);
    }
    std::free(buf.mem);
  };
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i)
    threads.emplace_back(work);
  threads.emplace_back(also);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  work();
  fuse_session_unmount(se);
  for (std::thread& t : threads)
    t.join();
  return error;
}

}  // namespace

ServeResult serve(const fuse_lowlevel_ops& ops, void* userdata, const SessionOptions& opts) {
  std::unique_ptr<fuse_args, ArgsDeleter> args(new fuse_args FUSE_ARGS_INIT(0, nullptr));
  fuse_opt_add_arg(args.get(), "discfs");
  if (opts.debug)
    fuse_opt_add_arg(args.get(), "-d");
  for (const std::string& o : opts.fuse_options) {
    fuse_opt_add_arg(args.get(), "-o");
    fuse_opt_add_arg(args.get(), o.c_str());
  }
  std::unique_ptr<fuse_session, SessionDeleter> se(
      fuse_session_new(args.get(), &ops, sizeof ops, userdata));
  if (!se)
    return ServeResult::BadOptions;  // libfuse printed which option it did not know
  if (fuse_set_signal_handlers(se.get()) != 0)
    return ServeResult::Failed;
  if (fuse_session_mount(se.get(), opts.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se.get());
    return ServeResult::MountFailed;
  }
  fuse_daemonize(opts.foreground || opts.debug);

  const std::string mountpoint = opts.mountpoint;
  const unsigned readahead_kb = opts.readahead_kb;
  const int rc = run_workers(se.get(), std::max(1u, opts.threads), [mountpoint, readahead_kb] {
    if (readahead_kb)
      raise_readahead(mountpoint, readahead_kb);
  });
  fuse_remove_signal_handlers(se.get());
  if (rc != 0)
    spdlog::error("{}: the FUSE session ended with an error ({})", opts.mountpoint, rc);
  return rc == 0 ? ServeResult::Ok : ServeResult::Failed;
}

}  // namespace fusefs
