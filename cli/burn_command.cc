#include "cli/burn_command.h"

#include <fmt/format.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "burner/drive.h"
#include "cli/cancel_signal.h"
#include "cli/logging.h"
#include "cli/progress.h"
#include "imagecore/base/json.h"

namespace discfs {
namespace {

// --speed: "0" or "max" the fastest, "N" or "Nx" times the medium's 1x, "Nk" kB/s.
int speed_kbs(const std::string& s, const std::string& drive) {
  if (s.empty() || s == "max" || s == "0")
    return 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  const std::string unit = end ? end : "";
  if (end == s.c_str() || v <= 0 || v > 1e6 || (unit != "" && unit != "x" && unit != "k"))
    throw Failure(ExitCode::Usage,
                  "--speed " + s + ": give a factor (8 or 8x), kB/s (1385k) or max");
  if (unit == "k")
    return static_cast<int>(v);
  // A factor needs the medium's 1x.
  const burner::DriveInfo d = burner::probe_drive(drive);
  const int profile = d.medium ? d.medium->profile_code : 0x09;
  return static_cast<int>(v * burner::one_x_kbs(profile) + 0.5);
}

}  // namespace

CLI::App* add_burn_command(CLI::App& app, BurnArgs& a) {
  CLI::App* c = app.add_subcommand(
      "burn",
      "Write IMAGE as a new session on the disc in DRIVE (/dev/srN), or onto an image file or "
      "block device. The medium is checked first: writable, blank or appendable, big enough. "
      "Ctrl-C cancels (exit 130).");
  c->add_option("IMAGE", a.image, "The image file to write")->required();
  c->add_option("DRIVE", a.drive,
                "/dev/srN, or an image file or block device (a libburn stdio: pseudo-drive)")
      ->required();
  auto* multi = c->add_flag("--multi", a.multi,
                            "Leave the disc appendable, so that more sessions can follow");
  c->add_flag("--close", a.close, "Close the disc after this session (the default)")
      ->excludes(multi);
  c->add_option("--speed", a.speed,
                "Write speed: a factor (8 or 8x), kB/s (1385k), or max (the default)");
  c->add_flag("--dummy", a.dummy, "Simulate: go through the write with the laser off");
  c->add_flag("--eject", a.eject, "Eject the disc when done");
  c->add_flag("--verify", a.verify, "Read every written block back and compare it with IMAGE");
  c->add_flag("--json", a.json, "Progress and result as JSON lines on standard output");
  return c;
}

ExitCode run_burn(const BurnArgs& a) {
  set_up_logging(spdlog::level::warn, Syslog::No);
  ProgressBar bar(a.json);
  CancelOnSignal cancel;
  burner::BurnOptions o;
  o.multi = a.multi;
  o.dummy = a.dummy;
  o.eject = a.eject;
  o.verify = a.verify;
  o.cancel = &CancelOnSignal::requested;
  o.phase = [&bar](const char* p) { bar.phase(p); };
  o.progress = [&bar](const burner::BurnProgress& p) { bar.update(p.done, p.total); };
  burner::BurnResult r;
  try {
    o.speed_kbs = speed_kbs(a.speed, a.drive);
    r = burner::burn_image(a.image, a.drive, o);
  } catch (const burner::MediumRefused& e) {
    bar.done();
    throw Failure(ExitCode::MediumRefused, e.what());
  } catch (const burner::VerifyMismatch& e) {
    bar.done();
    throw Failure(ExitCode::Mismatch, e.what());
  } catch (const burner::WriteFailed& e) {
    bar.done();
    throw Failure(ExitCode::CommitFailed, e.what());
  }
  bar.done();
  if (r.cancelled)
    throw Failure(
        ExitCode::Cancelled,
        r.verified || !a.verify
            ? a.drive + ": burn cancelled; the session is incomplete and the drive released"
            : a.drive + ": verify cancelled; the session was written");
  const std::string state = r.overwritable ? "overwritable, more sessions can follow"
                            : r.appendable ? "appendable"
                                           : "closed";
  if (a.json) {
    std::cout
        << fmt::format(
               "{{\"event\":\"result\",\"drive\":{},\"image\":{},\"start_lba\":{},"
               "\"blocks\":{},\"profile\":{},\"appendable\":{},\"dummy\":{},\"verified\":{}}}\n",
               imagecore::json_string(a.drive), imagecore::json_string(a.image), r.start_lba,
               r.blocks, imagecore::json_string(r.profile), r.appendable, a.dummy, r.verified)
        << std::flush;
  } else {
    std::cout << fmt::format("{}{} blocks written to {} ({}) at LBA {}; the medium is {}{}\n",
                             a.dummy ? "simulated: " : "", r.blocks, a.drive, r.profile,
                             r.start_lba, state, r.verified ? "; verified" : "");
  }
  return ExitCode::Ok;
}

}  // namespace discfs
