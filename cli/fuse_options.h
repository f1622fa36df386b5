// The -o option lists of `discfs mount` and `discfs stage` (and of mount(8), fstab and
// mount.fuse3, which call "discfs SOURCE MOUNTPOINT -o OPTS"): options that mean nothing to a
// FUSE daemon are dropped, discfs's own are taken, and the rest go on to libfuse.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "fusefs/readonly_fs.h"

namespace discfs {

// Splits -o values (comma-separated lists) into single options, in order, leaving out empty
// ones and those that mount(8), fstab and mount.fuse3 pass but that mean nothing to a FUSE
// daemon: defaults, auto, noauto, user, users, nouser, _netdev, nofail, rw, x-*, comment=*.
// Does not throw (but std::bad_alloc).
std::vector<std::string> split_mount_options(const std::vector<std::string>& lists);

// What the -o lists of `discfs mount` set; unset fields leave the command-line flags alone.
struct MountOptionSet {
  fusefs::ViewOptions view;              // uid=, gid=, umask=, splice
  std::optional<unsigned> readahead_kb;  // readahead_kb=
  std::optional<std::string> tree;       // tree= (checked when the image is opened)
  std::optional<unsigned> session;       // session=, from 1
  bool sessions = false;                 // sessions
  bool boot = false;                     // boot
  std::vector<std::string> fuse;         // everything else, for libfuse, in order
};

// The libfuse options every mount and stage starts with, before the user's -o: setuid bits
// and device files inside an image are not honoured (nosuid, nodev), as fusermount3 does for
// users; "-o suid" and "-o dev" opt out. Does not throw (but std::bad_alloc).
std::vector<std::string> safe_mount_defaults();

// Parses the -o lists of `discfs mount`, which is always read-only ("ro" is taken as said).
// `from_mount_helper`: the lists come from mount.fuse3 ("discfs SOURCE MOUNTPOINT -o OPTS"),
// which appends "dev" and "suid" unless told "nodev" or "nosuid" (mount(8)'s defaults); those
// trailing defaults are dropped so that discfs's own (safe_mount_defaults) hold, while a
// "suid" or "dev" the user wrote stays. Throws Failure(Usage) naming the option when a value
// is bad.
MountOptionSet parse_mount_options(const std::vector<std::string>& lists,
                                   bool from_mount_helper = false);

// The libfuse options in the -o lists of `discfs stage`, which has none of its own; "ro"
// goes on to libfuse and makes the staging mount read-only. Does not throw (but
// std::bad_alloc).
std::vector<std::string> parse_stage_options(const std::vector<std::string>& lists);

// The libfuse option "fsname=SOURCE" that names the mount's source in /proc/mounts, with the
// commas and backslashes in `source` escaped so that libfuse's parser keeps it whole. Does
// not throw (but std::bad_alloc).
std::string fsname_option(const std::string& source);

}  // namespace discfs
