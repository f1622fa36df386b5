#include "cli/fuse_options.h"

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "cli/exit_codes.h"

namespace discfs {
namespace {

// What mount(8) and fstab use for themselves, and mount.fuse3 passes on anyway.
bool is_mount_only_option(const std::string& o) {
  return o.empty() || o == "defaults" || o == "auto" || o == "noauto" || o == "user" ||
         o == "users" || o == "nouser" || o == "_netdev" || o == "nofail" || o == "rw" ||
         o.starts_with("x-") || o.starts_with("comment=");
}

// The largest user or group id: (uid_t)-1 means "none" to chown(2), and larger values
// would wrap (uid=4294967296 showed every file as root's).
constexpr unsigned long kMaxId = std::numeric_limits<uid_t>::max() - 1;
static_assert(std::numeric_limits<gid_t>::max() == std::numeric_limits<uid_t>::max());

// `v` as a number in `base` from `min` to `max`; throws Failure(Usage) naming `option`.
unsigned long number(const std::string& option,
                     const std::string& v,
                     int base,
                     unsigned long min,
                     unsigned long max,
                     const char* hint = "") {
  char* end = nullptr;
  errno = 0;
  const unsigned long n = v.empty() ? 0 : std::strtoul(v.c_str(), &end, base);
  if (v.empty() || errno != 0 || *end != '\0' || n < min || n > max)
    throw Failure(ExitCode::Usage, "bad value in -o " + option + hint);
  return n;
}

// Takes `o` if it is one of discfs mount's own options; false if it is for libfuse.
bool take_mount_option(const std::string& o, MountOptionSet* s) {
  const size_t eq = o.find('=');
  const std::string key = o.substr(0, eq);
  const std::string val = eq == std::string::npos ? "" : o.substr(eq + 1);
  if (key == "readahead_kb")
    s->readahead_kb = static_cast<unsigned>(number(o, val, 10, 0, 1u << 20));
  else if (key == "uid")
    s->view.uid = static_cast<uid_t>(number(o, val, 10, 0, kMaxId));
  else if (key == "gid")
    s->view.gid = static_cast<gid_t>(number(o, val, 10, 0, kMaxId));
  else if (key == "umask")
    s->view.umask = static_cast<mode_t>(number(o, val, 8, 0, 07777));
  else if (key == "tree")
    s->tree = val;
  else if (key == "session")
    s->session = static_cast<unsigned>(number(o, val, 10, 1, 100000, " (sessions count from 1)"));
  else if (o == "splice")
    s->view.splice = true;
  else if (o == "sessions")
    s->sessions = true;
  else if (o == "boot")
    s->boot = true;
  else if (o != "ro")  // the mount is read-only anyway
    return false;
  return true;
}

}  // namespace

std::vector<std::string> split_mount_options(const std::vector<std::string>& lists) {
  std::vector<std::string> out;
  for (const std::string& list : lists) {
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos)
        comma = list.size();
      std::string o = list.substr(start, comma - start);
      start = comma + 1;
      if (!is_mount_only_option(o))
        out.push_back(std::move(o));
    }
  }
  return out;
}

std::vector<std::string> safe_mount_defaults() {
  return {"nosuid", "nodev"};
}

MountOptionSet parse_mount_options(const std::vector<std::string>& lists, bool from_mount_helper) {
  std::vector<std::string> options = split_mount_options(lists);
  if (from_mount_helper) {
    // mount.fuse3 (fuse3 3.x) appends "dev" then "suid", each unless its "no" form was given.
    if (!options.empty() && options.back() == "suid")
      options.pop_back();
    if (!options.empty() && options.back() == "dev")
      options.pop_back();
  }
  MountOptionSet s;
  for (std::string& o : options) {
    if (!take_mount_option(o, &s))
      s.fuse.push_back(std::move(o));
  }
  return s;
}

std::vector<std::string> parse_stage_options(const std::vector<std::string>& lists) {
  return split_mount_options(lists);
}

std::string fsname_option(const std::string& source) {
  std::string out = "fsname=";
  for (char c : source) {
    if (c == ',' || c == '\\')
      out += '\\';
    out += c;
  }
  return out;
}

}  // namespace discfs
