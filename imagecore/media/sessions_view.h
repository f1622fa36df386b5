// Every session of an image side by side (`discfs mount --sessions`): the root lists "1".."N",
// and folder k shows session k's tree.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "imagecore/tree.h"

namespace imagecore {

// One session's tree, or why it could not be opened.
struct SessionTree {
  std::shared_ptr<const FileTree> tree;  // null when the session could not be opened
  std::string error;                     // why not; the folder then reads as EIO
};

// The view over `sessions` (oldest first) of the image `src`. Session k's inode numbers carry k
// in the bits tree.h keeps free for views, so they stay stable and distinct. `cache_bytes`
// bounds its own directory cache. Throws nothing beyond std::bad_alloc.
std::shared_ptr<const FileTree> make_sessions_view(std::shared_ptr<const Source> src,
                                                   std::vector<SessionTree> sessions,
                                                   size_t cache_bytes);

}  // namespace imagecore
