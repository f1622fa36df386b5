// The staging store: what a stage mount changed on top of the base session of its target.
// A store directory holds `store.db` (SQLite in WAL mode with synchronous=FULL: the namespace,
// every inode's attributes, and where its content lives), `data/<ino>` (staged file contents)
// and `lock` (flock held for the life of the process that opened the store).
//
// Base directories are imported lazily: a directory row with populated=0 holds exactly the
// children of its base directory, which are inserted the first time it is listed, searched or
// changed. A directory never populated is reused whole by the commit, wherever it was moved.
// Base files keep their data in the base (data=Base) until a write or truncate copies them
// into `data/` (data=Local).
//
// Every namespace operation is one SQLite transaction committed before the method returns,
// so it survives a killed process and a power cut. File contents are written by the caller
// (the FUSE layer) to local_path(ino); it makes them durable with fdatasync and then records
// the size with record_size(). Thread-safe: one mutex serializes the database.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "burner/limits.h"
#include "burner/staged_tree.h"
#include "imagecore/node.h"
#include "imagecore/tree.h"
#include "stage/lock_file.h"

namespace stage {

namespace sql {
class Db;
}

using burner::StagedEntry;
using imagecore::Attr;
using imagecore::FileTree;
using imagecore::FileType;
using imagecore::Ino;
using imagecore::Node;
using imagecore::Timestamp;

// Bytes of the largest file a session can hold: larger files get EFBIG.
inline constexpr uint64_t kMaxFileBytes = burner::kMaxFileBytes;

struct StoreOptions {
  std::string target;      // the target's path: recorded in the store, named in messages
  std::string mountpoint;  // written to the lock file so a second stage can name the mount
  // Owner of base entries without Rock Ridge owners, and of the root of a blank target.
  uint32_t default_uid = 0;
  uint32_t default_gid = 0;
};

// One inode as the store knows it. attr.has_posix is always true; attr.ino is the store's.
struct StoreEntry {
  enum class Data : uint8_t { None = 0, Base = 1, Local = 2 };
  Attr attr;
  std::string symlink;
  Data data = Data::None;
  Ino base_ino = 0;  // the inode in the base tree, 0 for entries made on the stage
  std::string base_path;
};

struct StoreStatus {
  uint64_t added = 0;    // entries that are not in the base
  uint64_t changed = 0;  // base entries with new contents or attributes
  uint64_t deleted = 0;  // base entries removed
  uint64_t renamed = 0;  // base entries moved or renamed
  uint64_t bytes_staged = 0;
  // No entry differs from the base.
  bool empty() const { return added + changed + deleted + renamed == 0; }
};

// One staged difference from the base, by path (what `discfs status` lists).
struct StagedChange {
  enum class Kind : uint8_t { Added, Modified, Renamed, Deleted };
  Kind kind = Kind::Added;
  std::string path;       // on the stage; for Deleted, where the base has it
  std::string from;       // Renamed: where the base has it
  bool modified = false;  // Renamed: new contents or attributes as well
  bool operator==(const StagedChange&) const = default;
};

// Attribute changes for Store::set_attr; unset members stay as they are.
struct AttrChange {
  std::optional<uint32_t> perm;
  std::optional<uint32_t> uid, gid;
  std::optional<Timestamp> atime, mtime;
};

class Store {
 public:
  // Opens or creates the store directory `dir` and locks it. Throws Error(EBUSY) naming the
  // process (and mount) holding it, Error(errno) when it cannot be created or read, and
  // Error(EIO) when store.db is damaged. Recovers from a crash: orphans are removed and the
  // sizes of staged files are taken from the files themselves.
  Store(const std::string& dir, StoreOptions opts);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& dir() const { return dir_; }
  // Writes this process's id into the lock file (call again after daemonizing: the lock
  // stays held across fork, the id changes).
  void update_lock_owner();
  // The target path recorded at creation.
  std::string recorded_target();
  // Whether the store has a base recorded (false: a new store, use_base() records one).
  bool has_base();
  // Whether the recorded base is the session at `start_lba` of `blocks` blocks (0, 0 for a
  // blank target). A store created on another session no longer fits its target.
  bool base_matches(uint64_t start_lba, uint64_t blocks);
  // Serves `base` (nullptr for a blank target) under the staged changes. A new store records
  // it; otherwise it must match the recorded base: Error(ESTALE) if not.
  void use_base(std::shared_ptr<const FileTree> base, uint64_t start_lba, uint64_t blocks);
  std::shared_ptr<const FileTree> base();
  // The --capacity the store was last staged with, in bytes (nullopt: none was given), kept
  // so that a later stage, a commit or status without a daemon keep the same limit.
  std::optional<uint64_t> recorded_capacity();
  void record_capacity(uint64_t bytes);

  // Namespace. Errors are Error(errno) as the system calls give them.
  StoreEntry get(Ino ino);                               // ENOENT for an unknown inode
  StoreEntry lookup(Ino parent, std::string_view name);  // ENOENT, ENOTDIR
  struct Child {
    std::string name;
    StoreEntry entry;
  };
  std::vector<Child> list(Ino dir);  // sorted by name
  Ino parent_of(Ino dir);            // the root is its own parent
  // The folders in folder `dir` (a folder's link count is 2 more), without importing a base
  // folder; 0 for what is not a folder.
  uint32_t subdir_count(Ino dir);
  // Creates a directory, regular file (empty, Local), symlink, device, FIFO or socket.
  // ENAMETOOLONG for a symlink target a session cannot record (burner/limits.h).
  StoreEntry make(Ino parent,
                  std::string_view name,
                  FileType type,
                  uint32_t perm,
                  uint32_t uid,
                  uint32_t gid,
                  uint64_t rdev,
                  const std::string& symlink);
  void unlink(Ino parent, std::string_view name);  // EISDIR for a directory
  void rmdir(Ino parent, std::string_view name);   // ENOTDIR, ENOTEMPTY
  void rename(Ino parent,
              std::string_view name,
              Ino new_parent,
              std::string_view new_name,
              bool noreplace);
  StoreEntry link(Ino ino, Ino new_parent, std::string_view new_name);
  StoreEntry set_attr(Ino ino, const AttrChange& change);
  // Removes an inode with no names left (called when nothing refers to it any more).
  void purge_if_orphan(Ino ino);
  // The path of `ino` on the stage ("/a/b"), for messages; empty when it has no name.
  std::string path_of(Ino ino);
  // The names on the way from the root to `ino` (none for the root); nullopt when it has no
  // name (unlinked while open).
  std::optional<std::vector<std::string>> path_names(Ino ino);
  // Every (parent, name) of `ino`: the kernel's names for it, to invalidate.
  std::vector<std::pair<Ino, std::string>> names_of(Ino ino);

  // Contents.
  std::string local_path(Ino ino) const;
  // Makes a regular file's contents Local: copies base contents into data/ first (unless
  // `truncate_to` is 0), then truncates to `truncate_to` when set. EFBIG past the largest
  // file a session can hold (burner::kMaxFileBytes), ENOSPC when the staged bytes would
  // exceed the limit.
  StoreEntry make_local(Ino ino, std::optional<uint64_t> truncate_to);
  // Records the durable size and mtime of a Local file (after the caller's fdatasync).
  void record_size(Ino ino,
                   uint64_t size,
                   Timestamp mtime,
                   std::optional<Timestamp> ctime = std::nullopt,
                   std::optional<Timestamp> atime = std::nullopt);
  // fsync of data/ (after creating files there).
  void sync_data_dir();

  // Bytes staged: the sizes of all Local files, including growth reserved by try_grow.
  uint64_t staged_bytes();
  // Limit on staged bytes (UINT64_MAX: none).
  void set_limit(uint64_t max_staged_bytes);
  // Reserves growth of a Local file to `new_size`; false when that passes the limit.
  bool try_grow(Ino ino, uint64_t new_size);

  // The tree the next session must show. Consistent: taken under the store lock.
  StagedEntry snapshot();
  StoreStatus status();
  // Every staged difference, one per name (a hard link's every name), sorted by path: the
  // entries status() counts. Throws Error(EIO) when the database cannot be read.
  std::vector<StagedChange> staged_changes();
  // Puts the entries at these stage paths back as they are in the base (removing them when
  // the base has none). Throws Error(ENOENT) when a path's parent is not on the stage.
  void discard(const std::vector<std::string>& paths);
  // Drops every staged change.
  void discard_all();
  // A commit about to write a session at `start_lba` records it first: if the process dies
  // after the session became the newest but before reset_to_new_base(), the next open sees
  // that the target's newest session is this one and that the staged changes are in it.
  void set_pending_session(uint64_t start_lba);
  std::optional<uint64_t> pending_session();
  void clear_pending_session();
  // After a commit: `base` (the new session) becomes the base, nothing is staged.
  void reset_to_new_base(std::shared_ptr<const FileTree> base, uint64_t start_lba, uint64_t blocks);

 private:
  class Stmt;
  class Txn;
  friend class Txn;

  // Whether the store's disk can take `bytes` more and still keep kDiskReserve free, the
  // room SQLite needs to record deletions and discards on a full disk.
  bool disk_has_room(uint64_t bytes) const;
  static constexpr uint64_t kDiskReserve = 4u << 20;

  void create_schema();
  void recover();
  std::string meta(const std::string& key);
  // meta(key) as a number, 0 when unset. Throws Error(EIO) naming the store when it is not one
  // (a damaged or hand-edited store.db).
  uint64_t meta_number(const std::string& key);
  void set_meta(const std::string& key, const std::string& value);

  StoreEntry row(Ino ino);  // throws ENOENT
  std::optional<StoreEntry> find_row(Ino ino);
  std::optional<Ino> child(Ino parent, std::string_view name);
  // The child's inode after importing `parent`; Error(ENOENT) when there is none.
  Ino existing_child(Ino parent, std::string_view name);
  void populate(Ino dir);  // lazy import of base children (inside a transaction)
  Ino insert_base_node(const Node& n, const std::string& base_path);
  Ino insert_inode(const StoreEntry& e, bool populated);
  void add_dentry(Ino parent, std::string_view name, Ino ino);
  // Removes the name; the inode loses a link. Returns the inode.
  Ino drop_dentry(Ino parent, std::string_view name);
  void drop_link(Ino ino);       // nlink-1; at 0 records a deleted base entry
  void delete_inode(Ino ino);    // the row (and, after commit, its data file)
  void delete_subtree(Ino dir);  // every row below a directory
  bool dir_empty(Ino dir);
  // Whether `dir` is `folder` or below it (following first names up to the root).
  bool is_within(Ino dir, Ino folder);
  // Whether rename may put a file (or a folder, `src_dir`) in place of `dst`: ENOTDIR,
  // EISDIR, ENOTEMPTY as rename(2) says.
  void check_replaceable(Ino dst, bool src_dir);
  void touch_dir(Ino dir);  // mtime and ctime = now
  void make_root(const FileTree* base);
  void clear_all(const FileTree* base, uint64_t start_lba, uint64_t blocks);
  void remove_data_files(const std::vector<Ino>& inos);
  // The names in data/ (none when it cannot be listed).
  std::vector<std::string> data_file_names();
  StagedEntry snapshot_of(const StoreEntry& e, const std::string& name, int depth);
  void discard_one(const std::string& path);
  // discard_one's steps. The folder on the stage that holds `parts` (imported); ENOENT when
  // it is not there. `path` is the stage path, for the message.
  Ino stage_parent(const std::vector<std::string>& parts, const std::string& path);
  // The base entry at `parts`, if the base has one.
  std::optional<Node> base_node_at(const std::vector<std::string>& parts);
  // The staged inode that stands for a base entry (wherever it was moved), if any.
  std::optional<Ino> staged_inode_of(const Node& base_node);
  // Drops the name `name` of `ino` in `parent`, deleting the inode with its last name.
  void drop_staged_name(Ino parent, std::string_view name, Ino ino);
  // Gives the staged inode of a base entry the base's attributes and contents again; when
  // `moved_back_as` is set it was moved away and gets that name in `parent` back.
  void restore_base_inode(Ino ino,
                          const Node& base_node,
                          const std::string& path,
                          const std::string* moved_back_as,
                          Ino parent);
  uint64_t local_size(Ino ino);
  // make_local's steps: a Local file cut or grown to `size`, durably; a base file's contents
  // (up to `size`) copied into `path`. Error(errno) naming the file, FormatError for a base
  // file that cannot be read.
  void truncate_local(const std::string& path, uint64_t size);
  void copy_up(const StoreEntry& e, const std::string& path, uint64_t size);

  std::string dir_;
  StoreOptions opts_;
  std::unique_ptr<LockFile> lock_;
  int data_dir_fd_ = -1;
  std::mutex mu_;
  std::unique_ptr<sql::Db> db_;  // closed before the lock is released
  std::shared_ptr<const FileTree> base_;
  // Sizes of Local files (durable size or reserved growth) and their sum.
  std::unordered_map<Ino, uint64_t> local_sizes_;
  uint64_t staged_bytes_ = 0;
  uint64_t limit_ = UINT64_MAX;
  // Data files to remove once the transaction that dropped their rows has committed.
  std::vector<Ino> doomed_;
};

}  // namespace stage
