#include "cli/change_list.h"

#include <fmt/format.h>

#include <cerrno>
#include <map>

#include "imagecore/base/error.h"
#include "imagecore/base/json.h"

namespace discfs {
namespace {

using imagecore::json_escaped;

using imagecore::json_string;
using Kind = stage::StagedChange::Kind;

constexpr std::pair<Kind, const char*> kNames[] = {{Kind::Added, "added"},
                                                   {Kind::Modified, "modified"},
                                                   {Kind::Renamed, "renamed"},
                                                   {Kind::Deleted, "deleted"}};

const char* name_of(Kind k) {
  for (const auto& [kind, name] : kNames)
    if (kind == k)
      return name;
  return "modified";
}

[[noreturn]] void malformed(const std::string& what) {
  throw imagecore::Error(EPROTO, "malformed JSON: \"changes\" " + what);
}

// The folder that holds `path` ("/a/b" -> "/a"; "" for the root's entries).
std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

}  // namespace

std::string to_json(const std::vector<stage::StagedChange>& changes) {
  std::string out = "[";
  for (const stage::StagedChange& c : changes) {
    if (out.size() > 1)
      out += ",";
    out += fmt::format("{{\"change\":\"{}\",\"path\":{}", name_of(c.kind), json_string(c.path));
    if (c.kind == Kind::Renamed)
      out += fmt::format(",\"from\":{},\"modified\":{}", json_string(c.from), c.modified);
    out += "}";
  }
  return out + "]";
}

std::vector<stage::StagedChange> changes_from_json(const FlatJsonValue& v) {
  if (v.kind != FlatJsonValue::Kind::Array)
    malformed("is not an array");
  std::vector<stage::StagedChange> out;
  for (const auto& item : v.items) {
    const auto text = [&item](const std::string& key) -> const std::string& {
      const auto it = item.find(key);
      if (it == item.end() || it->second.kind != FlatJsonValue::Kind::String)
        malformed("has an entry without a string \"" + key + "\"");
      return it->second.text;
    };
    stage::StagedChange c;
    const std::string& change = text("change");
    bool known = false;
    for (const auto& [kind, name] : kNames)
      if (change == name) {
        c.kind = kind;
        known = true;
      }
    if (!known)
      malformed("has an unknown change \"" + change + "\"");
    c.path = text("path");
    if (c.kind == Kind::Renamed) {
      c.from = text("from");
      const auto m = item.find("modified");
      c.modified = m != item.end() && m->second.kind == FlatJsonValue::Kind::True;
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string to_text(const std::vector<stage::StagedChange>& changes) {
  // Folders added or deleted as a whole: their insides are counted, not listed.
  std::map<std::string, size_t> inside;  // path of an added or deleted entry -> entries below
  for (const stage::StagedChange& c : changes)
    if (c.kind == Kind::Added || c.kind == Kind::Deleted)
      inside.emplace(c.path, 0);
  const auto hidden_under = [&](const stage::StagedChange& c) -> std::string {
    if (c.kind != Kind::Added && c.kind != Kind::Deleted)
      return "";
    std::string top;
    for (std::string p = parent_of(c.path); !p.empty(); p = parent_of(p))
      if (inside.contains(p))
        top = p;  // the outermost
    return top;
  };
  for (const stage::StagedChange& c : changes)
    if (const std::string top = hidden_under(c); !top.empty())
      ++inside[top];
  std::string out;
  for (const stage::StagedChange& c : changes) {
    if (!hidden_under(c).empty())
      continue;
    switch (c.kind) {
      case Kind::Added:
      case Kind::Deleted: {
        const size_t n = inside[c.path];
        out += fmt::format("{}  {}{}\n", c.kind == Kind::Added ? 'A' : 'D', json_escaped(c.path),
                           n ? fmt::format("/ (and {} more inside)", n) : "");
        break;
      }
      case Kind::Modified:
        out += fmt::format("M  {}\n", json_escaped(c.path));
        break;
      case Kind::Renamed:
        out += fmt::format("{} {} -> {}\n", c.modified ? "RM" : "R ", json_escaped(c.from),
                           json_escaped(c.path));
        break;
    }
  }
  return out;
}

}  // namespace discfs
