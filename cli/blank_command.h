// discfs blank DRIVE: blanks a rewritable disc (or invalidates the ISO 9660 image of an
// overwritable medium or a stdio: pseudo-drive), or formats it with --format.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/exit_codes.h"

namespace discfs {

struct BlankArgs {
  std::string drive;
  bool fast = false;
  bool full = false;
  bool format = false;
  bool yes = false;
};

// Adds the "blank" verb and its options to `app`, filling `args` when parsed.
CLI::App* add_blank_command(CLI::App& app, BlankArgs& args);
// Blanks; media that cannot be blanked are refused with exit 10.
ExitCode run_blank(const BlankArgs& args);

}  // namespace discfs
