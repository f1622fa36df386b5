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
  CLI::App* mount = app.add_subcommand(
      "mount",
      "Mount an ISO 9660 or UDF image (file, block device or disc) read-only as a folder.");
  mount->add_option("SOURCE", m.source, "Image file or block device")->required();
  mount->add_option("MOUNTPOINT", m.mountpoint, "Existing directory to mount on")->required();
  mount->add_option("-o", m.options,
                    "Mount options, comma-separated: uid=N, gid=N, umask=OOO, tree=T, "
                    "session=N, sessions, boot, readahead_kb=N, splice, allow_other, and other "
                    "FUSE options");
  mount->add_flag("-f,--foreground", m.foreground, "Stay in the foreground");
  mount->add_flag("-d,--debug", m.debug, "Trace FUSE requests (implies -f)");
  mount
      ->add_option("--tree", m.tree,
                   "Which tree to show: auto (Rock Ridge, else UDF, else Joliet, else ISO 9660), "
                   "rockridge, udf, joliet or iso9660")
      ->check(CLI::IsMember({"auto", "rockridge", "udf", "joliet", "iso9660"}));
  mount
      ->add_option("--session", m.session, "Show session N (1 is the oldest) instead of the newest")
      ->check(CLI::Range(1, 100000));
  mount->add_flag("--sessions", m.sessions,
                  "Show every session side by side as MOUNTPOINT/1 ... MOUNTPOINT/N");
  mount->add_flag("--boot", m.boot,
                  "Show the El Torito boot images as read-only files under MOUNTPOINT/.boot");
  mount->add_option("--cache-mib", m.cache_mib, "Memory for parsed directories, in MiB")
      ->check(CLI::Range(1, 4096));
  mount
      ->add_option("--readahead-kb", m.readahead_kb,
                   "Kernel readahead for the mount in KiB, 0 to keep the kernel's (default "
                   "4096; needs root)")
      ->check(CLI::Range(0, 1 << 20));
  mount->add_option("--threads", m.threads, "Threads answering requests (default 2)")
      ->check(CLI::Range(1, 64));

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
