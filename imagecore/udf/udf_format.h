// On-disc layouts of ECMA-167 (3rd edition) and OSTA UDF 2.60 that the UDF reader uses, as
// byte offsets within each descriptor, with the section that defines them; and the small
// decoders every layer shares (tags, d-strings, timestamps, allocation descriptors).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "imagecore/base/bytes.h"
#include "imagecore/base/timestamp.h"

namespace imagecore::udf {

// Descriptor tag identifiers (ECMA-167 3/7.2.1 and 4/7.2.1).
enum TagId : uint16_t {
  kTagSparingTable = 0,  // UDF 2.2.12 uses identifier 0
  kTagPvd = 1,
  kTagAnchor = 2,
  kTagVdp = 3,
  kTagIuvd = 4,
  kTagPd = 5,
  kTagLvd = 6,
  kTagUsd = 7,
  kTagTerminator = 8,
  kTagLvid = 9,
  kTagFsd = 256,
  kTagFid = 257,
  kTagAed = 258,
  kTagIndirect = 259,
  kTagTerminal = 260,
  kTagFe = 261,
  kTagEaHeader = 262,
  kTagEfe = 266,
};

// Descriptor tag (3/7.2): 16 bytes.
namespace tag {
inline constexpr size_t kId = 0, kChecksum = 4, kCrc = 8, kCrcLength = 10, kLocation = 12;
inline constexpr size_t kSize = 16;
}  // namespace tag

// Anchor volume descriptor pointer (3/10.2).
namespace avdp {
inline constexpr size_t kMain = 16, kReserve = 24;  // extent_ad: length, location
}

// Primary volume descriptor (3/10.1).
namespace pvd {
inline constexpr size_t kVdsn = 16, kVolumeId = 24, kVolumeSetId = 72, kRecorded = 376;
}

// Partition descriptor (3/10.5).
namespace pd {
inline constexpr size_t kVdsn = 16, kNumber = 22, kStart = 188, kLength = 192;
}

// Logical volume descriptor (3/10.6).
namespace lvd {
inline constexpr size_t kVdsn = 16, kVolumeId = 84, kBlockSize = 212, kDomain = 216,
                        kFsdLocation = 248, kMapTableLength = 264, kMapCount = 268, kMaps = 440;
}

// Partition maps (3/10.7.2, 3/10.7.3; UDF 2.2.8-2.2.10).
namespace pmap {
inline constexpr size_t kType1Number = 4;
inline constexpr size_t kType2Ident = 4, kType2Number = 38;
inline constexpr size_t kSparePacket = 40, kSpareTableCount = 42, kSpareTableSize = 44,
                        kSpareTables = 48;
inline constexpr size_t kMetaFile = 40, kMetaMirror = 44, kMetaFlags = 58;
}  // namespace pmap

// Sparing table (UDF 2.2.12).
namespace sparing {
inline constexpr size_t kEntryCount = 48, kEntries = 56;
inline constexpr uint32_t kUnused = 0xFFFFFFF0;  // this and above: not a remapped packet
}  // namespace sparing

// File set descriptor (4/14.1).
namespace fsd {
inline constexpr size_t kDomain = 416, kRoot = 400;
}

// ICB tag (4/14.6), at offset 16 of every ICB entry.
namespace icb {
inline constexpr size_t kStrategy = 16 + 4, kFileType = 16 + 11, kFlags = 16 + 18;
inline constexpr uint16_t kAdMask = 7, kSetuid = 0x40, kSetgid = 0x80, kSticky = 0x100;
enum AdType : uint8_t { kShort = 0, kLong = 1, kExtended = 2, kEmbedded = 3 };
enum FileType : uint8_t {
  kUnspecified = 0,
  kIndirect = 3,
  kDirectory = 4,
  kRegular = 5,
  kBlockDevice = 6,
  kCharDevice = 7,
  kFifo = 9,
  kSocket = 10,
  kSymlink = 12,
  kVat = 248,
  kRealTime = 249,
  kMetadata = 250,
  kMetadataMirror = 251,
};
}  // namespace icb

// File entry (4/14.9) and extended file entry (4/14.17).
namespace fe {
inline constexpr size_t kUid = 36, kGid = 40, kPerm = 44, kLinks = 48, kSize = 56;
inline constexpr size_t kAtime = 72, kMtime = 84, kAttrTime = 96, kEaLength = 168, kAdLength = 172,
                        kHeader = 176;
inline constexpr size_t kExtAtime = 80, kExtMtime = 92, kExtAttrTime = 116, kExtEaLength = 208,
                        kExtAdLength = 212, kExtHeader = 216;
}  // namespace fe

// Indirect entry (4/14.7): the long_ad of the next ICB.
namespace ie {
inline constexpr size_t kTarget = 36;
}

// File identifier descriptor (4/14.4).
namespace fid {
inline constexpr size_t kCharacteristics = 18, kNameLength = 19, kIcb = 20, kImpUseLength = 36,
                        kHeader = 38;
inline constexpr uint8_t kHidden = 1, kDirectory = 2, kDeleted = 4, kParent = 8;
}  // namespace fid

// Allocation extent descriptor (4/14.5).
namespace aed {
inline constexpr size_t kLength = 20, kHeader = 24;
}

// Extent types in the top two bits of an extent length (4/14.14.1.1).
enum ExtentType : uint8_t { kRecorded = 0, kAllocated = 1, kNotAllocated = 2, kNextExtent = 3 };

// An allocation descriptor, decoded from short_ad, long_ad or ext_ad.
struct Ad {
  uint32_t length = 0;  // bytes
  ExtentType type = kRecorded;
  uint32_t block = 0;
  uint16_t part = 0;
};

// CRC-ITU-T (polynomial 0x1021, initial 0) of the bytes (ECMA-167 1/7.2.6).
uint16_t crc_itu(ByteView b);
// Fills in a tag's checksum (for writers and test builders).
uint8_t tag_checksum(ByteView tag16);

// Why the descriptor at `d` is not a sound `want` tag at `location`, or "" when it is: tag
// checksum, identifier, location (unless location is nullopt) and, when the CRC length fits
// in `d`, the descriptor CRC.
std::string check_tag(ByteView d, uint16_t want, std::optional<uint32_t> location);

// A CS0 string (compression id 8, 16, 254 or 255 and then the characters) as UTF-8; unknown
// compression ids give "".
std::string cs0_to_utf8(ByteView chars);
// A d-string field (1/7.2.12): the last byte holds the used length.
std::string dstring(ByteView field);
// A 12-byte timestamp (1/7.3) as UTC; nullopt when it is all zero.
std::optional<Timestamp> timestamp(ByteView b);
// Reads a short_ad, long_ad or ext_ad at `at`; `part` is used for short_ad.
Ad read_ad(ByteView b, size_t at, icb::AdType type, uint16_t part);
// Size of one allocation descriptor of the type.
size_t ad_size(icb::AdType type);

}  // namespace imagecore::udf
