// discfs create: master a new ISO 9660 image (Rock Ridge, Joliet, MD5 tags) from files and
// folders, through burner/master.h.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/exit_codes.h"

namespace discfs {

struct CreateArgs {
  std::string output;
  std::vector<std::string> sources;  // SRC or SRC=/path/in/image
  std::vector<std::string> excludes;
  std::vector<std::string> zisofs;
  bool force = false;
  bool no_joliet = false;
  bool no_rock = false;
  bool iso1999 = false;
  int iso_level = 3;
  bool no_md5 = false;
  std::string volume_id = "DISCFS", volume_set_id, publisher_id, preparer_id, application_id,
              system_id;
  std::string capacity;
  std::string boot_bios, boot_efi, boot_catalog, isohybrid_mbr;
  bool isohybrid_gpt = false;
  bool json = false;
  bool quiet = false;
};

// Adds the "create" verb and its options to `app`, filling `args` when parsed.
CLI::App* add_create_command(CLI::App& app, CreateArgs& args);
// Writes the image, with progress on a terminal (or JSON lines with --json), and prints what
// was written. Throws what exit_status_for turns into the exit code and the sentence.
ExitCode run_create(const CreateArgs& args);

}  // namespace discfs
