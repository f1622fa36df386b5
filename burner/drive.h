// Optical drives and libburn stdio: pseudo-drives: listing them, what medium they hold,
// burning an image onto that medium and blanking it. Every drive is acquired for one call
// and released on every way out of it (also on an exception or a cancel).
//
// A DRIVE argument is a /dev/srN device (or a link to one), "stdio:PATH", or any other path
// (an image file or a block device), which is written as the libburn pseudo-drive
// stdio:PATH: libisoburn treats those as overwritable media.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "imagecore/base/error.h"

namespace burner {

// The medium cannot take what was asked (no medium, closed, write-once, too small, read-only):
// refused before anything was written. The sentence names the drive and the reason.
class MediumRefused : public imagecore::Error {
 public:
  using imagecore::Error::Error;
};

// Writing failed part way: the medium may hold a damaged session.
class WriteFailed : public imagecore::Error {
 public:
  using imagecore::Error::Error;
};

// --verify found blocks on the medium that differ from the image.
class VerifyMismatch : public imagecore::Error {
 public:
  using imagecore::Error::Error;
};

struct SessionEntry {
  int number = 0;  // 1-based
  uint64_t start_lba = 0;
  uint64_t blocks = 0;
};

// The loaded medium, as libburn and libisoburn see it.
struct MediumInfo {
  int profile_code = 0;  // MMC profile (0x09 CD-R, 0x1b DVD+R, 0x41 BD-R, ...); 0xffff stdio
  std::string profile;   // libburn's name: "CD-R", "DVD+RW", "stdio file", ...
  // "blank", "appendable", "closed", "unsuitable" or "unknown".
  std::string state;
  bool erasable = false;      // CD-RW, DVD-RW: can be blanked
  bool overwritable = false;  // random access: sessions are emulated (DVD+RW, BD-RE, files)
  bool read_only = false;     // ROM media, read-only files and devices
  std::vector<SessionEntry> sessions;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;                // for the next session (0 when closed)
  std::optional<uint64_t> next_writable;  // LBA of the next session (blank or appendable)
  std::optional<uint64_t> last_session;   // LBA of the newest session (msc1)
  std::vector<int> write_speeds_kbs;      // the drive's choices for this medium, fastest first
};

struct DriveInfo {
  std::string path;     // as given, or /dev/srN from the listing
  std::string address;  // libburn's address ("/dev/sr0", "stdio:/tmp/x.iso")
  bool busy = false;    // another program holds it; `problem` says which
  std::string problem;  // why nothing more is known (busy, no permission, no medium...)
  std::string vendor, model, revision;
  std::vector<std::string> write_profiles;  // media the drive can write
  std::optional<MediumInfo> medium;         // nullopt: no medium, or unknown (see problem)
};

// The optical drives of this machine (/sys/class/block/sr*), as /dev paths, sorted. Opens
// nothing.
std::vector<std::string> optical_drive_paths();

// One drive with its medium. Never throws for a drive that cannot be opened: busy, missing
// or not permitted drives come back with `problem` set. Throws imagecore::Error only when
// the libraries cannot start.
DriveInfo probe_drive(const std::string& drive);

// The speed factor "1x" in kB/s (1000 bytes) for a profile: CD 176.4, DVD 1385, BD 4495.5.
double one_x_kbs(int profile_code);

struct BurnProgress {
  uint64_t done = 0;              // bytes of the image written (or read back, when verifying)
  uint64_t total = 0;             // bytes of the image
  int drive_buffer_percent = -1;  // fill of the drive's buffer; -1 unknown
  int fifo_percent = -1;          // fill of discfs's fifo; -1 unknown
};

struct BurnOptions {
  bool multi = false;   // leave the medium appendable
  bool dummy = false;   // simulate: the laser stays off
  bool eject = false;   // eject when done
  bool verify = false;  // read every block back and compare with the image
  int speed_kbs = 0;    // 0: the drive's fastest
  // A step begins: "checking", "writing", "closing", "verifying", "done". Optional.
  std::function<void(const char* phase)> phase;
  // Called about five times a second while writing or verifying. Optional.
  std::function<void(const BurnProgress&)> progress;
  // Set (by a signal handler) to cancel; the write is stopped with burn_drive_cancel().
  const std::atomic<bool>* cancel = nullptr;
};

struct BurnResult {
  uint64_t start_lba = 0;  // where the session went
  uint64_t blocks = 0;     // 2048-byte blocks of the image
  bool appendable = false;
  bool overwritable = false;
  bool verified = false;
  bool cancelled = false;  // stopped by `cancel`; the session is incomplete
  std::string profile;
};

// Writes the file `image` as a new session on `drive`. Checks the medium first and throws
// MediumRefused (nothing written) when it is missing, closed, read-only, cannot simulate, has
// too little room, or when `image` is an ISO 9660 image made for another start address than
// the next session's. On overwritable media (and stdio:) the first session goes to LBA 0 and
// a later one to the next writable address, after which blocks 0..31 are rewritten to
// describe it (as growisofs does). Throws WriteFailed when the drive reports a failed write,
// VerifyMismatch when --verify finds a difference, imagecore::Error when `image` cannot be
// read or `drive` cannot be opened (EBUSY when another program holds it).
BurnResult burn_image(const std::string& image, const std::string& drive, const BurnOptions& opts);

enum class BlankMode : uint8_t { Fast, Full, Format };

struct BlankResult {
  bool already_blank = false;  // nothing to do
  bool emulated = false;       // overwritable: the ISO 9660 superblock was invalidated
  bool cancelled = false;
  std::string profile;
};

// Blanks (or formats) the medium in `drive`. Throws MediumRefused, with the reason, for media
// that cannot be blanked (write-once, ROM, read-only) or formatted. Blanking and formatting
// cannot be cancelled once started: `cancel` is then only noted (phase "not cancellable").
BlankResult blank_medium(const std::string& drive,
                         BlankMode mode,
                         const std::function<void(const char* phase)>& phase,
                         const std::atomic<bool>* cancel);

}  // namespace burner
