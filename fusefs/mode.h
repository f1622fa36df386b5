// The S_IF* bits of an imagecore file type, for the stat(2) answers of both filesystems.
#pragma once

#include <sys/stat.h>

#include "imagecore/node.h"

namespace fusefs {

inline mode_t type_bits(imagecore::FileType t) {
  using imagecore::FileType;
  switch (t) {
    case FileType::Regular:
      return S_IFREG;
    case FileType::Directory:
      return S_IFDIR;
    case FileType::Symlink:
      return S_IFLNK;
    case FileType::CharDevice:
      return S_IFCHR;
    case FileType::BlockDevice:
      return S_IFBLK;
    case FileType::Fifo:
      return S_IFIFO;
    case FileType::Socket:
      return S_IFSOCK;
  }
  return S_IFREG;
}

}  // namespace fusefs
