// What imagecore tells about one file, directory, link or device of an image tree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "imagecore/base/timestamp.h"

namespace imagecore {

// Inode numbers are derived from on-disc locations, so they are stable across mounts and
// need no table: see the block comment in filesystem.h.
using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;

enum class FileType : uint8_t {
  Regular,
  Directory,
  Symlink,
  CharDevice,
  BlockDevice,
  Fifo,
  Socket
};

// One run of file bytes in the image: byte offset and length. An extent at kZeroExtent is
// recorded as unwritten (a UDF sparse extent) and reads as zeros.
inline constexpr uint64_t kZeroExtent = ~uint64_t{0};
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// RRIP ZF (zisofs) parameters of a compressed file.
struct ZisofsInfo {
  uint8_t header_size_div4 = 0;
  uint8_t block_size_log2 = 0;
  uint64_t uncompressed_size = 0;
};

// Attributes as stat(2) shows them. Trees without Rock Ridge have no modes or owners:
// has_posix is false and the mount supplies them.
struct Attr {
  Ino ino = 0;
  FileType type = FileType::Regular;
  bool has_posix = false;  // mode, uid, gid and nlink come from the image (Rock Ridge PX, UDF)
  bool has_owner = true;   // with has_posix: false when the image leaves uid/gid unset (UDF -1)
  uint32_t perm = 0;       // permission bits incl. setuid/setgid/sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 1;
  // nlink > 1 counts names that do not share this inode number, so they cannot be told
  // apart from other files (Rock Ridge PX without a file serial number, RRIP 1.10).
  bool nlink_unmatched = false;
  uint64_t size = 0;  // bytes a reader gets (uncompressed size for zisofs)
  uint64_t rdev = 0;  // makedev(major, minor) for devices
  Timestamp mtime, atime, ctime;
};

// Everything needed to answer stat, readlink, readdir and read for one entry.
struct Node {
  std::string name;  // as shown to users; empty for a directory read through its "."
  Attr attr;
  std::vector<Extent> extents;   // file data (compressed bytes for zisofs), in order
  std::string inline_data;       // file data kept in the node itself (UDF embedded data)
  bool has_inline_data = false;  // when true, extents are empty and inline_data is the file
  std::string symlink;           // target, for symlinks
  bool zisofs = false;
  ZisofsInfo zf;
  std::string defect;        // non-empty: the data cannot be read, and why (reads give EIO)
  bool attr_defect = false;  // with defect: not even the attributes could be read (stat: EIO)
};

}  // namespace imagecore
