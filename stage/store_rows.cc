// The store's rows: reading and writing inodes and names inside a transaction, the lazy
// import of base folders, and clearing the store.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <unordered_set>

#include "imagecore/base/error.h"
#include "stage/store.h"
#include "stage/store_private.h"

namespace stage {

using namespace imagecore;
using namespace internal;

std::optional<StoreEntry> Store::find_row(Ino ino) {
  Stmt q(*this, "SELECT " INODE_COLS " FROM inodes WHERE ino=?");
  q.u(1, ino);
  if (!q.step())
    return std::nullopt;
  return q.entry();
}

StoreEntry Store::row(Ino ino) {
  std::optional<StoreEntry> e = find_row(ino);
  if (!e)
    throw Error(ENOENT, fmt::format("{}: no staged inode {}", dir_, ino));
  return std::move(*e);
}

std::optional<Ino> Store::child(Ino parent, std::string_view name) {
  Stmt q(*this, "SELECT ino FROM dentries WHERE parent=? AND name=?");
  q.u(1, parent).t(2, name);
  if (!q.step())
    return std::nullopt;
  return q.ucol(0);
}

Ino Store::insert_inode(const StoreEntry& e, bool populated) {
  Stmt q(*this,
         "INSERT INTO inodes(ino,type,perm,uid,gid,rdev,size,nlink,mtime_s,mtime_ns,atime_s,"
         "atime_ns,ctime_s,ctime_ns,symlink,data,base_ino,base_path,populated) "
         "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  const Attr& a = e.attr;
  if (a.ino)
    q.u(1, a.ino);
  q.i(2, static_cast<int>(a.type)).i(3, a.perm).i(4, a.uid).i(5, a.gid).u(6, a.rdev);
  q.u(7, a.size).i(8, a.nlink).time(9, a.mtime).time(11, a.atime).time(13, a.ctime);
  q.t(15, e.symlink);
  q.i(16, static_cast<int>(e.data)).u(17, e.base_ino).t(18, e.base_path).i(19, populated);
  q.run();
  return static_cast<Ino>(db_->last_insert_rowid());
}

namespace internal {

StoreEntry entry_from_base(const Node& n,
                           const std::string& base_path,
                           uint32_t default_uid,
                           uint32_t default_gid) {
  StoreEntry e;
  Attr& a = e.attr;
  a = n.attr;
  a.ino = 0;
  a.has_posix = true;
  if (!n.attr.has_posix) {
    a.perm = a.type == FileType::Directory ? 0755 : a.type == FileType::Symlink ? 0777 : 0644;
    a.nlink = 1;
  }
  if (!n.attr.has_posix || !n.attr.has_owner) {
    a.uid = default_uid;
    a.gid = default_gid;
  }
  // A link count whose other names the base cannot show (no shared inode number): each
  // name is a file of its own on the stage, as xorriso -osirrox extracts them.
  if (a.type == FileType::Directory || a.nlink == 0 || n.attr.nlink_unmatched)
    a.nlink = 1;
  if (a.type != FileType::Regular)
    a.size = a.type == FileType::Symlink ? n.symlink.size() : 0;
  e.symlink = n.symlink;
  e.data = a.type == FileType::Regular ? StoreEntry::Data::Base : StoreEntry::Data::None;
  e.base_ino = n.attr.ino;
  e.base_path = base_path;
  return e;
}

}  // namespace internal

Ino Store::insert_base_node(const Node& n, const std::string& base_path) {
  StoreEntry e = entry_from_base(n, base_path, opts_.default_uid, opts_.default_gid);
  return insert_inode(e, e.attr.type != FileType::Directory);
}

void Store::add_dentry(Ino parent, std::string_view name, Ino ino) {
  Stmt(*this, "INSERT INTO dentries(parent, name, ino) VALUES(?,?,?)")
      .u(1, parent)
      .t(2, name)
      .u(3, ino)
      .run();
}

Ino Store::drop_dentry(Ino parent, std::string_view name) {
  std::optional<Ino> ino = child(parent, name);
  if (!ino)
    throw Error(ENOENT, fmt::format("{}: no entry {}", dir_, name));
  Stmt(*this, "DELETE FROM dentries WHERE parent=? AND name=?").u(1, parent).t(2, name).run();
  return *ino;
}

void Store::drop_link(Ino ino) {
  const Timestamp t = now();
  Stmt(*this, "UPDATE inodes SET nlink=nlink-1, ctime_s=?, ctime_ns=? WHERE ino=? AND nlink>0")
      .time(1, t)
      .u(3, ino)
      .run();
  Stmt q(*this, "SELECT base_path FROM inodes WHERE ino=? AND nlink=0 AND base_ino!=0");
  q.u(1, ino);
  if (q.step())
    Stmt(*this, "INSERT OR IGNORE INTO deleted(base_path) VALUES(?)").t(1, q.text(0)).run();
}

void Store::delete_inode(Ino ino) {
  Stmt q(*this, "SELECT data FROM inodes WHERE ino=?");
  q.u(1, ino);
  if (q.step() && q.col(0) == static_cast<int>(StoreEntry::Data::Local))
    doomed_.push_back(ino);
  Stmt(*this, "DELETE FROM inodes WHERE ino=?").u(1, ino).run();
}

void Store::delete_subtree(Ino dir) {
  std::vector<std::pair<std::string, Ino>> kids;
  {
    Stmt q(*this, "SELECT name, ino FROM dentries WHERE parent=?");
    q.u(1, dir);
    while (q.step())
      kids.emplace_back(q.text(0), q.ucol(1));
  }
  for (auto& [name, ino] : kids) {
    Stmt(*this, "DELETE FROM dentries WHERE parent=? AND name=?").u(1, dir).t(2, name).run();
    Stmt(*this, "UPDATE inodes SET nlink=nlink-1 WHERE ino=? AND nlink>0").u(1, ino).run();
    Stmt q(*this, "SELECT type, nlink FROM inodes WHERE ino=?");
    q.u(1, ino);
    if (q.step() && q.col(1) == 0) {
      if (q.col(0) == static_cast<int>(FileType::Directory))
        delete_subtree(ino);
      delete_inode(ino);
    }
  }
}

bool Store::dir_empty(Ino dir) {
  Stmt q(*this, "SELECT 1 FROM dentries WHERE parent=? LIMIT 1");
  q.u(1, dir);
  return !q.step();
}

void Store::touch_dir(Ino dir) {
  const Timestamp t = now();
  Stmt(*this,
       "UPDATE inodes SET mtime_s=?, mtime_ns=?, ctime_s=?, ctime_ns=?, "
       "attr_changed=CASE WHEN base_ino!=0 THEN 1 ELSE 0 END WHERE ino=?")
      .time(1, t)
      .time(3, t)
      .u(5, dir)
      .run();
}

// Imports the base children of `dir` the first time it is needed (its own transaction).
void Store::populate(Ino dir) {
  Stmt q(*this, "SELECT type, populated, base_ino, base_path FROM inodes WHERE ino=?");
  q.u(1, dir);
  if (!q.step())
    throw Error(ENOENT, fmt::format("{}: no staged inode {}", dir_, dir));
  if (q.col(0) != static_cast<int>(FileType::Directory))
    throw Error(ENOTDIR, fmt::format("{}: inode {} is not a folder", dir_, dir));
  if (q.col(1) != 0)
    return;
  const Ino base_ino = q.ucol(2);
  const std::string base_path = q.text(3);
  std::shared_ptr<const Directory> listing;
  if (base_ino && base_)
    listing = base_->list(base_ino);
  Txn txn(*this);
  if (listing) {
    for (const Node& n : listing->entries) {
      if (n.name.empty() || n.name == "." || n.name == ".." ||
          n.name.find('/') != std::string::npos)
        continue;
      if (child(dir, n.name))
        continue;
      std::optional<Ino> ino;
      if (n.attr.type != FileType::Directory && n.attr.ino) {
        // Another name of a hard-linked base file that is already on the stage.
        Stmt h(*this, "SELECT ino FROM inodes WHERE base_ino=? AND type!=? AND nlink>0");
        h.u(1, n.attr.ino).i(2, static_cast<int>(FileType::Directory));
        if (h.step())
          ino = h.ucol(0);
      }
      if (!ino)
        ino = insert_base_node(n, child_path(base_path, n.name));
      add_dentry(dir, n.name, *ino);
    }
  }
  Stmt(*this, "UPDATE inodes SET populated=1 WHERE ino=?").u(1, dir).run();
  txn.commit();
}

void Store::make_root(const FileTree* base) {
  StoreEntry e;
  if (base) {
    e = entry_from_base(base->stat(kRootIno), "/", opts_.default_uid, opts_.default_gid);
  } else {
    e.attr.type = FileType::Directory;
    e.attr.perm = 0755;
    e.attr.uid = opts_.default_uid;
    e.attr.gid = opts_.default_gid;
    e.attr.mtime = e.attr.atime = e.attr.ctime = now();
  }
  e.attr.ino = kRootIno;
  e.attr.nlink = 1;
  insert_inode(e, base == nullptr);
}

void Store::clear_all(const FileTree* base, uint64_t start_lba, uint64_t blocks) {
  Txn txn(*this);
  Stmt(*this, "DELETE FROM dentries").run();
  // Inodes without a name are still open (purge_if_orphan() drops them at the last close):
  // they stay, with their data, so that what is open reads on. Nothing links them to the
  // old base any more; a base file's contents are read through its open file's reader.
  Stmt(*this, "DELETE FROM inodes WHERE nlink!=0 OR ino=?").u(1, kRootIno).run();
  Stmt(*this,
       "UPDATE inodes SET base_ino=0, base_path='', populated=1, "
       "data=CASE WHEN data=1 THEN 0 ELSE data END")
      .run();
  std::unordered_set<Ino> open_unlinked;
  {
    Stmt q(*this, "SELECT ino FROM inodes WHERE data=2");
    while (q.step())
      open_unlinked.insert(q.ucol(0));
  }
  Stmt(*this, "DELETE FROM deleted").run();
  set_meta("base_start", std::to_string(start_lba));
  set_meta("base_blocks", std::to_string(blocks));
  Stmt(*this, "DELETE FROM meta WHERE key='pending_start'").run();
  make_root(base);
  txn.commit();
  // Every other staged file goes, including strays.
  std::vector<Ino> gone;
  for (auto& [ino, size] : local_sizes_)
    if (!open_unlinked.count(ino))
      gone.push_back(ino);
  remove_data_files(gone);
  for (const std::string& n : data_file_names()) {
    char* end = nullptr;
    const unsigned long long ino = std::strtoull(n.c_str(), &end, 10);
    if (!end || *end != '\0' || !open_unlinked.count(ino))
      ::unlinkat(data_dir_fd_, n.c_str(), 0);
  }
}

void Store::remove_data_files(const std::vector<Ino>& inos) {
  for (Ino ino : inos) {
    const std::string name = std::to_string(ino);
    if (::unlinkat(data_dir_fd_, name.c_str(), 0) != 0 && errno != ENOENT)
      spdlog::warn("{}: cannot remove: {}", local_path(ino), errno_text(errno));
    auto it = local_sizes_.find(ino);
    if (it != local_sizes_.end()) {
      staged_bytes_ -= std::min(staged_bytes_, it->second);
      local_sizes_.erase(it);
    }
  }
}

}  // namespace stage
