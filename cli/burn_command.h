// discfs burn IMAGE DRIVE: writes an image file as a new session on an optical disc or a
// libburn stdio: pseudo-drive (image file, block device), after checking the medium.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/exit_codes.h"

namespace discfs {

struct BurnArgs {
  std::string image;
  std::string drive;
  bool multi = false;
  bool close = false;
  std::string speed;  // "" max, "N" (x), "Nk" kB/s
  bool dummy = false;
  bool eject = false;
  bool verify = false;
  bool json = false;
};

// Adds the "burn" verb and its options to `app`, filling `args` when parsed.
CLI::App* add_burn_command(CLI::App& app, BurnArgs& args);
// Burns; the medium is refused with exit 10, a --verify difference is exit 9, Ctrl-C 130.
ExitCode run_burn(const BurnArgs& args);

}  // namespace discfs
