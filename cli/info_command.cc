#include "cli/info_command.h"

#include <fmt/format.h>

#include <climits>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "burner/md5_tags.h"
#include "cli/logging.h"
#include "imagecore/base/json.h"
#include "imagecore/iso9660/ecma119.h"
#include "imagecore/iso9660/iso_fs.h"
#include "imagecore/media/eltorito.h"
#include "imagecore/media/sessions.h"
#include "imagecore/udf/udf_fs.h"

namespace discfs {
namespace {

using imagecore::json_string;
using imagecore::ecma119::kBlockSize;

struct VolumeIds {
  std::string system_id, volume_id, volume_set_id, publisher_id, preparer_id, application_id;
  std::optional<imagecore::Timestamp> created, modified;
};

// Everything `info` tells, gathered before anything is printed.
struct Report {
  std::string source;
  uint64_t size_bytes = 0;
  bool iso9660 = false, rock_ridge = false, iso9660_1999 = false;
  int joliet_level = 0;
  std::optional<std::string> udf;  // revision
  VolumeIds volume;
  std::optional<imagecore::SessionTable> sessions;
  std::optional<imagecore::BootCatalog> boot;
  bool md5_tags = false;
  std::vector<std::string> notes;
};

// Whether the session carries libisofs MD5 tags: they begin with a superblock tag.
bool has_md5_tags(const imagecore::Source& src, uint64_t session_start) {
  const burner::BlockReader read = [&src](uint64_t lba, std::span<char, kBlockSize> out) {
    if ((lba + 1) * kBlockSize > src.size())
      return false;
    src.read(lba * kBlockSize, std::as_writable_bytes(out));
    return true;
  };
  return burner::find_superblock_tag(read, session_start).has_value();
}

void gather_iso(const std::shared_ptr<const imagecore::Source>& src, Report* r) {
  r->sessions = imagecore::read_session_table(*src);
  if (!r->sessions->note.empty())
    r->notes.push_back("sessions: " + r->sessions->note);
  const uint64_t start = r->sessions->sessions.back().tree_start();
  const imagecore::VolumeInfo v = imagecore::read_volume_descriptors(*src, start);
  r->iso9660 = true;
  r->joliet_level = v.joliet ? v.joliet_level : 0;
  r->iso9660_1999 = v.enhanced.has_value();
  r->volume = VolumeIds{v.system_id,   v.volume_id,      v.volume_set_id, v.publisher_id,
                        v.preparer_id, v.application_id, v.created,       v.modified};
  std::unique_ptr<imagecore::IsoFs> fs;
  try {
    imagecore::Options opts;
    opts.session_start_lba = start;
    fs = std::make_unique<imagecore::IsoFs>(src, opts);
    r->rock_ridge = fs->tree() == imagecore::Tree::RockRidge;
  } catch (const imagecore::Error& e) {
    r->notes.push_back(std::string("trees: ") + e.what());
  }
  r->boot = imagecore::read_boot_catalog(*src, start, fs.get());
  if (r->boot && !r->boot->note.empty())
    r->notes.push_back("boot: " + r->boot->note);
  r->md5_tags = has_md5_tags(*src, start);
}

Report gather(const std::string& path) {
  Report r;
  std::shared_ptr<const imagecore::Source> src = imagecore::open_file_source(path);
  r.source = path;
  r.size_bytes = src->size();
  const bool udf = imagecore::has_udf(*src);
  try {
    gather_iso(src, &r);
  } catch (const imagecore::NotAnImage&) {
    if (!udf)
      throw;
    r.sessions.reset();
  }
  if (udf) {
    try {
      const imagecore::UdfInfo u = imagecore::read_udf_info(*src);
      r.udf = u.revision;
      if (!r.iso9660)
        r.volume = VolumeIds{"", u.logical_volume_id, u.volume_set_id, "", "", "", u.recorded, {}};
    } catch (const imagecore::Error& e) {
      if (!r.iso9660)
        throw;
      r.notes.push_back(std::string("udf: ") + e.what());
    }
  }
  return r;
}

std::string date_text(const std::optional<imagecore::Timestamp>& t) {
  if (!t)
    return "";
  const time_t s = static_cast<time_t>(t->sec);
  struct tm tm {};
  if (!::gmtime_r(&s, &tm))
    return "";
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string json_opt_string(const std::string& s) {
  return s.empty() ? "null" : json_string(s);
}

std::string formats_text(const Report& r) {
  std::vector<std::string> f;
  if (r.iso9660)
    f.push_back("ISO 9660");
  if (r.rock_ridge)
    f.push_back("Rock Ridge");
  if (r.joliet_level)
    f.push_back(fmt::format("Joliet (level {})", r.joliet_level));
  if (r.iso9660_1999)
    f.push_back("ISO 9660:1999");
  if (r.udf)
    f.push_back("UDF " + *r.udf);
  return fmt::format("{}", fmt::join(f, ", "));
}

void print_json(const Report& r) {
  std::string o = "{";
  o += fmt::format("\"source\":{},\"size_bytes\":{}", json_string(r.source), r.size_bytes);
  o += fmt::format(
      ",\"formats\":{{\"iso9660\":{},\"rock_ridge\":{},\"joliet_level\":{},"
      "\"iso9660_1999\":{},\"udf\":{}}}",
      r.iso9660, r.rock_ridge, r.joliet_level ? std::to_string(r.joliet_level) : "null",
      r.iso9660_1999, r.udf ? json_string(*r.udf) : "null");
  const VolumeIds& v = r.volume;
  o += fmt::format(
      ",\"volume\":{{\"system_id\":{},\"volume_id\":{},\"volume_set_id\":{},"
      "\"publisher_id\":{},\"preparer_id\":{},\"application_id\":{},\"created\":{},"
      "\"modified\":{}}}",
      json_string(v.system_id), json_string(v.volume_id), json_string(v.volume_set_id),
      json_string(v.publisher_id), json_string(v.preparer_id), json_string(v.application_id),
      json_opt_string(date_text(v.created)), json_opt_string(date_text(v.modified)));
  o += fmt::format(",\"layout\":{}",
                   r.sessions ? json_string(imagecore::layout_name(r.sessions->layout)) : "null");
  o += ",\"sessions\":[";
  if (r.sessions)
    for (size_t i = 0; i < r.sessions->sessions.size(); ++i) {
      const imagecore::SessionEntry& s = r.sessions->sessions[i];
      o += fmt::format("{}{{\"number\":{},\"start_lba\":{},\"blocks\":{}}}", i ? "," : "", s.number,
                       s.start_lba, s.blocks);
    }
  o += "]";
  o += fmt::format(",\"next_writable_lba\":{}", r.sessions && r.sessions->next_writable_lba
                                                    ? std::to_string(*r.sessions->next_writable_lba)
                                                    : "null");
  o += fmt::format(",\"boot_catalog_lba\":{}",
                   r.boot ? std::to_string(r.boot->catalog_lba) : "null");
  o += ",\"boot\":[";
  if (r.boot)
    for (size_t i = 0; i < r.boot->entries.size(); ++i) {
      const imagecore::BootEntry& e = r.boot->entries[i];
      o += fmt::format(
          "{}{{\"number\":{},\"platform_id\":{},\"platform\":{},\"media\":{},\"emulation\":{},"
          "\"bootable\":{},\"load_segment\":{},\"system_type\":{},\"sector_count\":{},"
          "\"load_lba\":{},\"size_bytes\":{},\"file_name\":{},\"tree_path\":{}}}",
          i ? "," : "", e.number, e.platform_id, json_string(e.platform), e.media,
          json_string(e.emulation), e.bootable, e.load_segment, e.system_type, e.sector_count,
          e.load_lba, e.size, json_string(e.file_name), json_opt_string(e.tree_path));
    }
  o += fmt::format("],\"md5_tags\":{},\"notes\":[", r.md5_tags);
  for (size_t i = 0; i < r.notes.size(); ++i)
    o += (i ? "," : "") + json_string(r.notes[i]);
  o += "]}";
  std::cout << o << "\n";
}

void print_text(const Report& r) {
  auto line = [](std::string_view key, const std::string& value) {
    std::cout << fmt::format("{:<19}{}\n", std::string(key) + ":", value);
  };
  line("source", r.source);
  line("size", fmt::format("{} bytes ({:.1f} MiB)", r.size_bytes, r.size_bytes / 1048576.0));
  line("formats", formats_text(r));
  const VolumeIds& v = r.volume;
  line("volume id", v.volume_id);
  line("system id", v.system_id);
  line("volume set id", v.volume_set_id);
  line("publisher id", v.publisher_id);
  line("preparer id", v.preparer_id);
  line("application id", v.application_id);
  line("created", date_text(v.created));
  line("modified", date_text(v.modified));
  line("MD5 tags", r.md5_tags ? "yes" : "no");
  if (r.sessions) {
    line("layout", imagecore::layout_name(r.sessions->layout));
    if (r.sessions->next_writable_lba)
      line("next writable LBA", std::to_string(*r.sessions->next_writable_lba));
    std::cout << fmt::format("sessions:\n  {:>7}  {:>12}  {:>12}\n", "session", "start LBA",
                             "blocks");
    for (const imagecore::SessionEntry& s : r.sessions->sessions)
      std::cout << fmt::format("  {:>7}  {:>12}  {:>12}\n", s.number, s.start_lba, s.blocks);
  }
  if (r.boot) {
    line("boot catalog LBA", std::to_string(r.boot->catalog_lba));
    std::cout << fmt::format(
        "boot entries:\n  {:>2}  {:<8}  {:<9}  {:<8}  {:>10}  {:>7}  {:>10}  {}\n", "#", "platform",
        "emulation", "bootable", "load LBA", "sectors", "bytes", "file");
    for (const imagecore::BootEntry& e : r.boot->entries)
      std::cout << fmt::format("  {:>2}  {:<8}  {:<9}  {:<8}  {:>10}  {:>7}  {:>10}  {}{}\n",
                               e.number, e.platform, e.emulation, e.bootable ? "yes" : "no",
                               e.load_lba, e.sector_count, e.size, e.file_name,
                               e.tree_path.empty() ? "" : " (" + e.tree_path + ")");
  }
  for (const std::string& n : r.notes)
    line("note", n);
}

}  // namespace

CLI::App* add_info_command(CLI::App& app, InfoArgs& args) {
  CLI::App* info = app.add_subcommand(
      "info",
      "Show what an image, block device or disc holds: formats, volume identifiers, "
      "sessions, boot entries, sizes.");
  info->add_option("SOURCE", args.source, "Image file, block device or drive")->required();
  info->add_flag("--json", args.json, "Print one JSON object (fields in man discfs-info)");
  return info;
}

ExitCode run_info(const InfoArgs& args) {
  // Damage is reported in the output's notes; the log only carries what stops the command.
  set_up_logging(spdlog::level::err, Syslog::No);
  char real[PATH_MAX];
  const std::string source = ::realpath(args.source.c_str(), real) ? real : args.source;
  Report r = gather(source);
  r.source = args.source;
  if (args.json)
    print_json(r);
  else
    print_text(r);
  return ExitCode::Ok;
}

}  // namespace discfs
