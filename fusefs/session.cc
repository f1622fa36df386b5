#include "fusefs/session.h"

#include <linux/fuse.h>

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "imagecore/base/mount_table.h"

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

// The kernel sets a FUSE mount's readahead from the INIT reply, and a filesystem may only
// lower it there; raising it means writing the bdi's sysfs knob after that reply.
void raise_readahead(const std::string& device, unsigned kb) {
  const std::string knob = "/sys/class/bdi/" + device + "/read_ahead_kb";
  std::ofstream out(knob);
  out << kb;
  out.flush();
  if (!out)
    spdlog::debug("cannot set the readahead to {} KiB via {}", kb, knob);
}

// The opcode of a request read into memory (struct fuse_in_header: len, then opcode).
uint32_t opcode_of(const fuse_buf& buf) {
  uint32_t op = 0;
  if (!(buf.flags & FUSE_BUF_IS_FD) && buf.mem && buf.size >= 8)
    std::memcpy(&op, static_cast<const char*>(buf.mem) + 4, sizeof op);
  return op;
}

// Runs `n` workers on the session until it ends. A fixed pool: libfuse's multithreaded loop
// starts and ends threads with the load and hands successive requests to different threads,
// which cost 2-3x in latency on the machines measured (README). Only the calling thread takes
// signals (the others block them), so SIGINT/SIGTERM interrupt its read and end the loop;
// unmounting then ends the other workers' reads with ENODEV.
//
// `after_init` runs on the worker that answered INIT, right after that reply: the kernel has
// applied the reply by then, and no other request is served before `after_init` returns, so
// even a file opened at once after the mount sees what it set. Returns 0 or a negative errno.
int run_workers(fuse_session* se, unsigned n, const std::function<void()>& after_init) {
  constexpr uint32_t kFuseInit = 26;  // FUSE_INIT in <linux/fuse.h>
  std::atomic<int> error{0};
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  auto work = [&] {
    // A request buffer whose FUSE_WRITE payload starts on a page boundary, so a filesystem
    // can hand it to O_DIRECT writes. libfuse reads up to 1 MiB + 4 KiB into it.
    constexpr size_t kPage = 4096, kSize = (2u << 20) + 2 * kPage;
    constexpr size_t kPayloadAt = sizeof(fuse_in_header) + sizeof(fuse_write_in);
    std::unique_ptr<char, decltype(&std::free)> mem(
        static_cast<char*>(std::aligned_alloc(kPage, kSize)), &std::free);
    fuse_buf buf{};
    if (mem)
      buf.mem = mem.get() + kPage - kPayloadAt;
    bool seen_ready = false;
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
      if (!seen_ready) {
        if (opcode_of(buf) == kFuseInit) {
          fuse_session_process_buf(se, &buf);
          after_init();
          std::lock_guard lock(mu);
          ready = seen_ready = true;
          cv.notify_all();
          continue;
        }
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::seconds(5), [&] { return ready; });
        seen_ready = true;
      }
      fuse_session_process_buf(se, &buf);
    }
    if (!mem)
      std::free(buf.mem);
  };
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < n; ++i)
    threads.emplace_back(work);
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
  if (opts.on_session)
    opts.on_session(se.get());
  if (fuse_set_signal_handlers(se.get()) != 0)
    return ServeResult::Failed;
  // Resolved before mounting: afterwards a stat of the mount point would wait for INIT.
  char real[PATH_MAX];
  const std::string absolute = ::realpath(opts.mountpoint.c_str(), real) ? real : opts.mountpoint;
  if (fuse_session_mount(se.get(), opts.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se.get());
    return ServeResult::MountFailed;
  }
  // From /proc/self/mountinfo, which asks nothing of the filesystem itself.
  const std::optional<imagecore::MountEntry> mounted = imagecore::mount_at(absolute);
  const std::string device = mounted ? mounted->device : "";
  fuse_daemonize(opts.foreground || opts.debug);
  if (opts.after_mount)
    opts.after_mount();

  const int rc = run_workers(se.get(), std::max(1u, opts.threads), [&] {
    if (opts.readahead_kb && !device.empty())
      raise_readahead(device, opts.readahead_kb);
  });
  fuse_remove_signal_handlers(se.get());
  if (rc != 0)
    spdlog::error("{}: the FUSE session ended with an error ({})", opts.mountpoint, rc);
  return rc == 0 ? ServeResult::Ok : ServeResult::Failed;
}

}  // namespace fusefs
