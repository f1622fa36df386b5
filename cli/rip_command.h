// discfs rip: copies an image file, block device or disc into an image file, as far as its
// sessions reach, keeping a ddrescue mapfile of what could not be read; a rerun with the
// same map reads only what is still missing.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/exit_codes.h"

namespace discfs {

struct RipArgs {
  std::string source;
  std::string output;
  std::string map;  // "" = OUTPUT.map
  unsigned retries = 1;
  std::string sha256;  // published checksum to check the result against ("" = none)
  bool json = false;
  std::string command_line;
};

// Adds the "rip" verb and its options to `app`, filling `args` when parsed.
CLI::App* add_rip_command(CLI::App& app, RipArgs& args);
// Ok when every sector was read and the result matches its MD5 tags (and --sha256);
// PartialRip when bad sectors remain, Mismatch when the copy does not match, Cancelled when
// a signal stopped it (the map is saved). Throws imagecore::Error when the source cannot be
// opened or is not an image.
ExitCode run_rip(const RipArgs& args);

}  // namespace discfs
