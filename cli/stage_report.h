// What the stage verbs report: `discfs status` and `discfs commit` fill a report, from the
// store or from the stage daemon's answer, and render it as text or as the JSON object that
// `--json` prints and the daemon sends over its control socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "burner/commit.h"
#include "stage/store.h"

namespace discfs {

// What is staged in a store and the room left on its target.
struct StatusReport {
  std::string target;  // the target's path
  std::string store;   // the store directory
  uint64_t added = 0;
  uint64_t changed = 0;
  uint64_t deleted = 0;
  uint64_t renamed = 0;
  uint64_t bytes_staged = 0;
  std::optional<uint64_t> free_bytes_after_commit;  // nullopt: unlimited
  // By path (cli/change_list.h); nullopt from a daemon older than the list.
  std::optional<std::vector<stage::StagedChange>> changes;
};

// The status of `store` over `target`; `free_bytes` nullopt or UINT64_MAX for unlimited.
// Throws what Store::status() throws.
StatusReport status_report(stage::Store& store,
                           const std::string& target,
                           std::optional<uint64_t> free_bytes);

// One JSON object: {"target":...,"store":...,"added":N,...,"free_bytes_after_commit":N|null,
// "changes":[...]} (the array as cli/change_list.h renders it; left out when unknown).
// Throws only std::bad_alloc.
std::string to_json(const StatusReport& r);

// One "label:  value" line per field, each with its newline, values aligned at column 27;
// "unlimited" for no limit; then, when known, an empty line and the changes, one a line
// (cli/change_list.h), or "nothing is staged". Paths are shown as JSON quotes them, without
// the quotes, so that each stays on its line whatever it holds. Throws only std::bad_alloc.
std::string to_text(const StatusReport& r);

// The report to_json(r) rendered. Throws imagecore::Error(EPROTO) when `json` is not such an
// object.
StatusReport status_from_json(std::string_view json);

// The result of one commit, and where it was written.
struct CommitReport {
  burner::CommitResult result;
  std::string to;  // the --to path; empty: the target
};

// One JSON object: {"session":N,...,"to":PATH|null,"boot_note":TEXT}. Throws only
// std::bad_alloc.
std::string to_json(const CommitReport& r);

// `bytes` for people: "512 bytes", "1.5 KiB", "12.3 MiB", ... Throws only std::bad_alloc.
std::string size_text(uint64_t bytes);

// A summary for the user, each line with its newline: "committed: session N, SIZE at block
// LBA (SIZE of new file data); MD5 verified", or for --to "written: PATH, ...", for --dummy
// "dry run: ...", or that nothing was staged so nothing was written; then "note: BOOT NOTE"
// when there is one. Throws only std::bad_alloc.
std::string to_text(const CommitReport& r);

// The report to_json(r) rendered. Throws imagecore::Error(EPROTO) when `json` is not such an
// object.
CommitReport commit_from_json(std::string_view json);

}  // namespace discfs
