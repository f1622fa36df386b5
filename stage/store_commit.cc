// What a commit asks of the store: the snapshot of the tree, the status, the pending
// session, and the reset to the new base.
#include <fmt/format.h>

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
