// Exit codes of discfs and its tools, documented in man/discfs.1 (EXIT STATUS).
#pragma once

#include <cerrno>

#include "imagecore/base/error.h"
#include "imagecore/iso9660/volume.h"

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
};

// The exit code for an error raised while opening and checking a source.
inline ExitCode exit_code_for(const imagecore::Error& e) {
  if (dynamic_cast<const imagecore::NotAnImage*>(&e))
    return ExitCode::NotAnImage;
  if (dynamic_cast<const imagecore::Unsupported*>(&e))
    return ExitCode::Unsupported;
  if (dynamic_cast<const imagecore::FormatError*>(&e))
    return ExitCode::NotAnImage;
  return ExitCode::CannotOpen;
}

}  // namespace discfs
