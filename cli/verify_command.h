// discfs verify: checks an image file, block device or disc against its recorded MD5 tags
// (every session) and file MD5s (every session's tree), a published MD5 or SHA-256, and the
// directory it was made from.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/exit_codes.h"

namespace discfs {

struct VerifyArgs {
  std::string source;
  std::string sha256;   // published checksum, hex ("" = none)
  std::string md5;      // published checksum, hex ("" = none)
  std::string against;  // directory to compare the newest tree with ("" = none)
  bool json = false;
};

// Adds the "verify" verb and its options to `app`, filling `args` when parsed.
CLI::App* add_verify_command(CLI::App& app, VerifyArgs& args);
// Runs every check asked for and prints what each found. Ok when everything checked matches
// (sessions without MD5 tags are reported as unchecked), Mismatch when anything differs,
// CannotOpen when a session could not be read; throws imagecore::Error when the source cannot
// be opened or is not an image.
ExitCode run_verify(const VerifyArgs& args);

}  // namespace discfs
