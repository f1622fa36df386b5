// One browsable tree of an image, whatever its format: an ISO 9660 tree (IsoFs: Rock Ridge,
// Joliet, 9660:1999 or plain), a UDF tree (UdfFs), or a view composed of others (every
// session side by side, El Torito boot images). The FUSE layer and the tools serve any of
// them through this interface.
//
// Inode numbers. Each tree derives its numbers from on-disc locations (no per-file table;
// stable across mounts). Composed views need room to tag them, so every tree keeps to this:
//   - kRootIno (1) is the root;
//   - numbers 2..kSyntheticInoEnd-1 are never used by a format tree: composed views give
//     them to nodes they make up (the .boot folder and its files);
//   - bits kViewShift..kViewShift+kViewBits-1 are always clear in a format tree's numbers:
//     the sessions view stores the session number there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "imagecore/base/source.h"
#include "imagecore/node.h"

namespace imagecore {

inline constexpr Ino kSyntheticInoEnd = 1024;
inline constexpr unsigned kViewShift = 51;
inline constexpr unsigned kViewBits = 10;
inline constexpr Ino kViewMask = ((Ino{1} << kViewBits) - 1) << kViewShift;

// A parsed directory: entries in on-disc order, and an index by name.
class Directory {
 public:
  std::vector<Node> entries;
  Ino parent = kRootIno;  // the parent's inode number, for readdir's ".."
  // Index of the entry with this name, or nullptr.
  const Node* find(std::string_view name) const;
  // Approximate heap bytes, for cache budgets.
  size_t bytes() const { return bytes_; }
  // Call once the entries are filled: builds the name index, drops later duplicate names,
  // and sums the bytes.
  void finish();

 private:
  std::vector<uint32_t> by_name_;
  size_t bytes_ = 0;
};

// One extended attribute as Linux shows it ("user.x", "system.posix_acl_access"), value raw.
struct Xattr {
  std::string name;
  std::string value;
};

class FileTree {
 public:
  virtual ~FileTree() = default;

  // The image the tree is read from (reads, splice, statfs).
  virtual const Source& source() const = 0;
  // What the tree is, for messages and `discfs info`: "Rock Ridge", "Joliet", "UDF 2.60"...
  virtual std::string kind() const = 0;

  // The directory with this inode, parsed or cached. Throws Error(ENOTDIR), Error(ENOENT),
  // FormatError.
  virtual std::shared_ptr<const Directory> list(Ino dir) const = 0;
  // The entry `name` of directory `dir`. Throws Error(ENOENT) when there is none. The
  // default looks it up in list(dir).
  virtual Node lookup(Ino dir, std::string_view name) const;
  // The node with this inode number (its name may be empty). Throws Error(ENOENT) for a
  // number this tree never gave.
  virtual Node stat(Ino ino) const = 0;

  // The image byte ranges holding bytes [off, off+len) of a regular file, clipped at its
  // size; a range whose offset is kZeroExtent reads as zeros, and a node with inline data
  // gives none (see Node). Throws FormatError for a damaged node, Error(EINVAL) for zisofs.
  virtual std::vector<Extent> map(const Node& n, uint64_t off, uint64_t len) const;
  // Reads bytes of a regular file that is not zisofs-compressed; returns how many (short at
  // the end of the file). The default goes through map() and the inline data.
  virtual size_t read(const Node& n, uint64_t off, std::span<std::byte> out) const;

  // Whether any node may have extended attributes. When false the FUSE layer tells the
  // kernel once that there are none, which saves two requests per `ls -l` entry.
  virtual bool has_xattrs() const { return false; }
  // The extended attributes of a node, in recorded order.
  virtual std::vector<Xattr> xattrs(Ino) const { return {}; }
};

}  // namespace imagecore
