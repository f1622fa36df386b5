// Opening what a user asked to see: the right tree of the right session of an image, or
// every session side by side, with or without the El Torito boot images.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "imagecore/iso9660/iso_fs.h"
#include "imagecore/tree.h"

namespace imagecore {

struct OpenOptions {
  Tree tree = Tree::Auto;
  size_t dir_cache_bytes = 8u << 20;
  std::optional<unsigned> session;  // 1 = oldest; unset: the newest
  bool all_sessions = false;        // root lists "1".."N", each session's tree
  bool boot = false;                // root gains ".boot" with one file per boot entry
};

// Opens the tree `opts` asks for. Auto picks Rock Ridge, else UDF, else Joliet, else plain
// ISO 9660 (9660:1999 preferred), taking the next one when a root cannot be read.
// Throws NotAnImage, Unsupported (a tree or session the image lacks), FormatError.
std::shared_ptr<const FileTree> open_tree(std::shared_ptr<const Source> src,
                                          const OpenOptions& opts);

}  // namespace imagecore
