#include "cli/stage_report.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <map>

#include "cli/change_list.h"
#include "cli/flat_json.h"
#include "imagecore/base/error.h"
#include "imagecore/base/json.h"

namespace discfs {
namespace {

using imagecore::json_escaped;

using imagecore::json_string;
using Members = std::map<std::string, FlatJsonValue>;

std::string text_line(std::string_view label, std::string_view value) {
  return fmt::format("{:<26}{}\n", fmt::format("{}:", label), value);
}

[[noreturn]] void bad_member(std::string_view key, std::string_view what) {
  throw imagecore::Error(EPROTO, fmt::format("malformed JSON: \"{}\" {}", key, what));
}

const FlatJsonValue& member(const Members& m, const std::string& key) {
  const auto it = m.find(key);
  if (it == m.end())
    bad_member(key, "is missing");
  return it->second;
}

// A whole number in [0, UINT64_MAX], or nullopt for null when `null_ok`.
std::optional<uint64_t> number(const Members& m, const std::string& key, bool null_ok = false) {
  const FlatJsonValue& v = member(m, key);
  if (null_ok && v.kind == FlatJsonValue::Kind::Null)
    return std::nullopt;
  uint64_t n = 0;
  const char* end = v.text.data() + v.text.size();
  if (v.kind != FlatJsonValue::Kind::Number ||
      std::from_chars(v.text.data(), end, n) != std::from_chars_result{end, std::errc{}})
    bad_member(key, "is not a whole number");
  return n;
}

std::string string(const Members& m, const std::string& key, bool null_ok = false) {
  const FlatJsonValue& v = member(m, key);
  if (null_ok && v.kind == FlatJsonValue::Kind::Null)
    return "";
  if (v.kind != FlatJsonValue::Kind::String)
    bad_member(key, "is not a string");
  return v.text;
}

bool boolean(const Members& m, const std::string& key) {
  const FlatJsonValue& v = member(m, key);
  if (v.kind != FlatJsonValue::Kind::True && v.kind != FlatJsonValue::Kind::False)
    bad_member(key, "is not true or false");
  return v.kind == FlatJsonValue::Kind::True;
}

}  // namespace

StatusReport status_report(stage::Store& store,
                           const std::string& target,
                           std::optional<uint64_t> free_bytes) {
  const stage::StoreStatus s = store.status();
  StatusReport r;
  r.target = target;
  r.store = store.dir();
  r.added = s.added;
  r.changed = s.changed;
  r.deleted = s.deleted;
  r.renamed = s.renamed;
  r.bytes_staged = s.bytes_staged;
  if (free_bytes && *free_bytes != UINT64_MAX)
    r.free_bytes_after_commit = free_bytes;
  r.changes = store.staged_changes();
  return r;
}

std::string to_json(const StatusReport& r) {
  return fmt::format(
      "{{\"target\":{},\"store\":{},\"added\":{},\"changed\":{},\"deleted\":{},\"renamed\":{},"
      "\"bytes_staged\":{},\"free_bytes_after_commit\":{}{}}}",
      json_string(r.target), json_string(r.store), r.added, r.changed, r.deleted, r.renamed,
      r.bytes_staged,
      r.free_bytes_after_commit ? std::to_string(*r.free_bytes_after_commit) : "null",
      r.changes ? ",\"changes\":" + to_json(*r.changes) : "");
}

std::string to_text(const StatusReport& r) {
  return text_line("target", json_escaped(r.target)) + text_line("store", json_escaped(r.store)) +
         text_line("added", std::to_string(r.added)) +
         text_line("changed", std::to_string(r.changed)) +
         text_line("deleted", std::to_string(r.deleted)) +
         text_line("renamed", std::to_string(r.renamed)) +
         text_line("bytes staged", std::to_string(r.bytes_staged)) +
         text_line("free bytes after commit", r.free_bytes_after_commit
                                                  ? std::to_string(*r.free_bytes_after_commit)
                                                  : "unlimited") +
         (!r.changes           ? std::string()
          : r.changes->empty() ? std::string("\nnothing is staged\n")
                               : "\n" + to_text(*r.changes));
}

StatusReport status_from_json(std::string_view json) {
  const Members m = parse_flat_json(json);
  StatusReport r;
  r.target = string(m, "target");
  r.store = string(m, "store");
  r.added = *number(m, "added");
  r.changed = *number(m, "changed");
  r.deleted = *number(m, "deleted");
  r.renamed = *number(m, "renamed");
  r.bytes_staged = *number(m, "bytes_staged");
  r.free_bytes_after_commit = number(m, "free_bytes_after_commit", true);
  if (m.contains("changes"))  // a daemon older than the list sends none
    r.changes = changes_from_json(m.at("changes"));
  return r;
}

std::string to_json(const CommitReport& r) {
  const burner::CommitResult& c = r.result;
  return fmt::format(
      "{{\"session\":{},\"start_lba\":{},\"blocks\":{},\"data_bytes\":{},\"verified\":{},"
      "\"dummy\":{},\"unchanged\":{},\"to\":{},\"boot_note\":{}}}",
      c.session, c.start_lba, c.blocks, c.data_bytes, c.verified, c.dummy, c.unchanged,
      r.to.empty() ? "null" : json_string(r.to), json_string(c.boot_note));
}

std::string size_text(uint64_t bytes) {
  if (bytes < 1024)
    return fmt::format("{} bytes", bytes);
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = bytes / 1024.0;
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string to_text(const CommitReport& r) {
  const burner::CommitResult& c = r.result;
  if (c.unchanged)
    return "nothing to commit: nothing is staged, so the target is unchanged\n";
  const std::string size = size_text(c.blocks * 2048);
  const std::string check = c.verified ? "MD5 verified" : "not verified (no MD5 tags)";
  std::string text;
  if (c.dummy)
    text = fmt::format("dry run: the session would take {} at block {}; nothing was written\n",
                       size, c.start_lba);
  else if (!r.to.empty())
    text = fmt::format("written: {}, a new single-session image of {}; {}\n", json_escaped(r.to),
                       size, check);
  else
    text = fmt::format("committed: session {}, {} at block {} ({} of new file data); {}\n",
                       c.session, size, c.start_lba, size_text(c.data_bytes), check);
  if (!c.boot_note.empty())
    text += "note: " + json_escaped(c.boot_note) + "\n";
  return text;
}

CommitReport commit_from_json(std::string_view json) {
  const Members m = parse_flat_json(json);
  CommitReport r;
  burner::CommitResult& c = r.result;
  const uint64_t session = *number(m, "session");
  if (session > INT_MAX)
    bad_member("session", "is out of range");
  c.session = static_cast<int>(session);
  c.start_lba = *number(m, "start_lba");
  c.blocks = *number(m, "blocks");
  c.data_bytes = *number(m, "data_bytes");
  c.verified = boolean(m, "verified");
  c.dummy = boolean(m, "dummy");
  c.unchanged = boolean(m, "unchanged");
  r.to = string(m, "to", true);
  c.boot_note = string(m, "boot_note");
  return r;
}

}  // namespace discfs
