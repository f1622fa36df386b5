// The staged changes as `discfs status` and `discfs discard` show them: short lines like
// `git status --short` ("A  /new", "M  /changed", "R  /old -> /new", "D  /gone"), and a JSON
// array of objects that the daemon sends and cli/flat_json.h reads back.
#pragma once

#include <string>
#include <vector>

#include "cli/flat_json.h"
#include "stage/store.h"

namespace discfs {

// [{"change":"added"|"modified"|"renamed"|"deleted","path":P}, ...]; a renamed entry also
// has "from" (its base path) and "modified" (true when its contents or attributes changed
// too). Throws only std::bad_alloc.
std::string to_json(const std::vector<stage::StagedChange>& changes);

// The changes to_json() rendered, from the array `v`. Throws imagecore::Error(EPROTO) when
// it is not such an array.
std::vector<stage::StagedChange> changes_from_json(const FlatJsonValue& v);

// One line per change, each with its newline: a two-letter code (A, M, R, RM, D), two
// spaces, the path as JSON quotes it without the quotes. What is inside an added or a
// deleted folder is not listed but counted on the folder's line ("A  /photos/ (and 12
// more inside)"). Throws only std::bad_alloc.
std::string to_text(const std::vector<stage::StagedChange>& changes);

}  // namespace discfs
