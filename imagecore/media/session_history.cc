#include "imagecore/media/session_history.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "imagecore/base/bytes.h"
#include "imagecore/iso9660/ecma119.h"
#include "imagecore/iso9660/volume.h"

namespace imagecore {
namespace {

using namespace ecma119;

// ECMA-119 8.4.32: the PVD's Application Use field, "not specified by this Standard".
constexpr size_t kApplicationUse = 883;
constexpr size_t kApplicationUseLength = 512;

constexpr std::string_view kMagic = "DISCFS-HISTORY";  // 14 bytes, then version and flags
constexpr uint8_t kVersion = 1;
constexpr uint8_t kFlagCopy = 0x01;
constexpr size_t kVersionAt = 14;
constexpr size_t kFlagsAt = 15;
constexpr size_t kStartAt = 16;
constexpr size_t kPreviousAt = 24;
constexpr size_t kCopyBlocksAt = 32;

void put64(char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get64(ByteView d, size_t at) {
  return static_cast<uint64_t>(d.le32(at)) | static_cast<uint64_t>(d.le32(at + 4)) << 32;
}

// One session's primary volume descriptor, as far as the walk needs it.
struct Pvd {
  uint64_t blocks = 0;  // volume space size
  std::optional<HistoryRecord> record;
};

std::optional<Pvd> read_pvd(const Source& src, uint64_t session_start) {
  const std::optional<std::array<std::byte, kBlockSize>> block =
      read_primary_block(src, session_start);
  if (!block)
    return std::nullopt;
  const ByteView d(block->data(), block->size());
  Pvd p;
  p.blocks = d.both32(pvd::kVolumeSpaceSize);
  ByteView use = d.sub(kApplicationUse, kApplicationUseLength);
  p.record = decode_history_record(std::span<const std::byte>(use.data(), use.size()));
  return p;
}

void add_note(SessionTable* t, const std::string& what) {
  if (!t->note.empty())
    t->note += "; ";
  t->note += what;
}

}  // namespace

std::array<char, kHistoryRecordBytes> encode_history_record(const HistoryRecord& r) {
  std::array<char, kHistoryRecordBytes> out{};
  std::memcpy(out.data(), kMagic.data(), kMagic.size());
  out[kVersionAt] = static_cast<char>(kVersion);
  out[kFlagsAt] = static_cast<char>(r.is_copy() ? kFlagCopy : 0);
  put64(out.data() + kStartAt, r.start);
  put64(out.data() + kPreviousAt, r.previous);
  put64(out.data() + kCopyBlocksAt, r.copy_of_blocks);
  return out;
}

std::optional<HistoryRecord> decode_history_record(std::span<const std::byte> app_use) {
  if (app_use.size() < kHistoryRecordBytes)
    return std::nullopt;
  ByteView d(app_use.data(), kHistoryRecordBytes);
  if (d.chars(0, kMagic.size()) != kMagic || d.u8(kVersionAt) != kVersion)
    return std::nullopt;
  const uint8_t flags = d.u8(kFlagsAt);
  HistoryRecord r;
  r.start = get64(d, kStartAt);
  r.previous = get64(d, kPreviousAt);
  r.copy_of_blocks = get64(d, kCopyBlocksAt);
  const bool copy = (flags & kFlagCopy) != 0;
  // A copy stands for a session of some length at LBA 0; any other session follows one.
  if ((flags & ~kFlagCopy) != 0 || copy != (r.copy_of_blocks != 0) || (copy && r.previous != 0) ||
      r.start == 0 || r.start % kSessionAlignment != 0 || r.previous >= r.start)
    return std::nullopt;
  return r;
}

std::optional<SessionTable> read_session_history(const Source& src, uint64_t total) {
  const std::optional<Pvd> head = read_pvd(src, 0);
  if (!head || !head->record)
    return std::nullopt;
  const uint64_t src_blocks = src.size() / kBlockSize;
  // The descriptors at LBA 16 must be the copy of the session their record names: that
  // session's own PVD carries the same record and its length ends where LBA 16 says the
  // volume ends. A session another program appended since carries no record, or (when
  // libisofs kept the field from the session it loaded) one whose session ends earlier.
  const HistoryRecord newest = *head->record;
  const std::optional<Pvd> own = read_pvd(src, newest.start);
  if (!own || own->record != newest || newest.start + own->blocks != total || total > src_blocks) {
    spdlog::debug(
        "{}: the discfs record at LBA 16 (session at LBA {}) does not describe the "
        "newest session; ignored",
        src.name(), newest.start);
    return std::nullopt;
  }

  SessionTable t;
  t.layout = SessionTable::Layout::History;
  std::vector<SessionEntry> found;  // newest first
  HistoryRecord r = newest;
  uint64_t blocks = own->blocks;
  bool reached_first = false;
  while (true) {
    if (r.is_copy()) {
      // The copy is not a session of its own: it is how session 1 is read.
      uint64_t len = r.copy_of_blocks;
      if (len > r.start) {
        add_note(&t, fmt::format("the first session's recorded length ({} blocks) reaches past "
                                 "its copy at LBA {}; cut there",
                                 len, r.start));
        len = r.start;
      }
      found.push_back(SessionEntry{0, 0, len, r.start});
      reached_first = true;
      break;
    }
    if (found.size() + 1 >= kMaxSessions) {
      add_note(&t, fmt::format("stopped after {} sessions", kMaxSessions));
      found.push_back(SessionEntry{0, r.start, blocks, std::nullopt});
      break;
    }
    found.push_back(SessionEntry{0, r.start, blocks, std::nullopt});
    // decode_history_record() made previous < start, so the walk always moves back.
    const std::optional<Pvd> prev = read_pvd(src, r.previous);
    if (!prev || !prev->record || prev->record->start != r.previous ||
        r.previous + prev->blocks > r.start) {
      add_note(&t, fmt::format("the history of sessions breaks at LBA {}: the session at LBA "
                               "{} names it as its predecessor, but {}",
                               r.previous, r.start,
                               !prev           ? "no primary volume descriptor is there"
                               : !prev->record ? "it carries no discfs record"
                               : prev->record->start != r.previous
                                   ? "its record names another start"
                                   : "it reaches into the later session"));
      break;
    }
    r = *prev->record;
    blocks = prev->blocks;
  }
  if (!reached_first)
    add_note(&t, "older sessions could not be found; sessions are numbered from the oldest found");
  std::reverse(found.begin(), found.end());
  for (size_t i = 0; i < found.size(); ++i)
    found[i].number = static_cast<unsigned>(i + 1);
  t.sessions = std::move(found);
  t.next_writable_lba = (total + kSessionAlignment - 1) / kSessionAlignment * kSessionAlignment;
  if (!t.note.empty())
    spdlog::warn("{}: {}", src.name(), t.note);
  return t;
}

}  // namespace imagecore
