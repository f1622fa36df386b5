// What a commit needs to know about a staging area: the whole tree the next session must
// show, and for each entry where its content comes from: unchanged from the base session
// (so the commit reuses its extents and writes no data for it), or a file in the store.
// The store builds it (Store::snapshot); the commit engine (burner/) consumes it. Plain data,
// no FUSE, no libisofs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "imagecore/base/timestamp.h"
#include "imagecore/node.h"

namespace burner {

using imagecore::FileType;
using imagecore::Timestamp;

struct StagedEntry {
  enum class Data : uint8_t {
    None,   // directories, symlinks, devices, FIFOs, sockets
    Base,   // a regular file whose content is unchanged from the base session
    Local,  // a regular file whose content is the store file `local_path`
  };

  std::string name;  // empty for the root
  FileType type = FileType::Regular;
  uint32_t perm = 0644;  // permission bits incl. setuid/setgid/sticky
  uint32_t uid = 0, gid = 0;
  uint64_t rdev = 0;  // devices: makedev(major, minor)
  Timestamp mtime, atime, ctime;
  std::string symlink_target;

  Data data = Data::None;
  uint64_t size = 0;       // regular files: bytes
  std::string local_path;  // Data::Local: absolute path of the staged content
  // Path of this entry in the base session ("/a/b"), when it comes from there (Data::Base
  // files, and directories that existed in the base, even if renamed or moved since).
  std::string base_path;
  // Directories: true when its children are exactly the base directory's children, never
  // changed (the store never opened it): the commit reuses the base directory whole, and
  // `children` is empty.
  bool whole_base_dir = false;
  // Non-zero: entries with the same value are names of one file (hard links). The commit
  // writes them as one file: one content, one Rock Ridge inode serial, the same attributes.
  uint64_t link_group = 0;
  // With link_group: how many names the file has in the next session. More than the
  // entries of the group in this tree means that the others are in directories reused
  // whole (whole_base_dir); the commit finds them by their base inode and gives them the
  // group's contents and attributes. 0: the group's entries are all its names.
  uint32_t nlink = 0;

  std::vector<StagedEntry> children;  // directories (unless whole_base_dir), in any order
};

}  // namespace burner
