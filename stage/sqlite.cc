#include "stage/sqlite.h"

#include "imagecore/base/error.h"

namespace stage {

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

sqlite3_stmt* Store::prepare(const char* sql) {
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

void Store::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK)
    fail(rc, fmt::format("running \"{:.60}\"", sql));
}

void Store::fail(int rc, const std::string& what) {
  const int e = errno_of(db_, rc);
  const char* msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  throw Error(e, fmt::format("{}: {} failed: {}", db_path_, what, msg));
}

}  // namespace stage
