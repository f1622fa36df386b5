// UDF internals shared by the volume layer (udf_volume.cc: anchors, volume descriptor
// sequences, partition maps) and the file layer (udf_icb.cc: ICBs and allocation descriptors).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "imagecore/base/source.h"
#include "imagecore/node.h"
#include "imagecore/udf/udf_format.h"
#include "imagecore/udf/udf_fs.h"

namespace imagecore::udf {

// One entry of the logical volume's partition map table (ECMA-167 3/10.7, UDF 2.2.8-2.2.10).
struct Partition {
  enum class Kind { Physical, Sparable, Virtual, Metadata };
  Kind kind = Kind::Physical;
  uint16_t number = 0;             // partition descriptor number
  uint64_t start = 0, length = 0;  // from the partition descriptor, in blocks
  uint16_t base = 0;               // virtual, metadata: the physical map underneath
  uint32_t packet = 0;             // sparable: packet length in blocks
  std::vector<std::pair<uint32_t, uint32_t>> spared;  // sparable: packet -> block, sorted
  std::vector<uint32_t> vat;                          // virtual: virtual block -> base block
  std::vector<Extent> meta[2];  // metadata: file and mirror, image byte ranges
};

struct Volume {
  const Source* src = nullptr;
  UdfInfo info;
  uint32_t bs = 2048;
  uint64_t blocks = 0;           // whole blocks in the source
  std::vector<Partition> parts;  // by partition reference number
  Ad root;                       // root directory ICB (from the file set descriptor)
};

// Finds and reads the volume: anchor, main/reserve descriptor sequence, partition maps,
// sparing tables, VAT, metadata files, file set descriptor. Throws NotAnImage, FormatError,
// Unsupported.
Volume load_volume(const Source& src);

// Image byte offset of a logical block of a partition; `mirror` reads a metadata partition
// through its mirror file. Throws FormatError when the block maps nowhere or past the end.
uint64_t block_offset(const Volume& v, uint16_t part, uint32_t block, bool mirror = false);

// Appends the image byte ranges of `bytes` bytes starting at a logical block, merging
// contiguous runs. `budget` counts blocks mapped one by one (virtual, sparable, metadata) and
// throws FormatError when it runs out. Throws FormatError for ranges past the end. `mirror`
// maps blocks of a metadata partition through its mirror file.
void map_extent(const Volume& v,
                uint16_t part,
                uint32_t block,
                uint64_t bytes,
                std::vector<Extent>* out,
                uint64_t* budget,
                bool mirror = false);

// One file entry, with its allocation descriptors resolved.
struct Icb {
  uint8_t file_type = 0;
  uint16_t flags = 0;
  uint32_t uid = 0, gid = 0, perm = 0;
  uint16_t links = 1;
  uint64_t size = 0;
  std::optional<Timestamp> atime, mtime, ctime;
  bool embedded = false;
  std::string data;             // embedded data
  std::vector<Extent> extents;  // recorded data; kZeroExtent for unrecorded runs
  std::optional<std::pair<uint32_t, uint32_t>> device;  // major, minor (device spec EA)
  // Non-empty when the entry itself is sound but its data cannot be located (allocation
  // descriptors out of range, looping, ...): the attributes stand, the data reads EIO.
  std::string data_defect;
};

// Reads the ICB at a logical block (following indirect entries), resolving its allocation
// descriptors into image byte ranges. Throws FormatError naming the defect when the entry
// cannot be read; a defect of its data alone is left in Icb::data_defect.
// `mirror` maps its data, where it lies in a metadata partition, through the mirror file.
Icb read_icb(const Volume& v, uint16_t part, uint32_t block, bool mirror = false);
// Whether `part` is a metadata partition with a mirror file to fall back on.
bool has_metadata_mirror(const Volume& v, uint16_t part);

// The whole content of a (small) ICB file, at most `max` bytes. Throws FormatError, also
// for an ICB with a data defect.
std::string read_content(const Volume& v, const Icb& icb, size_t max);

}  // namespace imagecore::udf
