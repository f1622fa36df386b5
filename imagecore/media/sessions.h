// The session table of an image, block device or disc: where each session starts and how many
// blocks it holds, as `xorriso -indev X -toc` shows it, and where the next session would go.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "imagecore/base/source.h"

namespace imagecore {

// One session: its number (1 = oldest), first block and length in 2048-byte blocks.
struct SessionEntry {
  unsigned number = 0;
  uint64_t start_lba = 0;
  uint64_t blocks = 0;
  // Where the session's tree is read (its volume descriptors at tree_lba + 16) when not at
  // start_lba: the first session of a History image, whose own descriptors were overwritten.
  std::optional<uint64_t> tree_lba = std::nullopt;
  uint64_t tree_start() const { return tree_lba.value_or(start_lba); }
};

struct SessionTable {
  // Grown: libisoburn's chain of sessions from LBA 32 (image files, block devices, overwritable
  // media). Single: one session at LBA 0 (mkisofs, genisoimage, pycdlib, growisofs). DiscToc:
  // the table of contents of a CD/DVD/BD in a drive. Appended: sessions one after another from
  // LBA 0 without libisoburn's chain, each with its own descriptors at its start + 16 (a copy
  // of a multisession CD-R, genisoimage -C/-M sessions written into one file); LBA 16 holds
  // only the first session's descriptors. History: a single-session image grown by discfs,
  // its sessions found through the records discfs keeps (session_history.h).
  enum class Layout { Grown, Single, DiscToc, Appended, History };

  std::vector<SessionEntry> sessions;  // oldest first, numbered from 1
  Layout layout = Layout::Single;
  // For targets discfs can grow (image files, block devices): not for Appended, where
  // libisoburn would write after the first session.
  std::optional<uint64_t> next_writable_lba;
  std::string note;  // non-empty when the chain was broken or odd: what was found
};

// Most sessions a table holds; a longer chain is cut there with a note.
inline constexpr unsigned kMaxSessions = 1000;
// Grown sessions start on multiples of this many blocks (libisoburn's 64 KiB alignment).
inline constexpr uint64_t kSessionAlignment = 32;

// Blocks past a session's end in which an appended session's descriptors are looked for. A
// CD-R leaves a gap between sessions: after the first, its lead-out (6750 blocks, 90 s),
// the next lead-in (4500, 60 s) and pregap (150, 2 s) = 11,400 blocks; after later sessions a
// 2250-block lead-out, so 6,900. A copy of such a disc with zeros in the gaps, or sessions
// made for `cdrecord -msinfo` addresses, have the next session that far on; 600 blocks more
// cover the run-out and padding blocks writers add after the volume. Reading at most this
// many blocks per session keeps a search through an image with trailing data bounded.
inline constexpr uint64_t kAppendedSearchBlocks = 12000;

// "grown", "single", "disc-toc", "appended" or "history".
const char* layout_name(SessionTable::Layout l);

// Reads the session table. For an optical drive (src.fd() is a CD/DVD/BD device) it asks the
// kernel for the disc's table of contents; otherwise it walks libisoburn's chain of volume
// descriptors (a few blocks per session). An image with one session at LBA 0 and more data
// after it is searched for appended sessions (at most kAppendedSearchBlocks + 16 blocks read
// past each session's end, none when the image ends with its session). Throws NotAnImage when there
// is no ISO 9660 volume descriptor at LBA 16 (or, for a drive, no data track), Error(errno) when
// the drive cannot be asked, FormatError when reads fail.
SessionTable read_session_table(const Source& src);

}  // namespace imagecore
