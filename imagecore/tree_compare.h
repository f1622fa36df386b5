// Comparing an image's tree with a directory on disk, for `discfs verify --against DIR`: the
// tree as a mount shows it against the files it was made from.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "imagecore/tree.h"

namespace imagecore {

struct TreeDifference {
  // Missing: in the directory, not in the image. Extra: in the image, not in the directory.
  // Changed: in both, but different (`what` says how).
  enum class Kind { Missing, Extra, Changed } kind = Kind::Changed;
  std::string path;  // relative to the roots, "/"-separated, without a leading "/"
  std::string what;  // for Changed: "content", "mode 0644 in the image, 0600 in the directory"...
};

// `done` of `total` bytes of file content compared.
using CompareProgress = std::function<void(uint64_t done, uint64_t total)>;

// Every difference between `tree` and the directory `dir`: names, types, contents of regular
// files, permission bits and owners (where the tree records them: Rock Ridge, UDF), mtimes
// (whole seconds), symlink targets, device numbers. Directories and symlinks in `dir` are not
// followed. Throws Error(errno) when `dir` cannot be read, and what the tree throws for damage
// it meets; unreadable file content in the image is a difference ("content unreadable: ...").
std::vector<TreeDifference> compare_tree(const FileTree& tree,
                                         const std::string& dir,
                                         const CompareProgress& progress);

// "missing", "extra" or "changed".
const char* difference_kind_name(TreeDifference::Kind k);

}  // namespace imagecore
