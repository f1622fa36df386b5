// What a commit asks of the store: the snapshot of the tree, the status, the pending
// session, and the reset to the new base.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>

#include "imagecore/base/error.h"
#include "stage/store.h"
#include "stage/store_private.h"

namespace stage {

using namespace imagecore;
using namespace internal;

StagedEntry Store::snapshot_of(const StoreEntry& e, const std::string& name, int depth) {
  if (depth > kMaxDepth)
    throw Error(ELOOP, fmt::format("{}: the staged tree is deeper than {}", dir_, kMaxDepth));
  StagedEntry s;
  const Attr& a = e.attr;
  s.name = name;
  s.type = a.type;
  s.perm = a.perm;
  s.uid = a.uid;
  s.gid = a.gid;
  s.rdev = a.rdev;
  s.mtime = a.mtime;
  s.atime = a.atime;
  s.ctime = a.ctime;
  s.symlink_target = e.symlink;
  s.size = a.type == FileType::Regular ? a.size : 0;
  s.base_path = e.base_ino ? e.base_path : std::string();
  if (a.type == FileType::Regular) {
    s.data = e.data == StoreEntry::Data::Local ? StagedEntry::Data::Local : StagedEntry::Data::Base;
    if (s.data == StagedEntry::Data::Local)
      s.local_path = local_path(a.ino);
  }
  if (a.type != FileType::Directory && a.nlink > 1) {
    s.link_group = a.ino;
    s.nlink = a.nlink;  // names in folders never listed on the stage count too
  }
  if (a.type != FileType::Directory)
    return s;
  Stmt q(*this, "SELECT populated FROM inodes WHERE ino=?");
  q.u(1, a.ino);
  if (q.step() && q.col(0) == 0 && e.base_ino) {
    s.whole_base_dir = true;
    return s;
  }
  std::vector<std::pair<std::string, Ino>> kids;
  {
    Stmt k(*this, "SELECT name, ino FROM dentries WHERE parent=? ORDER BY name");
    k.u(1, a.ino);
    while (k.step())
      kids.emplace_back(k.text(0), k.ucol(1));
  }
  for (auto& [kname, kino] : kids)
    s.children.push_back(snapshot_of(row(kino), kname, depth + 1));
  return s;
}

StagedEntry Store::snapshot() {
  std::lock_guard lock(mu_);
  return snapshot_of(row(kRootIno), "", 0);
}

StoreStatus Store::status() {
  std::lock_guard lock(mu_);
  auto count = [&](const char* sql) {
    Stmt q(*this, sql);
    return q.step() ? q.ucol(0) : 0;
  };
  StoreStatus s;
  s.added = count("SELECT COUNT(*) FROM inodes WHERE base_ino=0 AND nlink>0 AND ino!=1");
  s.changed = count(
      "SELECT COUNT(*) FROM inodes WHERE base_ino!=0 AND nlink>0 AND (data=2 OR attr_changed=1)");
  s.renamed = count("SELECT COUNT(*) FROM inodes WHERE base_ino!=0 AND nlink>0 AND moved=1");
  s.deleted = count("SELECT COUNT(*) FROM deleted");
  s.bytes_staged = staged_bytes_;
  return s;
}

std::vector<StagedChange> Store::staged_changes() {
  std::lock_guard lock(mu_);
  std::map<Ino, std::string> dir_paths{{kRootIno, ""}};
  // The stage path of the folder `ino` ("" for the root); empty optional when it has no name.
  std::function<std::optional<std::string>(Ino, int)> dir_path =
      [&](Ino ino, int depth) -> std::optional<std::string> {
    if (const auto it = dir_paths.find(ino); it != dir_paths.end())
      return it->second;
    if (depth > kMaxDepth)
      return std::nullopt;
    Stmt q(*this, "SELECT parent, name FROM dentries WHERE ino=? LIMIT 1");
    q.u(1, ino);
    if (!q.step())
      return std::nullopt;
    const Ino parent = q.ucol(0);
    const std::string name = q.text(1);
    const std::optional<std::string> up = dir_path(parent, depth + 1);
    if (!up)
      return std::nullopt;
    return dir_paths[ino] = *up + "/" + name;
  };
  std::vector<StagedChange> out;
  using Kind = StagedChange::Kind;
  Stmt q(*this,
         "SELECT d.parent, d.name, i.base_ino, i.data, i.attr_changed, i.moved, i.base_path "
         "FROM inodes i JOIN dentries d ON d.ino=i.ino WHERE i.nlink>0 AND i.ino!=1 AND "
         "(i.base_ino=0 OR i.data=2 OR i.attr_changed=1 OR i.moved=1)");
  while (q.step()) {
    const std::optional<std::string> parent = dir_path(q.ucol(0), 0);
    if (!parent)
      continue;  // not reachable from the root: not on the stage
    StagedChange c;
    c.path = *parent + "/" + q.text(1);
    const bool modified = q.col(3) == 2 || q.col(4) == 1;
    if (q.col(2) == 0) {
      c.kind = Kind::Added;
    } else if (q.col(5) == 1) {
      c.kind = Kind::Renamed;
      c.from = q.text(6);
      c.modified = modified;
    } else {
      c.kind = Kind::Modified;
    }
    out.push_back(std::move(c));
  }
  // The root has no name row: listed as "/" when its own attributes changed (as a new or
  // deleted entry does to its folder's times), so that the list agrees with status()'s counts.
  Stmt root(*this,
            "SELECT 1 FROM inodes WHERE ino=1 AND base_ino!=0 AND (data=2 OR attr_changed=1)");
  if (root.step())
    out.push_back({Kind::Modified, "/", "", false});
  Stmt d(*this, "SELECT base_path FROM deleted");
  while (d.step())
    out.push_back({Kind::Deleted, d.text(0), "", false});
  std::sort(out.begin(), out.end(),
            [](const StagedChange& a, const StagedChange& b) { return a.path < b.path; });
  return out;
}

void Store::set_pending_session(uint64_t start_lba) {
  std::lock_guard lock(mu_);
  Txn txn(*this);
  set_meta("pending_start", std::to_string(start_lba));
  txn.commit();
}

std::optional<uint64_t> Store::pending_session() {
  std::lock_guard lock(mu_);
  if (meta("pending_start").empty())
    return std::nullopt;
  return meta_number("pending_start");
}

void Store::clear_pending_session() {
  std::lock_guard lock(mu_);
  Txn txn(*this);
  Stmt(*this, "DELETE FROM meta WHERE key='pending_start'").run();
  txn.commit();
}

void Store::reset_to_new_base(std::shared_ptr<const FileTree> base,
                              uint64_t start_lba,
                              uint64_t blocks) {
  std::lock_guard lock(mu_);
  clear_all(base.get(), start_lba, blocks);
  base_ = std::move(base);
}

}  // namespace stage
