// The volume descriptor set (ECMA-119 8) of the newest session: which trees exist and where
// their roots are.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "imagecore/base/error.h"
#include "imagecore/base/source.h"
#include "imagecore/base/timestamp.h"

namespace imagecore {

// Root directory record of one tree.
struct TreeRoot {
  uint32_t extent_lba = 0;
  uint32_t data_length = 0;
};

struct VolumeInfo {
  uint64_t session_start_lba = 0;  // where this session's descriptor set was read (minus 16)
  uint32_t volume_blocks = 0;      // volume space size recorded in the PVD
  std::string system_id, volume_id, volume_set_id, publisher_id, preparer_id, application_id;
  std::optional<Timestamp> created, modified;
  TreeRoot primary;
  std::optional<TreeRoot> joliet;    // Joliet SVD (UCS-2 names)
  int joliet_level = 0;              // 1-3 from the escape sequence
  std::optional<TreeRoot> enhanced;  // ISO 9660:1999 EVD
  bool has_boot_record = false;      // an El Torito boot record descriptor exists
};

// Reads the descriptor set at LBA start+16. Throws NotAnImage when there is none (with a
// description of what the bytes look like), Unsupported for a block size other than 2048,
// FormatError for a damaged set.
VolumeInfo read_volume_descriptors(const Source& src, uint64_t session_start_lba = 0);

// The block at LBA session_start+16 when it is a primary volume descriptor ("CD001", type 1),
// else nothing (also when it lies past the end). For walks over many sessions, which need only
// a field or two of each: no other check is made.
std::optional<std::array<std::byte, 2048>> read_primary_block(const Source& src,
                                                              uint64_t session_start);

// A short description of what a non-ISO source appears to be ("empty", "a gzip file", ...).
std::string describe_non_image(const Source& src);

}  // namespace imagecore
