#include "fusefs/session.h"

#include <spdlog/spdlog.h>

#include <memory>

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
struct LoopConfigDeleter {
  void operator()(fuse_loop_config* c) const { fuse_loop_cfg_destroy(c); }
};

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

  std::unique_ptr<fuse_loop_config, LoopConfigDeleter> cfg(fuse_loop_cfg_create());
  fuse_loop_cfg_set_clone_fd(cfg.get(), 1);
  fuse_loop_cfg_set_max_threads(cfg.get(), opts.max_threads);
  fuse_loop_cfg_set_idle_threads(cfg.get(), 4);
  const int rc = fuse_session_loop_mt(se.get(), cfg.get());
  fuse_session_unmount(se.get());
  fuse_remove_signal_handlers(se.get());
  if (rc != 0)
    spdlog::error("{}: the FUSE session ended with an error ({})", opts.mountpoint, rc);
  return rc == 0 ? ServeResult::Ok : ServeResult::Failed;
}

}  // namespace fusefs
