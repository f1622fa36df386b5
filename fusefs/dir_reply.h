// The one readdir / readdirplus filler of both views.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <cstddef>
#include <functional>

namespace fusefs {

// What a listing reply shows of one child.
struct DirChild {
  const char* name = nullptr;  // must stay valid until reply_dir() returns
  // attr for readdir; for readdirplus also ino and the timeouts (ino 0: the kernel gets no
  // entry and no reference, and asks with a lookup when it needs one).
  fuse_entry_param entry{};
};

// A directory listing as a handle holds it. Offsets into it: 0 is ".", 1 "..", 2 + i the
// i-th child, so it must stay the same while a handle reads it.
struct DirListing {
  fuse_ino_t ino = 0;
  fuse_ino_t parent = 0;
  size_t count = 0;                         // children
  std::function<DirChild(size_t)> child;    // the i-th child
  std::function<void(fuse_ino_t)> counted;  // optional: see reply_dir()
};

// Replies to readdir (`plus` false) or readdirplus with the entries of `listing` from offset
// `off` that fit in `size` bytes; each entry records the next offset. For each child that a
// readdirplus reply hands the kernel, `listing.counted(ino)` is called: the kernel then holds
// a lookup of it. Throws what `listing.child` throws, and then has counted and replied
// nothing.
void reply_dir(fuse_req_t req, const DirListing& listing, size_t size, off_t off, bool plus);

}  // namespace fusefs
