#include "imagecore/media/device.h"

#include <linux/cdrom.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>

#include "imagecore/base/error.h"
#include "imagecore/iso9660/volume.h"

namespace imagecore {
namespace {

// A TOC has at most 99 tracks (MMC READ TOC format 0); more is a confused drive.
constexpr unsigned kMaxTracks = 99;

[[noreturn]] void ioctl_failed(const std::string& name, const char* what) {
  const int e = errno;
  throw Error(e, fmt::format("{}: cannot read the disc's {}: {}", name, what, std::strerror(e)));
}

}  // namespace

bool is_optical_drive(int fd) {
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISBLK(st.st_mode))
    return false;
  return ::ioctl(fd, CDROM_GET_CAPABILITY, 0) >= 0;
}

DriveState drive_state(int fd) {
  // CDSL_CURRENT: the disc in the drive, not a slot of a changer.
  switch (::ioctl(fd, CDROM_DRIVE_STATUS, CDSL_CURRENT)) {
    case CDS_DISC_OK:
      return DriveState::Ok;
    case CDS_NO_DISC:
      return DriveState::NoDisc;
    case CDS_TRAY_OPEN:
      return DriveState::TrayOpen;
    case CDS_DRIVE_NOT_READY:
      return DriveState::NotReady;
    default:  // CDS_NO_INFO, or the ioctl is not implemented
      return DriveState::Unknown;
  }
}

const char* drive_state_text(DriveState s) {
  switch (s) {
    case DriveState::Ok:
      return "a disc is ready";
    case DriveState::NoDisc:
      return "there is no disc in the drive";
    case DriveState::TrayOpen:
      return "the drive's tray is open";
    case DriveState::NotReady:
      return "the drive is not ready (the disc may still be spinning up)";
    case DriveState::Unknown:
      break;
  }
  return "the drive does not tell whether a disc is loaded";
}

DiscToc read_disc_toc(int fd, const std::string& name) {
  const DriveState state = drive_state(fd);
  if (state == DriveState::NoDisc || state == DriveState::TrayOpen || state == DriveState::NotReady)
    throw Error(ENOMEDIUM, fmt::format("{}: {}", name, drive_state_text(state)));

  cdrom_tochdr hdr{};
  if (::ioctl(fd, CDROMREADTOCHDR, &hdr) != 0)
    ioctl_failed(name, "table of contents");
  DiscToc toc;
  const unsigned first = hdr.cdth_trk0, last = hdr.cdth_trk1;
  if (first == 0 || last < first || last > kMaxTracks)
    throw FormatError(fmt::format("{}: the drive reports tracks {} to {}", name, first, last));
  for (unsigned t = first; t <= last; ++t) {
    cdrom_tocentry e{};
    e.cdte_track = static_cast<uint8_t>(t);
    e.cdte_format = CDROM_LBA;
    if (::ioctl(fd, CDROMREADTOCENTRY, &e) != 0)
      ioctl_failed(name, fmt::format("entry for track {}", t).c_str());
    if (e.cdte_addr.lba < 0)
      continue;  // a pregap before LBA 0: nothing readable starts there
    toc.tracks.push_back(
        TocTrack{t, (e.cdte_ctrl & CDROM_DATA_TRACK) != 0, static_cast<uint64_t>(e.cdte_addr.lba)});
  }
  cdrom_tocentry lo{};
  lo.cdte_track = CDROM_LEADOUT;
  lo.cdte_format = CDROM_LBA;
  if (::ioctl(fd, CDROMREADTOCENTRY, &lo) != 0)
    ioctl_failed(name, "lead-out");
  toc.leadout_lba = lo.cdte_addr.lba > 0 ? static_cast<uint64_t>(lo.cdte_addr.lba) : 0;

  cdrom_multisession ms{};
  ms.addr_format = CDROM_LBA;
  if (::ioctl(fd, CDROMMULTISESSION, &ms) == 0 && ms.xa_flag && ms.addr.lba >= 0)
    toc.last_session_lba = static_cast<uint64_t>(ms.addr.lba);
  return toc;
}

SessionTable sessions_from_toc(const DiscToc& toc, const std::string& name) {
  SessionTable table;
  table.layout = SessionTable::Layout::DiscToc;
  bool any_audio = false;
  for (size_t i = 0; i < toc.tracks.size(); ++i) {
    const TocTrack& t = toc.tracks[i];
    if (!t.data) {
      any_audio = true;
      continue;
    }
    const uint64_t end = i + 1 < toc.tracks.size() ? toc.tracks[i + 1].start_lba : toc.leadout_lba;
    if (end <= t.start_lba) {
      table.note = fmt::format("track {} at LBA {} ends before it starts (at {})", t.number,
                               t.start_lba, end);
      continue;
    }
    const auto n = static_cast<unsigned>(table.sessions.size() + 1);
    table.sessions.push_back(SessionEntry{n, t.start_lba, end - t.start_lba});
  }
  if (table.sessions.empty()) {
    if (any_audio)
      throw NotAnImage(fmt::format("the disc in {} holds only audio tracks", name));
    throw NotAnImage(fmt::format("the disc in {} holds no data track", name));
  }
  if (toc.last_session_lba) {
    bool found = false;
    for (const SessionEntry& s : table.sessions)
      found = found || s.start_lba == *toc.last_session_lba;
    if (!found && table.note.empty())
      table.note = fmt::format(
          "the drive says the last session starts at LBA {}, where no data "
          "track starts",
          *toc.last_session_lba);
  }
  return table;
}

}  // namespace imagecore
