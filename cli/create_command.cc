#include "cli/create_command.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "burner/master.h"
#include "burner/target.h"
#include "cli/cancel_signal.h"
#include "cli/logging.h"
#include "cli/progress.h"
#include "imagecore/base/error.h"
#include "imagecore/base/json.h"

namespace discfs {
namespace {

using imagecore::Error;
using imagecore::json_string;

// The options for master() from the command line. Throws Failure(Usage) for a bad value.
burner::MasterOptions options_of(const CreateArgs& a) {
  burner::MasterOptions o;
  o.output = a.output;
  o.force = a.force;
  try {
    for (const std::string& s : a.sources)
      o.sources.push_back(burner::parse_graft(s));
    if (!a.capacity.empty())
      o.capacity_bytes = burner::parse_capacity(a.capacity);
    if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH"); epoch && *epoch)
      o.source_date_epoch = burner::parse_source_date_epoch(epoch);
  } catch (const Error& e) {
    throw Failure(ExitCode::Usage, e.what());
  }
  o.excludes = a.excludes;
  o.zisofs = a.zisofs;
  o.joliet = !a.no_joliet;
  o.rock_ridge = !a.no_rock;
  o.iso1999 = a.iso1999;
  o.iso_level = a.iso_level;
  o.md5 = !a.no_md5;
  o.volume_id = a.volume_id;
  o.volume_set_id = a.volume_set_id;
  o.publisher_id = a.publisher_id;
  o.preparer_id = a.preparer_id;
  o.application_id = a.application_id;
  o.system_id = a.system_id;
  o.boot_bios = a.boot_bios;
  o.boot_efi = a.boot_efi;
  o.boot_catalog = a.boot_catalog;
  o.isohybrid_mbr = a.isohybrid_mbr;
  o.isohybrid_gpt = a.isohybrid_gpt;
  return o;
}

std::string to_json(const std::string& output, const burner::MasterResult& r) {
  return fmt::format("{{\"image\":{},\"bytes\":{},\"files\":{},\"zisofs\":{}}}",
                     json_string(output), r.bytes, r.files, r.zisofs);
}

}  // namespace

CLI::App* add_create_command(CLI::App& app, CreateArgs& a) {
  CLI::App* c = app.add_subcommand(
      "create",
      "Master a new ISO 9660 image from files and folders: Rock Ridge, Joliet and MD5 tags; "
      "reproducible with SOURCE_DATE_EPOCH.");
  c->add_option("-o,--output", a.output, "The image file to write")->required();
  c->add_option("SRC", a.sources,
                "A folder (its contents go to the root) or file (under its own name), or "
                "SRC=/PATH/IN/IMAGE to put it there")
      ->required();
  c->add_flag("-f,--force", a.force, "Replace IMAGE when it exists");
  c->add_option("--exclude", a.excludes,
                "Leave out files whose name or path on disk matches PATTERN (shell pattern; "
                "repeatable)")
      ->type_name("PATTERN")
      ->allow_extra_args(false);
  c->add_option("--zisofs", a.zisofs,
                "Store files whose name or path in the image matches PATTERN zisofs-compressed "
                "(repeatable)")
      ->type_name("PATTERN")
      ->allow_extra_args(false);
  c->add_flag("--no-joliet", a.no_joliet, "No Joliet tree (Windows names)");
  c->add_flag("--no-rock", a.no_rock,
              "No Rock Ridge (POSIX names, modes, owners, links; also no per-file MD5s)");
  c->add_option("--iso-level", a.iso_level,
                "ISO 9660 level: 1 (8.3 names), 2 (31 characters) or 3 (default; files of 4 GiB "
                "and more as multi-extent files)")
      ->check(CLI::Range(1, 3));
  c->add_flag("--iso9660-1999", a.iso1999, "Add an ISO 9660:1999 tree (long names, no Rock Ridge)");
  c->add_flag("--no-md5", a.no_md5, "Record no session or per-file MD5 tags");
  c->add_option("--volid", a.volume_id, "Volume identifier (default DISCFS)");
  c->add_option("--volset", a.volume_set_id, "Volume set identifier");
  c->add_option("--publisher", a.publisher_id, "Publisher identifier");
  c->add_option("--preparer", a.preparer_id, "Data preparer identifier");
  c->add_option("--application", a.application_id, "Application identifier");
  c->add_option("--sysid", a.system_id, "System identifier");
  c->add_option("--capacity", a.capacity,
                "Refuse, before writing, an image larger than cd, dvd, dvd-dl, bd, bd-dl or a "
                "number of bytes (K/M/G/T)");
  c->add_option("--boot-bios", a.boot_bios,
                "El Torito BIOS boot file, a path in the image (isolinux.bin, GRUB's "
                "eltorito.img): no emulation, 4 sectors, boot info table")
      ->type_name("PATH");
  c->add_option("--boot-efi", a.boot_efi,
                "El Torito UEFI boot image, a path in the image (a FAT image holding "
                "EFI/BOOT/BOOTX64.EFI)")
      ->type_name("PATH");
  c->add_option("--boot-catalog", a.boot_catalog,
                "Where the boot catalog goes in the image (default: boot.cat next to the boot "
                "file)")
      ->type_name("PATH");
  c->add_option("--isohybrid-mbr", a.isohybrid_mbr,
                "Isohybrid MBR file on disk (/usr/lib/ISOLINUX/isohdpfx.bin), so that the "
                "image boots from a USB stick too; needs --boot-bios")
      ->type_name("FILE");
  c->add_flag("--isohybrid-gpt", a.isohybrid_gpt,
              "Also a GPT listing the --boot-efi image, for UEFI from a USB stick");
  c->add_flag("--json", a.json, "Progress and result as JSON lines on standard output");
  c->add_flag("-q,--quiet", a.quiet, "Print nothing when it worked");
  return c;
}

ExitCode run_create(const CreateArgs& args) {
  // libisofs warns about every symlink and special file it leaves out of the Joliet tree, as
  // Joliet cannot hold them: expected, so not shown.
  set_up_logging(spdlog::level::err, Syslog::No);
  burner::MasterOptions o = options_of(args);
  ProgressBar bar(args.json);
  CancelOnSignal cancel;
  o.cancel = &CancelOnSignal::requested;
  o.phase = [&](const char* name) { bar.phase(name); };
  o.progress = [&](uint64_t done, uint64_t total) { bar.update(done, total); };
  try {
    const burner::MasterResult r = burner::master(o);
    bar.done();
    if (args.json)
      std::cout << "{\"event\":\"done\",\"result\":" << to_json(args.output, r) << "}\n";
    else if (!args.quiet)
      std::cout << fmt::format("{}: {:.1f} MB, {} files{}\n", args.output, r.bytes / 1e6, r.files,
                               r.zisofs ? fmt::format(" ({} zisofs-compressed)", r.zisofs) : "");
    return ExitCode::Ok;
  } catch (const std::exception& e) {
    bar.done();
    if (args.json)
      std::cout << "{\"event\":\"error\",\"message\":" << json_string(e.what()) << "}\n";
    const auto* error = dynamic_cast<const Error*>(&e);
    if (error && error->code() == ECANCELED)
      throw Failure(ExitCode::Cancelled, e.what());
    if (error && (error->code() == EEXIST || error->code() == EINVAL))
      throw Failure(ExitCode::Usage, e.what());
    if (error && error->code() == ENOSPC)
      throw Failure(ExitCode::MediumRefused, e.what());
    throw;
  }
}

}  // namespace discfs
