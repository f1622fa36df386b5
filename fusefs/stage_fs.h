// The writable staging view (FUSE low-level API): the base session of a target merged with
// the changes kept in an stage::Store. Inode numbers are the store's, but for inodes the kernel
// held across a commit or a discard, which keep their number (kernel_cache.h). Mount it with
// `default_permissions` (the kernel checks permissions; this filesystem does not).
//
// StageFs is the operation table (stage_fs.cc) over four parts it owns: the commit gate
// (commit_gate.h), the open files and their durable sync (open_files.h), the kernel-cache
// bookkeeping (kernel_cache.h), and the handles given to the kernel (handles.h).
//
// Threads: the FUSE workers (session.cc), one commit thread calling pause_writes(), resume*,
// kernel_names() and forget_in_kernel(), and the two Syncer threads of the open files, which
// run the fsyncs of a sync() while its worker records the size.
//
// Lock order: the renumbering lock (renumbering.h; shared by requests that use the store,
// alone on the commit thread from kernel_names() to resume*), then an open file's mutex
// (OpenFile::mu), then the store's or the gate's. The mutexes of the open-file table, the kernel
// cache, the gate and the handle tables are each held only for their own bookkeeping: never across
// a call into the store or the kernel, never while waiting. A change asks the gate
// (CommitGate::try_enter) before taking any lock.
//
// The commit hook is a gate: pause_writes() stops new changes and waits until no file is
// open for writing, the commit takes Store::snapshot(), and resume() or
// resume_with_new_base() opens the gate again. Requests that would change something are held
// by the gate while it is closed, without a worker waiting for them: resume() runs them on
// the commit thread. Reads, listings, flushes and closes go on, and so do writes and
// attribute changes through files open for writing until none is left.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "fusefs/commit_gate.h"
#include "fusefs/handles.h"
#include "fusefs/kernel_cache.h"
#include "fusefs/renumbering.h"
#include "imagecore/tree.h"
#include "stage/store.h"

namespace fusefs {

class OpenFiles;
struct OpenFile;

// What the target can still take. statfs shows capacity - target - staged - overhead; a
// write, truncate or fallocate that would pass it fails with ENOSPC at once.
struct StageLimits {
  uint64_t capacity_bytes = 0;  // 0: unlimited
  uint64_t used_by_target_bytes = 0;
  uint64_t session_overhead_bytes = 0;
};

class StageFs {
 public:
  // `store` must have its base set (Store::use_base) and outlive this object.
  StageFs(stage::Store& store, StageLimits limits);
  ~StageFs();

  // The operation table; the session's userdata must be this object.
  static const fuse_lowlevel_ops& ops();

  // The store this view shows and changes.
  stage::Store& store() { return store_; }
  // What the target can take from now on (statfs, ENOSPC). Throws nothing.
  void set_limits(const StageLimits& limits);
  // Bytes a commit could still add (capacity minus target, staged and overhead), or
  // UINT64_MAX when unlimited.
  uint64_t free_bytes();
  // Grows with every change and every write: unchanged for a while means quiet
  // (--auto-commit).
  uint64_t change_count() { return gate_.change_count(); }

  // Commit hook, step 1: closes the gate and waits up to `timeout` until no file is open for
  // writing and no change is under way. Returns an empty list when paused; otherwise the
  // stage paths of the files still open for writing, and the gate is open again. When
  // `cancelled` (asked about every 100 ms) says so first, the gate opens again and this
  // throws imagecore::Error(ECANCELED).
  std::vector<std::string> pause_writes(std::chrono::milliseconds timeout,
                                        const std::function<bool()>& cancelled = {});
  // Step 3 after a failed or dry commit: changes go on.
  void resume();
  // Step 3 after a successful commit: `base` (the new session) becomes the base, nothing is
  // staged, and changes go on. If the store cannot be reset this throws and stays paused.
  void resume_with_new_base(std::shared_ptr<const imagecore::FileTree> base,
                            uint64_t start_lba,
                            uint64_t blocks,
                            StageLimits limits);

  // Kernel caches. A commit or a discard renumbers or rewrites entries the kernel may still
  // hold for up to the entry timeout; kernel_names() lists the names it may hold (taken before
  // the change), forget_in_kernel() tells it to drop them and their attributes and pages.
  void set_session(fuse_session* se) { kernel_.set_session(se); }
  // kernel_names() also takes the paths of the inodes the kernel holds and keeps requests
  // out until resume() or resume_with_new_base() has bound them to the store's inodes at
  // those paths.
  using KernelName = fusefs::KernelName;
  std::vector<KernelName> kernel_names();
  void forget_in_kernel(std::vector<KernelName> names);

 private:
  friend struct StageOps;
  struct Handle;   // a file handle
  struct OpenDir;  // a directory handle: the listing taken at opendir
  // OpenFiles::open() and close(), purging an inode nothing refers to any more.
  std::shared_ptr<OpenFile> open_file(const stage::StoreEntry& e, bool writable);
  void close_file(const std::shared_ptr<OpenFile>& f, bool writable);
  // Purges `ino` from the store when it has no name left and neither the kernel nor a handle
  // refers to it any more. Throws nothing.
  void purge_if_unreferenced(imagecore::Ino ino);
  // What stat shows of `e`, with an open file's unsynced size and times.
  struct stat to_stat(const stage::StoreEntry& e);
  // The entry reply for `e`; counts a lookup.
  fuse_entry_param entry(const stage::StoreEntry& e);
  // The kernel dropped `n` lookups of `nodeid`. Throws nothing.
  void forget_one(imagecore::Ino nodeid, uint64_t n);
  // The store's inode of the kernel's node id `nodeid`. Throws nothing.
  imagecore::Ino to_store(imagecore::Ino nodeid) { return kernel_.store_ino(nodeid); }
  // After a commit or a discard (renumbering_ held alone): binds the node ids the kernel
  // held to the store's inodes at their paths, and lets requests in again. Throws nothing.
  void rebind();

  stage::Store& store_;
  StageLimits limits_;
  double timeout_ = 1.0;  // entry and attribute timeouts, in seconds

  CommitGate gate_;
  Renumbering renumbering_;
  // The commit thread's: whether it holds renumbering_ alone, and what kernel_names() took.
  bool renumbering_held_ = false;
  struct Held {
    imagecore::Ino nodeid;
    imagecore::Ino ino;  // the store's, before the change
    imagecore::FileType type;
    std::vector<std::string> path;  // empty: no name
  };
  std::vector<Held> held_;
  std::atomic<uint64_t> renumbered_{0};  // counts rebind(): older directory listings are stale
  KernelCache kernel_{store_, timeout_};
  std::unique_ptr<OpenFiles> files_;
  Handles<Handle> file_handles_;
  Handles<OpenDir> dir_handles_;
};

}  // namespace fusefs
