// What a session written by discfs can hold: limits of libisofs and of ISO 9660 that the
// stage checks when a change is made, so that a commit never fails on something the stage
// accepted. Plain constants, no libisofs.
#pragma once

#include <cstdint>
#include <string_view>

#include "burner/target.h"

namespace burner {

// Bytes of one name (a path component); libisofs refuses longer ones (LIBISOFS_NODE_NAME_MAX).
inline constexpr size_t kMaxNameBytes = 255;

// Bytes of a symlink's target; libisofs refuses longer ones (LIBISOFS_NODE_PATH_MAX). Rock
// Ridge itself could carry more through continuation areas, but libisofs checks every target
// against this when it adds the link to the tree, so no discfs commit can write one.
inline constexpr size_t kMaxSymlinkTargetBytes = 1024;

// Whether libisofs can record a symlink to `target`: at most kMaxSymlinkTargetBytes, and no
// component (other than "." and "..") longer than kMaxNameBytes. An empty target is the
// kernel's to refuse.
inline bool symlink_target_fits(std::string_view target) {
  if (target.size() > kMaxSymlinkTargetBytes)
    return false;
  size_t start = 0;
  while (start <= target.size()) {
    size_t end = target.find('/', start);
    if (end == std::string_view::npos)
      end = target.size();
    if (end - start > kMaxNameBytes)
      return false;
    start = end + 1;
  }
  return true;
}

// Bytes of the largest file a session can hold. ISO 9660 addresses blocks with 32 bits, so
// no session reaches past block 2^32 (8 TiB); a file must fit below that after the 32
// blocks of system area and volume descriptors.
inline constexpr uint64_t kMaxFileBytes = ((uint64_t{1} << 32) - 32) * kBlockSize;

}  // namespace burner
