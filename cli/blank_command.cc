#include "cli/blank_command.h"

#include <unistd.h>

#include <iostream>
#include <string>

#include "burner/drive.h"
#include "cli/cancel_signal.h"
#include "cli/logging.h"

namespace discfs {

CLI::App* add_blank_command(CLI::App& app, BlankArgs& a) {
  CLI::App* c = app.add_subcommand(
      "blank",
      "Blank the rewritable disc in DRIVE (CD-RW, DVD-RW), or make an overwritable medium, "
      "image file or block device look blank again. Asks first on a terminal when it holds "
      "data. Blanking cannot be cancelled once started.");
  c->add_option("DRIVE", a.drive,
                "/dev/srN, or an image file or block device (a libburn stdio: pseudo-drive)")
      ->required();
  auto* fast = c->add_flag("--fast", a.fast, "Blank only what is needed to reuse it (the default)");
  auto* full = c->add_flag("--full", a.full, "Blank the whole disc")->excludes(fast);
  c->add_flag("--format", a.format, "Format a DVD+RW, DVD-RW or BD-RE for overwriting")
      ->excludes(fast)
      ->excludes(full);
  c->add_flag("-y,--yes", a.yes, "Do not ask before destroying data");
  return c;
}

ExitCode run_blank(const BlankArgs& a) {
  set_up_logging(spdlog::level::warn, Syslog::No);
  const burner::DriveInfo info = burner::probe_drive(a.drive);
  if (info.busy)
    throw imagecore::Error(EBUSY, info.problem);
  if (!info.medium && !info.problem.empty())
    throw Failure(info.problem.find("no medium") != std::string::npos ? ExitCode::MediumRefused
                                                                      : ExitCode::CannotOpen,
                  info.problem);
  const bool holds_data =
      info.medium && (info.medium->state == "appendable" || info.medium->state == "closed");
  if (holds_data && !a.yes) {
    const std::string what = a.drive + " holds " + std::to_string(info.medium->sessions.size()) +
                             " session(s) (" + info.medium->profile + ")";
    if (!::isatty(0) || !::isatty(2))
      throw Failure(ExitCode::Usage, what + "; add --yes to destroy them");
    std::cerr << "discfs: " << what << ". " << (a.format ? "Format" : "Blank")
              << " it and lose them? [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes")
      throw Failure(ExitCode::Cancelled, a.drive + ": left as it was");
  }
  CancelOnSignal cancel;
  const auto mode = a.format ? burner::BlankMode::Format
                    : a.full ? burner::BlankMode::Full
                             : burner::BlankMode::Fast;
  burner::BlankResult r;
  try {
    r = burner::blank_medium(
        a.drive, mode,
        [](const char* phase) {
          if (std::string(phase) == "not cancellable")
            std::cerr << "discfs: blanking cannot be cancelled; waiting for the drive to finish\n";
          else if (::isatty(2) && std::string(phase) != "done")
            std::cerr << "discfs: " << phase << "...\n";
        },
        &CancelOnSignal::requested);
  } catch (const burner::MediumRefused& e) {
    throw Failure(ExitCode::MediumRefused, e.what());
  } catch (const burner::WriteFailed& e) {
    throw Failure(ExitCode::CommitFailed, e.what());
  }
  if (r.already_blank)
    std::cout << a.drive << ": already blank (" << r.profile << "); nothing to do\n";
  else
    std::cout << a.drive << ": " << (a.format ? "formatted" : "blanked") << " (" << r.profile
              << (r.emulated ? ", overwritable: its ISO 9660 image was invalidated" : "") << ")\n";
  return ExitCode::Ok;
}

}  // namespace discfs
