// Probing a commit target: own reads of the volume recognition area, libisoburn's emulated
// table of content for the sessions and the next writable address.
#include "burner/target.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "burner/libs.h"
#include "imagecore/base/error.h"
#include "imagecore/base/fd.h"
#include "imagecore/base/source.h"
#include "imagecore/media/sessions.h"

namespace burner {
namespace {

// Smallest session worth trying: volume descriptors, a tiny tree, tags and alignment.
constexpr uint64_t kMinSessionBlocks = 64;

using imagecore::Fd;

bool read_block(int fd, uint64_t lba, char* buf) {
  const ssize_t n = ::pread(fd, buf, kBlockSize, static_cast<off_t>(lba * kBlockSize));
  return n == static_cast<ssize_t>(kBlockSize);
}

enum class Content { Blank, Iso9660, UdfOnly, Unknown };

// Classifies what the first 64 KiB and the volume recognition area hold.
Content classify(int fd, uint64_t size_bytes) {
  char buf[kBlockSize];
  bool all_zero = true;
  for (uint64_t lba = 0; lba < 32 && (lba + 1) * kBlockSize <= size_bytes && all_zero; ++lba) {
    if (!read_block(fd, lba, buf))
      break;
    for (char c : buf) {
      if (c != 0) {
        all_zero = false;
        break;
      }
    }
  }
  if (all_zero) {
    // libisoburn treats a zeroed head as blank unless a first session sits at LBA 32.
    if (size_bytes >= 49 * kBlockSize && read_block(fd, 48, buf) &&
        std::memcmp(buf + 1, "CD001", 5) == 0) {
      return Content::Iso9660;
    }
    return Content::Blank;
  }
  if (size_bytes >= 17 * kBlockSize && read_block(fd, 16, buf) &&
      std::memcmp(buf + 1, "CD001", 5) == 0) {
    return Content::Iso9660;
  }
  // ECMA-167 2/9.1: extended area descriptors from LBA 16 (2 KiB sectors).
  for (uint64_t lba = 16; lba < 32 && (lba + 1) * kBlockSize <= size_bytes; ++lba) {
    if (!read_block(fd, lba, buf))
      break;
    if (std::memcmp(buf + 1, "NSR02", 5) == 0 || std::memcmp(buf + 1, "NSR03", 5) == 0) {
      return Content::UdfOnly;
    }
  }
  return Content::Unknown;
}

void refuse(TargetInfo& info, const std::string& why) {
  info.state = TargetState::NotAppendable;
  info.reason = info.path + ": " + why;
}

// Fills sessions, used_blocks and next_writable from libisoburn.
void read_toc(TargetInfo& info) {
  detail::ensure_libraries();
  auto lock = detail::lock_libraries();
  detail::Drive drive(info.path, 0);
  const auto status = isoburn_disc_get_status(drive.get());
  if (status == burn::BURN_DISC_FULL) {
    refuse(info, "libisoburn sees data it cannot append to (not an ISO 9660 image)");
    return;
  }
  if (status == burn::BURN_DISC_BLANK) {
    info.state = TargetState::Blank;
  }
  int lba = 0, nwa = 0;
  if (isoburn_disc_track_lba_nwa(drive.get(), nullptr, 0, &lba, &nwa) == 1 && nwa >= 0) {
    info.next_writable = static_cast<uint64_t>(nwa);
  }
  isoburn_toc_disc* disc = isoburn_toc_drive_get_disc(drive.get());
  if (disc != nullptr) {
    int num = 0;
    isoburn_toc_session** sessions = isoburn_toc_disc_get_sessions(disc, &num);
    for (int i = 0; sessions != nullptr && i < num && i < 100000; ++i) {
      int ntracks = 0;
      isoburn_toc_track** tracks = isoburn_toc_session_get_tracks(sessions[i], &ntracks);
      if (tracks == nullptr || ntracks < 1)
        continue;
      int start = 0, blocks = 0;
      char volid[33] = {};
      SessionInfo s;
      s.number = static_cast<int>(info.sessions.size()) + 1;
      if (isoburn_toc_track_get_emul(tracks[0], &start, &blocks, volid, 0) == 1) {
        s.start_lba = static_cast<uint64_t>(start);
        s.blocks = static_cast<uint64_t>(blocks);
        s.volid = volid;
      } else {
        burn_toc_entry e{};
        isoburn_toc_track_get_entry(tracks[0], &e);
        s.start_lba = static_cast<uint64_t>(e.start_lba);
        s.blocks = static_cast<uint64_t>(e.track_blocks);
      }
      info.sessions.push_back(s);
    }
    isoburn_toc_disc_free(disc);
  }
  if (const SessionInfo* last = info.newest()) {
    info.used_blocks = last->start_lba + last->blocks;
    info.single_session_at_zero = info.sessions.size() == 1 && last->start_lba == 0;
  }
  detail::drain_messages();
}

// imagecore's table of the image's sessions, or nothing where it has none it can read.
std::optional<imagecore::SessionTable> session_table(const std::string& path) {
  try {
    return imagecore::read_session_table(*imagecore::open_file_source(path));
  } catch (const imagecore::Error& e) {
    spdlog::debug("{}: no session table: {}", path, e.what());
  }
  return std::nullopt;
}

// libisoburn sees one session at LBA 0 on an image that started there, however often discfs
// grew it; the records discfs keeps in each session list them all (session_history.h).
void take_history(TargetInfo& info, const imagecore::SessionTable& t) {
  std::vector<SessionInfo> sessions;
  for (const imagecore::SessionEntry& e : t.sessions) {
    SessionInfo s;
    s.number = static_cast<int>(e.number);
    s.start_lba = e.start_lba;
    s.blocks = e.blocks;
    s.volid = info.sessions.empty() ? "" : info.sessions.back().volid;
    sessions.push_back(s);
  }
  info.sessions = std::move(sessions);
  info.history = true;
  info.history_newest_start = t.sessions.back().tree_start();
  info.single_session_at_zero = false;
}

}  // namespace

uint64_t TargetInfo::free_blocks() const {
  if (!capacity_blocks)
    return UINT64_MAX;
  return *capacity_blocks > next_writable ? *capacity_blocks - next_writable : 0;
}

uint64_t parse_capacity(const std::string& value) {
  struct Named {
    const char* name;
    uint64_t blocks;
  };
  // Sizes of unformatted write-once media as libburn reports them for common discs.
  static constexpr Named kNamed[] = {
      {"cd", 359846}, {"dvd", 2295104}, {"dvd-dl", 4173824}, {"bd", 12219392}, {"bd-dl", 24438784}};
  std::string lower;
  for (char c : value)
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const Named& n : kNamed) {
    if (lower == n.name)
      return n.blocks * kBlockSize;
  }
  const auto bad = [&](const std::string& why) {
    return imagecore::Error(EINVAL, "capacity \"" + value + "\": " + why);
  };
  size_t digits = 0;
  while (digits < lower.size() && std::isdigit(static_cast<unsigned char>(lower[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits > 19) {
    throw bad("expected cd, dvd, dvd-dl, bd, bd-dl or a number of bytes");
  }
  uint64_t n = std::stoull(lower.substr(0, digits));
  const std::string suffix = lower.substr(digits);
  int shift = 0;
  if (suffix.empty() || suffix == "b") {
    shift = 0;
  } else if (suffix == "k" || suffix == "kib") {
    shift = 10;
  } else if (suffix == "m" || suffix == "mib") {
    shift = 20;
  } else if (suffix == "g" || suffix == "gib") {
    shift = 30;
  } else if (suffix == "t" || suffix == "tib") {
    shift = 40;
  } else {
    throw bad("unknown unit \"" + suffix + "\" (use K, M, G or T)");
  }
  if (shift > 0 && n > (UINT64_MAX >> shift))
    throw bad("too large");
  n <<= shift;
  if (n == 0 || n % kBlockSize != 0)
    throw bad("must be a positive multiple of 2048 bytes");
  return n;
}

TargetInfo probe_target(const std::string& path, std::optional<uint64_t> capacity_bytes) {
  TargetInfo info;
  info.path = path;
  if (capacity_bytes)
    info.capacity_blocks = *capacity_bytes / kBlockSize;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      refuse(info, std::string("cannot look at it: ") + std::strerror(errno));
      return info;
    }
    info.kind = TargetKind::Missing;
    info.state = TargetState::Blank;
    info.next_writable = 32;
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (parent.empty())
      parent = ".";
    if (::access(parent.c_str(), W_OK) != 0) {
      refuse(info, "does not exist and cannot be created in " + parent.string() + ": " +
                       std::strerror(errno));
    }
    return info;
  }
  if (S_ISBLK(st.st_mode)) {
    info.kind = TargetKind::BlockDevice;
  } else if (S_ISREG(st.st_mode)) {
    info.kind = TargetKind::RegularFile;
  } else {
    refuse(info, "is neither an image file nor a block device");
    return info;
  }
  Fd fd;
  fd.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd.fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
    info.read_only = true;
    fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd.fd < 0) {
    refuse(info, std::string("cannot open it: ") + std::strerror(errno));
    return info;
  }
  // Root may open a file that nobody may write; a mode without write bits still means
  // "keep this unchanged".
  if (info.kind == TargetKind::RegularFile && (st.st_mode & 0222) == 0)
    info.read_only = true;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (info.kind == TargetKind::BlockDevice) {
    uint64_t dev_size = 0;
    if (::ioctl(fd.fd, BLKGETSIZE64, &dev_size) == 0)
      size = dev_size;
    info.capacity_blocks = size / kBlockSize;
  }
  const Content content = classify(fd.fd, size);
  if (content == Content::UdfOnly) {
    refuse(info,
           "is a UDF image without ISO 9660 volume descriptors; discfs appends "
           "ISO 9660 sessions only");
    return info;
  }
  if (content == Content::Unknown) {
    refuse(info, "holds data that is neither ISO 9660 nor blank; refusing to overwrite it");
    return info;
  }
  if (content == Content::Blank) {
    info.state = TargetState::Blank;
    info.next_writable = 32;
  } else {
    info.state = TargetState::Appendable;
    read_toc(info);
    if (info.state == TargetState::NotAppendable)
      return info;
    // libisoburn takes the next writable address from the descriptors at LBA 16, which on
    // sessions appended from LBA 0 without its chain (Layout::Appended) describe the first
    // session only: a new session would be written over the second.
    using Layout = imagecore::SessionTable::Layout;
    const std::optional<imagecore::SessionTable> table = session_table(path);
    if (table && table->layout == Layout::Appended) {
      const size_t n = table->sessions.size();
      refuse(info, "holds " + std::to_string(n) +
                       " sessions written one after another without libisoburn's table of "
                       "sessions, and a new session would overwrite session 2; make a new "
                       "image from the newest session (discfs mount --session " +
                       std::to_string(n) + ") and stage that instead");
      return info;
    }
    if (info.single_session_at_zero && table && table->layout == Layout::History)
      take_history(info, *table);
  }
  if (info.read_only) {
    refuse(info, "is read-only");
    return info;
  }
  apply_capacity(info, capacity_bytes);
  return info;
}

void apply_capacity(TargetInfo& info, std::optional<uint64_t> capacity_bytes) {
  if (capacity_bytes && info.kind != TargetKind::BlockDevice)
    info.capacity_blocks = *capacity_bytes / kBlockSize;
  if (info.state == TargetState::NotAppendable || info.kind == TargetKind::Missing)
    return;
  if (info.capacity_blocks && info.free_blocks() < kMinSessionBlocks) {
    refuse(info, "is full: " + std::to_string(info.free_blocks()) +
                     " blocks left, a session needs at least " + std::to_string(kMinSessionBlocks));
  }
}

}  // namespace burner
