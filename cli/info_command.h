// discfs info: what an image, block device or disc holds (formats, volume identifiers,
// sessions, boot entries, MD5 tags, sizes), as text or as JSON.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/exit_codes.h"

namespace discfs {

struct InfoArgs {
  std::string source;
  bool json = false;
};

// Adds the "info" verb and its options to `app`, filling `args` when parsed.
CLI::App* add_info_command(CLI::App& app, InfoArgs& args);
// Prints the summary of args.source to stdout. Throws imagecore::Error when the source
// cannot be opened or is not an image (see exit_status_for).
ExitCode run_info(const InfoArgs& args);

}  // namespace discfs
