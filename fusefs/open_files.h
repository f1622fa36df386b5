// The open files of a stage mount: one OpenFile per inode with open handles, shared by all
// of them, and what makes their data durable (sync). Internal to fusefs: StageFs owns one.
//
// Lock order: an OpenFile's mutex, then the store's or the commit gate's; the table's own
// mutex is never held while anything else is locked or called. Threads: the FUSE workers, and
// the Syncer's two threads, which run fdatasync and the data/ fsync during sync().
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "fusefs/commit_gate.h"
#include "fusefs/syncer.h"
#include "imagecore/iso9660/zisofs.h"
#include "imagecore/tree.h"
#include "stage/store.h"

namespace fusefs {

// An inode with open handles: the descriptor of its staged copy, or the base node it reads
// from. Shared by all handles of the inode.
struct OpenFile {
  std::mutex mu;
  imagecore::Ino ino = 0;
  int fd = -1;                  // the Local data file, read-write
  int direct_fd = -1;           // the same file opened O_DIRECT, for aligned writes, once needed
  bool direct_refused = false;  // the store's filesystem refused O_DIRECT: write through fd
  std::shared_ptr<const imagecore::FileTree> base;
  imagecore::Node node;  // Base contents
  std::unique_ptr<imagecore::ZisofsReader> zisofs;
  unsigned opens = 0, writers = 0;
  uint64_t size = 0;  // current size, ahead of the store while dirty
  imagecore::Timestamp mtime, ctime;
  std::optional<imagecore::Timestamp> atime;  // set while open for writing, not yet stored
  bool dirty = false;                         // written since the last flush
  bool times_pending = false;                 // times set while open for writing, stored at flush
  bool new_file = false;                      // created here: data/ needs an fsync for its name
  bool no_set_id = false;  // has no set-ID bit a write must clear (known since the last chmod)
  uint64_t unkicked = 0;   // bytes written since writeback was last started
};

class OpenFiles {
 public:
  // `store` and `gate` must outlive this object; the gate counts handles open for writing.
  OpenFiles(stage::Store& store, CommitGate& gate) : store_(store), gate_(gate) {}
  // Closes the descriptors of files still open.
  ~OpenFiles();
  OpenFiles(const OpenFiles&) = delete;
  OpenFiles& operator=(const OpenFiles&) = delete;

  // A handle of `e` (already made Local when writable). Throws Error(errno) when the staged
  // copy cannot be opened, FormatError when the base file cannot be read.
  std::shared_ptr<OpenFile> open(const stage::StoreEntry& e, bool writable);
  // Closes a handle of `f`, syncing it when it was written (errors are logged). True when it
  // was the last handle: the file is closed and no longer in the table. Throws nothing.
  bool close(const std::shared_ptr<OpenFile>& f, bool writable);
  // fdatasync and record the size: what a close or fsync makes durable. The caller holds
  // f.mu. Throws Error(errno) naming the file.
  void sync(OpenFile& f);
  // Opens the staged copy of f (made Local, f.fd < 0) for reading and writing, and drops
  // the base reader. The caller holds f.mu. Throws Error(errno) naming the data file.
  void open_local(OpenFile& f);
  // A truncate (or extension) of an open file to `size`: flushes what was written, makes
  // the file Local and opens its staged copy. Returns the store's entry. The caller holds
  // f.mu. Throws as sync() and Store::make_local() do.
  stage::StoreEntry truncate(OpenFile& f, uint64_t size);
  // Keeps times set on f (ctime `now`) with its data, stored by the next sync, when f is open
  // for writing; false (nothing kept) when it is not. The caller holds f.mu. Throws nothing.
  bool defer_times(OpenFile& f,
                   std::optional<imagecore::Timestamp> atime,
                   std::optional<imagecore::Timestamp> mtime,
                   imagecore::Timestamp now);
  // Puts into `st` (a stat of `ino` from the store) the size and times an open file has
  // ahead of the store: written or set, not yet synced. Throws nothing.
  void show_pending(imagecore::Ino ino, struct stat& st);
  // The open file of `ino`, or null. Throws nothing.
  std::shared_ptr<OpenFile> find(imagecore::Ino ino);
  // Whether `ino` has an open handle. Throws nothing.
  bool is_open(imagecore::Ino ino);
  // The stage paths of the files open for writing ("(inode N, deleted)" for one without a
  // name), for the message of a commit that cannot pause. Throws bad_alloc.
  std::vector<std::string> writer_paths();

  // Up to `size` bytes of f from `off`, fewer at its end. The caller holds f.mu. Throws
  // Error(errno) naming the data file, FormatError when the base file cannot be read.
  std::vector<std::byte> read(OpenFile& f, size_t size, off_t off);
  // Writes `size` bytes of `data` at `off` into f's staged copy and marks it dirty; returns
  // the bytes written. The caller holds f.mu. Throws Error(EBADF) when f has no staged copy
  // open, Error(EFBIG) at stage::kMaxFileBytes (writing what fits before it),
  // Error(ENOSPC) when the target could not take the growth, Error(errno) naming the
  // data file.
  size_t write(OpenFile& f, const char* data, size_t size, off_t off);
  // fallocate(2) on f's staged copy; `mode` is 0 or FALLOC_FL_KEEP_SIZE. The caller holds
  // f.mu. Throws as write() does.
  void allocate(OpenFile& f, int mode, off_t off, off_t len);

 private:
  // The descriptor a write of `size` bytes at `off` from `data` goes through (see the .cc).
  int write_fd(OpenFile& f, const char* data, size_t size, off_t off);

  stage::Store& store_;
  CommitGate& gate_;
  Syncer syncer_{2};  // a file's data and its data/ entry, synced beside its record
  std::mutex mu_;
  std::unordered_map<imagecore::Ino, std::shared_ptr<OpenFile>> open_;
};

}  // namespace fusefs
