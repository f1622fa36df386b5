// Arbitrary Attribute Interchange Protocol (AAIP 2.0, libisofs doc/susp_aaip_2_0.txt): the
// SUSP "AL" entries in which libisofs and xorriso record extended attributes and ACLs, and
// the libisofs MD5 checksum array (doc/checksums.txt) that two of those attributes locate.
//
// What Linux sees. AL pairs whose names fall in the Linux namespaces user., trusted.,
// security. and system. are shown as they are. The pair with an empty name is an ACL in
// AAIP's compact encoding; it becomes system.posix_acl_access and, for directories,
// system.posix_acl_default in the kernel's xattr format (linux/posix_acl_xattr.h), and it
// wins over raw system.posix_acl_* pairs that `xorriso -xattr any` also records. Names in
// libisofs' private namespace isofs. (checksum index, inode, character set...) and names
// without a Linux namespace are not shown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imagecore/base/bytes.h"
#include "imagecore/tree.h"

namespace imagecore {

// Linux limits (linux/limits.h): longer names or values cannot be shown and are dropped.
inline constexpr size_t kMaxXattrName = 255;
inline constexpr size_t kMaxXattrValue = 65536;
// Our cap on the AL bytes of one record; the SUSP walker's CE cap keeps real input far below.
inline constexpr size_t kMaxAaipBytes = 1u << 20;

// One recorded name/value pair, the namespace short forms expanded; an empty name is an ACL.
struct AaipPair {
  std::string name;
  std::string value;
};

// Gathers the component areas of AL entries in recorded order and decodes them into pairs.
class AaipCollector {
 public:
  // Takes one whole AL entry (signature, length, version, flags, component area). Throws
  // FormatError when the entry is too short or the record's AL bytes exceed kMaxAaipBytes.
  void add_entry(ByteView entry);
  // The pairs of every attribute list seen. A list cut short (a truncated component record,
  // a name without value) keeps the pairs completed before the cut.
  std::vector<AaipPair> pairs() const;
  bool empty() const { return lists_.empty(); }

 private:
  std::vector<std::string> lists_;  // component record bytes of each attribute list
  bool open_ = false;               // the last AL entry had CONTINUE set
  size_t total_ = 0;
};

// "isofs.ca" of the root: where the checksum array lies and how many 16-byte entries it has
// (entry 0 the session, 1..count-2 files, count-1 the MD5 of the entries before it).
struct ChecksumArea {
  uint32_t start_lba = 0;
  uint32_t end_lba = 0;  // the array starts at this block
  uint32_t count = 0;
};
// Parses an "isofs.ca" value; nullopt when it is malformed or not an MD5 array.
std::optional<ChecksumArea> parse_isofs_ca(std::string_view value);
// Parses an "isofs.cx" value (a file's index in the array); nullopt when malformed.
std::optional<uint32_t> parse_isofs_cx(std::string_view value);

// An AAIP ACL converted to Linux posix_acl xattr values; an empty string means none.
struct LinuxAcls {
  std::string access;
  std::string def;
};
// Converts the value of the empty-named pair. `mode` (PX) fills the owner, group and other
// entries the encoding may leave out, as libisofs does. The access ACL is empty when it says
// no more than the mode; the default ACL is empty unless `is_dir` and it is complete.
LinuxAcls aaip_acl_to_linux(ByteView acl, uint32_t mode, bool is_dir);

// What a node shows: its xattrs in recorded order (the ACLs in place of the empty-named
// pair) and its checksum array index from "isofs.cx".
struct AaipAttributes {
  std::vector<Xattr> xattrs;
  std::optional<uint32_t> md5_index;
  std::optional<ChecksumArea> checksum_area;  // from "isofs.ca" (the root only)
};
AaipAttributes aaip_to_linux(const std::vector<AaipPair>& pairs, uint32_t mode, bool is_dir);

// 32 lowercase hex digits of a 16-byte digest.
std::string hex_digest(ByteView md5);

}  // namespace imagecore
