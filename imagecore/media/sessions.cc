#include "imagecore/media/sessions.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <span>
#include <vector>

#include "imagecore/base/bytes.h"
#include "imagecore/iso9660/ecma119.h"
#include "imagecore/iso9660/volume.h"
#include "imagecore/media/device.h"
#include "imagecore/media/session_history.h"

namespace imagecore {
namespace {

using namespace ecma119;

uint64_t align_up(uint64_t lba) {
  return (lba + kSessionAlignment - 1) / kSessionAlignment * kSessionAlignment;
}

// The volume space size of the PVD at session_start+16, or nothing when that block is not a
// primary volume descriptor (or lies past the end).
std::optional<uint32_t> pvd_blocks(const Source& src, uint64_t session_start) {
  const std::optional<std::array<std::byte, kBlockSize>> block =
      read_primary_block(src, session_start);
  if (!block)
    return std::nullopt;
  return ByteView(block->data(), block->size()).both32(pvd::kVolumeSpaceSize);
}

void add_note(SessionTable* t, const std::string& what) {
  if (!t->note.empty())
    t->note += "; ";
  t->note += what;
}

// Appended sessions -------------------------------------------------------------------------

// A session found by the search: where it starts and where it ends.
struct Found {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string note;  // what was odd about its size
};

// Whether `d`, the block at start+16, is the primary volume descriptor of a session that
// starts at `start`, and where that session ends. Every field a writer must set is checked,
// so that a stray "CD001" in file data is not taken for a session: type 1, version 1,
// 2048-byte blocks, a root directory record of 34 bytes flagged a directory whose extent lies
// after the descriptor and inside the session, and a size of at least the system area, the
// descriptor and a terminator.
//
// genisoimage -C and xorriso -as mkisofs -C (checked with genisoimage 1.1.11 and xorriso
// 1.5.4) record the session's own length; a writer that records the absolute end of the
// session is recognised where the length read as a length would run past the image.
std::optional<Found> appended_session(ByteView d, uint64_t start, uint64_t src_blocks) {
  if (d.u8(vd::kType) != vd::kPrimary || d.chars(vd::kStandardId, 5) != "CD001" ||
      d.u8(vd::kVersion) != 1 || d.both16(pvd::kLogicalBlockSize) != kBlockSize)
    return std::nullopt;
  const ByteView root = d.sub(pvd::kRootRecord, dr::kMinLength);
  if (root.u8(dr::kLength) != dr::kMinLength || (root.u8(dr::kFlags) & dr::kDirectory) == 0 ||
      root.both32(dr::kDataLength) == 0)
    return std::nullopt;
  const uint64_t size = d.both32(pvd::kVolumeSpaceSize);
  const uint64_t extent = root.both32(dr::kExtent);
  if (extent <= start + kSystemAreaBlocks || size < kSystemAreaBlocks + 2)
    return std::nullopt;
  Found f{start, start + size, {}};
  if (f.end > src_blocks) {
    if (size > extent && size <= src_blocks) {
      f.end = size;  // an absolute end
    } else {
      f.note = fmt::format("session at LBA {} claims {} blocks but the image ends at block {}",
                           start, size, src_blocks);
      f.end = src_blocks;
    }
  }
  if (extent >= f.end)
    return std::nullopt;
  return f;
}

// The first session whose descriptors lie within kAppendedSearchBlocks past `from`: the
// blocks from `from`+16 on are read in order, a few at a time, and the first one that
// validates as a session's primary volume descriptor wins.
std::optional<Found> find_appended_session(const Source& src, uint64_t from, uint64_t src_blocks) {
  constexpr uint64_t kChunk = 32;  // blocks per read
  std::vector<std::byte> buf(kChunk * kBlockSize);
  const uint64_t first = from + kSystemAreaBlocks;
  const uint64_t last = std::min(first + kAppendedSearchBlocks, src_blocks);  // exclusive
  for (uint64_t lba = first; lba < last; lba += kChunk) {
    const uint64_t n = std::min(kChunk, last - lba);
    std::span<std::byte> part(buf.data(), n * kBlockSize);
    src.read(lba * kBlockSize, part);
    for (uint64_t i = 0; i < n; ++i) {
      const ByteView d(part.data() + i * kBlockSize, kBlockSize);
      if (d.u8(vd::kType) != vd::kPrimary || d.chars(vd::kStandardId, 5) != "CD001")
        continue;
      if (std::optional<Found> f = appended_session(d, lba + i - kSystemAreaBlocks, src_blocks))
        return f;
    }
  }
  return std::nullopt;
}

// Sessions appended after a first session at LBA 0 that ends at `first_end` (see
// SessionTable::Layout::Appended): each found session's end is where the search for the next
// begins, so every session starts past the one before and the walk ends.
void find_appended_sessions(const Source& src, uint64_t first_end, SessionTable* t) {
  const uint64_t src_blocks = src.size() / kBlockSize;
  uint64_t end = first_end;
  while (end + kSystemAreaBlocks < src_blocks) {
    if (t->sessions.size() >= kMaxSessions) {
      add_note(t, fmt::format("stopped after {} sessions", kMaxSessions));
      break;
    }
    std::optional<Found> f = find_appended_session(src, end, src_blocks);
    if (!f)
      break;
    if (!f->note.empty())
      add_note(t, f->note);
    const auto n = static_cast<unsigned>(t->sessions.size() + 1);
    t->sessions.push_back(SessionEntry{n, f->start, f->end - f->start});
    end = f->end;
  }
  if (t->sessions.size() > 1) {
    t->layout = SessionTable::Layout::Appended;
    t->next_writable_lba.reset();
  }
}

// The sessions of an image, tried in this order: the records discfs keeps in sessions it grows
// onto an image that started at LBA 0 (session_history.h); libisoburn's emulated table of
// contents (isoburn_emulate_toc): LBA 0..31 hold a copy of the newest session's descriptors
// whose PVD gives the whole size, the first session starts at LBA 32, each session's own PVD
// gives its own length and the next one starts at the next 32-block boundary; sessions
// appended one after another from LBA 0 (Layout::Appended); else one session at LBA 0.
SessionTable walk_chain(const Source& src) {
  const std::optional<uint32_t> total = pvd_blocks(src, 0);
  if (!total)
    throw NotAnImage(
        fmt::format("{}: not an ISO 9660 image: {}", src.name(), describe_non_image(src)));
  // An image that started at LBA 0 and was grown by discfs: its records lead back.
  if (std::optional<SessionTable> h = read_session_history(src, *total))
    return *h;
  const uint64_t src_blocks = src.size() / kBlockSize;
  SessionTable t;
  uint64_t lba = kSessionAlignment;
  uint64_t end = 0;
  if (*total > lba && pvd_blocks(src, lba)) {
    t.layout = SessionTable::Layout::Grown;
    while (lba < *total) {
      if (t.sessions.size() >= kMaxSessions) {
        add_note(&t, fmt::format("stopped after {} sessions", kMaxSessions));
        break;
      }
      const std::optional<uint32_t> blocks = pvd_blocks(src, lba);
      const auto n = static_cast<unsigned>(t.sessions.size() + 1);
      if (!blocks || *blocks == 0) {
        add_note(&t, fmt::format("chain of sessions broken at session {}: {} at LBA {}", n,
                                 blocks ? "a volume of 0 blocks" : "no volume descriptor",
                                 lba + kSystemAreaBlocks));
        break;
      }
      uint64_t len = *blocks;
      if (lba + len > src_blocks) {
        add_note(&t, fmt::format("session {} at LBA {} claims {} blocks but the image ends at "
                                 "block {}",
                                 n, lba, len, src_blocks));
        len = src_blocks - lba;
      }
      t.sessions.push_back(SessionEntry{n, lba, len});
      end = lba + len;
      if (end > *total)
        add_note(&t, fmt::format("session {} ends at block {}, past the {} blocks the newest "
                                 "descriptors at LBA 16 give",
                                 n, end, *total));
      lba = align_up(end);
    }
    // A chain that breaks before the newest session still has that session: the copy of
    // its descriptors at LBA 16 describes it. Listed as xorriso lists it, at LBA 0 with the
    // whole size, so that opening it reads that copy.
    if (!t.sessions.empty() && end < *total && t.sessions.size() < kMaxSessions) {
      const auto n = static_cast<unsigned>(t.sessions.size() + 1);
      add_note(&t,
               fmt::format("session {} is read through the copy of its descriptors at LBA 16", n));
      t.sessions.push_back(SessionEntry{n, 0, std::min<uint64_t>(*total, src_blocks)});
      end = *total;
    }
    if (t.sessions.empty())
      t.layout = SessionTable::Layout::Single;
  }
  if (t.sessions.empty()) {
    t.layout = SessionTable::Layout::Single;
    uint64_t len = *total;
    if (len > src_blocks) {
      add_note(&t, fmt::format("the volume claims {} blocks but the image holds only {}", len,
                               src_blocks));
      len = src_blocks;
    }
    t.sessions.push_back(SessionEntry{1, 0, len});
    end = len;
  }
  t.next_writable_lba = align_up(std::max<uint64_t>(end, *total));
  if (t.layout == SessionTable::Layout::Single)
    find_appended_sessions(src, end, &t);
  if (!t.note.empty())
    spdlog::warn("{}: {}", src.name(), t.note);
  return t;
}

}  // namespace

const char* layout_name(SessionTable::Layout l) {
  switch (l) {
    case SessionTable::Layout::Grown:
      return "grown";
    case SessionTable::Layout::Single:
      return "single";
    case SessionTable::Layout::DiscToc:
      return "disc-toc";
    case SessionTable::Layout::Appended:
      return "appended";
    case SessionTable::Layout::History:
      return "history";
  }
  return "single";
}

SessionTable read_session_table(const Source& src) {
  if (!is_optical_drive(src.fd()))
    return walk_chain(src);
  SessionTable toc = sessions_from_toc(read_disc_toc(src.fd(), src.name()), src.name());
  // Overwritable media (DVD+RW, DVD-RAM, BD-RE) show one track however many sessions
  // libisoburn grew on them: their table is the chain, as on an image file.
  if (toc.sessions.size() == 1 && toc.sessions[0].start_lba == 0) {
    try {
      SessionTable grown = walk_chain(src);
      if (grown.layout == SessionTable::Layout::Grown)
        return grown;
    } catch (const Error& e) {
      spdlog::debug("{}: no chain of sessions on the disc: {}", src.name(), e.what());
    }
  }
  return toc;
}

}  // namespace imagecore
