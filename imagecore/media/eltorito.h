// El Torito boot records (El Torito Bootable CD-ROM Format Specification 1.0, 1995): the boot
// catalog of a session and the size of each boot image, as `xorriso -extract_boot_images`
// cuts them out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "imagecore/base/source.h"
#include "imagecore/tree.h"

namespace imagecore {

// One boot image named by the catalog (2.2 initial/default entry, 2.4 section entries).
struct BootEntry {
  unsigned number = 0;      // 1-based, catalog order (initial/default entry first)
  uint8_t platform_id = 0;  // 0 x86, 1 PowerPC, 2 Mac, 0xEF EFI
  std::string platform;     // "bios", "ppc", "mac", "efi", or "0xNN"
  uint8_t media = 0;        // 0 no emulation, 1 1.2M, 2 1.44M, 3 2.88M floppy, 4 hard disk
  std::string emulation;    // "noemul", "fd1.2m", "fd1.44m", "fd2.88m", "hdd" or "0xNN"
  bool bootable = false;
  uint16_t load_segment = 0;
  uint8_t system_type = 0;
  uint16_t sector_count = 0;  // 512-byte sectors the BIOS loads (no emulation)
  uint32_t load_lba = 0;
  uint64_t size = 0;      // bytes of the boot image (see read_boot_catalog)
  std::string file_name;  // "1-bios-noemul.img": number, platform, emulation
  std::string tree_path;  // "/boot/grub/efi.img" when a tree file holds the image
};

struct BootCatalog {
  uint32_t catalog_lba = 0;
  std::vector<BootEntry> entries;
  std::string note;  // non-empty when the catalog was damaged or odd: what was found
};

// Most entries read from a catalog (libisofs keeps 32).
inline constexpr unsigned kMaxBootEntries = 32;

// Reads the boot record of the session whose descriptors are at session_start_lba+16, or
// nothing when there is none. Damage (a bad validation entry checksum, entries past the end)
// is told in `note`, never thrown; only read errors of the source throw.
//
// Sizes follow xorriso's -extract_boot_images: a whole number of 2048-byte blocks, the larger
// of the load size and
//   - the size of the tree file whose data holds the image's first block, when one does
//     (tree may be null: then no file is looked for);
//   - else the distance to the next block something else claims: a file, the catalog, another
//     boot image, the descriptors, path tables and root of the session, an MBR or GPT
//     partition start or end, the end of the volume;
// clipped at the end of the source. An EFI image that gets no size that way runs to the end
// of the source (at most 1 GiB). When all that gives nothing, the size is what the image
// implies: the floppy size, the hard disk's MBR partition extent, a FAT boot sector's size,
// else the load size.
std::optional<BootCatalog> read_boot_catalog(const Source& src,
                                             uint64_t session_start_lba,
                                             const FileTree* tree);

}  // namespace imagecore
