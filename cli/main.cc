// discfs: the command-line front end. A thin layer: it parses the command line, runs the
// verb, and turns whatever the verb throws into one sentence and an exit code.
#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/blank_command.h"
#include "cli/burn_command.h"
#include "cli/create_command.h"
#include "cli/drives_command.h"
#include "cli/exit_codes.h"
#include "cli/info_command.h"
#include "cli/logging.h"
#include "cli/mount_command.h"
#include "cli/rip_command.h"
#include "cli/stage_command.h"
#include "cli/verify_command.h"

namespace {

constexpr const char* kVerbs[] = {"mount",  "info",   "stage", "commit", "status", "discard",
                                  "create", "verify", "rip",   "drives", "burn",   "blank"};

bool is_one_of(const char* s, const auto& list) {
  return std::any_of(std::begin(list), std::end(list),
                     [s](const char* v) { return std::strcmp(s, v) == 0; });
}

// The Levenshtein distance between `a` and `b`.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The sentence for a first word that is no verb and no existing source, and has no '/' or
// '.': mount(8) and mount.fuse3 call "discfs SOURCE MOUNTPOINT -o OPTS" with a SOURCE that
// exists, so such a word is a mistyped or missing verb, not a mount.
std::string not_a_verb(const std::string& word) {
  if (word == "umount" || word == "unmount")
    return "'" + word + "' is not a discfs command; unmount with 'fusermount3 -u MOUNTPOINT'";
  const char* nearest = nullptr;
  size_t best = 3;  // farther than two edits is no suggestion
  for (const char* v : kVerbs) {
    const size_t d = edit_distance(word, v);
    if (d < best) {
      best = d;
      nearest = v;
    }
  }
  return "'" + word + "' is not a discfs command" +
         (nearest ? std::string("; did you mean '") + nearest + "'?"
                  : std::string(" (run 'discfs --help' for the commands)"));
}

// Every verb's arguments, filled by the parser.
struct Verbs {
  discfs::MountArgs mount;
  discfs::InfoArgs info;
  discfs::StageArgs stage;
  discfs::CommitArgs commit;
  discfs::StatusArgs status;
  discfs::DiscardArgs discard;
  discfs::CreateArgs create;
  discfs::VerifyArgs verify;
  discfs::RipArgs rip;
  discfs::DrivesArgs drives;
  discfs::BurnArgs burn;
  discfs::BlankArgs blank;
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
  // mount.fuse3 and fstab call "discfs SOURCE MOUNTPOINT -o OPTS": the same as "discfs mount",
  // with mount.fuse3's own defaults left out (MountArgs::from_mount_helper).
  std::vector<char*> args(argv, argv + argc);
  bool mount_helper_form = false;
  if (argc > 1 && argv[1][0] != '-' && !is_one_of(argv[1], kVerbs)) {
    struct stat st {};
    // A path or a file name ("/dev/sr0", "disc.iso") is a source even when missing: the mount
    // then says it cannot be opened.
    if (::stat(argv[1], &st) != 0 && std::strpbrk(argv[1], "/.") == nullptr) {
      std::cerr << "discfs: " << not_a_verb(argv[1]) << "\n";
      return static_cast<int>(discfs::ExitCode::Usage);
    }
    args.insert(args.begin() + 1, const_cast<char*>("mount"));
    mount_helper_form = true;
  }

  CLI::App app{"discfs - browse, stage and burn optical-disc images"};
  app.set_version_flag("-V,--version", std::string("discfs ") + DISCFS_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Run 'discfs VERB --help' for a verb's options; 'man discfs-VERB' for the whole story.");
  Verbs v;
  v.mount.from_mount_helper = mount_helper_form;
  CLI::App* mount = discfs::add_mount_command(app, v.mount);
  CLI::App* info = discfs::add_info_command(app, v.info);
  CLI::App* stage = discfs::add_stage_command(app, v.stage);
  CLI::App* commit = discfs::add_commit_command(app, v.commit);
  CLI::App* status = discfs::add_status_command(app, v.status);
  CLI::App* discard = discfs::add_discard_command(app, v.discard);
  CLI::App* create = discfs::add_create_command(app, v.create);
  CLI::App* verify = discfs::add_verify_command(app, v.verify);
  CLI::App* rip = discfs::add_rip_command(app, v.rip);
  CLI::App* drives = discfs::add_drives_command(app, v.drives);
  CLI::App* burn = discfs::add_burn_command(app, v.burn);
  CLI::App* blank = discfs::add_blank_command(app, v.blank);
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
  else if (create->parsed())
    code = discfs::run_create(v.create);
  else if (verify->parsed())
    code = discfs::run_verify(v.verify);
  else if (rip->parsed()) {
    for (int i = 0; i < argc; ++i)
      v.rip.command_line += (i ? " " : "") + std::string(argv[i]);
    code = discfs::run_rip(v.rip);
  } else if (drives->parsed())
    code = discfs::run_drives(v.drives);
  else if (burn->parsed())
    code = discfs::run_burn(v.burn);
  else if (blank->parsed())
    code = discfs::run_blank(v.blank);
  return static_cast<int>(code);
} catch (...) {
  // The one way out for every error a verb throws (exit_status_for lists them).
  return static_cast<int>(discfs::report_failure(std::current_exception()));
}
