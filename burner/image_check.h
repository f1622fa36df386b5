// Checking an image file or device against what it records and what was published about it,
// for `discfs verify`: every session's libisofs MD5 tags, every file's recorded MD5 (in every
// session's tree), and a published MD5 or SHA-256 of the image.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace burner {

// Reports long work: `phase` names it ("session 2 MD5", "files of session 1", "sha256"),
// `done` of `total` bytes are read (total 0: unknown).
using CheckProgress = std::function<void(const std::string& phase, uint64_t done, uint64_t total)>;

// What the MD5 tags of one session say.
struct SessionTagCheck {
  unsigned number = 0;  // 1 = oldest
  uint64_t start_lba = 0;
  // Ok: the session MD5 matches what was read. NoTags: the session was written without
  // libisofs MD5 tags (not a failure: there is nothing to check). Mismatch: the MD5 read does
  // not match the tag, or the tag chain is broken. Unreadable: a block could not be read.
  enum class State { Ok, NoTags, Mismatch, Unreadable } state = State::NoTags;
  uint64_t blocks = 0;  // blocks the session MD5 covers (Ok, Mismatch)
  // The first of them: the session's start, or for the first session of an image discfs grew
  // from LBA 0 the copy of its descriptors and tree that its tree is read through.
  uint64_t range_start = 0;
  std::string detail;  // what did not match, where (Mismatch, Unreadable)
};

// A file whose content does not match its recorded MD5, or that cannot be read.
struct FileCheckProblem {
  unsigned session = 0;
  std::string path;  // absolute path in that session's tree
  std::string what;  // "content does not match its recorded MD5", "unreadable: ..."
};

struct Md5Check {
  std::vector<SessionTagCheck> sessions;  // oldest first
  std::vector<FileCheckProblem> files;    // the files that failed, in session and tree order
  uint64_t files_checked = 0;             // files with a recorded MD5 read, all sessions
  uint64_t files_without_md5 = 0;         // files of a session with tags but no file MD5
  // A session whose tree libisofs could not load for the file check: "session N: why".
  std::vector<std::string> notes;
};

// Checks every session of the image file or device `path` (imagecore's session table) against
// its MD5 tags, and every file of every session's tree against its recorded MD5. Throws
// imagecore::Error when `path` cannot be opened or is neither an ISO 9660 nor a UDF image
// (NotAnImage); everything found inside the image is in the result (a UDF image without
// ISO 9660 has no sessions to check: a note says so).
Md5Check check_md5(const std::string& path, const CheckProgress& progress);

// Digest algorithms for a published checksum.
enum class DigestKind { Md5, Sha256 };

struct DigestCheck {
  uint64_t bytes = 0;        // how many bytes were hashed
  std::string hex;           // lower-case hex digest of them
  bool whole_source = true;  // false: the first `bytes` of a longer device
};

// The digest of the image `path`: of the whole file for a regular file, of the first N bytes
// of a block device where N is the size the newest session's primary volume descriptor
// records (what a distribution's checksum covers when the image was written to a stick or
// disc). Throws imagecore::Error when the source cannot be read.
DigestCheck digest_image(const std::string& path, DigestKind kind, const CheckProgress& progress);

}  // namespace burner
