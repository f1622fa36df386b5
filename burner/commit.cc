// The commit: load the newest session, rebuild its tree from the staged one, write one new
// session, read it back, and only then rewrite LBA 0..31 (the commit point).
//
// When libisoburn touches LBA 0..31 of a stdio: target (libisoburn 1.5.4, isofs_wrap.c):
// only in isoburn_activate_session(), which copies the new session's first 64 KiB (system
// area and volume descriptors, captured by libisofs into an overwrite buffer while writing)
// to LBA 0 with burn_random_access_write(). isoburn_disc_write() writes the session at the
// next writable address only. So the order here is write -> verify -> activate, and a crash
// or failure before activation leaves the previous session in force.
#include "burner/commit.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "burner/boot.h"
#include "burner/libs.h"
#include "burner/target.h"
#include "burner/tree_build.h"
#include "burner/verify.h"
#include "imagecore/base/error.h"
#include "imagecore/media/session_history.h"

namespace burner {
namespace {

using detail::drain_messages;

// xorriso's default relaxations (xorriso/write_run.h), so sessions look like xorriso's.
constexpr int kRelaxed = isoburn_igopt_allow_deep_paths | isoburn_igopt_allow_longer_paths |
                         isoburn_igopt_always_gmt | isoburn_igopt_dir_rec_mtime |
                         isoburn_igopt_rrip_version_1_10 | isoburn_igopt_aaip_susp_1_10 |
                         isoburn_igopt_only_iso_versions | isoburn_igopt_no_j_force_dots;

[[noreturn]] void fail(int code, const std::string& target, const std::string& what) {
  const std::string why = drain_messages();
  throw imagecore::Error(code, target + ": " + what + (why.empty() ? "" : ": " + why));
}

struct ReadOpts {
  isoburn_read_opts* p = nullptr;
  ~ReadOpts() {
    if (p)
      isoburn_ropt_destroy(&p, 0);
  }
};
struct GenOpts {
  isoburn_imgen_opts* p = nullptr;
  ~GenOpts() {
    if (p)
      isoburn_igopt_destroy(&p, 0);
  }
};
struct WriteOpts {
  burn_write_opts* p = nullptr;
  ~WriteOpts() {
    if (p)
      burn::burn_write_opts_free(p);
  }
};
struct Image {
  IsoImage* p = nullptr;
  ~Image() {
    if (p)
      iso_image_unref(p);
  }
};

// A prepared libisofs write thread: cancelled unless the write consumed it.
struct Prepared {
  burn_drive* in = nullptr;
  burn_drive* out = nullptr;
  burn_disc* disc = nullptr;
  bool written = false;
  ~Prepared() {
    if (!written && in)
      isoburn_cancel_prepared_write(in, out, 0);
    if (disc)
      burn::burn_disc_free(disc);
    if (in)
      isoburn_sync_after_write(in, out, 0);
    drain_messages();
  }
};

// Drive flags: bit5/bit6 = take no ACLs or xattrs from the store's files.
constexpr int kAcquireFlags = 32 | 64;

void load_newest(burn_drive* drive, Image& image, const std::string& target) {
  ReadOpts ropts;
  if (isoburn_ropt_new(&ropts.p, 0) <= 0)
    fail(ENOMEM, target, "cannot allocate read options");
  // AAIP and MD5 loading on (libisoburn's default when the bits are clear), ACL/xattr of
  // local files off: the next session keeps every older file's MD5 and xattrs.
  isoburn_ropt_set_extensions(ropts.p, isoburn_ropt_noacl | isoburn_ropt_noea);
  isoburn_ropt_set_default_perms(ropts.p, 0, 0, 0444);
  if (isoburn_read_image(drive, ropts.p, &image.p) <= 0 || image.p == nullptr) {
    fail(EIO, target, "cannot load the newest session");
  }
}

void set_gen_opts(GenOpts& g, const CommitOptions& o, bool new_image) {
  if (isoburn_igopt_new(&g.p, 0) <= 0)
    fail(ENOMEM, o.target, "cannot allocate write options");
  int ext = isoburn_igopt_rockridge | isoburn_igopt_aaip | isoburn_igopt_hardlinks;
  if (o.joliet)
    ext |= isoburn_igopt_joliet;
  if (o.md5)
    ext |= isoburn_igopt_session_md5 | isoburn_igopt_file_md5;
  if (new_image)
    ext |= isoburn_igopt_no_emul_toc;  // --to: a plain image starting at LBA 0
  isoburn_igopt_set_extensions(g.p, ext);
  isoburn_igopt_set_level(g.p, 3);
  isoburn_igopt_set_relaxed(g.p, kRelaxed);
  isoburn_igopt_set_sort_files(g.p, 1);
}

// Runs the asynchronous write, reporting progress and honouring the cancel flag. Returns
// false when cancelled.
bool run_write(burn_drive* out,
               burn_write_opts* wopts,
               burn_disc* disc,
               IsoImage* image,
               const CommitOptions& o,
               uint64_t total_bytes) {
  isoburn_disc_write(wopts, disc);
  bool cancelled = false;
  for (int guard = 0;
       burn::burn_drive_get_status(out, nullptr) == burn::BURN_DRIVE_SPAWNING && guard < 600;
       ++guard) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  burn_progress p{};
  while (burn::burn_drive_get_status(out, &p) != burn::BURN_DRIVE_IDLE ||
         iso_image_generator_is_running(image)) {
    if (o.cancel && o.cancel->load() && !cancelled) {
      cancelled = true;
      burn::burn_drive_cancel(out);
    }
    if (o.progress && p.sectors > 0) {
      o.progress(static_cast<uint64_t>(p.sector) * kBlockSize, total_bytes);
    }
    drain_messages();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (burn::burn_drive_get_status(out, nullptr) == burn::BURN_DRIVE_IDLE &&
        iso_image_generator_is_running(image)) {
      // The writer may wait for a consumer that has gone: let it end.
      isoburn_cancel_prepared_write(out, nullptr, 0);
    }
  }
  if (o.cancel && o.cancel->load())
    cancelled = true;
  if (o.progress && !cancelled)
    o.progress(total_bytes, total_bytes);
  return !cancelled;
}

// The Application Use field of the PVD: discfs's record of where the session starts and what
// it grew from. (libisofs 1.5.4 exports no getter for the field, so a session written without
// a record is left as libisofs makes it; the reader checks every record against the session
// it sits in.)
void set_history_record(IsoImage* image, const std::optional<imagecore::HistoryRecord>& record) {
  if (!record)
    return;
  const auto bytes = imagecore::encode_history_record(*record);
  iso_image_set_app_use(image, bytes.data(), static_cast<int>(bytes.size()));
}

// One session: load the newest, rebuild its tree from `root` (nullptr: keep it unchanged, the
// copy session), write it, read it back, make it the newest.
CommitResult write_session(const CommitOptions& o,
                           const TargetInfo& before,
                           const std::optional<TargetInfo>& out_info,
                           const burner::StagedEntry* root,
                           std::optional<imagecore::HistoryRecord> record) {
  auto lock = detail::lock_libraries();
  drain_messages();

  CommitResult result;
  result.dummy = o.dummy;
  const std::string& shown = o.to_path ? *o.to_path : o.target;
  bool created = false;
  try {
    detail::Drive in(o.target, kAcquireFlags);
    std::optional<detail::Drive> out_drive;
    if (o.to_path)
      out_drive.emplace(*o.to_path, kAcquireFlags);
    burn_drive* out = out_drive ? out_drive->get() : in.get();

    Image image;
    load_newest(in.get(), image, o.target);
    if (!o.volid.empty() && root)
      iso_image_set_volume_id(image.p, o.volid.c_str());
    // El Torito and the system area, captured before the rebuild can move their files.
    detail::BootReplay boot(image.p, o.target);
    if (root) {
      const detail::BuildStats stats = detail::rebuild_tree(image.p, *root, o.target);
      result.data_bytes = stats.new_data_bytes;
      spdlog::info("commit {}: {} base nodes kept, {} cloned, {} bytes of new data", o.target,
                   stats.reused_nodes, stats.cloned_nodes, stats.new_data_bytes);
    } else {
      spdlog::info("commit {}: copying the session at LBA 0 (its tree only) to LBA {}", o.target,
                   before.next_writable);
    }
    set_history_record(image.p, record);

    GenOpts gen;
    set_gen_opts(gen, o, o.to_path.has_value());
    result.boot_note = boot.apply(image.p, gen.p);
    Prepared prep;
    prep.in = in.get();
    prep.out = out_drive ? out : nullptr;
    const int ret = o.to_path ? isoburn_prepare_new_image(in.get(), &prep.disc, gen.p, out)
                              : isoburn_prepare_disc(in.get(), &prep.disc, gen.p);
    if (ret <= 0 || prep.disc == nullptr)
      fail(EIO, o.target, "cannot prepare the session");
    int lba = 0;
    isoburn_igopt_get_effective_lba(gen.p, &lba);
    result.start_lba = static_cast<uint64_t>(lba);
    const uint64_t sectors = static_cast<uint64_t>(burn::burn_disc_get_sectors(prep.disc));
    result.blocks = sectors;
    result.session = o.to_path ? 1 : static_cast<int>(before.sessions.size()) + 1;
    if (record && record->start != result.start_lba)
      fail(EIO, o.target,
           "libisoburn placed the session at LBA " + std::to_string(result.start_lba) +
               ", not at LBA " + std::to_string(record->start) + " as its record says");
    const TargetInfo& dest = out_info ? *out_info : before;
    if (dest.capacity_blocks && result.start_lba + sectors > *dest.capacity_blocks) {
      fail(ENOSPC, shown,
           "the session needs " + std::to_string(sectors) + " blocks but only " +
               std::to_string(dest.free_blocks()) + " are free");
    }

    WriteOpts wopts;
    wopts.p = burn::burn_write_opts_new(out);
    if (wopts.p == nullptr)
      fail(ENOMEM, shown, "cannot allocate burn options");
    burn::burn_write_opts_set_simulate(wopts.p, o.dummy ? 1 : 0);
    burn::burn_write_opts_set_underrun_proof(wopts.p, 1);
    burn::burn_write_opts_set_perform_opc(wopts.p, 0);
    created = dest.kind == TargetKind::Missing && !o.dummy;
    if (o.cancel && o.cancel->load())
      fail(ECANCELED, shown, "commit cancelled; the previous session stays in force");
    if (o.session_start && root && !o.dummy && !o.to_path)
      o.session_start(result.start_lba);
    if (o.phase)
      o.phase("writing");
    prep.written = true;
    const bool done = run_write(out, wopts.p, prep.disc, image.p, o, sectors * kBlockSize);
    if (!done)
      fail(ECANCELED, shown, "commit cancelled; the previous session stays in force");
    if (!isoburn_drive_wrote_well(out))
      fail(EIO, shown, "writing the session failed");
    drain_messages();
    if (o.dummy) {
      spdlog::info("commit {}: dummy run, {} blocks would be written at LBA {}", shown, sectors,
                   result.start_lba);
      if (dest.kind == TargetKind::Missing)
        ::unlink(shown.c_str());  // acquiring the pseudo-drive made an empty file
      return result;
    }
    if (o.md5) {
      if (o.phase)
        o.phase("verifying MD5");
      const SessionCheck check = verify_session(shown, result.start_lba);
      result.verified = true;
      spdlog::info("commit {}: session at LBA {} verified ({} blocks up to its tag)", shown,
                   check.start_lba, check.blocks);
    }
    // A cancel that came while the write was ending is still honoured: until LBA 0..31 are
    // rewritten, the previous session stays in force.
    if (o.cancel && o.cancel->load())
      fail(ECANCELED, shown, "commit cancelled; the previous session stays in force");
    if (o.fail_before_activation && root) {
      fail(EIO, shown, "stopped before rewriting LBA 0..31 as asked (test)");
    }
    if (o.phase)
      o.phase("activating");
    if (isoburn_activate_session(out) <= 0) {
      fail(EIO, shown, "cannot rewrite LBA 0..31 to make the new session the newest");
    }
    created = false;
    drain_messages();
  } catch (...) {
    if (created)
      ::unlink(shown.c_str());  // a first commit that failed leaves no file
    drain_messages();
    throw;
  }
  return result;
}

}  // namespace

CommitResult commit(const CommitOptions& o, const burner::StagedEntry& root) {
  detail::ensure_libraries();
  TargetInfo before = probe_target(o.target, o.capacity_bytes);
  if (before.state == TargetState::NotAppendable) {
    throw imagecore::Error(before.read_only ? EROFS : EINVAL, before.reason);
  }
  std::optional<TargetInfo> out_info;
  if (o.to_path) {
    out_info = probe_target(*o.to_path, o.capacity_bytes);
    if (out_info->kind != TargetKind::Missing && out_info->state != TargetState::Blank) {
      throw imagecore::Error(EEXIST, *o.to_path +
                                         ": already holds data; --to writes a new "
                                         "image and overwrites nothing");
    }
    if (out_info->state == TargetState::NotAppendable) {
      throw imagecore::Error(EINVAL, out_info->reason);
    }
  }
  const bool grows = !o.to_path && before.state == TargetState::Appendable;
  std::optional<imagecore::HistoryRecord> record;
  if (grows && !o.dummy && before.single_session_at_zero) {
    // The copy session: session 1's tree, reachable after LBA 0..31 are rewritten.
    imagecore::HistoryRecord copy;
    copy.start = before.next_writable;
    copy.copy_of_blocks = before.newest()->blocks;
    const CommitResult c = write_session(o, before, out_info, nullptr, copy);
    spdlog::info(
        "commit {}: the session at LBA 0 ({} blocks) is kept as a copy of its tree at "
        "LBA {} ({} blocks)",
        o.target, copy.copy_of_blocks, c.start_lba, c.blocks);
    before = probe_target(o.target, o.capacity_bytes);
    if (!before.history || before.sessions.size() != 1)
      throw imagecore::Error(EIO, o.target +
                                      ": the copy of the session at LBA 0 was written at "
                                      "LBA " +
                                      std::to_string(c.start_lba) +
                                      " but cannot be found again; no new session was written");
    if (o.fail_after_copy)
      throw imagecore::Error(EIO, o.target +
                                      ": stopped after the copy of the session at LBA 0 "
                                      "as asked (test)");
    record = imagecore::HistoryRecord{before.next_writable, c.start_lba, 0};
  } else if (grows && !o.dummy && before.history) {
    record = imagecore::HistoryRecord{before.next_writable, before.history_newest_start, 0};
  }
  return write_session(o, before, out_info, &root, record);
}

}  // namespace burner
