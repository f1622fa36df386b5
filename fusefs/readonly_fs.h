// The read-only FUSE view of an image (FUSE low-level API). The kernel's inode references
// need no table here: imagecore derives every inode number from on-disc locations, so lookup
// counts can be ignored (forget is a no-op) and memory stays bounded by imagecore's caches.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "fusefs/handles.h"
#include "imagecore/base/small_lru.h"
#include "imagecore/iso9660/zisofs.h"
#include "imagecore/tree.h"

namespace fusefs {

// Presentation choices made at mount time.
struct ViewOptions {
  std::optional<uid_t> uid;     // owner of every file (uid=)
  std::optional<gid_t> gid;     // group of every file (gid=)
  std::optional<mode_t> umask;  // bits cleared from every mode (umask=)
  uid_t default_uid = 0;        // owner where the tree records none (no Rock Ridge)
  gid_t default_gid = 0;
  double timeout = 86400.0 * 365;  // entry and attribute timeouts: the image never changes
  // Hand plainly stored file data to the kernel by splice instead of copying it. Off by
  // default: on the kernels measured (6.18) copying was faster (README, Performance).
  bool splice = false;
};

class ReadOnlyFs {
 public:
  ReadOnlyFs(std::shared_ptr<const imagecore::FileTree> fs, ViewOptions opts);
  ~ReadOnlyFs();

  // The operation table; the session's userdata must be this object.
  static const fuse_lowlevel_ops& ops();

  const imagecore::FileTree& image() const { return *fs_; }
  // stat(2) fields for an imagecore attribute set, as this mount presents them.
  struct stat to_stat(const imagecore::Attr& a) const;

 private:
  friend struct Ops;
  struct OpenDir;  // a directory handle: the listing, pinned while the handle lives
  fuse_entry_param entry(const imagecore::Node& n) const;
  // A file being read without an open handle (kernel "no open" mode): its node and, for
  // zisofs, the reader that keeps its block table.
  struct ReadState {
    imagecore::Node node;
    std::unique_ptr<imagecore::ZisofsReader> zisofs;
  };
  // The read state of `ino`, from a small cache of recently read files or parsed anew.
  std::shared_ptr<ReadState> read_state(imagecore::Ino ino);

  std::shared_ptr<const imagecore::FileTree> fs_;
  ViewOptions opts_;
  // The kernel skips OPEN/OPENDIR/RELEASE once we answer ENOSYS, keeping page and readdir
  // caches by default: one round trip less per file and two per directory.
  std::atomic<bool> no_open_{false};
  std::mutex recent_mutex_;
  // Recently read files, bounded by count: zisofs readers hold a block table and one block.
  imagecore::SmallLru<imagecore::Ino, std::shared_ptr<ReadState>> recent_{64, SIZE_MAX};
  // Handles, on kernels without "no open" support only.
  Handles<OpenDir> dir_handles_;
  Handles<std::shared_ptr<ReadState>> file_handles_;
};

}  // namespace fusefs
