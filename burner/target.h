// What a commit target (an image file or a block device, written as a libburn stdio:
// pseudo-drive) holds and whether it can take one more session.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace burner {

inline constexpr uint64_t kBlockSize = 2048;

// Where a commit goes.
enum class TargetKind : uint8_t {
  Missing,      // no file yet: a blank medium, created by the first commit
  RegularFile,  // an image file
  BlockDevice,  // written through stdio:, like an image file
};

// Whether a session can be appended.
enum class TargetState : uint8_t {
  Blank,          // nothing recorded: the first session goes to LBA 32
  Appendable,     // ISO 9660 sessions a new one can follow
  NotAppendable,  // see TargetInfo::reason
};

// One ISO 9660 session, as libisoburn's table of content shows it (or discfs's history).
struct SessionInfo {
  int number = 0;          // 1-based
  uint64_t start_lba = 0;  // first block (its volume descriptors are at start + 16)
  uint64_t blocks = 0;     // size as its own PVD records it
  std::string volid;
};

// The result of probe_target().
struct TargetInfo {
  std::string path;
  TargetKind kind = TargetKind::Missing;
  TargetState state = TargetState::Blank;
  std::string reason;  // NotAppendable: one sentence naming the target and why
  // Room on the medium in 2048-byte blocks; nullopt for an image file without --capacity.
  std::optional<uint64_t> capacity_blocks;
  uint64_t used_blocks = 0;           // blocks up to the end of the newest session (0 when blank)
  uint64_t next_writable = 0;         // LBA where the next session starts
  std::vector<SessionInfo> sessions;  // oldest first; empty when blank
  // The only session starts at LBA 0 (made by mkisofs, genisoimage and the like, not grown):
  // discfs's first commit writes a copy of it first (commit.h).
  bool single_session_at_zero = false;
  // An image that started at LBA 0 and was grown by discfs: `sessions` comes from the
  // records discfs keeps (imagecore/media/session_history.h), not from libisoburn, which
  // sees one session.
  bool history = false;
  // With history: where the newest session's own descriptors are (start + 16), which a new
  // session names as its predecessor; for session 1 that is the copy of its tree.
  uint64_t history_newest_start = 0;
  bool read_only = false;

  // Blocks a new session may use (unlimited: UINT64_MAX).
  uint64_t free_blocks() const;
  // The newest session, or nullptr when blank.
  const SessionInfo* newest() const { return sessions.empty() ? nullptr : &sessions.back(); }
};

// Bytes of a --capacity value: "cd" (700 MiB CD-R, 359,846 blocks), "dvd" (DVD±R,
// 2,295,104 blocks), "dvd-dl" (4,173,824), "bd" (BD-R, 12,219,392), "bd-dl" (24,438,784),
// or a byte count with an optional K/M/G/T suffix (powers of 1024). Throws imagecore::Error
// (EINVAL) naming the value when it is none of these or not a multiple of 2048 bytes.
uint64_t parse_capacity(const std::string& value);

// Looks at `path` without changing it. `capacity_bytes` is --capacity for image files (a
// block device's own size wins). Throws imagecore::Error only when the libraries cannot
// start; every unusable target comes back as NotAppendable with a reason.
TargetInfo probe_target(const std::string& path, std::optional<uint64_t> capacity_bytes);

// Gives a probed target the room `capacity_bytes` (--capacity; a block device keeps its own
// size) and refuses it, as probe_target does, when that leaves no room for a session.
void apply_capacity(TargetInfo& info, std::optional<uint64_t> capacity_bytes);

}  // namespace burner
