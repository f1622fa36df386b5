#include "stage/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "imagecore/base/error.h"
#include "stage/store_private.h"

namespace stage {

using namespace imagecore;
using namespace internal;

namespace {

constexpr int kFormatVersion = 1;

}  // namespace

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
  lock_ = std::make_unique<LockFile>(dir_ + "/lock", 0644, [this](const std::string& holder) {
    const size_t nl = holder.find('\n');
    const std::string pid = holder.substr(0, nl);
    std::string mp = nl == std::string::npos ? "" : holder.substr(nl + 1);
    mp = mp.substr(0, mp.find('\n'));
    return fmt::format("{}: already staged by process {}{}",
                       opts_.target.empty() ? dir_ : opts_.target, pid.empty() ? "?" : pid,
                       mp.empty() ? "" : fmt::format(" (mounted on {})", mp));
  });
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
    db_ = std::make_unique<sql::Db>(dir_ + "/store.db");
    // Exclusive locking keeps the WAL index in process memory (no -shm file), which is safe
    // across the daemon's fork; the store lock already keeps every other process out.
    db_->exec("PRAGMA locking_mode=EXCLUSIVE");
    db_->exec("PRAGMA journal_mode=WAL");
    db_->exec("PRAGMA synchronous=FULL");
    db_->exec("PRAGMA foreign_keys=OFF");
    create_schema();
    recover();
  } catch (...) {
    db_.reset();
    if (data_dir_fd_ >= 0)
      ::close(data_dir_fd_);
    lock_.reset();
    throw;
  }
}

Store::~Store() {
  db_.reset();
  if (data_dir_fd_ >= 0)
    ::close(data_dir_fd_);
  lock_.reset();
}

void Store::update_lock_owner() {
  const std::string text = fmt::format("{}\n{}\n", ::getpid(), opts_.mountpoint);
  if (!lock_->record(text))
    spdlog::warn("{}/lock: cannot record the owning process: {}", dir_, errno_text(errno));
}

void Store::create_schema() {
  Txn txn(*this);
  db_->exec(
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
                                    db_->path(), version, kFormatVersion));
  }
  txn.commit();
}

std::string Store::meta(const std::string& key) {
  Stmt q(*this, "SELECT value FROM meta WHERE key=?");
  q.t(1, key);
  return q.step() ? q.text(0) : std::string();
}

uint64_t Store::meta_number(const std::string& key) {
  const std::string v = meta(key);
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (!v.empty() && (ec != std::errc() || end != v.data() + v.size()))
    throw Error(EIO, fmt::format("{}/store.db: the {} recorded there is not a number ('{}'); the "
                                 "store is damaged",
                                 dir_, key, v));
  return n;
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
  for (const std::string& name : data_file_names()) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(name.c_str(), &end, 10);
    if (!end || *end != '\0' || !local_sizes_.count(n))
      ::unlinkat(data_dir_fd_, name.c_str(), 0);
  }
}

// The descriptor is shared with every earlier listing (dup shares the file offset), so the
// listing starts with a rewind; without it only the first listing saw any names.
std::vector<std::string> Store::data_file_names() {
  std::vector<std::string> names;
  const int fd = ::dup(data_dir_fd_);
  if (fd < 0)
    return names;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return names;
  }
  ::rewinddir(d);
  while (dirent* de = ::readdir(d))
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0)
      names.emplace_back(de->d_name);
  ::closedir(d);
  return names;
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

std::optional<uint64_t> Store::recorded_capacity() {
  std::lock_guard lock(mu_);
  const uint64_t n = meta_number("capacity");
  return n ? std::optional(n) : std::nullopt;
}

void Store::record_capacity(uint64_t bytes) {
  std::lock_guard lock(mu_);
  Txn txn(*this);
  set_meta("capacity", std::to_string(bytes));
  txn.commit();
}

std::string Store::local_path(Ino ino) const {
  return fmt::format("{}/data/{}", dir_, ino);
}

}  // namespace stage
