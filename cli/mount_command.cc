#include "cli/mount_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <memory>

#include "cli/fuse_options.h"
#include "cli/logging.h"
#include "fusefs/mount_point.h"
#include "fusefs/readonly_fs.h"
#include "fusefs/session.h"
#include "imagecore/open.h"

namespace discfs {
namespace {

// What to open: the command-line flags, overridden by -o. Throws Failure(Usage).
imagecore::OpenOptions open_options(const MountArgs& a, const MountOptionSet& o) {
  imagecore::OpenOptions opts;
  opts.dir_cache_bytes = a.cache_mib << 20;
  const unsigned session = o.session.value_or(a.session);
  if (session)
    opts.session = session;
  opts.all_sessions = a.sessions || o.sessions;
  opts.boot = a.boot || o.boot;
  if (session && opts.all_sessions)
    throw Failure(ExitCode::Usage, "--session and --sessions cannot be used together");
  try {
    opts.tree = imagecore::parse_tree(o.tree.value_or(a.tree));
  } catch (const imagecore::Error& e) {
    throw Failure(ExitCode::Usage, e.what());  // only -o tree= can name an unknown tree
  }
  return opts;
}

}  // namespace

void require_mount_point(const std::string& path) {
  const fusefs::MountPointCheck c = fusefs::check_mount_point(path);
  using State = fusefs::MountPointCheck::State;
  if (c.state == State::Mounted)
    throw Failure(ExitCode::Busy, c.sentence);
  if (c.state != State::Ok)
    throw Failure(ExitCode::MountFailed, c.sentence);
}

CLI::App* add_mount_command(CLI::App& app, MountArgs& m) {
  CLI::App* mount = app.add_subcommand(
      "mount",
      "Mount an ISO 9660 or UDF image (file, block device or disc) read-only as a folder.");
  mount->add_option("SOURCE", m.source, "Image file or block device")->required();
  mount->add_option("MOUNTPOINT", m.mountpoint, "Existing directory to mount on")->required();
  mount->add_option("-o", m.options,
                    "Mount options, comma-separated: uid=N, gid=N, umask=OOO, tree=T, "
                    "session=N, sessions, boot, readahead_kb=N, splice, allow_other, suid and dev "
                    "(nosuid,nodev unless given), and other FUSE options");
  mount->add_flag("-f,--foreground", m.foreground, "Stay in the foreground");
  mount->add_flag("-d,--debug", m.debug, "Trace FUSE requests (implies -f)");
  mount
      ->add_option("--tree", m.tree,
                   "Which tree to show: auto (Rock Ridge, else UDF, else Joliet, else ISO 9660), "
                   "rockridge, udf, joliet or iso9660")
      ->check(CLI::IsMember({"auto", "rockridge", "udf", "joliet", "iso9660"}));
  mount
      ->add_option("--session", m.session, "Show session N (1 is the oldest) instead of the newest")
      ->check(CLI::Range(1, 100000));
  mount->add_flag("--sessions", m.sessions,
                  "Show every session side by side as MOUNTPOINT/1 ... MOUNTPOINT/N");
  mount->add_flag("--boot", m.boot,
                  "Show the El Torito boot images as read-only files under MOUNTPOINT/.boot");
  mount->add_option("--cache-mib", m.cache_mib, "Memory for parsed directories, in MiB")
      ->check(CLI::Range(1, 4096));
  mount
      ->add_option("--readahead-kb", m.readahead_kb,
                   "Kernel readahead for the mount in KiB, 0 to keep the kernel's (default "
                   "4096; needs root)")
      ->check(CLI::Range(0, 1 << 20));
  mount->add_option("--threads", m.threads, "Threads answering requests (default 2)")
      ->check(CLI::Range(1, 64));
  return mount;
}

ExitCode run_mount(const MountArgs& args) {
  const bool foreground = args.foreground || args.debug;
  set_up_logging(args.debug ? spdlog::level::debug : spdlog::level::info,
                 foreground ? Syslog::No : Syslog::Yes);
  MountOptionSet o = parse_mount_options(args.options, args.from_mount_helper);
  const imagecore::OpenOptions opts = open_options(args, o);
  char real[PATH_MAX];
  const std::string source = ::realpath(args.source.c_str(), real) ? real : args.source;
  std::shared_ptr<const imagecore::FileTree> fs =
      imagecore::open_tree(imagecore::open_file_source(source), opts);

  require_mount_point(args.mountpoint);

  o.view.default_uid = ::getuid();
  o.view.default_gid = ::getgid();
  fusefs::ReadOnlyFs rofs(fs, o.view);
  fusefs::SessionOptions so;
  so.mountpoint = args.mountpoint;
  so.foreground = args.foreground;
  so.debug = args.debug;
  so.readahead_kb = o.readahead_kb.value_or(args.readahead_kb);
  so.threads = args.threads;
  so.fuse_options = safe_mount_defaults();
  for (const char* o : {"ro", "default_permissions", "subtype=discfs"})
    so.fuse_options.push_back(o);
  so.fuse_options.push_back(fsname_option(source));
  so.fuse_options.insert(so.fuse_options.end(), o.fuse.begin(), o.fuse.end());
  switch (fusefs::serve(fusefs::ReadOnlyFs::ops(), &rofs, so)) {
    case fusefs::ServeResult::Ok:
      return ExitCode::Ok;
    case fusefs::ServeResult::BadOptions:
      throw Failure(ExitCode::Usage, "bad mount options (see above)");
    case fusefs::ServeResult::MountFailed:
      throw Failure(ExitCode::MountFailed, "cannot mount on " + args.mountpoint);
    case fusefs::ServeResult::Failed:
      break;  // the session has logged why
  }
  return ExitCode::Internal;
}

}  // namespace discfs
