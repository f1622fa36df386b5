// The store's namespace operations: what the FUSE layer's lookup, readdir, mknod, unlink,
// rmdir, rename, link and setattr do to the staged tree.
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "burner/limits.h"
#include "imagecore/base/error.h"
#include "stage/store.h"
#include "stage/store_private.h"

namespace stage {

using namespace imagecore;
using namespace internal;

Ino Store::existing_child(Ino parent, std::string_view name) {
  populate(parent);
  std::optional<Ino> ino = child(parent, name);
  if (!ino)
    throw Error(ENOENT, "no such entry");
  return *ino;
}

StoreEntry Store::get(Ino ino) {
  std::lock_guard lock(mu_);
  return row(ino);
}

StoreEntry Store::lookup(Ino parent, std::string_view name) {
  std::lock_guard lock(mu_);
  return row(existing_child(parent, name));
}

std::vector<Store::Child> Store::list(Ino dir) {
  std::lock_guard lock(mu_);
  populate(dir);
  std::vector<Child> out;
  Stmt q(*this, "SELECT " INODE_COLS
                ", d.name FROM dentries d JOIN inodes USING(ino) WHERE d.parent=? ORDER BY d.name");
  q.u(1, dir);
  while (q.step())
    out.push_back(Child{q.text(18), q.entry()});
  return out;
}

Ino Store::parent_of(Ino dir) {
  std::lock_guard lock(mu_);
  if (dir == kRootIno)
    return kRootIno;
  Stmt q(*this, "SELECT parent FROM dentries WHERE ino=? LIMIT 1");
  q.u(1, dir);
  return q.step() ? q.ucol(0) : kRootIno;
}

uint32_t Store::subdir_count(Ino dir) {
  std::lock_guard lock(mu_);
  Stmt q(*this, "SELECT populated, base_ino FROM inodes WHERE ino=? AND type=?");
  q.u(1, dir).i(2, static_cast<int>(FileType::Directory));
  if (!q.step())
    return 0;
  if (q.col(0) != 0) {
    Stmt c(*this,
           "SELECT count(*) FROM dentries d JOIN inodes i ON i.ino=d.ino "
           "WHERE d.parent=? AND i.type=?");
    c.u(1, dir).i(2, static_cast<int>(FileType::Directory));
    return c.step() ? static_cast<uint32_t>(c.ucol(0)) : 0;
  }
  // Not imported: its children are the base folder's, counted without importing them.
  const Ino base_ino = q.ucol(1);
  if (!base_ino || !base_)
    return 0;
  std::shared_ptr<const Directory> listing;
  try {
    listing = base_->list(base_ino);
  } catch (const Error& e) {
    // A damaged folder: the stat of the folder itself still answers; a listing says why.
    spdlog::debug("{}: cannot count the subfolders of inode {}: {}", dir_, dir, e.what());
    return 0;
  }
  uint32_t n = 0;
  for (const Node& c : listing->entries)
    if (c.attr.type == FileType::Directory && !c.name.empty() && c.name != "." && c.name != ".." &&
        c.name.find('/') == std::string::npos)
      ++n;
  return n;
}

std::vector<std::pair<Ino, std::string>> Store::names_of(Ino ino) {
  std::lock_guard lock(mu_);
  std::vector<std::pair<Ino, std::string>> out;
  Stmt q(*this, "SELECT parent, name FROM dentries WHERE ino=?");
  q.u(1, ino);
  while (q.step())
    out.emplace_back(q.ucol(0), q.text(1));
  return out;
}

std::optional<std::vector<std::string>> Store::path_names(Ino ino) {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (int depth = 0; ino != kRootIno && depth < kMaxDepth; ++depth) {
    Stmt q(*this, "SELECT parent, name FROM dentries WHERE ino=? LIMIT 1");
    q.u(1, ino);
    if (!q.step())
      return std::nullopt;
    names.push_back(q.text(1));
    ino = q.ucol(0);
  }
  std::reverse(names.begin(), names.end());
  return names;
}

std::string Store::path_of(Ino ino) {
  const std::optional<std::vector<std::string>> names = path_names(ino);
  if (!names)
    return {};
  std::string path;
  for (const std::string& n : *names)
    path += "/" + n;
  return path.empty() ? "/" : path;
}

StoreEntry Store::make(Ino parent,
                       std::string_view name,
                       FileType type,
                       uint32_t perm,
                       uint32_t uid,
                       uint32_t gid,
                       uint64_t rdev,
                       const std::string& symlink) {
  // Refused here rather than by the commit, which would fail as a whole on this one link.
  if (type == FileType::Symlink && !burner::symlink_target_fits(symlink))
    throw Error(ENAMETOOLONG,
                fmt::format("symlink target longer than {} bytes, or with a component longer "
                            "than {}: a session cannot record it",
                            burner::kMaxSymlinkTargetBytes, burner::kMaxNameBytes));
  std::lock_guard lock(mu_);
  populate(parent);
  if (child(parent, name))
    throw Error(EEXIST, "exists");
  StoreEntry e;
  e.attr.type = type;
  e.attr.perm = perm & 07777;
  e.attr.uid = uid;
  e.attr.gid = gid;
  e.attr.rdev = rdev;
  e.attr.nlink = 1;
  e.attr.mtime = e.attr.atime = e.attr.ctime = now();
  e.symlink = symlink;
  e.attr.size = type == FileType::Symlink ? symlink.size() : 0;
  e.data = type == FileType::Regular ? StoreEntry::Data::Local : StoreEntry::Data::None;
  Txn txn(*this);
  const Ino ino = insert_inode(e, true);
  add_dentry(parent, name, ino);
  touch_dir(parent);
  txn.commit();
  if (type == FileType::Regular) {
    local_sizes_[ino] = 0;
    // Created now so the commit finds it; a crash before it exists is repaired at open.
    const std::string path = local_path(ino);
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (fd.fd < 0) {
      const int err = errno;
      throw Error(err, fmt::format("{}: cannot create: {}", path, errno_text(err)));
    }
  }
  return row(ino);
}

void Store::unlink(Ino parent, std::string_view name) {
  std::lock_guard lock(mu_);
  const Ino ino = existing_child(parent, name);
  if (row(ino).attr.type == FileType::Directory)
    throw Error(EISDIR, "is a folder");
  Txn txn(*this);
  drop_dentry(parent, name);
  drop_link(ino);
  touch_dir(parent);
  txn.commit();
}

void Store::rmdir(Ino parent, std::string_view name) {
  std::lock_guard lock(mu_);
  const Ino ino = existing_child(parent, name);
  if (row(ino).attr.type != FileType::Directory)
    throw Error(ENOTDIR, "not a folder");
  populate(ino);
  if (!dir_empty(ino))
    throw Error(ENOTEMPTY, "folder not empty");
  Txn txn(*this);
  drop_dentry(parent, name);
  drop_link(ino);
  touch_dir(parent);
  txn.commit();
}

void Store::rename(Ino parent,
                   std::string_view name,
                   Ino new_parent,
                   std::string_view new_name,
                   bool noreplace) {
  std::lock_guard lock(mu_);
  populate(new_parent);
  const Ino src = existing_child(parent, name);
  if (parent == new_parent && name == new_name)
    return;
  const StoreEntry s = row(src);
  const bool src_dir = s.attr.type == FileType::Directory;
  std::optional<Ino> dst = child(new_parent, new_name);
  if (dst) {
    if (noreplace)
      throw Error(EEXIST, "exists");
    if (*dst == src)
      return;  // two names of one file: POSIX says do nothing
    check_replaceable(*dst, src_dir);
  }
  if (src_dir && is_within(new_parent, src))
    throw Error(EINVAL, "a folder cannot move into itself");
  Txn txn(*this);
  if (dst) {
    drop_dentry(new_parent, new_name);
    drop_link(*dst);
  }
  drop_dentry(parent, name);
  add_dentry(new_parent, new_name, src);
  const Timestamp t = now();
  Stmt(*this,
       "UPDATE inodes SET ctime_s=?, ctime_ns=?, moved=CASE WHEN base_ino!=0 THEN 1 "
       "ELSE 0 END WHERE ino=?")
      .time(1, t)
      .u(3, src)
      .run();
  touch_dir(parent);
  if (new_parent != parent)
    touch_dir(new_parent);
  txn.commit();
}

bool Store::is_within(Ino dir, Ino folder) {
  Ino up = dir;
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    if (up == folder)
      return true;
    if (up == kRootIno)
      return false;
    Stmt q(*this, "SELECT parent FROM dentries WHERE ino=? LIMIT 1");
    q.u(1, up);
    if (!q.step())
      return false;
    up = q.ucol(0);
  }
  return false;
}

void Store::check_replaceable(Ino dst, bool src_dir) {
  const bool dst_dir = row(dst).attr.type == FileType::Directory;
  if (src_dir && !dst_dir)
    throw Error(ENOTDIR, "not a folder");
  if (!src_dir && dst_dir)
    throw Error(EISDIR, "is a folder");
  if (dst_dir) {
    populate(dst);
    if (!dir_empty(dst))
      throw Error(ENOTEMPTY, "folder not empty");
  }
}

StoreEntry Store::link(Ino ino, Ino new_parent, std::string_view new_name) {
  std::lock_guard lock(mu_);
  populate(new_parent);
  if (row(ino).attr.type == FileType::Directory)
    throw Error(EPERM, "folders cannot be hard-linked");
  if (child(new_parent, new_name))
    throw Error(EEXIST, "exists");
  Txn txn(*this);
  add_dentry(new_parent, new_name, ino);
  const Timestamp t = now();
  Stmt(*this, "UPDATE inodes SET nlink=nlink+1, ctime_s=?, ctime_ns=? WHERE ino=?")
      .time(1, t)
      .u(3, ino)
      .run();
  touch_dir(new_parent);
  txn.commit();
  return row(ino);
}

StoreEntry Store::set_attr(Ino ino, const AttrChange& c) {
  std::lock_guard lock(mu_);
  StoreEntry e = row(ino);
  Attr& a = e.attr;
  const Attr before = a;
  if (c.perm)
    a.perm = *c.perm & 07777;
  if (c.uid)
    a.uid = *c.uid;
  if (c.gid)
    a.gid = *c.gid;
  if (c.atime)
    a.atime = *c.atime;
  if (c.mtime)
    a.mtime = *c.mtime;
  // Nothing changes (e.g. `cp -a` giving a new file the owner it already has): no
  // transaction, and a base file stays unchanged for the commit.
  if (!c.atime && !c.mtime && a.perm == before.perm && a.uid == before.uid && a.gid == before.gid)
    return e;
  a.ctime = now();
  Txn txn(*this);
  Stmt(*this,
       "UPDATE inodes SET perm=?, uid=?, gid=?, atime_s=?, atime_ns=?, mtime_s=?, "
       "mtime_ns=?, ctime_s=?, ctime_ns=?, attr_changed=CASE WHEN base_ino!=0 THEN 1 "
       "ELSE 0 END WHERE ino=?")
      .i(1, a.perm)
      .i(2, a.uid)
      .i(3, a.gid)
      .time(4, a.atime)
      .time(6, a.mtime)
      .time(8, a.ctime)
      .u(10, ino)
      .run();
  txn.commit();
  return e;
}

void Store::purge_if_orphan(Ino ino) {
  std::lock_guard lock(mu_);
  std::optional<StoreEntry> e = find_row(ino);
  if (!e || e->attr.nlink != 0 || ino == kRootIno)
    return;
  Txn txn(*this);
  if (e->attr.type == FileType::Directory)
    delete_subtree(ino);
  delete_inode(ino);
  txn.commit();
}

}  // namespace stage
