#include "stage/sqlite.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "imagecore/base/error.h"

namespace stage::sql {

using imagecore::Error;

namespace {

// The errno a failed SQLite call stands for.
int errno_of(sqlite3* db, int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return ENOSPC;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN: {
      const int e = db ? sqlite3_system_errno(db) : 0;
      return e ? e : EIO;
    }
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return EROFS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return EBUSY;
    case SQLITE_NOMEM:
      return ENOMEM;
    default:
      return EIO;
  }
}

}  // namespace

Db::Db(std::string path) : path_(std::move(path)) {
  const int rc =
      sqlite3_open_v2(path_.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    try {
      fail(rc, "opening the database");
    } catch (...) {
      sqlite3_close(db_);
      throw;
    }
  }
  sqlite3_extended_result_codes(db_, 1);
}

Db::~Db() {
  for (auto& [sql, st] : stmts_)
    sqlite3_finalize(st);
  if (sqlite3_close(db_) != SQLITE_OK)
    spdlog::warn("{}: closing the database failed: {}", path_, sqlite3_errmsg(db_));
}

sqlite3_stmt* Db::prepare(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end())
    return it->second;
  sqlite3_stmt* st = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr);
  if (rc != SQLITE_OK)
    fail(rc, fmt::format("preparing \"{:.60}\"", sql));
  stmts_.emplace(sql, st);
  return st;
}

sqlite3_stmt* Db::prepare_uncached(const char* sql) {
  sqlite3_stmt* st = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql, -1, &st, nullptr);
  if (rc != SQLITE_OK)
    fail(rc, fmt::format("preparing \"{:.60}\"", sql));
  return st;
}

void Db::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK)
    fail(rc, fmt::format("running \"{:.60}\"", sql));
}

void Db::exec_quietly(const char* sql) noexcept {
  sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
}

int64_t Db::last_insert_rowid() {
  return sqlite3_last_insert_rowid(db_);
}

int Db::changes() {
  return sqlite3_changes(db_);
}

void Db::fail(int rc, const std::string& what) {
  const int e = errno_of(db_, rc);
  const char* msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  throw Error(e, fmt::format("{}: {} failed: {}", path_, what, msg));
}

Stmt::Stmt(Db& db, const char* sql) : db_(db), st_(db.prepare(sql)), sql_(sql) {
  if (sqlite3_stmt_busy(st_)) {
    st_ = db.prepare_uncached(sql);
    owned_ = true;
  }
}

Stmt::~Stmt() {
  if (owned_) {
    sqlite3_finalize(st_);
    return;
  }
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

Stmt& Stmt::i(int col, int64_t v) {
  check(sqlite3_bind_int64(st_, col, v));
  return *this;
}

Stmt& Stmt::opt_i(int col, std::optional<int64_t> v) {
  if (v)
    return i(col, *v);
  check(sqlite3_bind_null(st_, col));
  return *this;
}

Stmt& Stmt::t(int col, std::string_view v) {
  check(sqlite3_bind_text(st_, col, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  return *this;
}

bool Stmt::step() {
  const int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW)
    return true;
  if (rc == SQLITE_DONE)
    return false;
  db_.fail(rc, fmt::format("running \"{:.60}\"", sql_));
}

void Stmt::run() {
  while (step()) {
  }
}

std::string Stmt::text(int c) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, c));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st_, c))) : std::string();
}

void Stmt::check(int rc) {
  if (rc != SQLITE_OK)
    db_.fail(rc, "binding a value");
}

}  // namespace stage::sql
