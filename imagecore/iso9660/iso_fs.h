// The read-only view of one ISO 9660 tree (Rock Ridge, Joliet, 9660:1999 or plain) of the
// newest session of an image.
//
// Inode identity. A mount must answer "what is inode N" for any N the kernel holds, without
// keeping a table of every file (a million-file image would cost a table of a million). So
// inode numbers are derived from where things sit on the disc, which also makes them stable
// across mounts:
//   - the root is 1;
//   - a directory is kDirTag | (LBA of its extent); its own "." record holds its attributes;
//   - a file, symlink or device is the byte offset of its (first) directory record;
//   - a hard-linked file (Rock Ridge PX serial number, link count > 1) is kLinkTag | serial, so
//     every name of it shares one number.
// Only two small side tables exist, filled as directories are parsed: serial -> record for
// hard links, and record -> directory end for multi-extent files (whose later sections follow
// in the directory). They grow with the number of such files, never with the tree. A hard
// link asked for before any directory naming it was parsed in this process (a stage store
// made by an earlier process keeps these numbers) is found by parsing directories from the
// root until one names it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "imagecore/base/small_lru.h"
#include "imagecore/base/source.h"
#include "imagecore/iso9660/aaip.h"
#include "imagecore/iso9660/volume.h"
#include "imagecore/node.h"
#include "imagecore/tree.h"

namespace imagecore {

enum class Tree { Auto, RockRidge, Joliet, Iso9660, Udf };

// Parses "auto", "rockridge", "udf", "joliet" or "iso9660"; throws Error(EINVAL) otherwise.
Tree parse_tree(std::string_view s);
const char* tree_name(Tree t);

struct Options {
  Tree tree = Tree::Auto;
  size_t dir_cache_bytes = 8u << 20;  // parsed directories kept, by approximate size
  // Where the session to show starts (its descriptors are 16 blocks on). 0 reads the
  // descriptors at LBA 16: the newest session of a grown image, the only one of others.
  uint64_t session_start_lba = 0;
};

class DirectoryCache;

class IsoFs : public FileTree {
 public:
  // Reads the volume descriptors and the root, nothing else. Throws NotAnImage, Unsupported
  // (e.g. --tree joliet on an image without Joliet), FormatError.
  IsoFs(std::shared_ptr<const Source> src, Options opts);
  ~IsoFs();

  const Source& source() const override { return *src_; }
  std::string kind() const override;
  const VolumeInfo& volume() const { return vol_; }
  // The tree being shown (never Auto).
  Tree tree() const { return tree_; }

  // The directory with this inode, parsed or from the cache. Throws Error(ENOTDIR),
  // FormatError.
  std::shared_ptr<const Directory> list(Ino dir) const override;
  // The entry `name` of directory `dir`. Throws Error(ENOENT) when there is none.
  Node lookup(Ino dir, std::string_view name) const override;
  // The node with this inode number. Throws Error(ENOENT) for a number this tree never gave.
  Node stat(Ino ino) const override;

  // Whether the Rock Ridge tree carries AAIP (libisofs extended attributes, ACLs, MD5s).
  bool has_xattrs() const override { return rock_ridge_ && aaip_; }
  // The node's AAIP attributes as Linux shows them (see aaip.h), and "user.discfs.md5"
  // for a file with a recorded MD5. Parsed when asked, a few kept. Throws FormatError when
  // the node's record cannot be read, Error(ENOENT) for an unknown number.
  std::vector<Xattr> xattrs(Ino ino) const override;

  static constexpr Ino kDirTag = 1ull << 62;
  static constexpr Ino kLinkTag = 1ull << 61;

 private:
  Ino dir_ino(uint32_t lba) const;
  // The byte offset of the directory record of a file, symlink or device inode (hard links
  // through the side table). Throws Error(ENOENT) for a number this tree never gave.
  uint64_t file_record(Ino ino) const;
  std::optional<uint64_t> link_record(uint32_t serial) const;  // from the side table
  // Parses directories from the root until one names the hard link `serial` (or all were
  // parsed: then later misses are answered at once).
  void scan_for_link(uint32_t serial) const;
  void check_root() const;  // throws FormatError when the chosen tree's root cannot be read
  Node stat_dir(uint32_t lba) const;
  std::shared_ptr<Directory> parse_dir(uint32_t lba) const;
  template <typename Emit>
  void walk_records(uint64_t begin,
                    uint64_t end,
                    size_t limit,
                    Emit&& emit,
                    uint32_t* dotdot_lba = nullptr) const;
  bool make_node(std::span<const std::byte> first_rec,
                 uint64_t rec_off,
                 std::vector<Extent> extents,
                 uint8_t su_skip,
                 bool dot,
                 Node* out) const;
  bool is_hidden_relocation_dir(const Node& n) const;
  // Extended attributes (iso_xattrs.cc).
  std::vector<Xattr> load_xattrs(Ino ino) const;
  std::optional<uint64_t> attr_record(Ino ino) const;
  std::optional<uint64_t> dir_record(uint32_t lba) const;
  std::optional<std::string> recorded_md5(uint32_t index) const;
  void load_checksum_area() const;

  std::shared_ptr<const Source> src_;
  Options opts_;
  VolumeInfo vol_;
  Tree tree_ = Tree::Iso9660;
  TreeRoot root_;
  bool joliet_names_ = false;
  bool rock_ridge_ = false;
  uint8_t su_skip_ = 0;
  std::unique_ptr<DirectoryCache> cache_;
  bool aaip_ = false;  // the root announces AAIP (ER) or carries AL entries
  using XattrList = std::shared_ptr<const std::vector<Xattr>>;
  // A directory's subdirectory records as (extent LBA, record offset), sorted.
  using RecordIndex = std::shared_ptr<const std::vector<std::pair<uint32_t, uint64_t>>>;
  mutable std::mutex xattr_mutex_;
  mutable SmallLru<Ino, XattrList> xattr_cache_{256, 4u << 20};
  mutable SmallLru<uint32_t, RecordIndex> dir_records_{8, 16u << 20};  // parent LBA -> index
  mutable std::once_flag checksum_once_;
  mutable std::optional<ChecksumArea> checksum_area_;  // verified "isofs.ca" of the root
  mutable std::mutex side_mutex_;
  mutable std::unordered_map<uint32_t, uint64_t> link_records_;  // PX serial -> record
  mutable std::mutex scan_mutex_;                                // one scan at a time
  mutable bool links_scanned_ = false;  // every directory was parsed (under scan_mutex_)
  mutable std::unordered_map<uint64_t, uint64_t> multi_extent_end_;  // record -> dir end
  mutable std::unordered_map<Ino, std::string> damaged_dirs_;        // -> named defect
};

}  // namespace imagecore
