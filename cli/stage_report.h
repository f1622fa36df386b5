// What the stage verbs report, as the JSON objects `--json` prints and the stage daemon
// sends over its control socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "burner/commit.h"
#include "stage/store.h"

namespace discfs {

// The JSON object of a commit's result; `to` is the --to path, empty for none. Throws only
// std::bad_alloc.
std::string commit_json(const burner::CommitResult& r, const std::string& to);

// The JSON object of `store`'s status over `target`; `free_bytes` nullopt or UINT64_MAX for
// unlimited. Throws what Store::status() throws.
std::string status_json(stage::Store& store,
                        const std::string& target,
                        std::optional<uint64_t> free_bytes);

}  // namespace discfs
