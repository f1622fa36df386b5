// Exit codes of discfs and its tools, documented in man/discfs.1 (EXIT STATUS), and the one
// place where an exception becomes an exit code and a sentence for the user.
#pragma once

#include <cerrno>
#include <exception>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include "imagecore/base/error.h"

namespace discfs {

enum class ExitCode : int {
  Ok = 0,
  Internal = 1,      // a bug or an unexpected failure
  Usage = 2,         // bad command line
  CannotOpen = 3,    // the source cannot be opened or read
  NotAnImage = 4,    // the source is not an ISO 9660 image
  Unsupported = 5,   // an image discfs cannot show (block size, missing tree, ...)
  MountFailed = 6,   // FUSE could not mount (mount point, permissions, /dev/fuse)
  Busy = 7,          // the store or target is in use (another stage, files still open)
  CommitFailed = 8,  // the commit failed; the target still shows its previous session
                     // (burn, blank: the drive reported a failed write)
  Mismatch = 9,      // verify, burn --verify: a checksum, a file, the tree or the medium differs
  // The medium or the room given refuses the data before anything is written: no medium,
  // closed, write-once, too small; `create --capacity` smaller than the image.
  MediumRefused = 10,
  PartialRip = 11,  // rip: the image is written, but bad sectors remain (see the map)
  Cancelled = 130,  // interrupted (Ctrl-C) and cancelled before its commit point
};

// An error the command line raises itself, with the exit code it stands for: a bad option
// value (Usage), a mount point that is not a directory (MountFailed).
class Failure : public std::runtime_error {
 public:
  Failure(ExitCode code, const std::string& sentence) : std::runtime_error(sentence), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

// A commit that failed, with the errno the daemon or the commit engine gave: the target
// still shows its previous session.
class CommitFailure : public imagecore::Error {
 public:
  using imagecore::Error::Error;
};

// What an exception means to the user.
struct ExitStatus {
  ExitCode code = ExitCode::Internal;
  std::string message;  // one sentence, without the "discfs: " prefix
};

namespace detail {

// "PATH: WHAT FAILED: REASON" from libstdc++'s "filesystem error: WHAT FAILED: REASON [PATH]".
inline std::string sentence_of(const std::filesystem::filesystem_error& x) {
  std::string text = x.what();
  constexpr std::string_view kPrefix = "filesystem error: ";
  if (text.starts_with(kPrefix))
    text.erase(0, kPrefix.size());
  if (const size_t paths = text.find(" ["); paths != std::string::npos)
    text.erase(paths);
  return x.path1().empty() ? text : x.path1().string() + ": " + text;
}

}  // namespace detail

// The exit code and the sentence for the exception `e` (any type; null counts as internal).
// Never throws.
inline ExitStatus exit_status_for(std::exception_ptr e) noexcept {
  if (!e)
    return {ExitCode::Internal, "internal error"};
  try {
    try {
      std::rethrow_exception(e);
    } catch (const Failure& f) {
      return {f.code(), f.what()};
    } catch (const imagecore::Error& x) {
      // Busy first, whatever the verb: the user waits for the other process or closes files.
      if (x.code() == EBUSY)
        return {ExitCode::Busy, x.what()};
      if (dynamic_cast<const CommitFailure*>(&x))
        return {ExitCode::CommitFailed, x.what()};
      if (dynamic_cast<const imagecore::NotAnImage*>(&x))
        return {ExitCode::NotAnImage, x.what()};
      if (dynamic_cast<const imagecore::Unsupported*>(&x))
        return {ExitCode::Unsupported, x.what()};
      // A FormatError that comes this far was met while opening the source: in its volume
      // descriptors, session table or root directory. Damage met later stays inside a live
      // mount (EIO for that request) or in the notes of `info`. A source whose very first
      // structures do not hold together cannot be told from one that is not an image at
      // all, so it is "not an image", like a source with no volume descriptor.
      if (dynamic_cast<const imagecore::FormatError*>(&x))
        return {ExitCode::NotAnImage, x.what()};
      return {ExitCode::CannotOpen, x.what()};
    } catch (const std::filesystem::filesystem_error& x) {
      // A path the command had to make or resolve: a store directory, a target's folder.
      return {ExitCode::CannotOpen, detail::sentence_of(x)};
    } catch (const std::bad_alloc&) {
      return {ExitCode::Internal, "out of memory"};
    } catch (const std::exception& x) {
      return {ExitCode::Internal, std::string("internal error: ") + x.what()};
    } catch (...) {
      return {ExitCode::Internal, "internal error: an exception of unknown type"};
    }
  } catch (...) {  // std::bad_alloc while building a message
    return {ExitCode::Internal, "internal error"};
  }
}

}  // namespace discfs
