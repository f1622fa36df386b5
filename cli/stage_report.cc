#include "cli/stage_report.h"

#include <fmt/format.h>

#include <climits>
#include <cstdint>

#include "imagecore/base/json.h"

namespace discfs {

using imagecore::json_string;

std::string commit_json(const burner::CommitResult& r, const std::string& to) {
  return fmt::format(
      "{{\"session\":{},\"start_lba\":{},\"blocks\":{},\"data_bytes\":{},\"verified\":{},"
      "\"dummy\":{},\"unchanged\":{},\"to\":{},\"boot_note\":{}}}",
      r.session, r.start_lba, r.blocks, r.data_bytes, r.verified, r.dummy, r.unchanged,
      to.empty() ? "null" : json_string(to), json_string(r.boot_note));
}

std::string status_json(stage::Store& store,
                        const std::string& target,
                        std::optional<uint64_t> free_bytes) {
  const stage::StoreStatus s = store.status();
  return fmt::format(
      "{{\"target\":{},\"store\":{},\"added\":{},\"changed\":{},\"deleted\":{},\"renamed\":{},"
      "\"bytes_staged\":{},\"free_bytes_after_commit\":{}}}",
      json_string(target), json_string(store.dir()), s.added, s.changed, s.deleted, s.renamed,
      s.bytes_staged,
      free_bytes && *free_bytes != UINT64_MAX ? std::to_string(*free_bytes) : "null");
}

}  // namespace discfs
