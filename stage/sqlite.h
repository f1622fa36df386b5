// Private to stage/: the store's SQLite statements and transactions. Not for fusefs/ or cli/.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "stage/store.h"

namespace stage {

// The columns Store::Stmt::entry() reads, in its order.
#define INODE_COLS                                                                            \
  "ino,type,perm,uid,gid,rdev,size,nlink,mtime_s,mtime_ns,atime_s,atime_ns,ctime_s,ctime_ns," \
  "symlink,data,base_ino,base_path"

// A cached prepared statement, reset when the scope ends.
class Store::Stmt {
 public:
  Stmt(Store& s, const char* sql) : s_(s), st_(s.prepare(sql)), sql_(sql) {
    if (sqlite3_stmt_busy(st_)) {
      // The cached statement is in use further up (a recursive walk): use a private one.
      st_ = nullptr;
      const int rc = sqlite3_prepare_v2(s.db_, sql, -1, &st_, nullptr);
      if (rc != SQLITE_OK)
        s.fail(rc, fmt::format("preparing \"{:.60}\"", sql));
      owned_ = true;
    }
  }
  ~Stmt() {
    if (owned_) {
      sqlite3_finalize(st_);
      return;
    }
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& i(int col, int64_t v) {
    check(sqlite3_bind_int64(st_, col, v));
    return *this;
  }
  Stmt& u(int col, uint64_t v) { return i(col, static_cast<int64_t>(v)); }
  Stmt& opt_i(int col, std::optional<int64_t> v) {
    if (v)
      return i(col, *v);
    check(sqlite3_bind_null(st_, col));
    return *this;
  }
  Stmt& t(int col, std::string_view v) {
    check(sqlite3_bind_text(st_, col, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc == SQLITE_DONE)
      return false;
    s_.fail(rc, fmt::format("running \"{:.60}\"", sql_));
  }
  void run() {
    while (step()) {
    }
  }
  int64_t col(int c) const { return sqlite3_column_int64(st_, c); }
  uint64_t ucol(int c) const { return static_cast<uint64_t>(sqlite3_column_int64(st_, c)); }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st_, c))) : std::string();
  }
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

 private:
  void check(int rc) {
    if (rc != SQLITE_OK)
      s_.fail(rc, "binding a value");
  }
  Store& s_;
  sqlite3_stmt* st_;
  const char* sql_;
  bool owned_ = false;
};

// One write transaction (BEGIN IMMEDIATE ... COMMIT); rolled back unless committed. After
// the commit, data files of deleted rows are removed.
class Store::Txn {
 public:
  explicit Txn(Store& s) : s_(s) {
    s_.doomed_.clear();
    s_.exec("BEGIN IMMEDIATE");
  }
  ~Txn() {
    if (!done_) {
      sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
      s_.doomed_.clear();
    }
  }
  void commit() {
    s_.exec("COMMIT");
    done_ = true;
    std::vector<Ino> doomed;
    doomed.swap(s_.doomed_);
    s_.remove_data_files(doomed);
  }

 private:
  Store& s_;
  bool done_ = false;
};

}  // namespace stage
