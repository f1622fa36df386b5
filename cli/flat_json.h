// Reading back a flat JSON object of the kind the stage daemon sends: string, whole-number,
// true, false and null members, and arrays of such flat objects (one level, no deeper). What a
// stage verb prints is rendered from its report (cli/stage_report.h); this only decodes the
// daemon's answer into one.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace discfs {

// One member's value: a decoded string, or the literal of a number, true, false or null, or
// an array of objects whose members are all of those.
struct FlatJsonValue {
  enum class Kind { String, Number, True, False, Null, Array };
  Kind kind = Kind::Null;
  std::string text;  // the decoded string, or the number's digits; empty for the others
  std::vector<std::map<std::string, FlatJsonValue>> items;  // Array: its objects
};

// The members of `json` by key (a later duplicate wins). Throws imagecore::Error(EPROTO)
// naming what is wrong when `json` is not one such object, alone but for white space.
std::map<std::string, FlatJsonValue> parse_flat_json(std::string_view json);

}  // namespace discfs
