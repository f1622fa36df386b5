#include "fusefs/stage_fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <shared_mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fusefs/clock.h"
#include "fusefs/dir_reply.h"
#include "fusefs/errors.h"
#include "fusefs/mode.h"
#include "fusefs/open_files.h"
#include "imagecore/base/error.h"

namespace fusefs {

using imagecore::Error;
using imagecore::FileType;
using imagecore::Ino;
using imagecore::Timestamp;
using stage::StoreEntry;

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  const int e = errno;
  throw Error(e, fmt::format("{}: {}", what, std::strerror(e)));
}

void check_name(const char* name) {
  if (std::strlen(name) > 255)
    throw Error(ENAMETOOLONG, "name too long");
}

// A trash folder of the freedesktop.org trash spec at the top of a mount: ".Trash" (shared)
// or ".Trash-UID" (one user's). File managers move "deleted" files there.
bool is_trash_name(std::string_view name) {
  if (name == ".Trash")
    return true;
  constexpr std::string_view kUser = ".Trash-";
  if (name.size() <= kUser.size() || name.substr(0, kUser.size()) != kUser)
    return false;
  return std::all_of(name.begin() + kUser.size(), name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// No trash on the stage: what a file manager "deletes" there would be committed with the
// next session. Refusing the folder makes GIO (Nautilus, `gio trash`) report that the file
// cannot be moved to the trash, and offer to delete it for good.
void refuse_trash(fuse_ino_t parent, const char* name) {
  if (parent == FUSE_ROOT_ID && is_trash_name(name))
    throw Error(EPERM, fmt::format("{}: no trash folder on a stage (it would be committed)", name));
}

// The permission bits `perm` keeps after a write or truncate by the caller of `req`: a
// process without CAP_FSETID (taken as: not root) loses set-user-ID, and set-group-ID when
// group execution is on, as the kernel's own rule for FUSE (fs/fuse/dir.c) has it.
uint32_t perm_after_write(fuse_req_t req, uint32_t perm) {
  if (fuse_req_ctx(req)->uid == 0)
    return perm;
  perm &= ~static_cast<uint32_t>(S_ISUID);
  if (perm & S_IXGRP)
    perm &= ~static_cast<uint32_t>(S_ISGID);
  return perm;
}

StageFs& self(fuse_req_t req) {
  return *static_cast<StageFs*>(fuse_req_userdata(req));
}

}  // namespace

// A file handle: the inode's open file, shared with its other handles.
struct StageFs::Handle {
  std::shared_ptr<OpenFile> file;
  bool writable = false;
  bool direct = false;  // direct_io: the kernel leaves the set-ID bits of writes to us
};

// A listing taken at opendir, so offsets stay valid while the folder changes.
struct StageFs::OpenDir {
  Ino parent = imagecore::kRootIno;
  uint64_t renumbered = 0;  // StageFs::renumbered_ when listed
  std::vector<stage::Store::Child> children;
};

StageFs::StageFs(stage::Store& store, StageLimits limits)
    : store_(store), files_(std::make_unique<OpenFiles>(store, gate_)) {
  set_limits(limits);
}

StageFs::~StageFs() = default;

void StageFs::set_limits(const StageLimits& limits) {
  limits_ = limits;
  uint64_t max = UINT64_MAX;
  if (limits.capacity_bytes) {
    const uint64_t taken = limits.used_by_target_bytes + limits.session_overhead_bytes;
    max = limits.capacity_bytes > taken ? limits.capacity_bytes - taken : 0;
  }
  store_.set_limit(max);
}

uint64_t StageFs::free_bytes() {
  if (!limits_.capacity_bytes)
    return UINT64_MAX;
  const uint64_t taken =
      limits_.used_by_target_bytes + limits_.session_overhead_bytes + store_.staged_bytes();
  return limits_.capacity_bytes > taken ? limits_.capacity_bytes - taken : 0;
}

// ---- kernel caches ---------------------------------------------------------------------

std::vector<StageFs::KernelName> StageFs::kernel_names() {
  if (!renumbering_held_) {
    renumbering_.lock();
    renumbering_held_ = true;
  }
  try {
    std::vector<KernelName> names = kernel_.kernel_names();
    held_.clear();
    for (const auto& [id, ino] : kernel_.held_nodeids()) {
      if (ino == imagecore::kRootIno)
        continue;
      Held h{id, ino, FileType::Regular, {}};
      try {
        h.type = store_.get(ino).attr.type;
        // No name left (unlinked while open): the store keeps the inode as it is.
        if (std::optional<std::vector<std::string>> names = store_.path_names(ino))
          h.path = std::move(*names);
      } catch (const Error&) {
        continue;
      }
      held_.push_back(std::move(h));
    }
    return names;
  } catch (...) {
    held_.clear();
    renumbering_held_ = false;
    renumbering_.unlock();
    throw;
  }
}

void StageFs::forget_in_kernel(std::vector<KernelName> names) {
  // A name that still leads to the inode the kernel has under it stays: a working directory
  // or an open file keeps its path (getcwd). Its attributes and pages are dropped all the same.
  for (KernelName& k : names) {
    if (k.parent == 0)
      continue;
    try {
      std::shared_lock hold(renumbering_);
      if (store_.lookup(to_store(k.parent), k.name).attr.ino == to_store(k.ino))
        k.parent = 0;
    } catch (const std::exception&) {
    }
  }
  kernel_.forget_in_kernel(names);
}

// ---- the commit hook -------------------------------------------------------------------

std::vector<std::string> StageFs::pause_writes(std::chrono::milliseconds timeout,
                                               const std::function<bool()>& cancelled) {
  const CommitGate::Paused paused = gate_.pause(timeout, cancelled);
  if (paused == CommitGate::Paused::Yes)
    return {};
  if (paused == CommitGate::Paused::Cancelled) {
    gate_.resume();
    throw Error(ECANCELED, "cancelled while waiting for files open for writing");
  }
  std::vector<std::string> names = files_->writer_paths();
  if (names.empty())
    names.push_back("(a change still under way)");
  gate_.resume();
  return names;
}

// A commit renumbers every inode of the store, a discard those it drops (numbers are never
// reused). The inodes the kernel holds keep their node ids: each is bound to the store's inode
// now at the path it had before the change (kernel_names()), when that is of the same type;
// one without a name (unlinked while open, kept by the store) to the same inode.
void StageFs::rebind() {
  try {
    std::vector<std::pair<Ino, Ino>> now;
    now.reserve(held_.size());
    for (const Held& h : held_) {
      try {
        Ino at = h.path.empty() ? h.ino : imagecore::kRootIno;
        for (const std::string& name : h.path)
          at = store_.lookup(at, name).attr.ino;
        if (store_.get(at).attr.type == h.type)
          now.emplace_back(h.nodeid, at);
      } catch (const Error&) {
        // gone since: its node id gives ENOENT
      }
    }
    kernel_.rebind(now);
  } catch (const std::exception& e) {
    spdlog::error("after a commit or discard, the inodes the kernel holds are lost: {}", e.what());
  }
  held_.clear();
  renumbered_.fetch_add(1);
}

void StageFs::resume() {
  if (renumbering_held_) {
    rebind();
    renumbering_held_ = false;
    renumbering_.unlock();
  }
  gate_.resume();
}

void StageFs::resume_with_new_base(std::shared_ptr<const imagecore::FileTree> base,
                                   uint64_t start_lba,
                                   uint64_t blocks,
                                   StageLimits limits) {
  store_.reset_to_new_base(std::move(base), start_lba, blocks);
  set_limits(limits);
  resume();
}

// ---- open files ------------------------------------------------------------------------

std::shared_ptr<OpenFile> StageFs::open_file(const StoreEntry& e, bool writable) {
  try {
    return files_->open(e, writable);
  } catch (...) {
    purge_if_unreferenced(e.attr.ino);
    throw;
  }
}

void StageFs::close_file(const std::shared_ptr<OpenFile>& f, bool writable) {
  if (files_->close(f, writable))
    purge_if_unreferenced(f->ino);
}

// The kernel's references and the open handles are counted under two mutexes. Each side
// drops its own count first and then calls this, which reads both: whichever comes second
// sees both gone (purging twice is harmless).
void StageFs::purge_if_unreferenced(Ino ino) {
  if (kernel_.held(ino) || files_->is_open(ino))
    return;
  try {
    store_.purge_if_orphan(ino);
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
  }
}

struct stat StageFs::to_stat(const StoreEntry& e) {
  const imagecore::Attr& a = e.attr;
  struct stat st {};
  st.st_ino = kernel_.nodeid(a.ino);
  st.st_mode = type_bits(a.type) | a.perm;
  st.st_nlink = a.type == FileType::Directory ? 2 + store_.subdir_count(a.ino) : a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_rdev = a.rdev;
  st.st_mtim = {static_cast<time_t>(a.mtime.sec), static_cast<long>(a.mtime.nsec)};
  st.st_atim = {static_cast<time_t>(a.atime.sec), static_cast<long>(a.atime.nsec)};
  st.st_ctim = {static_cast<time_t>(a.ctime.sec), static_cast<long>(a.ctime.nsec)};
  if (a.type == FileType::Regular)
    files_->show_pending(a.ino, st);
  st.st_blksize = 1 << 20;
  st.st_blocks = (st.st_size + 511) / 512;
  return st;
}

fuse_entry_param StageFs::entry(const StoreEntry& e) {
  fuse_entry_param p{};
  p.attr = to_stat(e);
  p.ino = p.attr.st_ino = kernel_.hand_out(e.attr.ino);
  p.attr_timeout = timeout_;
  p.entry_timeout = timeout_;
  return p;
}

void StageFs::forget_one(Ino nodeid, uint64_t n) {
  if (const std::optional<Ino> ino = kernel_.forget(nodeid, n))
    purge_if_unreferenced(*ino);
}

// ---- the operations --------------------------------------------------------------------

struct StageOps {
  // A change of `kind`: runs f(fs) when the commit gate lets it pass, counted while it runs;
  // otherwise the gate keeps it and runs it again on resume, and this worker goes on serving
  // (the close a commit waits for must find a worker). So `f` owns copies of the request's
  // arguments: it may run after this callback returned.
  template <typename F>
  static void change(fuse_req_t req, F f, CommitGate::Kind kind = CommitGate::Kind::Change) {
    StageFs& fs = self(req);
    if (!fs.gate_.try_enter(kind)) {
      CommitGate::Deferred later{[req, f, kind] { change(req, f, kind); },
                                 [req] { fuse_reply_err(req, ENODEV); }};
      bool held;
      try {
        held = fs.gate_.defer(kind, std::move(later));
      } catch (...) {
        fuse_reply_err(req, ENOMEM);
        return;
      }
      if (held)
        return;
    }
    struct Leave {
      StageFs& fs;
      ~Leave() { fs.gate_.leave(); }
    } leave{fs};
    std::shared_lock hold(fs.renumbering_);
    guarded(req, [&] { f(fs); });
  }

  // A change through a file open for writing passes while a commit waits for that file.
  static CommitGate::Kind kind_for(StageFs& fs, fuse_ino_t ino) {
    const std::shared_ptr<OpenFile> f = fs.files_->find(ino);
    if (!f)
      return CommitGate::Kind::Change;
    std::lock_guard lock(f->mu);
    return f->writers ? CommitGate::Kind::Write : CommitGate::Kind::Change;
  }

  static void init(void* userdata, fuse_conn_info* conn) {
    StageFs& fs = *static_cast<StageFs*>(userdata);
    fs.store_.update_lock_owner();  // after daemonizing the process id changed
    auto want = [conn](unsigned cap) {
      if (conn->capable & cap)
        conn->want |= cap;
    };
    want(FUSE_CAP_ASYNC_READ);
    want(FUSE_CAP_ATOMIC_O_TRUNC);
    want(FUSE_CAP_CACHE_SYMLINKS);
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    // 1 MiB writes: a copy of a big file costs a FUSE round trip per request, so fewer,
    // larger requests (st_blksize below makes cp use 1 MiB buffers).
    conn->max_write = 1u << 20;
  }

  // The session ends: requests still held at the gate get their answer now.
  static void destroy(void* userdata) { static_cast<StageFs*>(userdata)->gate_.shut(); }

  static void add_entry(fuse_req_t req, StageFs& fs, const StoreEntry& e) {
    fuse_entry_param p = fs.entry(e);
    if (fuse_reply_entry(req, &p) != 0)
      fs.forget_one(p.ino, 1);
  }

  static void lookup(fuse_req_t req, fuse_ino_t old, const char* name) {
    guarded(req, [&] {
      check_name(name);
      StageFs& fs = self(req);
      std::shared_lock hold(fs.renumbering_);
      const Ino parent = fs.to_store(old);
      std::optional<StoreEntry> e;
      try {
        e = fs.store_.lookup(parent, name);
      } catch (const Error& err) {
        // A cached negative entry spares the next lookup of the name (cp looks a name up
        // before creating it); commit and discard drop them again.
        if (err.code() != ENOENT || !fs.kernel_.remember_negative(old, name))
          throw;
        fuse_entry_param p{};
        p.entry_timeout = fs.timeout_;
        fuse_reply_entry(req, &p);
        return;
      }
      add_entry(req, fs, *e);
    });
  }

  static void forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
    self(req).forget_one(ino, n);
    fuse_reply_none(req);
  }
  static void forget_multi(fuse_req_t req, size_t count, fuse_forget_data* list) {
    for (size_t i = 0; i < count; ++i)
      self(req).forget_one(list[i].ino, list[i].nlookup);
    fuse_reply_none(req);
  }

  static void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    guarded(req, [&] {
      StageFs& fs = self(req);
      std::shared_lock hold(fs.renumbering_);
      struct stat st = fs.to_stat(fs.store_.get(fs.to_store(ino)));
      st.st_ino = ino;  // the kernel's number for it
      fuse_reply_attr(req, &st, fs.timeout_);
    });
  }

  // The attribute changes of a setattr; "now" is `t`.
  static stage::AttrChange attr_change(const struct stat& attr, int to_set, Timestamp t) {
    stage::AttrChange c;
    if (to_set & FUSE_SET_ATTR_MODE)
      c.perm = attr.st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID)
      c.uid = attr.st_uid;
    if (to_set & FUSE_SET_ATTR_GID)
      c.gid = attr.st_gid;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW)
      c.atime = t;
    else if (to_set & FUSE_SET_ATTR_ATIME)
      c.atime = from_timespec(attr.st_atim);
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
      c.mtime = t;
    else if (to_set & FUSE_SET_ATTR_MTIME)
      c.mtime = from_timespec(attr.st_mtim);
    return c;
  }

  static bool only_times(int to_set) {
    constexpr int kTimes = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                           FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;
    return !(to_set & ~kTimes) && (to_set & kTimes);
  }

  static void setattr(fuse_req_t req,
                      fuse_ino_t ino,
                      struct stat* in_attr,
                      int to_set,
                      fuse_file_info*) {
    const struct stat copy = *in_attr;
    change(
        req,
        [req, old = ino, copy, to_set](StageFs& fs) {
          const Ino ino = fs.to_store(old);
          const struct stat* attr = &copy;
          std::shared_ptr<OpenFile> f = fs.files_->find(ino);
          if (to_set & FUSE_SET_ATTR_SIZE) {
            const auto size = static_cast<uint64_t>(attr->st_size);
            if (f) {
              std::lock_guard lock(f->mu);
              fs.files_->truncate(*f, size);
            } else {
              fs.store_.make_local(ino, size);
            }
          }
          const Timestamp t = now();
          const stage::AttrChange c = attr_change(*attr, to_set, t);
          bool deferred = false;
          if (f && only_times(to_set)) {
            std::lock_guard lock(f->mu);
            deferred = fs.files_->defer_times(*f, c.atime, c.mtime, t);
          }
          if (deferred) {
            struct stat st = fs.to_stat(fs.store_.get(ino));
            fuse_reply_attr(req, &st, fs.timeout_);
            return;
          }
          if (c.mtime && f) {
            std::lock_guard lock(f->mu);
            f->mtime = *c.mtime;  // what the next flush records, unless written again
          }
          if (c.perm && f) {
            std::lock_guard lock(f->mu);
            f->no_set_id = false;
          }
          StoreEntry e = fs.store_.set_attr(ino, c);
          struct stat st = fs.to_stat(e);
          fuse_reply_attr(req, &st, fs.timeout_);
        },
        kind_for(self(req), self(req).to_store(ino)));
  }

  static void readlink(fuse_req_t req, fuse_ino_t ino) {
    guarded(req, [&] {
      StageFs& fs = self(req);
      std::shared_lock hold(fs.renumbering_);
      StoreEntry e = fs.store_.get(fs.to_store(ino));
      if (e.attr.type != FileType::Symlink)
        throw Error(EINVAL, "not a symlink");
      fuse_reply_readlink(req, e.symlink.c_str());
    });
  }

  // Owner and mode of a new entry: the caller's, with a set-group-ID parent's group.
  static StoreEntry make(fuse_req_t req,
                         StageFs& fs,
                         fuse_ino_t parent,
                         const char* name,
                         FileType type,
                         mode_t mode,
                         dev_t rdev,
                         const std::string& target) {
    check_name(name);
    const fuse_ctx* ctx = fuse_req_ctx(req);
    uint32_t gid = ctx->gid;
    uint32_t perm = mode & 07777;
    const StoreEntry p = fs.store_.get(parent);
    if (p.attr.perm & S_ISGID) {
      gid = p.attr.gid;
      if (type == FileType::Directory)
        perm |= S_ISGID;
    }
    return fs.store_.make(parent, name, type, perm, ctx->uid, gid, rdev, target);
  }

  static void mknod(fuse_req_t req,
                    fuse_ino_t parent,
                    const char* in_name,
                    mode_t mode,
                    dev_t rdev) {
    change(req, [req, old = parent, name = std::string(in_name), mode, rdev](StageFs& fs) {
      const Ino parent = fs.to_store(old);
      FileType t;
      switch (mode & S_IFMT) {
        case S_IFREG:
        case 0:
          t = FileType::Regular;
          break;
        case S_IFIFO:
          t = FileType::Fifo;
          break;
        case S_IFCHR:
          t = FileType::CharDevice;
          break;
        case S_IFBLK:
          t = FileType::BlockDevice;
          break;
        case S_IFSOCK:
          t = FileType::Socket;
          break;
        default:
          throw Error(EINVAL, "unknown file type");
      }
      const bool dev = t == FileType::CharDevice || t == FileType::BlockDevice;
      add_entry(req, fs, make(req, fs, parent, name.c_str(), t, mode, dev ? rdev : 0, {}));
    });
  }

  static void mkdir(fuse_req_t req, fuse_ino_t parent, const char* in_name, mode_t mode) {
    change(req, [req, old = parent, name = std::string(in_name), mode](StageFs& fs) {
      const Ino parent = fs.to_store(old);
      refuse_trash(parent, name.c_str());
      add_entry(req, fs, make(req, fs, parent, name.c_str(), FileType::Directory, mode, 0, {}));
    });
  }

  static void symlink(fuse_req_t req,
                      const char* in_target,
                      fuse_ino_t parent,
                      const char* in_name) {
    change(req, [req, old = parent, name = std::string(in_name),
                 target = std::string(in_target)](StageFs& fs) {
      const Ino parent = fs.to_store(old);
      add_entry(req, fs, make(req, fs, parent, name.c_str(), FileType::Symlink, 0777, 0, target));
    });
  }

  static void unlink(fuse_req_t req, fuse_ino_t parent, const char* in_name) {
    change(req, [req, old = parent, name = std::string(in_name)](StageFs& fs) {
      const Ino parent = fs.to_store(old);
      fs.store_.unlink(parent, name);
      fuse_reply_err(req, 0);
    });
  }

  static void rmdir(fuse_req_t req, fuse_ino_t parent, const char* in_name) {
    change(req, [req, old = parent, name = std::string(in_name)](StageFs& fs) {
      const Ino parent = fs.to_store(old);
      fs.store_.rmdir(parent, name);
      fuse_reply_err(req, 0);
    });
  }

  static void rename(fuse_req_t req,
                     fuse_ino_t parent,
                     const char* in_name,
                     fuse_ino_t newparent,
                     const char* in_newname,
                     unsigned flags) {
    change(req, [req, old = parent, name = std::string(in_name), old_new = newparent,
                 newname = std::string(in_newname), flags](StageFs& fs) {
      const Ino parent = fs.to_store(old), newparent = fs.to_store(old_new);
      check_name(newname.c_str());
      refuse_trash(newparent, newname.c_str());
      if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE))
        throw Error(EINVAL, "only RENAME_NOREPLACE is supported");
      fs.store_.rename(parent, name, newparent, newname, flags & RENAME_NOREPLACE);
      fuse_reply_err(req, 0);
    });
  }

  static void link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* in_newname) {
    change(req,
           [req, old = ino, old_new = newparent, newname = std::string(in_newname)](StageFs& fs) {
             const Ino ino = fs.to_store(old), newparent = fs.to_store(old_new);
             check_name(newname.c_str());
             add_entry(req, fs, fs.store_.link(ino, newparent, newname));
           });
  }

  // Opens `e` (already made Local when writable); replies with open or create.
  static void reply_open(fuse_req_t req,
                         StageFs& fs,
                         const StoreEntry& e,
                         bool writable,
                         fuse_file_info* fi,
                         bool created) {
    auto h = std::make_unique<StageFs::Handle>();
    const std::shared_ptr<OpenFile> file = h->file = fs.open_file(e, writable);
    h->writable = writable;
    const bool direct = h->direct = (fi->flags & O_ACCMODE) == O_WRONLY;
    if (created) {
      std::lock_guard lock(file->mu);
      file->new_file = true;
    }
    try {
      fi->fh = fs.file_handles_.add(std::move(h));
    } catch (...) {
      fs.close_file(file, writable);
      throw;
    }
    // A write-only handle (cp, tar, rsync) writes past the page cache: the kernel hands the
    // writer's own pages to this process instead of first copying them into cached pages of
    // this file, and a big copy does not leave a second cached copy of everything it wrote.
    // Such a handle can neither read nor be mapped; other handles stay cached, and the
    // kernel drops cached pages a direct write overwrites.
    fi->direct_io = direct;
    int rc;
    if (created) {
      fuse_entry_param p = fs.entry(e);
      rc = fuse_reply_create(req, &p, fi);
      if (rc != 0)
        fs.forget_one(p.ino, 1);
    } else {
      rc = fuse_reply_open(req, fi);
    }
    if (rc != 0) {
      fs.file_handles_.remove(fi->fh);
      fs.close_file(file, writable);
    }
  }

  static bool wants_write(const fuse_file_info* fi) {
    return (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  }

  static void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    StageFs& fs = self(req);
    if (!wants_write(fi)) {
      guarded(req, [&] {
        std::shared_lock hold(fs.renumbering_);
        StoreEntry e = fs.store_.get(fs.to_store(ino));
        if (e.attr.type == FileType::Directory)
          throw Error(EISDIR, "is a folder");
        reply_open(req, fs, e, false, fi, false);
      });
      return;
    }
    change(req, [req, old = ino, copy = *fi](StageFs& fs) mutable {
      const Ino ino = fs.to_store(old);
      fuse_file_info* fi = &copy;
      StoreEntry e = fs.store_.get(ino);
      if (e.attr.type == FileType::Directory)
        throw Error(EISDIR, "is a folder");
      if (e.attr.type != FileType::Regular)
        throw Error(EINVAL, "not a regular file");
      if (fi->flags & O_TRUNC) {
        // The kernel leaves an atomic O_TRUNC's set-ID bits to us.
        drop_set_id(req, fs, ino, e.attr.perm);
        std::shared_ptr<OpenFile> f = fs.files_->find(ino);
        if (f) {
          std::lock_guard lock(f->mu);
          e = fs.store_.make_local(ino, 0);
          f->size = 0;
          f->dirty = false;
          f->mtime = e.attr.mtime;
          f->ctime = e.attr.ctime;
        } else {
          e = fs.store_.make_local(ino, 0);
        }
      } else {
        e = fs.store_.make_local(ino, std::nullopt);
      }
      reply_open(req, fs, e, true, fi, false);
    });
  }

  static void create(fuse_req_t req,
                     fuse_ino_t parent,
                     const char* in_name,
                     mode_t mode,
                     fuse_file_info* fi) {
    change(req,
           [req, old = parent, name = std::string(in_name), mode, copy = *fi](StageFs& fs) mutable {
             const Ino parent = fs.to_store(old);
             StoreEntry e = make(req, fs, parent, name.c_str(), FileType::Regular, mode, 0, {});
             reply_open(req, fs, e, true, &copy, true);
           });
  }

  static StageFs::Handle& handle(fuse_file_info* fi) {
    return Handles<StageFs::Handle>::get(fi->fh);
  }

  static void read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    guarded(req, [&] {
      OpenFile& f = *handle(fi).file;
      std::vector<std::byte> buf;
      {
        std::lock_guard lock(f.mu);
        buf = self(req).files_->read(f, size, off);
      }
      fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), buf.size());
    });
  }

  // Writes go through a handle open for writing, so they pass while a commit waits for it
  // to close; a write that comes while the gate is fully paused is held with a copy of its
  // data (there is no handle open for writing then, so this is rare).
  static void write(fuse_req_t req,
                    fuse_ino_t ino,
                    const char* data,
                    size_t size,
                    off_t off,
                    fuse_file_info* fi) {
    StageFs& fs = self(req);
    const uint64_t fh = fi->fh;
    if (fs.gate_.try_enter(CommitGate::Kind::Write)) {
      write_now(req, fs, ino, data, size, off, fh);
      return;
    }
    auto held = std::make_shared<std::vector<char>>(data, data + size);
    change(
        req,
        [req, old = ino, held, off, fh](StageFs& fs) {
          const StageFs::Handle& h = Handles<StageFs::Handle>::get(fh);
          OpenFile& f = *h.file;
          size_t done;
          {
            std::lock_guard lock(f.mu);
            kill_set_id(req, fs, h, f, fs.to_store(old));
            done = fs.files_->write(f, held->data(), held->size(), off);
          }
          fuse_reply_write(req, done);
        },
        CommitGate::Kind::Write);
  }

  // A write counted at the gate: writes, replies, leaves the gate.
  static void write_now(fuse_req_t req,
                        StageFs& fs,
                        fuse_ino_t ino,
                        const char* data,
                        size_t size,
                        off_t off,
                        uint64_t fh) {
    struct Leave {
      StageFs& fs;
      ~Leave() { fs.gate_.leave(); }
    } leave{fs};
    guarded(req, [&] {
      const StageFs::Handle& h = Handles<StageFs::Handle>::get(fh);
      OpenFile& f = *h.file;
      size_t done;
      {
        std::lock_guard lock(f.mu);
        kill_set_id(req, fs, h, f, fs.to_store(ino));
        done = fs.files_->write(f, data, size, off);
      }
      fuse_reply_write(req, done);
    });
  }

  // Before a write through `h` (f.mu held): the kernel clears set-ID bits before cached
  // writes, not before direct ones, so the stage does it for those.
  static void kill_set_id(fuse_req_t req,
                          StageFs& fs,
                          const StageFs::Handle& h,
                          OpenFile& f,
                          Ino ino) {
    if (!h.direct || f.no_set_id)
      return;
    const StoreEntry e = fs.store_.get(ino);
    const uint32_t perm = drop_set_id(req, fs, ino, e.attr.perm);
    f.no_set_id = !(perm & (S_ISUID | S_ISGID));
  }

  // Stores the permission bits `ino` (now `perm`) keeps after a write by the caller of `req`
  // (perm_after_write), and returns them.
  static uint32_t drop_set_id(fuse_req_t req, StageFs& fs, Ino ino, uint32_t perm) {
    const uint32_t kept = perm_after_write(req, perm);
    if (kept != perm) {
      stage::AttrChange c;
      c.perm = kept;
      fs.store_.set_attr(ino, c);
    }
    return kept;
  }

  static void fallocate(fuse_req_t req,
                        fuse_ino_t,
                        int mode,
                        off_t off,
                        off_t len,
                        fuse_file_info* fi) {
    change(
        req,
        [req, mode, off, len, fh = fi->fh](StageFs& fs) {
          if (mode & ~FALLOC_FL_KEEP_SIZE)
            throw Error(EOPNOTSUPP, "only plain fallocate is supported");
          OpenFile& f = *Handles<StageFs::Handle>::get(fh).file;
          {
            std::lock_guard lock(f.mu);
            fs.files_->allocate(f, mode, off, len);
          }
          fuse_reply_err(req, 0);
        },
        CommitGate::Kind::Write);
  }

  static void flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    guarded(req, [&] {
      OpenFile& f = *handle(fi).file;
      std::lock_guard lock(f.mu);
      self(req).files_->sync(f);
      fuse_reply_err(req, 0);
    });
  }

  static void fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) { flush(req, 0, fi); }

  static void release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    StageFs& fs = self(req);
    const std::unique_ptr<StageFs::Handle> h = fs.file_handles_.remove(fi->fh);
    fs.close_file(h->file, h->writable);
    fuse_reply_err(req, 0);
  }

  static void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, [&] {
      StageFs& fs = self(req);
      std::shared_lock hold(fs.renumbering_);
      auto od = std::make_unique<StageFs::OpenDir>();
      od->renumbered = fs.renumbered_.load();
      od->children = fs.store_.list(fs.to_store(ino));
      od->parent = fs.store_.parent_of(fs.to_store(ino));
      fs.dir_handles_.reply_open(req, fi, std::move(od));
    });
  }

  static void releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    self(req).dir_handles_.reply_release(req, fi);
  }

  static void readdir_common(fuse_req_t req,
                             fuse_ino_t ino,
                             size_t size,
                             off_t off,
                             fuse_file_info* fi,
                             bool plus) {
    guarded(req, [&] {
      StageFs& fs = self(req);
      std::shared_lock hold(fs.renumbering_);
      const StageFs::OpenDir& od = Handles<StageFs::OpenDir>::get(fi->fh);
      // A listing taken before a commit or a discard names inodes by their old numbers: it
      // gives the kernel no entries then, which looks the names up when it needs them.
      const bool stale = od.renumbered != fs.renumbered_.load();
      std::unordered_map<fuse_ino_t, Ino> handed;  // node id -> store inode
      DirListing listing;
      listing.ino = ino;
      listing.parent = fs.kernel_.nodeid(od.parent);
      listing.count = od.children.size();
      listing.child = [&](size_t i) {
        const stage::Store::Child& c = od.children[i];
        DirChild d{c.name.c_str(), {}};
        if (plus && !stale) {
          d.entry.attr = fs.to_stat(c.entry);
          d.entry.ino = d.entry.attr.st_ino;
          handed[d.entry.ino] = c.entry.attr.ino;
        } else {
          // The kernel takes only the number and the type from these (no folder's
          // subfolders are counted for them).
          d.entry.attr.st_ino = fs.kernel_.nodeid(c.entry.attr.ino);
          d.entry.attr.st_mode = type_bits(c.entry.attr.type);
        }
        d.entry.attr_timeout = d.entry.entry_timeout = fs.timeout_;
        return d;
      };
      listing.counted = [&](fuse_ino_t child) { fs.kernel_.looked_up(child, handed.at(child)); };
      reply_dir(req, listing, size, off, plus);
    });
  }
  static void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    readdir_common(req, ino, size, off, fi, false);
  }
  static void readdirplus(fuse_req_t req,
                          fuse_ino_t ino,
                          size_t size,
                          off_t off,
                          fuse_file_info* fi) {
    readdir_common(req, ino, size, off, fi, true);
  }

  // The namespace is durable when each change returns.
  static void fsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

  static void statfs(fuse_req_t req, fuse_ino_t) {
    guarded(req, [&] {
      StageFs& fs = self(req);
      constexpr uint64_t kBlock = 4096;
      struct statvfs s {};
      if (fs.limits_.capacity_bytes) {
        s.f_blocks = fs.limits_.capacity_bytes / kBlock;
        s.f_bfree = s.f_bavail = fs.free_bytes() / kBlock;
      } else {
        // Unlimited target: what the store's disk can take.
        struct statvfs disk {};
        if (::statvfs(fs.store_.dir().c_str(), &disk) != 0)
          throw_errno(fs.store_.dir());
        s.f_blocks = disk.f_blocks * disk.f_frsize / kBlock;
        s.f_bfree = s.f_bavail = disk.f_bavail * disk.f_frsize / kBlock;
      }
      s.f_bsize = s.f_frsize = kBlock;
      s.f_files = 1u << 30;
      s.f_ffree = s.f_favail = 1u << 29;
      s.f_namemax = 255;
      fuse_reply_statfs(req, &s);
    });
  }

  // Extended attributes are not staged: ENOSYS makes the kernel answer EOPNOTSUPP itself.
  static void setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
    fuse_reply_err(req, ENOSYS);
  }
  static void getxattr(fuse_req_t req, fuse_ino_t, const char*, size_t) {
    fuse_reply_err(req, ENOSYS);
  }
  static void listxattr(fuse_req_t req, fuse_ino_t, size_t) { fuse_reply_err(req, ENOSYS); }
  static void removexattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, ENOSYS); }
};

const fuse_lowlevel_ops& StageFs::ops() {
  static const fuse_lowlevel_ops table = [] {
    fuse_lowlevel_ops o{};
    o.init = StageOps::init;
    o.destroy = StageOps::destroy;
    o.lookup = StageOps::lookup;
    o.forget = StageOps::forget;
    o.forget_multi = StageOps::forget_multi;
    o.getattr = StageOps::getattr;
    o.setattr = StageOps::setattr;
    o.readlink = StageOps::readlink;
    o.mknod = StageOps::mknod;
    o.mkdir = StageOps::mkdir;
    o.unlink = StageOps::unlink;
    o.rmdir = StageOps::rmdir;
    o.symlink = StageOps::symlink;
    o.rename = StageOps::rename;
    o.link = StageOps::link;
    o.open = StageOps::open;
    o.create = StageOps::create;
    o.read = StageOps::read;
    o.write = StageOps::write;
    o.fallocate = StageOps::fallocate;
    o.flush = StageOps::flush;
    o.fsync = StageOps::fsync;
    o.release = StageOps::release;
    o.opendir = StageOps::opendir;
    o.readdir = StageOps::readdir;
    o.readdirplus = StageOps::readdirplus;
    o.releasedir = StageOps::releasedir;
    o.fsyncdir = StageOps::fsyncdir;
    o.statfs = StageOps::statfs;
    o.setxattr = StageOps::setxattr;
    o.getxattr = StageOps::getxattr;
    o.listxattr = StageOps::listxattr;
    o.removexattr = StageOps::removexattr;
    return o;
  }();
  return table;
}

}  // namespace fusefs
