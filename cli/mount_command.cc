#include "cli/mount_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <memory>

#include "cli/logging.h"
#include "fusefs/readonly_fs.h"
#include "fusefs/session.h"
#include "imagecore/open.h"

namespace discfs {
namespace {

// Options that mount(8) and fstab use but that mean nothing to a FUSE daemon.
bool is_mount_only_option(const std::string& o) {
  return o.empty() || o == "rw" || o == "ro" || o == "defaults" || o == "auto" || o == "noauto" ||
         o == "user" || o == "users" || o == "nouser" || o == "_netdev" || o == "nofail" ||
         o.rfind("x-", 0) == 0 || o.rfind("comment=", 0) == 0;
}

std::string escape_fuse_option(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == ',' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

struct Parsed {
  fusefs::ViewOptions view;
  unsigned readahead_kb = 0;
  std::vector<std::string> fuse;
  std::string tree;
  unsigned session = 0;
  bool sessions = false;
  bool boot = false;
};

bool parse_number(const std::string& v, int base, unsigned long* out) {
  if (v.empty())
    return false;
  char* end = nullptr;
  errno = 0;
  *out = std::strtoul(v.c_str(), &end, base);
  return errno == 0 && *end == '\0';
}

// Splits -o lists into what discfs itself understands and what goes on to libfuse. Throws
// Failure(Usage) for a bad value.
void parse_options(const MountArgs& a, Parsed* p) {
  p->tree = a.tree;
  p->session = a.session;
  p->sessions = a.sessions;
  p->boot = a.boot;
  p->readahead_kb = a.readahead_kb;
  for (const std::string& list : a.options) {
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos)
        comma = list.size();
      std::string o = list.substr(start, comma - start);
      start = comma + 1;
      const size_t eq = o.find('=');
      const std::string key = o.substr(0, eq);
      const std::string val = eq == std::string::npos ? "" : o.substr(eq + 1);
      unsigned long n = 0;
      if (key == "readahead_kb") {
        if (!parse_number(val, 10, &n) || n > (1u << 20))
          throw Failure(ExitCode::Usage, "bad value in -o " + o);
        p->readahead_kb = static_cast<unsigned>(n);
      } else if (key == "uid" || key == "gid" || key == "umask") {
        if (!parse_number(val, key == "umask" ? 8 : 10, &n) || (key == "umask" && n > 07777))
          throw Failure(ExitCode::Usage, "bad value in -o " + o);
        if (key == "uid")
          p->view.uid = static_cast<uid_t>(n);
        else if (key == "gid")
          p->view.gid = static_cast<gid_t>(n);
        else
          p->view.umask = static_cast<mode_t>(n);
      } else if (o == "splice") {
        p->view.splice = true;
      } else if (key == "tree") {
        p->tree = val;
      } else if (key == "session") {
        if (!parse_number(val, 10, &n) || n == 0 || n > 100000)
          throw Failure(ExitCode::Usage, "bad value in -o " + o + " (sessions count from 1)");
        p->session = static_cast<unsigned>(n);
      } else if (o == "sessions") {
        p->sessions = true;
      } else if (o == "boot") {
        p->boot = true;
      } else if (!is_mount_only_option(o)) {
        p->fuse.push_back(o);
      }
    }
  }
}

}  // namespace

CLI::App* add_mount_command(CLI::App& app, MountArgs& m) {
  CLI::App* mount = app.add_subcommand(
      "mount",
      "Mount an ISO 9660 or UDF image (file, block device or disc) read-only as a folder.");
  mount->add_option("SOURCE", m.source, "Image file or block device")->required();
  mount->add_option("MOUNTPOINT", m.mountpoint, "Existing directory to mount on")->required();
  mount->add_option("-o", m.options,
                    "Mount options, comma-separated: uid=N, gid=N, umask=OOO, tree=T, "
                    "session=N, sessions, boot, readahead_kb=N, splice, allow_other, and other "
                    "FUSE options");
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
  Parsed p;
  parse_options(args, &p);

  imagecore::OpenOptions opts;
  opts.dir_cache_bytes = args.cache_mib << 20;
  if (p.session)
    opts.session = p.session;
  opts.all_sessions = p.sessions;
  opts.boot = p.boot;
  if (p.session && p.sessions)
    throw Failure(ExitCode::Usage, "--session and --sessions cannot be used together");
  try {
    opts.tree = imagecore::parse_tree(p.tree);
  } catch (const imagecore::Error& e) {
    throw Failure(ExitCode::Usage, e.what());  // only -o tree= can name an unknown tree
  }
  char real[PATH_MAX];
  const std::string source = ::realpath(args.source.c_str(), real) ? real : args.source;
  std::shared_ptr<const imagecore::FileTree> fs =
      imagecore::open_tree(imagecore::open_file_source(source), opts);

  struct stat st {};
  if (::stat(args.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Failure(ExitCode::MountFailed, args.mountpoint + ": mount point is not a directory");

  p.view.default_uid = ::getuid();
  p.view.default_gid = ::getgid();
  fusefs::ReadOnlyFs rofs(fs, p.view);
  fusefs::SessionOptions so;
  so.mountpoint = args.mountpoint;
  so.foreground = args.foreground;
  so.debug = args.debug;
  so.readahead_kb = p.readahead_kb;
  so.threads = args.threads;
  so.fuse_options = {"ro", "default_permissions", "subtype=discfs",
                     "fsname=" + escape_fuse_option(source)};
  so.fuse_options.insert(so.fuse_options.end(), p.fuse.begin(), p.fuse.end());
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
