// Committing a staged tree as one new ISO 9660 session (libisoburn growing), or as a new
// single-session image elsewhere (--to).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "burner/staged_tree.h"

namespace burner {

// How to commit.
struct CommitOptions {
  std::string target;                      // image file or block device
  std::optional<std::string> to_path;      // write base + changes here, leave target alone
  std::optional<uint64_t> capacity_bytes;  // --capacity for image files
  bool dummy = false;                      // every step but the write and the activation
  std::string volid;                       // empty: keep the base session's, or "DISCFS"
  bool joliet = true;
  bool md5 = true;  // session and per-file MD5 tags
  // Called from the committing thread about every 100 ms: bytes written, bytes in total.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Called from the committing thread as each step starts: "waiting for open files" (by
  // stage::commit), "writing", "verifying MD5", "activating" (rewriting LBA 0..31: the commit
  // point), then "written" (by stage::commit, once the session is in force).
  std::function<void(const char* phase)> phase;
  // Polled before and during the write and once more before LBA 0..31 are rewritten; when
  // set, commit() throws (ECANCELED) with the target still showing its previous session.
  const std::atomic<bool>* cancel = nullptr;
  // Testing: fail (EIO) after the session is written and verified, before LBA 0..31 are
  // rewritten, as a crash at that point would.
  bool fail_before_activation = false;
  // Testing: on a target whose only session is at LBA 0, fail (EIO) once the copy of that
  // session is in force, before the new session is written, as a crash there would.
  bool fail_after_copy = false;
  // Called from the committing thread just before the session holding the changes is written
  // (not --to, not dummy), with its first block: the stage records it as its pending session
  // (after a copy session it is not where probe_target() said the next session goes).
  std::function<void(uint64_t start_lba)> session_start;
};

// What a successful commit wrote.
struct CommitResult {
  int session = 0;          // number of the new session (1-based; 1 for --to)
  uint64_t start_lba = 0;   // where it starts
  uint64_t blocks = 0;      // its size in 2048-byte blocks
  uint64_t data_bytes = 0;  // bytes of new file content written in it
  bool verified = false;    // its session MD5 was read back and matched
  bool dummy = false;       // nothing was written
  bool unchanged = false;   // nothing was staged, so no session was written (not by commit())
  std::string boot_note;    // empty, or what happened to El Torito / the system area
};

// Writes `root` as the new newest session of options.target (or a new image at to_path).
// The target's LBA 0..31 are rewritten only after the session is written and its MD5 read
// back and checked, so on any failure the target still shows its previous session. Throws
// imagecore::Error with one sentence naming the target and what failed.
//
// A target whose only session starts at LBA 0 (genisoimage, mkisofs, distribution ISOs)
// first gets an unchanged copy of that session's tree (same file extents) made the newest,
// then the new session: rewriting LBA 0..31 destroys the first session's own descriptors,
// and the copy keeps its tree reachable. Every session written onto such a target records in
// its PVD where it starts and what it was grown from (imagecore/media/session_history.h), so
// that every session stays listed and browsable; the copy is not listed as a session.
CommitResult commit(const CommitOptions& options, const burner::StagedEntry& root);

}  // namespace burner
