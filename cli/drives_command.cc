#include "cli/drives_command.h"

#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "burner/drive.h"
#include "cli/cancel_signal.h"
#include "cli/logging.h"
#include "imagecore/base/json.h"

namespace discfs {
namespace {

using imagecore::json_string;

std::string mb(uint64_t bytes) {
  return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

std::string speeds_text(const burner::MediumInfo& m) {
  std::string out;
  for (int kbs : m.write_speeds_kbs)
    out +=
        fmt::format("{}{:.0f}x", out.empty() ? "" : ", ", kbs / burner::one_x_kbs(m.profile_code));
  return out;
}

std::string text_of(const burner::DriveInfo& d) {
  std::string out = d.path + ":";
  if (!d.vendor.empty() || !d.model.empty())
    out += fmt::format(" {} {} (revision {})", d.vendor, d.model, d.revision);
  out += "\n";
  if (d.busy)
    out += "  busy: " + d.problem + "\n";
  else if (!d.problem.empty() && !d.medium)
    out += "  " + d.problem + "\n";
  if (!d.write_profiles.empty()) {
    std::string list;
    for (const auto& p : d.write_profiles)
      list += (list.empty() ? "" : ", ") + p;
    out += "  writes: " + list + "\n";
  }
  if (const auto& m = d.medium) {
    out += fmt::format("  medium: {}, {}", m->profile.empty() ? "unknown" : m->profile, m->state);
    if (m->overwritable)
      out += ", overwritable";
    if (m->erasable)
      out += ", erasable";
    if (m->read_only)
      out += ", read-only";
    out += "\n";
    out += fmt::format("  sessions: {}, used {}", m->sessions.size(), mb(m->used_bytes));
    if (m->next_writable)
      out += fmt::format(", free {}, next session at LBA {}", mb(m->free_bytes), *m->next_writable);
    if (m->last_session)
      out += fmt::format(", newest session at LBA {}", *m->last_session);
    out += "\n";
    if (!m->write_speeds_kbs.empty())
      out += "  write speeds: " + speeds_text(*m) + "\n";
  }
  return out;
}

std::string json_of(const burner::DriveInfo& d) {
  std::string profiles;
  for (const auto& p : d.write_profiles)
    profiles += (profiles.empty() ? "" : ",") + json_string(p);
  std::string out = fmt::format(
      "{{\"path\":{},\"address\":{},\"busy\":{},\"problem\":{},\"vendor\":{},\"model\":{},"
      "\"revision\":{},\"writes\":[{}],\"medium\":",
      json_string(d.path), json_string(d.address), d.busy ? "true" : "false",
      d.problem.empty() ? "null" : json_string(d.problem), json_string(d.vendor),
      json_string(d.model), json_string(d.revision), profiles);
  if (!d.medium)
    return out + "null}";
  const auto& m = *d.medium;
  std::string sessions, speeds;
  for (const auto& s : m.sessions)
    sessions += fmt::format("{}{{\"number\":{},\"start_lba\":{},\"blocks\":{}}}",
                            sessions.empty() ? "" : ",", s.number, s.start_lba, s.blocks);
  for (int kbs : m.write_speeds_kbs)
    speeds += fmt::format("{}{}", speeds.empty() ? "" : ",", kbs);
  out += fmt::format(
      "{{\"profile\":{},\"profile_code\":{},\"state\":{},\"erasable\":{},\"overwritable\":{},"
      "\"read_only\":{},\"sessions\":[{}],\"used_bytes\":{},\"free_bytes\":{},"
      "\"next_writable\":{},\"last_session\":{},\"write_speeds_kbs\":[{}]}}}}",
      json_string(m.profile), m.profile_code, json_string(m.state), m.erasable, m.overwritable,
      m.read_only, sessions, m.used_bytes, m.free_bytes,
      m.next_writable ? std::to_string(*m.next_writable) : "null",
      m.last_session ? std::to_string(*m.last_session) : "null", speeds);
  return out;
}

std::vector<burner::DriveInfo> probe_all(const DrivesArgs& a) {
  std::vector<burner::DriveInfo> out;
  for (const auto& path : a.drives.empty() ? burner::optical_drive_paths() : a.drives)
    out.push_back(burner::probe_drive(path));
  return out;
}

}  // namespace

CLI::App* add_drives_command(CLI::App& app, DrivesArgs& a) {
  CLI::App* c = app.add_subcommand(
      "drives",
      "List the optical drives (or the DRIVEs given), the media each can write and the medium "
      "it holds. A drive another program holds is shown as busy.");
  c->add_option("DRIVE", a.drives,
                "Only these drives: /dev/srN, or an image file or block device (a libburn "
                "stdio: pseudo-drive)");
  c->add_flag("--json", a.json, "One JSON object on standard output");
  c->add_flag("--watch", a.watch,
              "Keep running and print a drive again whenever it or its medium changes "
              "(polled every second); Ctrl-C ends it");
  return c;
}

ExitCode run_drives(const DrivesArgs& a) {
  set_up_logging(spdlog::level::warn, Syslog::No);
  auto print = [&](const std::vector<burner::DriveInfo>& list) {
    if (a.json) {
      std::string items;
      for (const auto& d : list)
        items += (items.empty() ? "" : ",") + json_of(d);
      std::cout << "{\"drives\":[" << items << "]}\n" << std::flush;
      return;
    }
    for (const auto& d : list)
      std::cout << text_of(d);
    std::cout << std::flush;
  };
  std::vector<burner::DriveInfo> list = probe_all(a);
  if (list.empty() && !a.json)
    std::cerr << "discfs: no optical drives found (no /sys/class/block/sr*)\n";
  print(list);
  if (!a.watch)
    return ExitCode::Ok;
  CancelOnSignal stop;
  std::map<std::string, std::string> last;
  for (const auto& d : list)
    last[d.path] = json_of(d);
  while (!CancelOnSignal::requested) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::vector<burner::DriveInfo> now = probe_all(a), changed;
    std::map<std::string, std::string> seen;
    for (const auto& d : now) {
      seen[d.path] = json_of(d);
      if (last[d.path] != seen[d.path])
        changed.push_back(d);
    }
    for (const auto& [path, j] : last)
      if (!seen.count(path) && !j.empty()) {
        burner::DriveInfo gone;
        gone.path = path;
        gone.problem = path + ": the drive is gone";
        changed.push_back(gone);
      }
    if (!changed.empty())
      print(changed);
    last = std::move(seen);
  }
  return ExitCode::Ok;
}

}  // namespace discfs
