#include "cli/rip_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>

#include "burner/image_check.h"
#include "burner/rip.h"
#include "cli/cancel_signal.h"
#include "cli/logging.h"
#include "cli/progress.h"
#include "imagecore/base/json.h"

namespace discfs {
namespace {

using imagecore::json_string;

}  // namespace

CLI::App* add_rip_command(CLI::App& app, RipArgs& args) {
  CLI::App* r = app.add_subcommand(
      "rip",
      "Copy an image file, block device or disc into an image file as far as its sessions "
      "reach, retrying bad sectors and recording them in a ddrescue mapfile.");
  r->add_option("SOURCE", args.source, "Image file, block device or drive")->required();
  r->add_option("-o,--output", args.output, "The image file to write")->required();
  r->add_option("--map", args.map,
                "ddrescue mapfile, saved as the run goes (default: OUTPUT.map); a rerun with "
                "it reads only the bad and non-tried areas");
  r->add_option("--retries", args.retries, "Extra tries of each bad 2048-byte block (default 1)")
      ->check(CLI::Range(0, 100));
  r->add_option("--sha256", args.sha256, "Published SHA-256 (hex) to check the result against");
  r->add_flag("--json", args.json, "Progress and the result as JSON lines");
  return r;
}

ExitCode run_rip(const RipArgs& args) {
  set_up_logging(spdlog::level::err, Syslog::No);
  const std::string sha = [&] {
    std::string s = args.sha256;
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  }();
  if (!sha.empty() && (sha.size() != 64 || !std::all_of(sha.begin(), sha.end(), [](char c) {
                         return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                       })))
    throw Failure(ExitCode::Usage, "--sha256 needs 64 hexadecimal digits, not '" + sha + "'");

  ProgressBar bar(args.json);
  uint64_t shown_bad = ~uint64_t{0}, last = 0;
  burner::RipOptions o;
  o.source = args.source;
  o.output = args.output;
  o.map = args.map;
  o.retries = args.retries;
  o.command_line = args.command_line;
  o.stop = &CancelOnSignal::requested;
  o.progress = [&](uint64_t done, uint64_t total, uint64_t bad) {
    if (bad != shown_bad) {
      shown_bad = bad;
      bar.phase(fmt::format("reading, {} bad sector{}", bad / 2048, bad / 2048 == 1 ? "" : "s"));
    }
    if (done == total || done - last >= std::max<uint64_t>(total / 100, 1)) {
      last = done;
      bar.update(done, total);
    }
  };
  burner::RipResult r;
  {
    CancelOnSignal cancel;
    r = burner::rip(o);
  }
  bar.done();
  if (r.stopped) {
    const std::string text =
        fmt::format("stopped; the map {} is saved: run the same command again to go on", r.map);
    if (args.json)
      std::cout << fmt::format("{{\"event\":\"result\",\"result\":\"stopped\",\"map\":{}}}\n",
                               json_string(r.map));
    throw Failure(ExitCode::Cancelled, text);
  }

  // The copy against what it records and what was published.
  std::string md5_state = "no-tags";
  std::string md5_detail;
  if (r.bad_bytes == 0) {
    const burner::Md5Check c = burner::check_md5(args.output, {});
    bool any = false, bad = false;
    for (const burner::SessionTagCheck& s : c.sessions) {
      any |= s.state != burner::SessionTagCheck::State::NoTags;
      if (s.state == burner::SessionTagCheck::State::Mismatch ||
          s.state == burner::SessionTagCheck::State::Unreadable) {
        bad = true;
        md5_detail = fmt::format("session {}: {}", s.number, s.detail);
      }
    }
    if (!c.files.empty() && !bad) {
      bad = true;
      md5_detail =
          fmt::format("session {}: {}: {}", c.files[0].session, c.files[0].path, c.files[0].what);
    }
    md5_state = bad ? "mismatch" : any ? "ok" : "no-tags";
  } else {
    md5_state = "not-checked";
  }
  std::string sha_state = "none", actual;
  if (!sha.empty() && r.bad_bytes == 0) {
    actual = burner::digest_image(args.output, burner::DigestKind::Sha256, {}).hex;
    sha_state = actual == sha ? "ok" : "mismatch";
  }

  const bool mismatch = md5_state == "mismatch" || sha_state == "mismatch";
  const char* result = r.bad_bytes ? "partial" : mismatch ? "mismatch" : "ok";
  if (args.json) {
    std::cout << fmt::format(
        "{{\"event\":\"result\",\"result\":{},\"output\":{},\"map\":{},\"bytes\":{},"
        "\"read_bytes\":{},\"bad_bytes\":{},\"bad_sectors\":{},\"md5_tags\":{},\"sha256\":{}}}\n",
        json_string(result), json_string(args.output), json_string(r.map), r.size, r.read_bytes,
        r.bad_bytes, (r.bad_bytes + 2047) / 2048, json_string(md5_state), json_string(sha_state));
  } else {
    std::cout << fmt::format("{}: {} bytes, {} read this run, {} bad sector{} (map {})\n",
                             args.output, r.size, r.read_bytes, (r.bad_bytes + 2047) / 2048,
                             r.bad_bytes == 2048 ? "" : "s", r.map);
    std::cout << "MD5 tags: " << (md5_state == "mismatch" ? "MISMATCH: " + md5_detail : md5_state)
              << "\n";
    if (!sha.empty())
      std::cout << "sha256: " << (sha_state == "mismatch" ? "MISMATCH: " + actual : sha_state)
                << "\n";
  }
  if (r.bad_bytes)
    return ExitCode::PartialRip;
  return mismatch ? ExitCode::Mismatch : ExitCode::Ok;
}

}  // namespace discfs
