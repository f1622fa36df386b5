// Private to stage/: a thin layer over SQLite for the store (one connection, cached prepared
// statements, write transactions). Errors become imagecore::Error naming the database file,
// with the errno the SQLite result stands for (SQLITE_FULL is ENOSPC, SQLITE_BUSY EBUSY, I/O
// errors the system's errno, anything else EIO). Not thread-safe: the store serializes it.
// Only stage/ includes this header, so fusefs/ and cli/ need no SQLite headers.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "imagecore/base/timestamp.h"

namespace stage::sql {

// One database connection and its cached statements.
class Db {
 public:
  // Opens or creates the database at `path`, with extended result codes. Throws Error.
  explicit Db(std::string path);
  // Finalizes the cached statements and closes; a failure to close is logged, not thrown.
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  const std::string& path() const { return path_; }
  // The cached statement for `sql`, which must be a string literal (cached by address).
  // Throws Error when it does not compile.
  sqlite3_stmt* prepare(const char* sql);
  // A new statement for `sql`, owned by the caller (sqlite3_finalize). Throws Error.
  sqlite3_stmt* prepare_uncached(const char* sql);
  // Runs `sql`, which returns no rows. Throws Error.
  void exec(const char* sql);
  // Runs `sql` and ignores a failure (a ROLLBACK while unwinding).
  void exec_quietly(const char* sql) noexcept;
  // The rowid of the last INSERT.
  int64_t last_insert_rowid();
  // Rows changed by the last INSERT, UPDATE or DELETE.
  int changes();
  // Throws Error for SQLite result `rc` of the step described by `what`.
  [[noreturn]] void fail(int rc, const std::string& what);

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;
};

// A prepared statement: bind with i/u/opt_i/t (columns from 1), step, read with col/ucol/text
// (columns from 0). Reset when the scope ends. Every failure throws Error.
class Stmt {
 public:
  // The cached statement for `sql`, or a private one while the cached one is in use further
  // up the stack (a recursive walk).
  Stmt(Db& db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& i(int col, int64_t v);
  Stmt& u(int col, uint64_t v) { return i(col, static_cast<int64_t>(v)); }
  Stmt& opt_i(int col, std::optional<int64_t> v);  // NULL when unset
  Stmt& t(int col, std::string_view v);
  // A time as two columns: seconds at `col`, nanoseconds at `col` + 1.
  Stmt& time(int col, const imagecore::Timestamp& v) { return i(col, v.sec).i(col + 1, v.nsec); }
  // True while there is a row.
  bool step();
  // Steps to the end.
  void run();
  int64_t col(int c) const { return sqlite3_column_int64(st_, c); }
  uint64_t ucol(int c) const { return static_cast<uint64_t>(sqlite3_column_int64(st_, c)); }
  std::string text(int c) const;

 private:
  void check(int rc);
  Db& db_;
  sqlite3_stmt* st_;
  const char* sql_;
  bool owned_ = false;
};

// One write transaction (BEGIN IMMEDIATE ... COMMIT); rolled back unless committed.
class Txn {
 public:
  explicit Txn(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
  ~Txn() {
    if (!done_)
      db_.exec_quietly("ROLLBACK");
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  // Throws Error (the transaction is then rolled back).
  void commit() {
    db_.exec("COMMIT");
    done_ = true;
  }
  bool committed() const { return done_; }

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace stage::sql
