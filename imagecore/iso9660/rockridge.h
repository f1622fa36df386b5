// System Use Sharing Protocol (IEEE P1281) and Rock Ridge (RRIP, IEEE P1282) entries of one
// directory record, continuation areas included.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "imagecore/base/bytes.h"
#include "imagecore/base/source.h"
#include "imagecore/iso9660/aaip.h"
#include "imagecore/node.h"

namespace imagecore {

// SUSP 5.1: at most this many continuation areas per record (Linux caps at 32 as well).
inline constexpr int kMaxContinuationAreas = 32;

// Longest name kept from NM entries (Linux NAME_MAX); longer names are cut by the caller.
inline constexpr size_t kMaxNameBytes = 255;

// The Rock Ridge facts found in one record's system use area.
struct RockRidge {
  bool any = false;      // at least one RRIP entry was found
  bool sp = false;       // SUSP SP indicator (root "." record)
  uint8_t sp_skip = 0;   // bytes to skip at the start of every system use area
  bool er_rrip = false;  // an ER entry names RRIP
  bool er_aaip = false;  // an ER entry names AAIP 2.0 (libisofs extended attributes)
  bool al = false;       // at least one AAIP AL entry was found
  // When set, AL entries are handed to it (only xattr queries pay for collecting them).
  AaipCollector* aaip = nullptr;

  bool px = false;  // PX: POSIX attributes
  uint32_t mode = 0, nlink = 1, uid = 0, gid = 0;
  std::optional<uint32_t> serial;  // PX file serial number (RRIP 1.12)
  bool pn = false;                 // PN: device number
  uint64_t rdev = 0;
  bool nm = false;          // NM: alternate name
  bool nm_special = false;  // NM names "." or ".."
  std::string name;
  bool sl = false;  // SL: symbolic link
  std::string symlink;
  std::optional<Timestamp> birth, mtime, atime, ctime;
  std::optional<uint32_t> child_link;  // CL: relocated directory's LBA
  bool relocated = false;              // RE: this is a relocated directory in rr_moved
  bool zf = false;                     // ZF: zisofs-compressed data
  ZisofsInfo zisofs;
  std::string zf_algorithm;
};

// Parses the system use area `su` of the record at byte `where` (for messages), following CE
// entries through `src`. Malformed entries end the parse with a FormatError naming the LBA.
void parse_system_use(const Source& src, ByteView su, uint64_t where, RockRidge* out);

}  // namespace imagecore
