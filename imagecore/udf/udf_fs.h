// The read-only view of a UDF file system (ECMA-167 3rd edition, OSTA UDF 1.02 to 2.60):
// physical, sparable, virtual (VAT) and metadata partitions; file entries and extended file
// entries with short, long, extended and embedded allocation descriptors.
//
// Inode identity. A node's number is derived from where its ICB sits: the partition reference
// number and the logical block (kIcbTag | part << 32 | block), so every name of a hard-linked
// file shares one number, numbers are stable across mounts and stat() can read any of them
// back without a table. The root ICB is kRootIno. Bits 51..60 stay clear (see tree.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "imagecore/base/source.h"
#include "imagecore/base/timestamp.h"
#include "imagecore/node.h"
#include "imagecore/tree.h"

namespace imagecore {

struct UdfInfo {
  std::string revision;       // "1.02", "1.50", "2.01", "2.50", "2.60" (LVD domain id / FSD)
  uint16_t revision_bcd = 0;  // 0x0102 ...
  uint32_t block_size = 2048;
  std::string volume_id;              // PVD volume identifier (d-string decoded)
  std::string volume_set_id;          // PVD volume set identifier
  std::string logical_volume_id;      // LVD logical volume identifier (what Windows shows as label)
  std::optional<Timestamp> recorded;  // PVD recording date and time
  uint64_t partition_blocks = 0;      // blocks of all partition descriptors
  std::vector<std::string> partition_kinds;  // "physical", "metadata", "virtual", "sparable"
};

// True when the source carries a UDF volume recognition sequence (NSR02/NSR03) and an anchor
// volume descriptor pointer. Cheap; never throws.
bool has_udf(const Source& src);

// Reads the UDF volume structures. Throws NotAnImage (no UDF), FormatError, Unsupported.
UdfInfo read_udf_info(const Source& src);

class DirectoryCache;
namespace udf {
struct Volume;
struct Icb;
}  // namespace udf

class UdfFs : public FileTree {
 public:
  // Reads the volume structures and the root directory's entry. Throws NotAnImage,
  // FormatError, Unsupported.
  UdfFs(std::shared_ptr<const Source> src, size_t dir_cache_bytes = 8u << 20);
  ~UdfFs() override;

  const UdfInfo& info() const;
  const Source& source() const override { return *src_; }
  // "UDF 2.60" (or "UDF" for a plain ECMA-167 volume).
  std::string kind() const override;
  // The directory with this inode, parsed or cached. Throws Error(ENOTDIR), Error(ENOENT),
  // FormatError (naming the directory).
  std::shared_ptr<const Directory> list(Ino dir) const override;
  // The entry `name` of `dir`. Throws Error(ENOENT) when there is none.
  Node lookup(Ino dir, std::string_view name) const override;
  // The node with this inode number (empty name). Throws Error(ENOENT) for a number this tree
  // cannot have given, FormatError when its ICB cannot be read.
  Node stat(Ino ino) const override;

  static constexpr Ino kIcbTag = Ino{1} << 61;

 private:
  Ino ino_of(uint16_t part, uint32_t block) const;
  Node make_node(uint16_t part, uint32_t block, std::string name) const;
  std::shared_ptr<Directory> parse_dir(Ino ino) const;
  // The entries of a directory whose content is `data`. Throws FormatError naming a bad FID.
  std::shared_ptr<Directory> parse_fids(Ino ino, const std::string& data) const;
  std::string describe(Ino ino) const;

  std::shared_ptr<const Source> src_;
  std::unique_ptr<udf::Volume> vol_;
  std::unique_ptr<DirectoryCache> cache_;
  mutable std::mutex side_mutex_;
  mutable std::unordered_map<Ino, std::string> dir_names_;  // for messages, bounded
  mutable std::unordered_map<Ino, Node> damaged_;           // nodes whose ICB is damaged
};

}  // namespace imagecore
