#include "fusefs/dir_reply.h"

#include <sys/stat.h>

#include <vector>

namespace fusefs {

void reply_dir(fuse_req_t req, const DirListing& listing, size_t size, off_t off, bool plus) {
  std::vector<char> buf(size);
  size_t used = 0;
  std::vector<fuse_ino_t> handed;  // children a readdirplus reply gives the kernel
  for (off_t i = off; i < static_cast<off_t>(listing.count) + 2; ++i) {
    DirChild c;
    if (i < 2) {
      c.name = i == 0 ? "." : "..";
      c.entry.attr.st_ino = i == 0 ? listing.ino : listing.parent;
      c.entry.attr.st_mode = S_IFDIR;
    } else {
      c = listing.child(static_cast<size_t>(i - 2));
    }
    const size_t rest = size - used;
    const size_t need =
        plus ? fuse_add_direntry_plus(req, buf.data() + used, rest, c.name, &c.entry, i + 1)
             : fuse_add_direntry(req, buf.data() + used, rest, c.name, &c.entry.attr, i + 1);
    if (need > rest)
      break;
    used += need;
    if (plus && i >= 2 && c.entry.ino != 0)
      handed.push_back(c.entry.ino);
  }
  if (listing.counted)
    for (fuse_ino_t ino : handed)
      listing.counted(ino);
  fuse_reply_buf(req, buf.data(), used);
}

}  // namespace fusefs
