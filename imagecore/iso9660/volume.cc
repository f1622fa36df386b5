#include "imagecore/iso9660/volume.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <vector>

#include "imagecore/base/bytes.h"
#include "imagecore/iso9660/ecma119.h"

namespace imagecore {
namespace {

using namespace ecma119;

std::string trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0'))
    s.remove_suffix(1);
  return std::string(s);
}

TreeRoot root_of(ByteView d) {
  ByteView rec = d.sub(pvd::kRootRecord, dr::kMinLength);
  return TreeRoot{rec.both32(dr::kExtent), rec.both32(dr::kDataLength)};
}

bool has_magic(const std::vector<std::byte>& b, size_t at, std::string_view magic) {
  return b.size() >= at + magic.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

}  // namespace

std::optional<std::array<std::byte, 2048>> read_primary_block(const Source& src,
                                                              uint64_t session_start) {
  using namespace ecma119;
  const uint64_t lba = session_start + kSystemAreaBlocks;
  if (lba >= src.size() / kBlockSize)
    return std::nullopt;
  std::array<std::byte, kBlockSize> block;
  src.read(lba * kBlockSize, block);
  const ByteView d(block.data(), block.size());
  if (d.u8(vd::kType) != vd::kPrimary || d.chars(vd::kStandardId, 5) != "CD001")
    return std::nullopt;
  return block;
}

std::string describe_non_image(const Source& src) {
  if (src.size() == 0)
    return "an empty file";
  std::vector<std::byte> head(std::min<uint64_t>(src.size(), 40 * kBlockSize));
  src.read(0, head);
  if (has_magic(head, 0, "\x1f\x8b"))
    return "a gzip file";
  if (has_magic(head, 0,
                "\xfd"
                "7zXZ"))
    return "an xz file";
  if (has_magic(head, 0, "BZh"))
    return "a bzip2 file";
  if (has_magic(head, 0, "PK\x03\x04"))
    return "a zip file";
  if (has_magic(head, 0, "7z\xbc\xaf\x27\x1c"))
    return "a 7z archive";
  if (has_magic(head, 257, "ustar"))
    return "a tar archive";
  for (uint32_t lba = 16; lba < 20; ++lba)
    for (const char* id : {"BEA01", "NSR02", "NSR03"})
      if (has_magic(head, lba * kBlockSize + 1, id))
        return "a UDF image without an ISO 9660 tree";
  if (src.size() < (kSystemAreaBlocks + 1) * kBlockSize)
    return fmt::format("{} bytes, too small to hold ISO 9660 volume descriptors", src.size());
  if (head.size() >= 512 && head[510] == std::byte{0x55} && head[511] == std::byte{0xAA})
    return "a disk image with a boot sector but no ISO 9660 volume descriptor at byte 32768";
  bool zero = true;
  for (std::byte b : head)
    zero = zero && b == std::byte{0};
  if (zero)
    return "zero bytes where ISO 9660 volume descriptors should be";
  return "no ISO 9660 volume descriptor at byte 32768";
}

VolumeInfo read_volume_descriptors(const Source& src, uint64_t start) {
  VolumeInfo info;
  info.session_start_lba = start;
  bool have_primary = false;
  std::array<std::byte, kBlockSize> block;
  for (uint32_t i = 0; i < kMaxDescriptors; ++i) {
    const uint64_t lba = start + kSystemAreaBlocks + i;
    if ((lba + 1) * kBlockSize > src.size())
      break;
    src.read(lba * kBlockSize, block);
    ByteView d(block.data(), block.size());
    if (d.chars(vd::kStandardId, 5) != "CD001")
      break;
    const uint8_t type = d.u8(vd::kType);
    if (type == vd::kTerminator)
      break;
    if (type == vd::kBootRecord) {
      info.has_boot_record = d.chars(7, 23).starts_with("EL TORITO SPECIFICATION");
    } else if (type == vd::kPrimary && !have_primary) {
      have_primary = true;
      const uint16_t bs = d.both16(pvd::kLogicalBlockSize);
      if (bs != kBlockSize)
        throw Unsupported(
            fmt::format("{}: logical block size {} (only 2048 is supported)", src.name(), bs));
      info.volume_blocks = d.both32(pvd::kVolumeSpaceSize);
      info.system_id = trimmed(d.chars(pvd::kSystemId, 32));
      info.volume_id = trimmed(d.chars(pvd::kVolumeId, 32));
      info.volume_set_id = trimmed(d.chars(pvd::kVolumeSetId, 128));
      info.publisher_id = trimmed(d.chars(pvd::kPublisherId, 128));
      info.preparer_id = trimmed(d.chars(pvd::kPreparerId, 128));
      info.application_id = trimmed(d.chars(pvd::kApplicationId, 128));
      Timestamp t;
      if (decode_long_date(d.sub(pvd::kCreationDate, 17), &t))
        info.created = t;
      if (decode_long_date(d.sub(pvd::kModificationDate, 17), &t))
        info.modified = t;
      info.primary = root_of(d);
    } else if (type == vd::kSupplementary) {
      const uint8_t version = d.u8(pvd::kFileStructureVersion);
      std::string_view esc = d.chars(pvd::kEscapeSequences, 3);
      if (version == 2 && !info.enhanced) {
        info.enhanced = root_of(d);
      } else if (!info.joliet && esc[0] == '%' && esc[1] == '/' &&
                 (esc[2] == '@' || esc[2] == 'C' || esc[2] == 'E')) {
        info.joliet = root_of(d);
        info.joliet_level = esc[2] == '@' ? 1 : esc[2] == 'C' ? 2 : 3;
      }
    }
  }
  if (!have_primary)
    throw NotAnImage(
        fmt::format("{}: not an ISO 9660 image: {}", src.name(), describe_non_image(src)));
  return info;
}

}  // namespace imagecore
