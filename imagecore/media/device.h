// What the Linux kernel knows about a CD/DVD/BD drive and the disc in it (linux/cdrom.h,
// Documentation/userspace-api/ioctl/cdrom.rst): whether a descriptor is such a drive, whether a
// disc is loaded, and the disc's table of contents. The parts that turn a table of contents
// into sessions are pure functions, so they can be tested without a drive.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "imagecore/media/sessions.h"

namespace imagecore {

// Whether fd is a block device that answers CDROM_GET_CAPABILITY (sr, ide-cd, ...).
bool is_optical_drive(int fd);

// CDROM_DRIVE_STATUS, simplified.
enum class DriveState { Ok, NoDisc, TrayOpen, NotReady, Unknown };
DriveState drive_state(int fd);
// "no disc", "the tray is open", ... for messages.
const char* drive_state_text(DriveState s);

// One track of the disc's table of contents (CDROMREADTOCENTRY in LBA format).
struct TocTrack {
  unsigned number = 0;
  bool data = false;  // control field has CDROM_DATA_TRACK: not an audio track
  uint64_t start_lba = 0;
};

struct DiscToc {
  std::vector<TocTrack> tracks;              // in track order
  uint64_t leadout_lba = 0;                  // where the lead-out starts (end of the last track)
  std::optional<uint64_t> last_session_lba;  // CDROMMULTISESSION, when the drive tells
};

// Reads the table of contents with CDROMREADTOCHDR, CDROMREADTOCENTRY and CDROMMULTISESSION.
// Throws Error(ENOMEDIUM) when no disc is ready (naming the state), Error(errno) when the
// drive refuses, NotAnImage when the disc holds only audio tracks.
DiscToc read_disc_toc(int fd, const std::string& name);

// The sessions of a table of contents: one per data track (a multisession CD written track
// at once has one data track per session), each running to the next track or the lead-out.
// Audio tracks are left out. Throws NotAnImage when there is no data track. Pure.
SessionTable sessions_from_toc(const DiscToc& toc, const std::string& name);

}  // namespace imagecore
