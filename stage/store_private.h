// Private to stage/: helpers the store's source files share. Not for fusefs/ or cli/.
#pragma once

#include <time.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>

#include "imagecore/base/fd.h"
#include "stage/sqlite.h"
#include "stage/store.h"

namespace stage::internal {

inline constexpr int kMaxDepth = 4096;  // deeper than any path Linux can name

// The wall-clock time, for the times of entries changed on the stage.
inline Timestamp now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return Timestamp{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

// strerror(e) as a string.
inline std::string errno_text(int e) {
  return std::strerror(e);
}

using imagecore::Fd;

// The stage path of `name` in the folder at stage path `parent`.
inline std::string child_path(const std::string& parent, std::string_view name) {
  return parent == "/" ? "/" + std::string(name) : parent + "/" + std::string(name);
}

// The store's row for base node `n` at `base_path`: its attributes, with defaults for what
// the base does not record (permissions without Rock Ridge, owners), and data=Base for
// regular files. attr.ino is 0 (the store assigns one).
StoreEntry entry_from_base(const Node& n,
                           const std::string& base_path,
                           uint32_t default_uid,
                           uint32_t default_gid);

}  // namespace stage::internal

namespace stage {

// The columns Store::Stmt::entry() reads, in its order.
#define INODE_COLS                                                                            \
  "ino,type,perm,uid,gid,rdev,size,nlink,mtime_s,mtime_ns,atime_s,atime_ns,ctime_s,ctime_ns," \
  "symlink,data,base_ino,base_path"

// A statement on the store's database that can also read an inode row.
class Store::Stmt : public sql::Stmt {
 public:
  Stmt(Store& s, const char* sql) : sql::Stmt(*s.db_, sql) {}
  // The row selected as INODE_COLS.
  StoreEntry entry() const {
    StoreEntry e;
    Attr& a = e.attr;
    a.ino = ucol(0);
    a.type = static_cast<FileType>(col(1));
    a.has_posix = true;
    a.perm = static_cast<uint32_t>(col(2));
    a.uid = static_cast<uint32_t>(col(3));
    a.gid = static_cast<uint32_t>(col(4));
    a.rdev = ucol(5);
    a.size = ucol(6);
    a.nlink = static_cast<uint32_t>(col(7));
    a.mtime = {col(8), static_cast<uint32_t>(col(9))};
    a.atime = {col(10), static_cast<uint32_t>(col(11))};
    a.ctime = {col(12), static_cast<uint32_t>(col(13))};
    e.symlink = text(14);
    e.data = static_cast<StoreEntry::Data>(col(15));
    e.base_ino = ucol(16);
    e.base_path = text(17);
    return e;
  }
};

// One write transaction of the store. Data files of rows it deleted (Store::doomed_) are
// removed once it has committed, and forgotten when it rolls back.
class Store::Txn {
 public:
  // doomed_ is cleared before BEGIN, as a rolled-back transaction may have left some.
  explicit Txn(Store& s) : s_(s), txn_((s.doomed_.clear(), *s.db_)) {}
  ~Txn() {
    if (!txn_.committed())
      s_.doomed_.clear();
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  // Throws Error (the transaction is then rolled back).
  void commit() {
    txn_.commit();
    std::vector<Ino> doomed;
    doomed.swap(s_.doomed_);
    s_.remove_data_files(doomed);
  }

 private:
  Store& s_;
  sql::Txn txn_;
};

}  // namespace stage
