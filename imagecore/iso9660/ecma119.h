// On-disc layout of ISO 9660 (ECMA-119, 4th edition, 2019) as offsets into records.
// Section numbers refer to that standard; RRIP/SUSP ones to IEEE P1281/P1282 (1994).
#pragma once

#include <cstddef>
#include <cstdint>

namespace imagecore::ecma119 {

inline constexpr uint32_t kBlockSize = 2048;       // 6.1.2, the only size discfs reads
inline constexpr uint32_t kSystemAreaBlocks = 16;  // 6.2.1, descriptors start at LBA 16
inline constexpr uint32_t kMaxDescriptors = 256;   // our cap on the descriptor set

// 8.1 Volume descriptor: common header.
namespace vd {
inline constexpr size_t kType = 0;
inline constexpr size_t kStandardId = 1;  // "CD001"
inline constexpr size_t kVersion = 6;
inline constexpr uint8_t kBootRecord = 0;
inline constexpr uint8_t kPrimary = 1;
inline constexpr uint8_t kSupplementary = 2;  // Joliet, and 9660:1999 enhanced (version 2)
inline constexpr uint8_t kPartition = 3;
inline constexpr uint8_t kTerminator = 255;
}  // namespace vd

// 8.4 Primary (and 8.5 supplementary) volume descriptor fields.
namespace pvd {
inline constexpr size_t kSystemId = 8;            // 32 a-chars
inline constexpr size_t kVolumeId = 40;           // 32 d-chars
inline constexpr size_t kVolumeSpaceSize = 80;    // both-endian 32
inline constexpr size_t kEscapeSequences = 88;    // 32 bytes, SVD only (Joliet: %/@ %/C %/E)
inline constexpr size_t kLogicalBlockSize = 128;  // both-endian 16
inline constexpr size_t kRootRecord = 156;        // 34-byte directory record
inline constexpr size_t kVolumeSetId = 190;       // 128
inline constexpr size_t kPublisherId = 318;       // 128
inline constexpr size_t kPreparerId = 446;        // 128
inline constexpr size_t kApplicationId = 574;     // 128
inline constexpr size_t kCreationDate = 813;      // 17-byte dec-digits date
inline constexpr size_t kModificationDate = 830;
inline constexpr size_t kFileStructureVersion = 881;  // 1; 2 for a 9660:1999 EVD
}  // namespace pvd

// 9.1 Directory record.
namespace dr {
inline constexpr size_t kLength = 0;
inline constexpr size_t kExtAttrLength = 1;
inline constexpr size_t kExtent = 2;       // both-endian 32, LBA
inline constexpr size_t kDataLength = 10;  // both-endian 32
inline constexpr size_t kDate = 18;        // 7 bytes
inline constexpr size_t kFlags = 25;
inline constexpr size_t kFileUnitSize = 26;
inline constexpr size_t kInterleaveGap = 27;
inline constexpr size_t kVolSeqNumber = 28;  // both-endian 16
inline constexpr size_t kNameLength = 32;
inline constexpr size_t kName = 33;
inline constexpr size_t kMinLength = 34;  // 33 + a one-byte identifier
// 9.1.6 file flags
inline constexpr uint8_t kHidden = 0x01;
inline constexpr uint8_t kDirectory = 0x02;
inline constexpr uint8_t kAssociated = 0x04;
inline constexpr uint8_t kMultiExtent = 0x80;
}  // namespace dr

}  // namespace imagecore::ecma119
