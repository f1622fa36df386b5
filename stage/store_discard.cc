// Discarding staged changes: putting entries at stage paths back as the base has them.
#include <fmt/format.h>

#include "imagecore/base/error.h"
#include "stage/store.h"
#include "stage/store_private.h"

namespace stage {

using namespace imagecore;
using namespace internal;

void Store::discard(const std::vector<std::string>& paths) {
  std::lock_guard lock(mu_);
  for (const std::string& p : paths)
    discard_one(p);
}

void Store::discard_all() {
  std::lock_guard lock(mu_);
  clear_all(base_.get(), meta_number("base_start"), meta_number("base_blocks"));
}

namespace {

// The names along a stage path, leaving out empty and "." parts. Error(EINVAL) for "..".
std::vector<std::string> path_parts(const std::string& path) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < path.size();) {
    size_t j = path.find('/', i);
    if (j == std::string::npos)
      j = path.size();
    std::string part = path.substr(i, j - i);
    if (part == "..")
      throw Error(EINVAL, fmt::format("discard {}: \"..\" is not allowed", path));
    if (!part.empty() && part != ".")
      parts.push_back(std::move(part));
    i = j + 1;
  }
  return parts;
}

}  // namespace

void Store::discard_one(const std::string& path) {
  const std::vector<std::string> parts = path_parts(path);
  if (parts.empty()) {
    clear_all(base_.get(), meta_number("base_start"), meta_number("base_blocks"));
    return;
  }
  std::string norm;
  for (const std::string& p : parts)
    norm += "/" + p;
  const Ino parent = stage_parent(parts, norm);
  const std::string& name = parts.back();
  const std::optional<Node> base_node = base_node_at(parts);
  // A base entry moved here from elsewhere goes back first.
  if (std::optional<Ino> cur = child(parent, name)) {
    const StoreEntry c = row(*cur);
    if (c.base_ino && c.base_path != norm && (!base_node || base_node->attr.ino != c.base_ino))
      discard_one(c.base_path);
  }
  Txn txn(*this);
  std::optional<Ino> cur = child(parent, name);
  // 0: the base entry has no staged inode (inode numbers start at 1). A plain Ino rather than
  // an optional, which GCC 12 -O2 wrongly reports as maybe-uninitialized below.
  const Ino existing = base_node ? staged_inode_of(*base_node).value_or(0) : 0;
  if (cur && *cur != existing) {
    drop_staged_name(parent, name, *cur);
    cur.reset();
  }
  if (base_node) {
    if (existing != 0)
      restore_base_inode(existing, *base_node, norm, cur ? nullptr : &name, parent);
    else
      add_dentry(parent, name, insert_base_node(*base_node, norm));
  }
  Stmt(*this, "DELETE FROM deleted WHERE base_path=? OR substr(base_path, 1, ?)=?")
      .t(1, norm)
      .i(2, static_cast<int64_t>(norm.size() + 1))
      .t(3, norm + "/")
      .run();
  txn.commit();
}

Ino Store::stage_parent(const std::vector<std::string>& parts, const std::string& path) {
  Ino parent = kRootIno;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    populate(parent);
    std::optional<Ino> next = child(parent, parts[i]);
    if (!next || row(*next).attr.type != FileType::Directory)
      throw Error(ENOENT, fmt::format("discard {}: its folder is not in the staging area; "
                                      "discard the folder instead",
                                      path));
    parent = *next;
  }
  populate(parent);
  return parent;
}

std::optional<Node> Store::base_node_at(const std::vector<std::string>& parts) {
  if (!base_)
    return std::nullopt;
  try {
    Node n = base_->stat(kRootIno);
    for (const std::string& p : parts)
      n = base_->lookup(n.attr.ino, p);
    return n;
  } catch (const Error& err) {
    if (err.code() != ENOENT && err.code() != ENOTDIR)
      throw;
  }
  return std::nullopt;
}

std::optional<Ino> Store::staged_inode_of(const Node& base_node) {
  Stmt q(*this, "SELECT ino FROM inodes WHERE base_ino=? AND nlink>0");
  q.u(1, base_node.attr.ino);
  if (q.step())
    return q.ucol(0);
  return std::nullopt;
}

void Store::drop_staged_name(Ino parent, std::string_view name, Ino ino) {
  drop_dentry(parent, name);
  Stmt(*this, "UPDATE inodes SET nlink=nlink-1 WHERE ino=? AND nlink>0").u(1, ino).run();
  if (row(ino).attr.nlink == 0) {
    if (row(ino).attr.type == FileType::Directory)
      delete_subtree(ino);
    delete_inode(ino);
  }
}

void Store::restore_base_inode(Ino ino,
                               const Node& base_node,
                               const std::string& path,
                               const std::string* moved_back_as,
                               Ino parent) {
  const StoreEntry x = row(ino);
  if (x.data == StoreEntry::Data::Local)
    doomed_.push_back(ino);
  if (x.attr.type == FileType::Directory) {
    delete_subtree(ino);
    if (moved_back_as)  // moved elsewhere: bring it back
      Stmt(*this, "DELETE FROM dentries WHERE ino=?").u(1, ino).run();
  }
  if (moved_back_as)
    add_dentry(parent, *moved_back_as, ino);
  const StoreEntry b = entry_from_base(base_node, path, opts_.default_uid, opts_.default_gid);
  const Attr& a = b.attr;
  Stmt(*this,
       "UPDATE inodes SET type=?, perm=?, uid=?, gid=?, rdev=?, size=?, mtime_s=?, "
       "mtime_ns=?, atime_s=?, atime_ns=?, ctime_s=?, ctime_ns=?, symlink=?, data=?, "
       "base_path=?, populated=?, attr_changed=0, moved=0, "
       "nlink=CASE WHEN type=? THEN 1 ELSE (SELECT COUNT(*) FROM dentries WHERE ino=?) END "
       "WHERE ino=?")
      .i(1, static_cast<int>(a.type))
      .i(2, a.perm)
      .i(3, a.uid)
      .i(4, a.gid)
      .u(5, a.rdev)
      .u(6, a.size)
      .time(7, a.mtime)
      .time(9, a.atime)
      .time(11, a.ctime)
      .t(13, b.symlink)
      .i(14, static_cast<int>(b.data))
      .t(15, path)
      .i(16, a.type != FileType::Directory)
      .i(17, static_cast<int>(FileType::Directory))
      .u(18, ino)
      .u(19, ino)
      .run();
}

}  // namespace stage
