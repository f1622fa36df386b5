#include "stage/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <span>

#include "imagecore/base/error.h"
#include "imagecore/iso9660/zisofs.h"

namespace stage {

using namespace imagecore;

namespace {

constexpr int kFormatVersion = 1;
constexpr int kMaxDepth = 4096;  // deeper than any path Linux can name

#define INODE_COLS                                                                            \
  "ino,type,perm,uid,gid,rdev,size,nlink,mtime_s,mtime_ns,atime_s,atime_ns,ctime_s,ctime_ns," \
  "symlink,data,base_ino,base_path"

Timestamp now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return Timestamp{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

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

std::string errno_text(int e) {
  return std::strerror(e);
}

// A descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

void write_all(int fd, const std::byte* p, size_t n, uint64_t off, const std::string& where) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR)
        continue;
      const int e = errno;
      throw Error(e, fmt::format("{}: cannot write the staged copy: {}", where, errno_text(e)));
    }
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
}

std::string child_path(const std::string& parent, std::string_view name) {
  return parent == "/" ? "/" + std::string(name) : parent + "/" + std::string(name);
}

}  // namespace

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

Store::Store(const std::string& dir, StoreOptions opts) : dir_(dir), opts_(std::move(opts)) {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    const int e = errno;
    throw Error(e, fmt::format("{}: cannot create the staging store: {}", dir_, errno_text(e)));
  }
  // Absolute: the daemon may change its working directory.
  if (char* real = ::realpath(dir_.c_str(), nullptr)) {
    dir_ = real;
    std::free(real);
  }
  const std::string lock = dir_ + "/lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    const int e = errno;
    throw Error(e, fmt::format("{}: cannot open: {}", lock, errno_text(e)));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    char buf[4200] = {};
    const ssize_t n = ::pread(lock_fd_, buf, sizeof buf - 1, 0);
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (e != EWOULDBLOCK)
      throw Error(e, fmt::format("{}: cannot lock: {}", lock, errno_text(e)));
    const std::string holder(buf, n > 0 ? static_cast<size_t>(n) : 0);
    const size_t nl = holder.find('\n');
    const std::string pid = holder.substr(0, nl);
    std::string mp = nl == std::string::npos ? "" : holder.substr(nl + 1);
    mp = mp.substr(0, mp.find('\n'));
    throw Error(EBUSY,
                fmt::format("{}: already staged by process {}{}",
                            opts_.target.empty() ? dir_ : opts_.target, pid.empty() ? "?" : pid,
                            mp.empty() ? "" : fmt::format(" (mounted on {})", mp)));
  }
  try {
    update_lock_owner();
    const std::string data = dir_ + "/data";
    if (::mkdir(data.c_str(), 0700) != 0 && errno != EEXIST) {
      const int e = errno;
      throw Error(e, fmt::format("{}: cannot create: {}", data, errno_text(e)));
    }
    data_dir_fd_ = ::open(data.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (data_dir_fd_ < 0) {
      const int e = errno;
      throw Error(e, fmt::format("{}: cannot open: {}", data, errno_text(e)));
    }
    db_path_ = dir_ + "/store.db";
    const int rc =
        sqlite3_open_v2(db_path_.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK)
      fail(rc, "opening the database");
    sqlite3_extended_result_codes(db_, 1);
    // Exclusive locking keeps the WAL index in process memory (no -shm file), which is safe
    // across the daemon's fork; the store lock already keeps every other process out.
    exec("PRAGMA locking_mode=EXCLUSIVE");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=OFF");
    create_schema();
    recover();
  } catch (...) {
    for (auto& [sql, st] : stmts_)
      sqlite3_finalize(st);
    stmts_.clear();
    if (db_)
      sqlite3_close(db_);
    db_ = nullptr;
    if (data_dir_fd_ >= 0)
      ::close(data_dir_fd_);
    ::close(lock_fd_);
    throw;
  }
}

Store::~Store() {
  for (auto& [sql, st] : stmts_)
    sqlite3_finalize(st);
  if (db_ && sqlite3_close(db_) != SQLITE_OK)
    spdlog::warn("{}: closing the database failed: {}", db_path_, sqlite3_errmsg(db_));
  if (data_dir_fd_ >= 0)
    ::close(data_dir_fd_);
  if (lock_fd_ >= 0)
    ::close(lock_fd_);
}

void Store::update_lock_owner() {
  const std::string text = fmt::format("{}\n{}\n", ::getpid(), opts_.mountpoint);
  if (::ftruncate(lock_fd_, 0) != 0 ||
      ::pwrite(lock_fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    spdlog::warn("{}/lock: cannot record the owning process: {}", dir_, errno_text(errno));
}

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

void Store::create_schema() {
  Txn txn(*this);
  exec(
      "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS inodes(ino INTEGER PRIMARY KEY AUTOINCREMENT,"
      " type INTEGER NOT NULL, perm INTEGER NOT NULL, uid INTEGER NOT NULL,"
      " gid INTEGER NOT NULL, rdev INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL DEFAULT 0,"
      " nlink INTEGER NOT NULL DEFAULT 1, mtime_s INTEGER, mtime_ns INTEGER, atime_s INTEGER,"
      " atime_ns INTEGER, ctime_s INTEGER, ctime_ns INTEGER, symlink TEXT,"
      " data INTEGER NOT NULL DEFAULT 0, base_ino INTEGER NOT NULL DEFAULT 0, base_path TEXT,"
      " populated INTEGER NOT NULL DEFAULT 1, attr_changed INTEGER NOT NULL DEFAULT 0,"
      " moved INTEGER NOT NULL DEFAULT 0);"
      "CREATE INDEX IF NOT EXISTS inodes_base ON inodes(base_ino) WHERE base_ino != 0;"
      "CREATE TABLE IF NOT EXISTS dentries(parent INTEGER NOT NULL, name TEXT NOT NULL,"
      " ino INTEGER NOT NULL, PRIMARY KEY(parent, name)) WITHOUT ROWID;"
      "CREATE INDEX IF NOT EXISTS dentries_ino ON dentries(ino);"
      "CREATE TABLE IF NOT EXISTS deleted(base_path TEXT PRIMARY KEY) WITHOUT ROWID;");
  const std::string version = meta("version");
  if (version.empty()) {
    set_meta("version", std::to_string(kFormatVersion));
    set_meta("target", opts_.target);
  } else if (version != std::to_string(kFormatVersion)) {
    throw Error(EPROTO, fmt::format("{}: store format {} is not the one this discfs uses ({})",
                                    db_path_, version, kFormatVersion));
  }
  txn.commit();
}

std::string Store::meta(const std::string& key) {
  Stmt q(*this, "SELECT value FROM meta WHERE key=?");
  q.t(1, key);
  return q.step() ? q.text(0) : std::string();
}

void Store::set_meta(const std::string& key, const std::string& value) {
  Stmt q(*this, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  q.t(1, key).t(2, value).run();
}

// After a crash: names gone but rows kept (open files), staged files whose last writes were
// never recorded, copy-ups and data files that no row owns.
void Store::recover() {
  Txn txn(*this);
  {
    Stmt q(*this, "SELECT ino FROM inodes WHERE nlink=0 AND data=2");
    while (q.step())
      doomed_.push_back(q.ucol(0));
  }
  Stmt(*this, "DELETE FROM inodes WHERE nlink=0").run();
  std::vector<std::pair<Ino, uint64_t>> locals;
  {
    Stmt q(*this, "SELECT ino, size FROM inodes WHERE data=2");
    while (q.step())
      locals.emplace_back(q.ucol(0), q.ucol(1));
  }
  for (auto& [ino, size] : locals) {
    const std::string path = local_path(ino);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      const int e = errno;
      if (e != ENOENT)
        throw Error(e, fmt::format("{}: cannot read the staged file: {}", path, errno_text(e)));
      Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
      if (fd.fd < 0) {
        const int e2 = errno;
        throw Error(e2, fmt::format("{}: cannot create: {}", path, errno_text(e2)));
      }
      st.st_size = 0;
    }
    if (static_cast<uint64_t>(st.st_size) != size) {
      spdlog::info("{}: staged file {} holds {} bytes, {} recorded; keeping what is there", dir_,
                   ino, st.st_size, size);
      Stmt(*this, "UPDATE inodes SET size=? WHERE ino=?").u(1, st.st_size).u(2, ino).run();
    }
    local_sizes_[ino] = static_cast<uint64_t>(st.st_size);
  }
  txn.commit();
  staged_bytes_ = 0;
  for (auto& [ino, size] : local_sizes_)
    staged_bytes_ += size;
  // Data files without a Local row: unfinished copy-ups, files of rows already deleted.
  DIR* d = ::fdopendir(::dup(data_dir_fd_));
  if (!d)
    return;
  std::vector<std::string> stray;
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name == "." || name == "..")
      continue;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(name.c_str(), &end, 10);
    if (!end || *end != '\0' || !local_sizes_.count(n))
      stray.push_back(name);
  }
  ::closedir(d);
  for (const std::string& name : stray)
    ::unlinkat(data_dir_fd_, name.c_str(), 0);
}

std::string Store::recorded_target() {
  std::lock_guard lock(mu_);
  return meta("target");
}

bool Store::has_base() {
  std::lock_guard lock(mu_);
  return !meta("base_start").empty();
}

bool Store::base_matches(uint64_t start_lba, uint64_t blocks) {
  std::lock_guard lock(mu_);
  return meta("base_start") == std::to_string(start_lba) &&
         meta("base_blocks") == std::to_string(blocks);
}

void Store::use_base(std::shared_ptr<const FileTree> base, uint64_t start_lba, uint64_t blocks) {
  std::lock_guard lock(mu_);
  if (meta("base_start").empty()) {
    clear_all(base.get(), start_lba, blocks);
  } else if (meta("base_start") != std::to_string(start_lba) ||
             meta("base_blocks") != std::to_string(blocks)) {
    throw Error(ESTALE, fmt::format("{}: the staged changes were made on another session of {} "
                                    "(at block {}, {} blocks); it now ends with the session at "
                                    "block {} ({} blocks)",
                                    dir_, meta("target"), meta("base_start"), meta("base_blocks"),
                                    start_lba, blocks));
  }
  base_ = std::move(base);
}

std::shared_ptr<const FileTree> Store::base() {
  std::lock_guard lock(mu_);
  return base_;
}

std::string Store::local_path(Ino ino) const {
  return fmt::format("{}/data/{}", dir_, ino);
}

// ---- rows -----------------------------------------------------------------------------

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
  q.u(7, a.size).i(8, a.nlink).i(9, a.mtime.sec).i(10, a.mtime.nsec).i(11, a.atime.sec);
  q.i(12, a.atime.nsec).i(13, a.ctime.sec).i(14, a.ctime.nsec).t(15, e.symlink);
  q.i(16, static_cast<int>(e.data)).u(17, e.base_ino).t(18, e.base_path).i(19, populated);
  q.run();
  return static_cast<Ino>(sqlite3_last_insert_rowid(db_));
}

namespace {

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
  if (a.type == FileType::Directory || a.nlink == 0)
    a.nlink = 1;
  if (a.type != FileType::Regular)
    a.size = a.type == FileType::Symlink ? n.symlink.size() : 0;
  e.symlink = n.symlink;
  e.data = a.type == FileType::Regular ? StoreEntry::Data::Base : StoreEntry::Data::None;
  e.base_ino = n.attr.ino;
  e.base_path = base_path;
  return e;
}

}  // namespace

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
      .i(1, t.sec)
      .i(2, t.nsec)
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
      .i(1, t.sec)
      .i(2, t.nsec)
      .i(3, t.sec)
      .i(4, t.nsec)
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
  Stmt(*this, "DELETE FROM inodes").run();
  Stmt(*this, "DELETE FROM deleted").run();
  set_meta("base_start", std::to_string(start_lba));
  set_meta("base_blocks", std::to_string(blocks));
  Stmt(*this, "DELETE FROM meta WHERE key='pending_start'").run();
  make_root(base);
  txn.commit();
  // Every staged file goes, including strays.
  std::vector<Ino> all;
  for (auto& [ino, size] : local_sizes_)
    all.push_back(ino);
  remove_data_files(all);
  local_sizes_.clear();
  staged_bytes_ = 0;
  if (DIR* d = ::fdopendir(::dup(data_dir_fd_))) {
    std::vector<std::string> names;
    while (dirent* de = ::readdir(d))
      if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0)
        names.emplace_back(de->d_name);
    ::closedir(d);
    for (const std::string& n : names)
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

// ---- namespace -------------------------------------------------------------------------

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

std::vector<std::pair<Ino, std::string>> Store::names_of(Ino ino) {
  std::lock_guard lock(mu_);
  std::vector<std::pair<Ino, std::string>> out;
  Stmt q(*this, "SELECT parent, name FROM dentries WHERE ino=?");
  q.u(1, ino);
  while (q.step())
    out.emplace_back(q.ucol(0), q.text(1));
  return out;
}

std::string Store::path_of(Ino ino) {
  std::lock_guard lock(mu_);
  std::string path;
  for (int depth = 0; ino != kRootIno && depth < kMaxDepth; ++depth) {
    Stmt q(*this, "SELECT parent, name FROM dentries WHERE ino=? LIMIT 1");
    q.u(1, ino);
    if (!q.step())
      return {};
    path = "/" + q.text(1) + path;
    ino = q.ucol(0);
  }
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
    const bool dst_dir = row(*dst).attr.type == FileType::Directory;
    if (src_dir && !dst_dir)
      throw Error(ENOTDIR, "not a folder");
    if (!src_dir && dst_dir)
      throw Error(EISDIR, "is a folder");
    if (dst_dir) {
      populate(*dst);
      if (!dir_empty(*dst))
        throw Error(ENOTEMPTY, "folder not empty");
    }
  }
  if (src_dir) {
    // A folder cannot move below itself.
    Ino up = new_parent;
    for (int depth = 0; depth < kMaxDepth; ++depth) {
      if (up == src)
        throw Error(EINVAL, "a folder cannot move into itself");
      if (up == kRootIno)
        break;
      Stmt q(*this, "SELECT parent FROM dentries WHERE ino=? LIMIT 1");
      q.u(1, up);
      if (!q.step())
        break;
      up = q.ucol(0);
    }
  }
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
      .i(1, t.sec)
      .i(2, t.nsec)
      .u(3, src)
      .run();
  touch_dir(parent);
  if (new_parent != parent)
    touch_dir(new_parent);
  txn.commit();
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
      .i(1, t.sec)
      .i(2, t.nsec)
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
      .i(4, a.atime.sec)
      .i(5, a.atime.nsec)
      .i(6, a.mtime.sec)
      .i(7, a.mtime.nsec)
      .i(8, a.ctime.sec)
      .i(9, a.ctime.nsec)
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

// ---- contents --------------------------------------------------------------------------

uint64_t Store::local_size(Ino ino) {
  auto it = local_sizes_.find(ino);
  return it == local_sizes_.end() ? 0 : it->second;
}

StoreEntry Store::make_local(Ino ino, std::optional<uint64_t> truncate_to) {
  std::lock_guard lock(mu_);
  StoreEntry e = row(ino);
  if (e.attr.type == FileType::Directory)
    throw Error(EISDIR, "is a folder");
  if (e.attr.type != FileType::Regular)
    throw Error(EINVAL, "not a regular file");
  const std::string path = local_path(ino);
  const bool local = e.data == StoreEntry::Data::Local;
  if (local && !truncate_to)
    return e;
  const uint64_t final_size = truncate_to ? *truncate_to : e.attr.size;
  const uint64_t old = local ? local_size(ino) : 0;
  if (final_size > old && staged_bytes_ + (final_size - old) > limit_)
    throw Error(ENOSPC, fmt::format("{}: the staged files would not fit on the target", dir_));
  if (final_size > old && !disk_has_room(final_size - old))
    throw Error(ENOSPC, fmt::format("{}: the store's disk is full", dir_));
  const Timestamp t = now();
  if (local) {
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (fd.fd < 0 || ::ftruncate(fd.fd, static_cast<off_t>(final_size)) != 0 ||
        ::fdatasync(fd.fd) != 0) {
      const int err = errno;
      throw Error(err,
                  fmt::format("{}: cannot truncate the staged file: {}", path, errno_text(err)));
    }
  } else {
    // Copy-up: the base contents into a temporary file, made durable, then renamed.
    if (!base_)
      throw Error(EIO, fmt::format("{}: inode {} refers to a base that is not loaded", dir_, ino));
    const std::string tmp = path + ".tmp";
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.fd < 0) {
      const int err = errno;
      throw Error(err, fmt::format("{}: cannot create: {}", tmp, errno_text(err)));
    }
    const uint64_t copy = std::min(final_size, e.attr.size);
    if (copy > 0) {
      const Node n = base_->stat(e.base_ino);
      if (!n.defect.empty())
        throw FormatError(n.defect);
      std::unique_ptr<ZisofsReader> zr;
      if (n.zisofs)
        zr = std::make_unique<ZisofsReader>(base_->source(), n);
      std::vector<std::byte> buf(1 << 20);
      for (uint64_t off = 0; off < copy;) {
        std::span<std::byte> out(buf.data(), std::min<uint64_t>(buf.size(), copy - off));
        const size_t got = zr ? zr->read(off, out) : base_->read(n, off, out);
        if (got == 0)
          throw FormatError(fmt::format("{}: ends early at byte {}", e.base_path, off));
        write_all(fd.fd, buf.data(), got, off, tmp);
        off += got;
      }
    }
    if (::ftruncate(fd.fd, static_cast<off_t>(final_size)) != 0 || ::fdatasync(fd.fd) != 0 ||
        ::rename(tmp.c_str(), path.c_str()) != 0 || ::fsync(data_dir_fd_) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      throw Error(err, fmt::format("{}: cannot stage a copy of {}: {}", path, e.base_path,
                                   errno_text(err)));
    }
  }
  Txn txn(*this);
  if (truncate_to) {
    Stmt(*this,
         "UPDATE inodes SET data=2, size=?, mtime_s=?, mtime_ns=?, ctime_s=?, ctime_ns=? "
         "WHERE ino=?")
        .u(1, final_size)
        .i(2, t.sec)
        .i(3, t.nsec)
        .i(4, t.sec)
        .i(5, t.nsec)
        .u(6, ino)
        .run();
  } else {
    Stmt(*this, "UPDATE inodes SET data=2, size=? WHERE ino=?").u(1, final_size).u(2, ino).run();
  }
  txn.commit();
  staged_bytes_ = staged_bytes_ - std::min(staged_bytes_, old) + final_size;
  local_sizes_[ino] = final_size;
  return row(ino);
}

void Store::record_size(Ino ino,
                        uint64_t size,
                        Timestamp mtime,
                        std::optional<Timestamp> ctime,
                        std::optional<Timestamp> atime) {
  std::lock_guard lock(mu_);
  const Timestamp c = ctime.value_or(mtime);
  Txn txn(*this);
  Stmt(*this,
       "UPDATE inodes SET size=?, mtime_s=?, mtime_ns=?, ctime_s=?, ctime_ns=?, "
       "atime_s=coalesce(?, atime_s), atime_ns=coalesce(?, atime_ns) WHERE ino=? AND data=2")
      .u(1, size)
      .i(2, mtime.sec)
      .i(3, mtime.nsec)
      .i(4, c.sec)
      .i(5, c.nsec)
      .opt_i(6, atime ? std::optional<int64_t>(atime->sec) : std::nullopt)
      .opt_i(7, atime ? std::optional<int64_t>(atime->nsec) : std::nullopt)
      .u(8, ino)
      .run();
  txn.commit();
  if (sqlite3_changes(db_) == 0)
    return;
  const uint64_t old = local_size(ino);
  staged_bytes_ = staged_bytes_ - std::min(staged_bytes_, old) + size;
  local_sizes_[ino] = size;
}

void Store::sync_data_dir() {
  if (::fsync(data_dir_fd_) != 0) {
    const int e = errno;
    throw Error(e, fmt::format("{}/data: cannot sync: {}", dir_, errno_text(e)));
  }
}

uint64_t Store::staged_bytes() {
  std::lock_guard lock(mu_);
  return staged_bytes_;
}

void Store::set_limit(uint64_t max_staged_bytes) {
  std::lock_guard lock(mu_);
  limit_ = max_staged_bytes;
}

bool Store::disk_has_room(uint64_t bytes) const {
  struct statvfs v {};
  if (::fstatvfs(data_dir_fd_, &v) != 0)
    return true;  // cannot tell: the write itself will say
  const uint64_t avail = uint64_t{v.f_bavail} * v.f_frsize;
  return avail >= bytes && avail - bytes >= kDiskReserve;
}

void Store::set_pending_session(uint64_t start_lba) {
  std::lock_guard lock(mu_);
  Txn txn(*this);
  set_meta("pending_start", std::to_string(start_lba));
  txn.commit();
}

std::optional<uint64_t> Store::pending_session() {
  std::lock_guard lock(mu_);
  const std::string v = meta("pending_start");
  if (v.empty())
    return std::nullopt;
  return std::stoull(v);
}

void Store::clear_pending_session() {
  std::lock_guard lock(mu_);
  Txn txn(*this);
  Stmt(*this, "DELETE FROM meta WHERE key='pending_start'").run();
  txn.commit();
}

bool Store::try_grow(Ino ino, uint64_t new_size) {
  std::lock_guard lock(mu_);
  const uint64_t cur = local_size(ino);
  if (new_size <= cur)
    return true;
  if (staged_bytes_ + (new_size - cur) > limit_ || !disk_has_room(new_size - cur))
    return false;
  staged_bytes_ += new_size - cur;
  local_sizes_[ino] = new_size;
  return true;
}

// ---- commit, status, discard -----------------------------------------------------------

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
  if (a.type != FileType::Directory && a.nlink > 1)
    s.link_group = a.ino;
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

void Store::discard(const std::vector<std::string>& paths) {
  std::lock_guard lock(mu_);
  for (const std::string& p : paths)
    discard_one(p);
}

void Store::discard_all() {
  std::lock_guard lock(mu_);
  clear_all(base_.get(), std::stoull("0" + meta("base_start")),
            std::stoull("0" + meta("base_blocks")));
}

void Store::discard_one(const std::string& path) {
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
  if (parts.empty()) {
    clear_all(base_.get(), std::stoull("0" + meta("base_start")),
              std::stoull("0" + meta("base_blocks")));
    return;
  }
  std::string norm;
  for (const std::string& p : parts)
    norm += "/" + p;
  // The parent on the stage.
  Ino parent = kRootIno;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    populate(parent);
    std::optional<Ino> next = child(parent, parts[i]);
    if (!next || row(*next).attr.type != FileType::Directory)
      throw Error(ENOENT, fmt::format("discard {}: its folder is not in the staging area; "
                                      "discard the folder instead",
                                      norm));
    parent = *next;
  }
  populate(parent);
  const std::string& name = parts.back();
  // The entry in the base, if any.
  std::optional<Node> base_node;
  if (base_) {
    try {
      Node n = base_->stat(kRootIno);
      for (const std::string& p : parts)
        n = base_->lookup(n.attr.ino, p);
      base_node = std::move(n);
    } catch (const Error& err) {
      if (err.code() != ENOENT && err.code() != ENOTDIR)
        throw;
    }
  }
  // A base entry moved here from elsewhere goes back first.
  if (std::optional<Ino> cur = child(parent, name)) {
    const StoreEntry c = row(*cur);
    if (c.base_ino && c.base_path != norm && (!base_node || base_node->attr.ino != c.base_ino))
      discard_one(c.base_path);
  }
  Txn txn(*this);
  std::optional<Ino> cur = child(parent, name);
  std::optional<Ino> existing;
  if (base_node) {
    Stmt q(*this, "SELECT ino FROM inodes WHERE base_ino=? AND nlink>0");
    q.u(1, base_node->attr.ino);
    if (q.step())
      existing = q.ucol(0);
  }
  if (cur && cur != existing) {
    drop_dentry(parent, name);
    Stmt(*this, "UPDATE inodes SET nlink=nlink-1 WHERE ino=? AND nlink>0").u(1, *cur).run();
    if (row(*cur).attr.nlink == 0) {
      if (row(*cur).attr.type == FileType::Directory)
        delete_subtree(*cur);
      delete_inode(*cur);
    }
    cur.reset();
  }
  if (base_node) {
    const StoreEntry b = entry_from_base(*base_node, norm, opts_.default_uid, opts_.default_gid);
    if (!existing) {
      add_dentry(parent, name, insert_base_node(*base_node, norm));
    } else {
      const StoreEntry x = row(*existing);
      if (x.data == StoreEntry::Data::Local)
        doomed_.push_back(*existing);
      if (x.attr.type == FileType::Directory) {
        delete_subtree(*existing);
        if (!cur)  // moved elsewhere: bring it back
          Stmt(*this, "DELETE FROM dentries WHERE ino=?").u(1, *existing).run();
      }
      if (!cur)
        add_dentry(parent, name, *existing);
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
          .i(7, a.mtime.sec)
          .i(8, a.mtime.nsec)
          .i(9, a.atime.sec)
          .i(10, a.atime.nsec)
          .i(11, a.ctime.sec)
          .i(12, a.ctime.nsec)
          .t(13, b.symlink)
          .i(14, static_cast<int>(b.data))
          .t(15, norm)
          .i(16, a.type != FileType::Directory)
          .i(17, static_cast<int>(FileType::Directory))
          .u(18, *existing)
          .u(19, *existing)
          .run();
    }
  }
  Stmt(*this, "DELETE FROM deleted WHERE base_path=? OR substr(base_path, 1, ?)=?")
      .t(1, norm)
      .i(2, static_cast<int64_t>(norm.size() + 1))
      .t(3, norm + "/")
      .run();
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
