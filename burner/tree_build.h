// Private to burner/: turning a StagedEntry tree into the libisofs tree of the next session.
#pragma once

#include <cstdint>

#include "burner/libs.h"
#include "burner/staged_tree.h"

namespace burner::detail {

// What the rebuild did.
struct BuildStats {
  uint64_t new_data_bytes = 0;  // content of Data::Local files (each store file once)
  uint64_t reused_nodes = 0;    // base nodes kept (their file data is not rewritten)
  uint64_t cloned_nodes = 0;    // further names of hard-linked files: clones of the first
};

// Replaces the tree of `image` (the loaded newest session, or an empty image) with `root`.
// Base directories and Data::Base files are the loaded IsoNodes, detached and re-attached,
// so their extents, MD5s and xattrs stay. The names of a hard-linked file (link_group) become
// one file with one Rock Ridge inode serial, also its names in directories reused whole.
// Throws imagecore::Error naming `target` and the
// path when a base path is missing or libisofs refuses a node.
BuildStats rebuild_tree(IsoImage* image,
                        const burner::StagedEntry& root,
                        const std::string& target);

}  // namespace burner::detail
