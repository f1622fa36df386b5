// Mastering: a new ISO 9660 image (Rock Ridge, Joliet, MD5 tags) from files and folders on
// disk, made by libisofs and written to an image file safely (`discfs create`).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace burner {

// One SRC of `discfs create`: a file or folder on disk and where it goes in the image.
struct Graft {
  std::string disk_path;   // as given
  std::string image_path;  // absolute; "" when no "=..." was given (see parse_graft)
};

// Parses "SRC" or "SRC=/path/in/image" (a '=' that belongs to the name is written "\=",
// a backslash "\\"). The image path gets a leading '/' and loses a trailing one. Throws
// imagecore::Error (EINVAL) naming `arg` when a side is empty or the image path has a ".."
// or "." component.
Graft parse_graft(const std::string& arg);

// SOURCE_DATE_EPOCH's value: a decimal count of seconds since 1970 (xorriso and the
// reproducible-builds.org spec take nothing else). Throws imagecore::Error (EINVAL) naming the
// value when it is not one.
int64_t parse_source_date_epoch(const std::string& value);

// The uuid-style PVD time libisofs records for `epoch`: "YYYYMMDDhhmmss00" (GMT).
std::string pvd_uuid_for(int64_t epoch);

struct MasterOptions {
  std::string output;  // the image file to write
  bool force = false;  // replace an existing output file
  // A folder's contents go to its image path (the root without one); a file goes to its image
  // path, or under its own name in the root.
  std::vector<Graft> sources;
  std::vector<std::string> excludes;  // glob on a file's name or its full path on disk
  std::vector<std::string> zisofs;    // glob on a file's name or its path in the image
  bool rock_ridge = true;
  bool joliet = true;
  bool iso1999 = false;
  int iso_level = 3;  // 1, 2 or 3 (3: files of 4 GiB and more as multi-extent files)
  bool md5 = true;    // session and per-file MD5 tags
  std::string volume_id = "DISCFS", volume_set_id, publisher_id, preparer_id, application_id,
              system_id;
  // SOURCE_DATE_EPOCH: fixed volume times and "now", atime and ctime of every file set to its
  // mtime, so that the same input gives a byte-identical image.
  std::optional<int64_t> source_date_epoch;
  std::optional<uint64_t> capacity_bytes;  // refuse before writing a larger image
  // El Torito, paths in the image. boot_bios: a no-emulation x86 boot file (isolinux.bin,
  // GRUB's eltorito.img), 4 sectors loaded, its boot info table patched. boot_efi: a FAT
  // image as the UEFI entry (platform 0xEF), loaded whole. boot_catalog: default "boot.cat"
  // next to the first of them.
  std::string boot_bios, boot_efi, boot_catalog;
  // A file on disk whose first up to 32 KiB become the system area as an isohybrid MBR
  // (isolinux's isohdpfx.bin): the image then boots from a USB stick too. Needs boot_bios.
  std::string isohybrid_mbr;
  bool isohybrid_gpt = false;  // list boot_efi in a GPT as a basic data partition
  // Called as each step starts: "adding files", "writing".
  std::function<void(const char* phase)> phase;
  // Called while writing, at most about every 100 ms and once at the end.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Polled while writing; when set, master() throws (ECANCELED) and leaves no output.
  const std::atomic<bool>* cancel = nullptr;
};

struct MasterResult {
  uint64_t bytes = 0;   // size of the image written
  uint64_t files = 0;   // files (not folders) in the image
  uint64_t zisofs = 0;  // files stored zisofs-compressed
};

// Builds the image described by `o` and writes it to o.output through a temporary file in
// the same folder that is renamed at the end: on any failure no output file is left and an
// existing one is untouched. Throws imagecore::Error with one sentence naming what and where
// (a missing SRC; an existing output without `force`, EEXIST; a tree larger than
// capacity_bytes, ENOSPC, before anything is written; a libisofs failure).
MasterResult master(const MasterOptions& o);

}  // namespace burner
