#include "imagecore/open.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "imagecore/base/bytes.h"
#include "imagecore/base/error.h"
#include "imagecore/iso9660/ecma119.h"
#include "imagecore/iso9660/volume.h"
#include "imagecore/media/boot_view.h"
#include "imagecore/media/eltorito.h"
#include "imagecore/media/sessions.h"
#include "imagecore/media/sessions_view.h"
#include "imagecore/udf/udf_fs.h"

namespace imagecore {
namespace {

// ---------------------------------------------------------------------------------------------

// One session's tree. `newest` allows UDF, which describes the image as a whole.
std::shared_ptr<const FileTree> open_session(std::shared_ptr<const Source> src,
                                             const OpenOptions& opts,
                                             uint64_t start_lba,
                                             bool newest) {
  Options iso;
  iso.tree = opts.tree;
  iso.dir_cache_bytes = opts.dir_cache_bytes;
  iso.session_start_lba = start_lba;
  if (opts.tree == Tree::Udf) {
    if (!newest)
      throw Unsupported(
          fmt::format("{}: a UDF tree has no older sessions; use --tree to pick an ISO 9660 "
                      "tree",
                      src->name()));
    if (!has_udf(*src))
      throw Unsupported(fmt::format("{}: the image has no UDF tree", src->name()));
    return std::make_shared<UdfFs>(src, opts.dir_cache_bytes);
  }
  if (opts.tree != Tree::Auto || !newest) {
    try {
      return std::make_shared<IsoFs>(src, iso);
    } catch (const NotAnImage&) {
      // An image, only not the kind of tree asked for: like --tree udf without UDF.
      if (opts.tree == Tree::Auto || !has_udf(*src))
        throw;
      throw Unsupported(fmt::format("{}: the image has no {} tree, only UDF; use --tree udf",
                                    src->name(), tree_name(opts.tree)));
    }
  }

  // Auto: Rock Ridge, else UDF, else Joliet, else plain ISO 9660.
  std::shared_ptr<IsoFs> fs;
  try {
    fs = std::make_shared<IsoFs>(src, iso);
  } catch (const NotAnImage&) {
    if (!has_udf(*src))
      throw;
    return std::make_shared<UdfFs>(src, opts.dir_cache_bytes);
  } catch (const FormatError& e) {
    if (!has_udf(*src))
      throw;
    spdlog::warn("{}; showing the UDF tree instead", e.what());
    return std::make_shared<UdfFs>(src, opts.dir_cache_bytes);
  }
  if (fs->tree() == Tree::RockRidge || !has_udf(*src))
    return fs;
  try {
    return std::make_shared<UdfFs>(src, opts.dir_cache_bytes);
  } catch (const Error& e) {
    spdlog::warn("{}; showing the {} tree instead", e.what(), tree_name(fs->tree()));
    return fs;
  }
}

// Where the newest session starts when the image holds sessions appended one after another,
// whose LBA 16 describes only the first; 0 for every other image, whose LBA 16 describes
// the newest (a grown image keeps a copy of the newest descriptors there).
uint64_t newest_appended_session(const Source& src) {
  using namespace ecma119;
  try {
    // Only data past the volume LBA 16 describes can be an appended session: other images
    // cost this one read, and their session table (and its notes) stays unread.
    const std::optional<std::array<std::byte, kBlockSize>> block = read_primary_block(src, 0);
    if (!block || uint64_t{ByteView(block->data(), block->size()).both32(pvd::kVolumeSpaceSize)} *
                          kBlockSize >=
                      src.size())
      return 0;
    const SessionTable table = read_session_table(src);
    if (table.layout == SessionTable::Layout::Appended)
      return table.sessions.back().start_lba;
  } catch (const Error& e) {
    spdlog::debug("{}: no session table: {}", src.name(), e.what());
  }
  return 0;
}

}  // namespace

std::shared_ptr<const FileTree> open_tree(std::shared_ptr<const Source> src,
                                          const OpenOptions& opts) {
  std::shared_ptr<const FileTree> tree;
  uint64_t boot_session_lba = 0;
  if (opts.all_sessions || opts.session) {
    const SessionTable table = read_session_table(*src);  // logs what is odd in the chain
    const auto count = static_cast<unsigned>(table.sessions.size());
    if (count == 0)
      throw Unsupported(fmt::format("{}: no ISO 9660 session was found", src->name()));
    if (opts.session && (*opts.session == 0 || *opts.session > count))
      throw Unsupported(fmt::format("{}: there is no session {}; the image holds {} session{}",
                                    src->name(), *opts.session, count, count == 1 ? "" : "s"));
    if (count >= (1u << kViewBits))
      throw Unsupported(fmt::format("{}: {} sessions are more than --sessions can show ({})",
                                    src->name(), count, (1u << kViewBits) - 1));
    if (opts.all_sessions) {
      std::vector<SessionTree> children;
      for (const SessionEntry& s : table.sessions) {
        SessionTree c;
        try {
          c.tree = open_session(src, opts, s.tree_start(), false);
        } catch (const Error& e) {
          c.error = fmt::format("session {}: {}", s.number, e.what());
          spdlog::warn("{}", c.error);
        }
        children.push_back(std::move(c));
      }
      boot_session_lba = table.sessions.back().tree_start();
      tree = make_sessions_view(src, std::move(children), opts.dir_cache_bytes);
    } else {
      const SessionEntry& s = table.sessions[*opts.session - 1];
      boot_session_lba = s.tree_start();
      // Auto does not offer the UDF tree of appended sessions: its anchor at the end may be
      // an older session's when the newest has no UDF. Asked for, UDF is read from the end.
      tree =
          open_session(src, opts, s.tree_start(),
                       *opts.session == count && (table.layout != SessionTable::Layout::Appended ||
                                                  opts.tree == Tree::Udf));
    }
  } else {
    boot_session_lba = newest_appended_session(*src);
    tree =
        open_session(src, opts, boot_session_lba, boot_session_lba == 0 || opts.tree == Tree::Udf);
  }
  if (!opts.boot)
    return tree;
  // Boot images are described by the session's volume descriptors; a UDF-only image has
  // none, and a catalog-less image simply shows an empty .boot folder.
  std::optional<BootCatalog> catalog;
  try {
    catalog = read_boot_catalog(*src, boot_session_lba, tree.get());
  } catch (const Error& e) {
    spdlog::warn("{}: the El Torito boot catalog cannot be read: {}", src->name(), e.what());
  }
  if (catalog && !catalog->note.empty())
    spdlog::warn("{}: {}", src->name(), catalog->note);
  return make_boot_view(tree, catalog ? *catalog : BootCatalog{});
}

}  // namespace imagecore
