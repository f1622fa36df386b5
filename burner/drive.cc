// Drives, burning an image and blanking, through libburn (and libisoburn for the emulated
// sessions of overwritable media). The calls follow libburn's reference program
// (test/libburner.c) and xorriso's Xorriso_burn_track(); see ../shared/burning-notes.md.
#include "burner/drive.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "burner/libs.h"
#include "imagecore/base/fd.h"

namespace burner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kScsiCdromMajor = 11;
constexpr uint64_t kBlock = 2048;

std::string mb(uint64_t bytes) {
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

bool is_optical_device(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode) &&
         major(st.st_rdev) == kScsiCdromMajor;
}

// libburn's address for a DRIVE argument.
std::string address_of(const std::string& drive) {
  if (drive.starts_with("stdio:"))
    return drive;
  if (is_optical_device(drive))
    return drive;
  return "stdio:" + drive;
}

bool is_rom_profile(int code) {
  return code == 0x08 || code == 0x10 || code == 0x40;
}

// The processes that have `dev` open, as "PID (NAME)", for a "busy" sentence.
std::string holders_of(const std::string& dev) {
  std::string out;
  std::error_code ec;
  const fs::path target = fs::canonical(dev, ec);
  if (ec)
    return out;
  for (const auto& p : fs::directory_iterator("/proc", ec)) {
    const std::string pid = p.path().filename();
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), ::isdigit) ||
        pid == std::to_string(::getpid()))
      continue;
    std::error_code e2;
    for (const auto& fd : fs::directory_iterator(p.path() / "fd", e2)) {
      std::error_code e3;
      if (fs::read_symlink(fd.path(), e3) == target) {
        std::string name;
        std::ifstream(p.path() / "comm") >> name;
        out += (out.empty() ? "" : ", ") + pid + " (" + name + ")";
        break;
      }
    }
  }
  return out;
}

// For a /dev/srN: whether another program holds it exclusively, or we may not open it.
// Returns "" when it can be grabbed.
std::string access_problem(const std::string& dev, bool* busy) {
  const int fd = ::open(dev.c_str(), O_RDONLY | O_NONBLOCK | O_EXCL | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return "";
  }
  const int err = errno;
  if (err == EBUSY) {
    *busy = true;
    const std::string who = holders_of(dev);
    return dev + " is busy: another program holds it" + (who.empty() ? "" : " (" + who + ")");
  }
  if (err == EACCES || err == EPERM) {
    struct stat st {};
    std::string group_name;
    if (::stat(dev.c_str(), &st) == 0)
      if (const struct group* g = ::getgrgid(st.st_gid))
        group_name = g->gr_name;
    return dev + ": no permission to open the drive" +
           (group_name.empty() ? "" : "; members of the group '" + group_name + "' may");
  }
  if (err == ENOENT)
    return dev + ": no such drive";
  return dev + ": cannot open the drive: " + std::strerror(err);
}

// An acquired drive, released (and its tray unlocked) on every way out.
class Grabbed {
 public:
  Grabbed(const std::string& drive, const std::string& address) : drive_(drive) {
    std::string adr = address;
    // bit0 load the tray; bit5, bit6: no ACLs or xattrs from disk (none are read here).
    const int ret = isoburn_drive_aquire(&info_, adr.data(), 1 | 32 | 64);
    if (ret <= 0 || info_ == nullptr) {
      const std::string why = detail::drain_messages();
      info_ = nullptr;
      throw imagecore::Error(ret == 0 ? ENOENT : EIO,
                             drive + ": cannot open the drive" + (why.empty() ? "" : ": " + why));
    }
  }
  ~Grabbed() {
    if (info_ == nullptr)
      return;
    burn_drive* d = info_[0].drive;
    // Never release a drive that still works: stop it and wait (libburn.h, burn_drive_release).
    for (int i = 0; i < 6000 && burn::burn_drive_get_status(d, nullptr) != burn::BURN_DRIVE_IDLE;
         ++i) {
      if (i == 0)
        burn::burn_drive_cancel(d);
      std::this_thread::sleep_for(100ms);
    }
    isoburn_drive_release(d, eject_ ? 1 : 0);
    burn::burn_drive_info_free(info_);
    detail::drain_messages();
  }
  Grabbed(const Grabbed&) = delete;
  Grabbed& operator=(const Grabbed&) = delete;
  burn_drive* get() const { return info_[0].drive; }
  const burn_drive_info& info() const { return info_[0]; }
  void eject_on_release(bool e) { eject_ = e; }

 private:
  std::string drive_;
  burn_drive_info* info_ = nullptr;
  bool eject_ = false;
};

struct WriteOpts {
  explicit WriteOpts(burn_drive* d) : o(burn::burn_write_opts_new(d)) {}
  ~WriteOpts() {
    if (o)
      burn::burn_write_opts_free(o);
  }
  WriteOpts(const WriteOpts&) = delete;
  WriteOpts& operator=(const WriteOpts&) = delete;
  burn_write_opts* o;
};

std::string trimmed(const char* s, size_t n) {
  std::string out(s, strnlen(s, n));
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

std::string profile_name(int code) {
  char name[80] = {};
  if (burn::burn_obtain_profile_name(code, name) == 1 && name[0])
    return name;
  return fmt::format("profile 0x{:x}", code);
}

// A stdio: target we cannot write to: a read-only block device (BLKROGET) or file.
bool stdio_read_only(const std::string& address) {
  if (!address.starts_with("stdio:"))
    return false;
  const std::string path = address.substr(6);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return false;  // created by the write
  if (S_ISBLK(st.st_mode)) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    int ro = 0;
    if (fd >= 0) {
      if (::ioctl(fd, BLKROGET, &ro) != 0)
        ro = 0;
      ::close(fd);
    }
    return ro != 0;
  }
  return ::access(path.c_str(), W_OK) != 0;
}

MediumInfo medium_of(burn_drive* d, const std::string& address) {
  MediumInfo m;
  char name[80] = {};
  if (burn::burn_disc_get_profile(d, &m.profile_code, name) == 1)
    m.profile = name;
  const int role = burn::burn_drive_get_drive_role(d);
  m.read_only = role == 4 || is_rom_profile(m.profile_code) || stdio_read_only(address);
  m.overwritable = isoburn_needs_emulation(d) == 1 || role == 2 || role == 5;
  m.erasable = burn::burn_disc_erasable(d) == 1;
  const auto status = isoburn_disc_get_status(d);
  switch (status) {
    case burn::BURN_DISC_BLANK:
      m.state = "blank";
      break;
    case burn::BURN_DISC_APPENDABLE:
      m.state = "appendable";
      break;
    case burn::BURN_DISC_FULL:
      m.state = "closed";
      break;
    case burn::BURN_DISC_UNSUITABLE:
      m.state = "unsuitable";
      break;
    default:
      m.state = "unknown";
  }
  if (m.read_only && m.state != "blank")
    m.state = "closed";
  if (isoburn_toc_disc* disc = isoburn_toc_drive_get_disc(d)) {
    int num = 0;
    isoburn_toc_session** sessions = isoburn_toc_disc_get_sessions(disc, &num);
    for (int i = 0; sessions != nullptr && i < num && i < 100000; ++i) {
      int ntracks = 0;
      isoburn_toc_track** tracks = isoburn_toc_session_get_tracks(sessions[i], &ntracks);
      if (tracks == nullptr || ntracks < 1)
        continue;
      SessionEntry s;
      s.number = static_cast<int>(m.sessions.size()) + 1;
      int start = 0, blocks = 0;
      char volid[33] = {};
      if (isoburn_toc_track_get_emul(tracks[0], &start, &blocks, volid, 0) == 1) {
        s.start_lba = static_cast<uint64_t>(std::max(start, 0));
        s.blocks = static_cast<uint64_t>(std::max(blocks, 0));
      } else {
        burn_toc_entry e{};
        isoburn_toc_track_get_entry(tracks[0], &e);
        s.start_lba = static_cast<uint64_t>(std::max(e.start_lba, 0));
        s.blocks = static_cast<uint64_t>(std::max(e.track_blocks, 0));
      }
      m.sessions.push_back(s);
    }
    isoburn_toc_disc_free(disc);
  }
  if (!m.sessions.empty())
    m.used_bytes = (m.sessions.back().start_lba + m.sessions.back().blocks) * kBlock;
  if (status == burn::BURN_DISC_APPENDABLE || status == burn::BURN_DISC_FULL) {
    int msc1 = 0;
    if (isoburn_disc_get_msc1(d, &msc1) == 1 && msc1 >= 0)
      m.last_session = static_cast<uint64_t>(msc1);
  }
  if (!m.read_only && (status == burn::BURN_DISC_BLANK || status == burn::BURN_DISC_APPENDABLE)) {
    WriteOpts o(d);
    int lba = 0, nwa = 0;
    if (status == burn::BURN_DISC_BLANK) {
      m.next_writable = 0;  // overwritable media too: a first image goes to LBA 0
    } else if (isoburn_disc_track_lba_nwa(d, o.o, 0, &lba, &nwa) == 1 && nwa >= 0) {
      m.next_writable = static_cast<uint64_t>(nwa);
    }
    if (m.overwritable && m.next_writable)
      burn::burn_write_opts_set_start_byte(o.o, static_cast<off_t>(*m.next_writable * kBlock));
    const off_t avail = burn::burn_disc_available_space(d, o.o);
    m.free_bytes = avail > 0 ? static_cast<uint64_t>(avail) : 0;
  }
  burn::burn_speed_descriptor* list = nullptr;
  if (burn::burn_drive_get_speedlist(d, &list) == 1) {
    for (auto* s = list; s != nullptr; s = s->next) {
      if (s->write_speed > 0 && s->source == 2 &&
          (s->profile_loaded == m.profile_code || s->profile_loaded < 0))
        m.write_speeds_kbs.push_back(s->write_speed);
    }
    burn::burn_drive_free_speedlist(&list);
  }
  std::sort(m.write_speeds_kbs.rbegin(), m.write_speeds_kbs.rend());
  m.write_speeds_kbs.erase(std::unique(m.write_speeds_kbs.begin(), m.write_speeds_kbs.end()),
                           m.write_speeds_kbs.end());
  return m;
}

// The medium in a grabbed drive about to be written or blanked; MediumRefused without one.
MediumInfo loaded_medium(burn_drive* d, const std::string& drive, const std::string& address) {
  if (burn::burn_disc_get_status(d) == burn::BURN_DISC_EMPTY)
    throw MediumRefused(ENOMEDIUM, drive + ": no medium in the drive");
  return medium_of(d, address);
}

void fill_identity(const Grabbed& g, DriveInfo& info) {
  const burn_drive_info& di = g.info();
  info.vendor = trimmed(di.vendor, sizeof di.vendor);
  info.model = trimmed(di.product, sizeof di.product);
  info.revision = trimmed(di.revision, sizeof di.revision);
  int num = 0, profiles[64] = {};
  char current[64] = {};
  if (burn::burn_drive_get_all_profiles(g.get(), &num, profiles, current) == 1) {
    for (int i = 0; i < num && i < 64; ++i)
      if (!is_rom_profile(profiles[i]))
        info.write_profiles.push_back(profile_name(profiles[i]));
  }
}

// Grabs `drive` for a write (burn or blank): the checks a listing does, as exceptions.
std::unique_ptr<Grabbed> grab_for_write(const std::string& drive, const std::string& address) {
  if (!address.starts_with("stdio:")) {
    bool busy = false;
    const std::string problem = access_problem(drive, &busy);
    if (!problem.empty())
      throw imagecore::Error(busy ? EBUSY : EACCES, problem);
  } else if (drive.starts_with("/dev/") && !fs::exists(drive)) {
    throw imagecore::Error(ENOENT, drive + ": no such drive or device");
  }
  return std::make_unique<Grabbed>(drive, address);
}

// The common refusals before writing anything.
void refuse_unwritable(const std::string& drive, const MediumInfo& m) {
  if (m.state == "unknown" && m.profile_code == 0)
    throw MediumRefused(ENOMEDIUM, drive + ": no medium in the drive");
  if (m.read_only)
    throw MediumRefused(EROFS, drive + ": the medium (" + m.profile + ") is read-only");
  if (m.state == "closed" && m.overwritable)
    throw MediumRefused(EROFS, drive +
                                   " holds data that is not an ISO 9660 image, so no session "
                                   "can be added; 'discfs blank --yes " +
                                   drive + "' makes it blank");
  if (m.state == "closed")
    throw MediumRefused(
        EROFS, drive + ": the disc (" + m.profile + ") is closed: no session can be added" +
                   (m.erasable ? "; blank it first with 'discfs blank " + drive + "'"
                               : "; use a blank disc"));
  if (m.state != "blank" && m.state != "appendable")
    throw MediumRefused(EMEDIUMTYPE, drive + ": the medium (" +
                                         (m.profile.empty() ? "unknown" : m.profile) +
                                         ") cannot be written");
}

uint32_t le32(const unsigned char* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// The first 64 KiB of an image; `iso` when its PVD is at block 16.
struct ImageHead {
  std::vector<unsigned char> bytes;
  bool iso = false;
  uint32_t volume_blocks = 0;
  uint32_t root_lba = 0;
};

ImageHead read_head(int fd, uint64_t size) {
  ImageHead h;
  h.bytes.assign(64 * 1024, 0);
  if (size < 17 * kBlock)
    return h;
  const ssize_t n = ::pread(fd, h.bytes.data(), h.bytes.size(), 0);
  if (n < static_cast<ssize_t>(17 * kBlock))
    return h;
  const unsigned char* pvd = h.bytes.data() + 16 * kBlock;
  if (pvd[0] != 1 || std::memcmp(pvd + 1, "CD001", 5) != 0)
    return h;
  h.iso = true;
  h.volume_blocks = le32(pvd + 80);
  h.root_lba = le32(pvd + 156 + 2);
  return h;
}

// One past the block of the volume descriptor set terminator in a 64 KiB head (blocks
// 0..31), or 0 when the set does not end there.
uint64_t vd_set_end(const std::vector<unsigned char>& head) {
  for (uint64_t b = 16; (b + 1) * kBlock <= head.size(); ++b) {
    const unsigned char* vd = head.data() + b * kBlock;
    if (std::memcmp(vd + 1, "CD001", 5) != 0)
      return 0;
    if (vd[0] == 255)
      return b + 1;
  }
  return 0;
}

void report(const BurnOptions& o, const char* phase) {
  if (o.phase)
    o.phase(phase);
}

// Polls `d` until idle, reporting progress; cancels once when asked. Returns whether a cancel
// was sent.
bool wait_for_write(burn_drive* d, burn::burn_source* fifo, uint64_t total, const BurnOptions& o) {
  for (int i = 0; i < 5000 && burn::burn_drive_get_status(d, nullptr) == burn::BURN_DRIVE_SPAWNING;
       ++i)
    std::this_thread::sleep_for(10ms);
  bool cancelled = false;
  bool closing = false;
  for (;;) {
    burn_progress p{};
    const auto st = burn::burn_drive_get_status(d, &p);
    if (st == burn::BURN_DRIVE_IDLE)
      break;
    detail::drain_messages();
    if (o.cancel != nullptr && o.cancel->load() && !cancelled) {
      burn::burn_drive_cancel(d);
      cancelled = true;
    }
    if (!closing &&
        (st == burn::BURN_DRIVE_CLOSING_TRACK || st == burn::BURN_DRIVE_CLOSING_SESSION)) {
      closing = true;
      report(o, "closing");
    }
    if (o.progress && st == burn::BURN_DRIVE_WRITING) {
      BurnProgress bp;
      bp.total = total;
      bp.done = std::min<uint64_t>(total, static_cast<uint64_t>(std::max(p.sector, 0)) * kBlock);
      if (p.buffer_capacity > 0)
        bp.drive_buffer_percent =
            static_cast<int>(100.0 * (p.buffer_capacity - p.buffer_available) / p.buffer_capacity);
      int size = 0, free_bytes = 0;
      char* text = nullptr;
      if (fifo != nullptr && burn::burn_fifo_inquire_status(fifo, &size, &free_bytes, &text) >= 0 &&
          size > 0)
        bp.fifo_percent = static_cast<int>(100.0 * (size - free_bytes) / size);
      o.progress(bp);
    }
    std::this_thread::sleep_for(200ms);
  }
  return cancelled;
}

// Reads the session back through the drive and compares it with the image.
void verify(burn_drive* d,
            int fd,
            uint64_t start_lba,
            uint64_t size,
            const std::string& image,
            const std::string& drive,
            const BurnOptions& o) {
  constexpr size_t kChunk = 32 * kBlock;
  std::vector<char> want(kChunk), got(kChunk);
  for (uint64_t off = 0; off < size; off += kChunk) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off));
    const size_t padded = (n + kBlock - 1) / kBlock * kBlock;
    std::fill(want.begin(), want.end(), 0);
    if (::pread(fd, want.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
      throw imagecore::Error(EIO, image + ": cannot read at byte " + std::to_string(off));
    off_t count = 0;
    const off_t at = static_cast<off_t>(start_lba * kBlock + off);
    if (burn::burn_read_data(d, at, got.data(), static_cast<off_t>(padded), &count, 2) <= 0 ||
        count < static_cast<off_t>(padded)) {
      detail::drain_messages();
      throw VerifyMismatch(EIO, drive + ": cannot read back block " +
                                    std::to_string(start_lba + off / kBlock) + " to verify it");
    }
    if (std::memcmp(want.data(), got.data(), n) != 0) {
      uint64_t b = 0;
      while (b + kBlock <= n &&
             std::memcmp(want.data() + b, got.data() + b, std::min<size_t>(kBlock, n - b)) == 0)
        b += kBlock;
      throw VerifyMismatch(EIO, drive + ": block " +
                                    std::to_string(start_lba + (off + b) / kBlock) +
                                    " differs from " + image + " (block " +
                                    std::to_string((off + b) / kBlock) + ")");
    }
    if (o.progress) {
      BurnProgress bp;
      bp.done = off + n;
      bp.total = size;
      o.progress(bp);
    }
    if (o.cancel != nullptr && o.cancel->load())
      return;
  }
}

using imagecore::Fd;

}  // namespace

std::vector<std::string> optical_drive_paths() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/class/block", ec)) {
    const std::string name = e.path().filename();
    if (name.starts_with("sr") && name.size() > 2 &&
        std::all_of(name.begin() + 2, name.end(), ::isdigit))
      out.push_back("/dev/" + name);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return out;
}

double one_x_kbs(int profile_code) {
  if (profile_code >= 0x40 && profile_code <= 0x43)
    return 4495.625;
  if (profile_code >= 0x10 && profile_code <= 0x2b)
    return 1385.0;
  return 176.4;
}

DriveInfo probe_drive(const std::string& drive) {
  DriveInfo info;
  info.path = drive;
  info.address = address_of(drive);
  if (!info.address.starts_with("stdio:")) {
    info.problem = access_problem(drive, &info.busy);
    if (!info.problem.empty())
      return info;
  } else if (!fs::exists(info.address.substr(6))) {
    info.problem = info.address.substr(6) + ": no such file or device";
    return info;
  }
  detail::ensure_libraries();
  auto lock = detail::lock_libraries();
  try {
    Grabbed g(drive, info.address);
    if (!info.address.starts_with("stdio:"))  // libburn names stdio: "YOYODYNE WARP DRIVE"
      fill_identity(g, info);
    const auto status = burn::burn_disc_get_status(g.get());
    if (status == burn::BURN_DISC_EMPTY)
      info.problem = drive + ": no medium in the drive";
    else
      info.medium = medium_of(g.get(), info.address);
  } catch (const imagecore::Error& e) {
    info.problem = e.what();
  }
  return info;
}

BurnResult burn_image(const std::string& image, const std::string& drive, const BurnOptions& o) {
  report(o, "checking");
  Fd in;
  in.fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (in.fd < 0)
    throw imagecore::Error(errno, image + ": cannot open the image: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode))
    throw imagecore::Error(EINVAL, image + ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0)
    throw imagecore::Error(EINVAL, image + ": the image is empty");
  const ImageHead head = read_head(in.fd, size);

  const std::string address = address_of(drive);
  detail::ensure_libraries();
  auto lock = detail::lock_libraries();
  std::unique_ptr<Grabbed> g = grab_for_write(drive, address);
  burn_drive* d = g->get();
  const MediumInfo m = loaded_medium(d, drive, address);
  refuse_unwritable(drive, m);

  BurnResult result;
  result.profile = m.profile;
  result.overwritable = m.overwritable;
  result.blocks = (size + kBlock - 1) / kBlock;
  const bool is_cd = m.profile_code >= 0x08 && m.profile_code <= 0x0a;
  const uint64_t nwa = m.next_writable.value_or(0);
  result.start_lba = nwa;

  // An ISO 9660 image records absolute block addresses: a later session must have been made
  // for the address it goes to (mkisofs -C MSC1,NWA -M DRIVE), or its tree points elsewhere.
  if (head.iso && nwa > 0 && head.root_lba < nwa)
    throw MediumRefused(EINVAL, image + " was made to start at LBA 0, but the next session on " +
                                    drive + " starts at LBA " + std::to_string(nwa) +
                                    "; make it with 'xorriso -as mkisofs -C " +
                                    std::to_string(m.last_session.value_or(0)) + "," +
                                    std::to_string(nwa) + " -M " + drive + " ...'");

  // Overwritable media: after the session is written, the volume descriptors at block 16
  // must describe it (readers start there). When the first session starts at LBA 32
  // (libisoburn's layout) blocks 0..31 are all ours, as xorriso rewrites them; when it starts
  // at LBA 0 only its descriptor set may be replaced, so the new set must not be longer.
  uint64_t head_from = 0, head_to = 0;  // blocks to rewrite at LBA 0
  if (m.overwritable && nwa >= 32 && head.iso && !o.dummy) {
    const uint64_t first = m.sessions.empty() ? 0 : m.sessions.front().start_lba;
    if (first >= 32) {
      head_to = 32;
    } else {
      std::vector<unsigned char> old(64 * 1024);
      off_t count = 0;
      if (burn::burn_read_data(d, 0, reinterpret_cast<char*>(old.data()),
                               static_cast<off_t>(old.size()), &count, 2) <= 0 ||
          count < static_cast<off_t>(old.size()))
        throw imagecore::Error(EIO, drive + ": cannot read blocks 0..31");
      detail::drain_messages();
      const uint64_t old_end = vd_set_end(old), new_end = vd_set_end(head.bytes);
      if (new_end == 0 || old_end == 0 || new_end > old_end)
        throw MediumRefused(EINVAL, image + " has " + std::to_string(new_end - 16) +
                                        " volume descriptors, more than the " +
                                        std::to_string(old_end > 16 ? old_end - 16 : 0) +
                                        " of the first session on " + drive +
                                        ", which would be overwritten; make it with the same "
                                        "options (Joliet, UDF) as the first session");
      head_from = 16;
      head_to = new_end;
    }
  }

  const uint64_t padding = is_cd ? 300 * 1024 : 0;
  const uint64_t needed = result.blocks * kBlock + padding;
  if (needed > m.free_bytes)
    throw MediumRefused(ENOSPC, drive + ": " + image + " needs " + mb(needed) + " but the " +
                                    m.profile + " has only " + mb(m.free_bytes) + " free");

  WriteOpts opts(d);
  burn_write_opts* w = opts.o;
  burn::burn_write_opts_set_perform_opc(w, 0);
  burn::burn_write_opts_set_underrun_proof(w, 1);
  burn::burn_write_opts_set_multi(w, (o.multi && !m.overwritable) ? 1 : 0);
  if (o.dummy) {
    burn::burn_multi_caps* caps = nullptr;
    int sim = 0;
    if (burn::burn_disc_get_multi_caps(d, burn::BURN_WRITE_NONE, &caps, 0) > 0 && caps)
      sim = caps->might_simulate;
    if (caps)
      burn::burn_disc_free_multi_caps(&caps);
    if (!sim)
      throw MediumRefused(EOPNOTSUPP,
                          drive + ": the drive cannot simulate writing (--dummy) on " + m.profile);
    burn::burn_write_opts_set_simulate(w, 1);
  }
  if (m.overwritable)
    burn::burn_write_opts_set_start_byte(w, static_cast<off_t>(nwa * kBlock));
  burn::burn_drive_set_speed(d, 0, o.speed_kbs);

  burn::burn_source* data = burn::burn_fd_source_new(::dup(in.fd), -1, static_cast<off_t>(size));
  if (data == nullptr)
    throw imagecore::Error(ENOMEM, image + ": cannot make a libburn data source");
  burn::burn_source* fifo = burn::burn_fifo_source_new(data, 2048, 2048, 0);
  burn::burn_source_free(data);
  if (fifo == nullptr)
    throw imagecore::Error(ENOMEM, image + ": cannot make a libburn fifo");
  burn_disc* disc = burn::burn_disc_create();
  burn_session* session = burn::burn_session_create();
  burn::burn_disc_add_session(disc, session, BURN_POS_END);
  burn_track* track = burn::burn_track_create();
  burn::burn_track_define_data(track, 0, static_cast<int>(padding), 1, BURN_MODE1);
  burn::burn_track_set_source(track, fifo);
  burn::burn_session_add_track(session, track, BURN_POS_END);
  struct Cleanup {
    burn_disc* disc;
    burn_session* session;
    burn_track* track;
    burn::burn_source* fifo;
    ~Cleanup() {
      burn::burn_track_free(track);
      burn::burn_session_free(session);
      burn::burn_disc_free(disc);
      burn::burn_source_free(fifo);
    }
  } cleanup{disc, session, track, fifo};

  char reasons[BURN_REASONS_LEN] = {};
  if (burn::burn_write_opts_auto_write_type(w, disc, reasons, 0) == burn::BURN_WRITE_NONE) {
    detail::drain_messages();
    std::string why(reasons);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' '))
      why.pop_back();
    std::replace(why.begin(), why.end(), '\n', ';');
    throw MediumRefused(EMEDIUMTYPE, drive + ": no write mode suits the " + m.profile + ": " + why);
  }
  if (o.cancel != nullptr && o.cancel->load()) {
    result.cancelled = true;
    return result;
  }

  report(o, "writing");
  spdlog::info("burning {} ({} blocks) to {} at LBA {}{}{}", image, result.blocks, drive, nwa,
               o.multi ? ", leaving it appendable" : "", o.dummy ? ", simulated" : "");
  burn::burn_disc_write(w, disc);
  result.cancelled = wait_for_write(d, fifo, size, o);
  const std::string why = detail::drain_messages();
  if (result.cancelled) {
    g->eject_on_release(false);
    return result;
  }
  if (!burn::burn_drive_wrote_well(d))
    throw WriteFailed(EIO, drive + ": writing " + image + " failed" +
                               (why.empty() ? "" : ": " + why) +
                               (m.overwritable ? "" : "; the disc may be unusable now"));

  // Overwritable media: blocks 0..31 are the ISO 9660 head readers look at; make them describe
  // the new session, with the volume grown to its end (xorriso's Xorriso_update_iso_lba0).
  if (head_to > head_from) {
    std::vector<unsigned char> lba0 = head.bytes;
    unsigned char* pvd = lba0.data() + 16 * kBlock;
    const uint32_t full = static_cast<uint32_t>(nwa) + head.volume_blocks;
    for (int i = 0; i < 4; ++i)
      pvd[87 - i] = pvd[80 + i] = static_cast<unsigned char>((full >> (8 * i)) & 0xff);
    if (burn::burn_random_access_write(d, static_cast<off_t>(head_from * kBlock),
                                       reinterpret_cast<char*>(lba0.data() + head_from * kBlock),
                                       static_cast<off_t>((head_to - head_from) * kBlock),
                                       1) <= 0) {
      const std::string w2 = detail::drain_messages();
      throw WriteFailed(EIO, drive + ": the session was written at LBA " + std::to_string(nwa) +
                                 " but blocks 0..31 could not be updated to show it" +
                                 (w2.empty() ? "" : ": " + w2));
    }
  }
  result.appendable = o.multi || m.overwritable;

  if (o.verify && !o.dummy) {
    report(o, "verifying");
    if (burn::burn_drive_get_drive_role(d) == 1)
      burn::burn_drive_re_assess(d, 0);
    verify(d, in.fd, nwa, size, image, drive, o);
    result.verified = !(o.cancel != nullptr && o.cancel->load());
    result.cancelled = !result.verified;
  }
  g->eject_on_release(o.eject);
  report(o, "done");
  return result;
}

BlankResult blank_medium(const std::string& drive,
                         BlankMode mode,
                         const std::function<void(const char* phase)>& phase,
                         const std::atomic<bool>* cancel) {
  const std::string address = address_of(drive);
  detail::ensure_libraries();
  auto lock = detail::lock_libraries();
  std::unique_ptr<Grabbed> g = grab_for_write(drive, address);
  burn_drive* d = g->get();
  const MediumInfo m = loaded_medium(d, drive, address);
  BlankResult r;
  r.profile = m.profile;
  r.emulated = m.overwritable;
  if (m.read_only)
    throw MediumRefused(
        EROFS, drive + ": the medium (" + m.profile + ") is read-only and cannot be blanked");
  const auto say = [&](const char* p) {
    if (phase)
      phase(p);
  };
  if (mode == BlankMode::Format) {
    int status = 0, num = 0;
    off_t fsize = 0;
    unsigned bl_sas = 0;
    const bool can = burn::burn_drive_get_drive_role(d) == 1 &&
                     burn::burn_disc_get_formats(d, &status, &fsize, &bl_sas, &num) == 1 && num > 0;
    if (!can)
      throw MediumRefused(EMEDIUMTYPE,
                          drive + ": the medium (" + m.profile +
                              ") cannot be formatted; formatting is for DVD+RW, DVD-RW and BD-RE");
    say("formatting");
    burn::burn_disc_format(d, 0, 0);
  } else if (m.state == "blank") {
    r.already_blank = true;
    return r;
  } else if (m.overwritable) {
    say("blanking");
    isoburn_disc_erase(d, mode == BlankMode::Fast ? 1 : 0);
  } else if (!m.erasable) {
    throw MediumRefused(EMEDIUMTYPE, drive + ": the medium (" + m.profile +
                                         ") cannot be blanked: it is write-once (or not a "
                                         "rewritable disc)");
  } else {
    say("blanking");
    burn::burn_disc_erase(d, mode == BlankMode::Fast ? 1 : 0);
  }
  for (int i = 0; i < 5000 && burn::burn_drive_get_status(d, nullptr) == burn::BURN_DRIVE_SPAWNING;
       ++i)
    std::this_thread::sleep_for(10ms);
  bool noted = false;
  while (burn::burn_drive_get_status(d, nullptr) != burn::BURN_DRIVE_IDLE) {
    detail::drain_messages();
    if (cancel != nullptr && cancel->load() && !noted) {
      say("not cancellable");
      noted = true;
    }
    std::this_thread::sleep_for(200ms);
  }
  const std::string why = detail::drain_messages();
  if (!burn::burn_drive_wrote_well(d))
    throw WriteFailed(EIO, drive + ": " + (mode == BlankMode::Format ? "formatting" : "blanking") +
                               " failed" + (why.empty() ? "" : ": " + why));
  say("done");
  return r;
}

}  // namespace burner
