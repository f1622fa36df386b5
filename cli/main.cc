// discfs: the command-line front end. A thin layer: each verb parses its options and calls
// into fusefs/imagecore.
#include <CLI/CLI.hpp>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "cli/info_command.h"
#include "cli/mount_command.h"
#include "cli/stage_command.h"

namespace {

constexpr const char* kVerbs[] = {"mount", "info", "stage", "commit", "status", "discard"};

bool is_verb(const char* s) {
  for (const char* v : kVerbs)
    if (std::strcmp(s, v) == 0)
      return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // mount.fuse3 and fstab call "discfs SOURCE MOUNTPOINT -o OPTS": the same as "discfs mount".
  std::vector<char*> args(argv, argv + argc);
  if (argc > 1 && argv[1][0] != '-' && !is_verb(argv[1]))
    args.insert(args.begin() + 1, const_cast<char*>("mount"));

  CLI::App app{"discfs - browse, stage and burn optical-disc images"};
  app.set_version_flag("-V,--version", std::string("discfs ") + DISCFS_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'discfs VERB --help' for a verb's options; 'man discfs' for the whole story.");

  discfs::MountArgs m;
  CLI::App* mount = discfs::add_mount_command(app, m);

  discfs::InfoArgs info_args;
  CLI::App* info = discfs::add_info_command(app, info_args);
  discfs::StageArgs stage_args;
  CLI::App* stage = discfs::add_stage_command(app, stage_args);
  discfs::CommitArgs commit_args;
  CLI::App* commit = discfs::add_commit_command(app, commit_args);
  discfs::StatusArgs status_args;
  CLI::App* status = discfs::add_status_command(app, status_args);
  discfs::DiscardArgs discard_args;
  CLI::App* discard = discfs::add_discard_command(app, discard_args);

  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::cerr << "discfs: " << e.what() << "\n";
    CLI::App* sub = app.get_subcommands().empty() ? &app : app.get_subcommands().front();
    std::cerr << sub->help();
    return static_cast<int>(discfs::ExitCode::Usage);
  }
  if (mount->parsed())
    return static_cast<int>(discfs::run_mount(m));
  if (info->parsed())
    return static_cast<int>(discfs::run_info(info_args));
  if (stage->parsed())
    return static_cast<int>(discfs::run_stage(stage_args));
  if (commit->parsed())
    return static_cast<int>(discfs::run_commit(commit_args));
  if (status->parsed())
    return static_cast<int>(discfs::run_status(status_args));
  if (discard->parsed())
    return static_cast<int>(discfs::run_discard(discard_args));
  return static_cast<int>(discfs::ExitCode::Usage);
}
