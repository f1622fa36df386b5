#include "stage/base.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "imagecore/base/error.h"
#include "imagecore/base/source.h"
#include "imagecore/open.h"

namespace stage {

Base open_base(const burner::TargetInfo& t) {
  Base b;
  const burner::SessionInfo* newest = t.newest();
  if (t.state != burner::TargetState::Appendable || !newest)
    return b;
  imagecore::OpenOptions o;
  o.tree = imagecore::Tree::RockRidge;  // what discfs and xorriso write; fall back below
  auto src = std::shared_ptr<const imagecore::Source>(imagecore::open_file_source(t.path));
  try {
    b.tree = imagecore::open_tree(src, o);
  } catch (const imagecore::Unsupported&) {
    o.tree = imagecore::Tree::Auto;  // a plain or Joliet image from another tool
    b.tree = imagecore::open_tree(src, o);
  }
  b.start_lba = newest->start_lba;
  b.blocks = newest->blocks;
  return b;
}

void adopt_base(Store& store, const Base& base, const std::string& target, bool drop_stale) {
  if (store.has_base() && !store.base_matches(base.start_lba, base.blocks)) {
    const std::optional<uint64_t> pending = store.pending_session();
    if (pending && base.tree && *pending == base.start_lba) {
      spdlog::warn(
          "{}: the last commit (session at LBA {}) completed before its daemon "
          "stopped; its changes are on the target and no longer staged",
          target, base.start_lba);
      store.reset_to_new_base(base.tree, base.start_lba, base.blocks);
      return;
    }
    if (!drop_stale)
      throw imagecore::Unsupported(fmt::format(
          "{}: the changes staged in {} were made on another session of the target, which has "
          "changed since; drop them with 'discfs discard --all --store {}'",
          target, store.dir(), store.dir()));
    store.reset_to_new_base(base.tree, base.start_lba, base.blocks);
    return;
  }
  store.use_base(base.tree, base.start_lba, base.blocks);
}

}  // namespace stage
