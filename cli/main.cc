// discfs: the command-line front end. A thin layer: it parses the command line, runs the
// verb, and turns whatever the verb throws into one sentence and an exit code.
#include <CLI/CLI.hpp>

#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "cli/info_command.h"
#include "cli/logging.h"
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

// Every verb's arguments, filled by the parser.
struct Verbs {
  discfs::MountArgs mount;
  discfs::InfoArgs info;
  discfs::StageArgs stage;
  discfs::CommitArgs commit;
  discfs::StatusArgs status;
  discfs::DiscardArgs discard;
};

// Parses `args`; the exit code when the command ends here (--help, --version, a bad command
// line, which is reported with the verb's help).
std::optional<int> parse(CLI::App& app, std::vector<char*>& args) {
  try {
    app.parse(static_cast<int>(args.size()), args.data());
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::cerr << "discfs: " << e.what() << "\n";
    CLI::App* sub = app.get_subcommands().empty() ? &app : app.get_subcommands().front();
    std::cerr << sub->help();
    return static_cast<int>(discfs::ExitCode::Usage);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  // mount.fuse3 and fstab call "discfs SOURCE MOUNTPOINT -o OPTS": the same as "discfs mount".
  std::vector<char*> args(argv, argv + argc);
  if (argc > 1 && argv[1][0] != '-' && !is_verb(argv[1]))
    args.insert(args.begin() + 1, const_cast<char*>("mount"));

  CLI::App app{"discfs - browse, stage and burn optical-disc images"};
  app.set_version_flag("-V,--version", std::string("discfs ") + DISCFS_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'discfs VERB --help' for a verb's options; 'man discfs' for the whole story.");
  Verbs v;
  CLI::App* mount = discfs::add_mount_command(app, v.mount);
  CLI::App* info = discfs::add_info_command(app, v.info);
  CLI::App* stage = discfs::add_stage_command(app, v.stage);
  CLI::App* commit = discfs::add_commit_command(app, v.commit);
  CLI::App* status = discfs::add_status_command(app, v.status);
  CLI::App* discard = discfs::add_discard_command(app, v.discard);
  if (std::optional<int> done = parse(app, args))
    return *done;

  // Each verb sets up its own log; this one serves until it does.
  discfs::set_up_logging(spdlog::level::warn, discfs::Syslog::No);
  discfs::ExitCode code = discfs::ExitCode::Usage;
  if (mount->parsed())
    code = discfs::run_mount(v.mount);
  else if (info->parsed())
    code = discfs::run_info(v.info);
  else if (stage->parsed())
    code = discfs::run_stage(v.stage);
  else if (commit->parsed())
    code = discfs::run_commit(v.commit);
  else if (status->parsed())
    code = discfs::run_status(v.status);
  else if (discard->parsed())
    code = discfs::run_discard(v.discard);
  return static_cast<int>(code);
} catch (...) {
  // The one way out for every error a verb throws (exit_status_for lists them).
  return static_cast<int>(discfs::report_failure(std::current_exception()));
}
