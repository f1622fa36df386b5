// discfs drives: the optical drives, what they can write and the medium each holds, as text
// or JSON. Drives another program holds are listed as busy.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace discfs {

struct DrivesArgs {
  std::vector<std::string> drives;  // empty: every /dev/srN
  bool json = false;
  bool watch = false;
};

// Adds the "drives" verb and its options to `app`, filling `args` when parsed.
CLI::App* add_drives_command(CLI::App& app, DrivesArgs& args);
// Lists the drives on stdout; with --watch, prints changes until interrupted.
ExitCode run_drives(const DrivesArgs& args);

}  // namespace discfs
