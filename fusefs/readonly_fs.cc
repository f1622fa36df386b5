#include "fusefs/readonly_fs.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "fusefs/dir_reply.h"
#include "fusefs/errors.h"
#include "fusefs/mode.h"
#include "imagecore/iso9660/zisofs.h"

namespace fusefs {

using imagecore::Error;
using imagecore::FileType;
using imagecore::Node;

namespace {

ReadOnlyFs& self(fuse_req_t req) {
  return *static_cast<ReadOnlyFs*>(fuse_req_userdata(req));
}

}  // namespace

struct ReadOnlyFs::OpenDir {
  std::shared_ptr<const imagecore::Directory> dir;
};

ReadOnlyFs::ReadOnlyFs(std::shared_ptr<const imagecore::FileTree> fs, ViewOptions opts)
    : fs_(std::move(fs)), opts_(opts) {}

ReadOnlyFs::~ReadOnlyFs() = default;

struct stat ReadOnlyFs::to_stat(const imagecore::Attr& a) const {
  struct stat st {};
  st.st_ino = a.ino;
  mode_t perm = a.perm;
  if (!a.has_posix)
    perm = a.type == FileType::Directory ? 0555 : a.type == FileType::Symlink ? 0777 : 0444;
  if (opts_.umask)
    perm &= ~*opts_.umask;
  st.st_mode = type_bits(a.type) | perm;
  st.st_nlink = a.nlink ? a.nlink : 1;
  const bool owned = a.has_posix && a.has_owner;
  st.st_uid = opts_.uid ? *opts_.uid : owned ? a.uid : opts_.default_uid;
  st.st_gid = opts_.gid ? *opts_.gid : owned ? a.gid : opts_.default_gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = 65536;
  st.st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st.st_rdev = a.rdev;
  st.st_mtim = {static_cast<time_t>(a.mtime.sec), static_cast<long>(a.mtime.nsec)};
  st.st_atim = {static_cast<time_t>(a.atime.sec), static_cast<long>(a.atime.nsec)};
  st.st_ctim = {static_cast<time_t>(a.ctime.sec), static_cast<long>(a.ctime.nsec)};
  return st;
}

std::shared_ptr<ReadOnlyFs::ReadState> ReadOnlyFs::read_state(imagecore::Ino ino) {
  {
    std::lock_guard lock(recent_mutex_);
    if (std::optional<std::shared_ptr<ReadState>> hit = recent_.get(ino))
      return *hit;
  }
  auto state = std::make_shared<ReadState>();
  state->node = fs_->stat(ino);
  if (!state->node.defect.empty())
    throw imagecore::FormatError(state->node.defect);
  if (state->node.zisofs)
    state->zisofs = std::make_unique<imagecore::ZisofsReader>(fs_->source(), state->node);
  std::lock_guard lock(recent_mutex_);
  recent_.put(ino, state, 0);  // another thread may have parsed it too: either copy serves
  return state;
}

fuse_entry_param ReadOnlyFs::entry(const Node& n) const {
  // An entry whose attributes cannot be read has nothing true to show: EIO, named once in
  // the log (as the kernel's own udf driver answers).
  if (n.attr_defect)
    throw imagecore::FormatError(n.defect);
  fuse_entry_param e{};
  e.ino = n.attr.ino;
  e.attr = to_stat(n.attr);
  e.attr_timeout = opts_.timeout;
  e.entry_timeout = opts_.timeout;
  return e;
}

// The operations. Each replies exactly once; errors go through guarded().
struct Ops {
  static void init(void* userdata, fuse_conn_info* conn) {
    auto want = [conn](unsigned cap) {
      if (conn->capable & cap)
        conn->want |= cap;
    };
    ReadOnlyFs& fs = *static_cast<ReadOnlyFs*>(userdata);
    const unsigned no_open = FUSE_CAP_NO_OPEN_SUPPORT | FUSE_CAP_NO_OPENDIR_SUPPORT;
    if ((conn->capable & no_open) == no_open) {
      conn->want |= no_open;
      fs.no_open_ = true;
    }
    if (fs.opts_.splice) {
      want(FUSE_CAP_SPLICE_WRITE);
      want(FUSE_CAP_SPLICE_MOVE);
    } else {
      conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    }
    want(FUSE_CAP_ASYNC_READ);
    want(FUSE_CAP_CACHE_SYMLINKS);
    want(FUSE_CAP_PARALLEL_DIROPS);
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;  // the image never changes under us
  }

  static void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, [&] {
      // No name in a tree is longer (imagecore/names.h cuts them), and POSIX wants the
      // length refused as such rather than "not found".
      if (std::strlen(name) > 255)
        throw Error(ENAMETOOLONG, "name longer than 255 bytes");
      ReadOnlyFs& fs = self(req);
      fuse_entry_param e = fs.entry(fs.fs_->lookup(parent, name));
      fuse_reply_entry(req, &e);
    });
  }

  // No lookup counts are kept (readonly_fs.h), so a forget has nothing to drop or to check.
  static void forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
  static void forget_multi(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

  static void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    guarded(req, [&] {
      ReadOnlyFs& fs = self(req);
      const Node n = fs.fs_->stat(ino);
      if (n.attr_defect)
        throw imagecore::FormatError(n.defect);
      struct stat st = fs.to_stat(n.attr);
      fuse_reply_attr(req, &st, fs.opts_.timeout);
    });
  }

  static void readlink(fuse_req_t req, fuse_ino_t ino) {
    guarded(req, [&] {
      Node n = self(req).fs_->stat(ino);
      if (n.attr.type != FileType::Symlink)
        throw Error(EINVAL, "not a symlink");
      fuse_reply_readlink(req, n.symlink.c_str());
    });
  }

  static void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, [&] {
      if (self(req).no_open_)
        throw Error(ENOSYS, "no opendir needed");
      ReadOnlyFs& fs = self(req);
      auto od = std::make_unique<ReadOnlyFs::OpenDir>();
      od->dir = fs.fs_->list(ino);
      fi->cache_readdir = 1;
      fi->keep_cache = 1;
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
      ReadOnlyFs& fs = self(req);
      std::shared_ptr<const imagecore::Directory> pinned =
          fi->fh ? Handles<ReadOnlyFs::OpenDir>::get(fi->fh).dir : fs.fs_->list(ino);
      DirListing listing;
      listing.ino = ino;
      listing.parent = pinned->parent;
      listing.count = pinned->entries.size();
      listing.child = [&](size_t i) {
        const Node& n = pinned->entries[i];
        DirChild d{n.name.c_str(), {}};
        // Listed by name only (node id 0: the kernel asks again on lookup, which fails).
        if (n.attr_defect)
          d.entry.attr.st_ino = n.attr.ino;
        else
          d.entry = fs.entry(n);
        return d;
      };
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

  static void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, [&] {
      if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
        throw Error(EROFS, "read-only");
      ReadOnlyFs& fs = self(req);
      if (fs.no_open_)
        throw Error(ENOSYS, "no open needed");
      // Only kernels without "no open" support get here; the handle pins the read state.
      fi->keep_cache = 1;
      fi->noflush = 1;
      fs.file_handles_.reply_open(
          req, fi, std::make_unique<std::shared_ptr<ReadOnlyFs::ReadState>>(fs.read_state(ino)));
    });
  }

  static void release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    self(req).file_handles_.reply_release(req, fi);
  }

  static void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    guarded(req, [&] {
      ReadOnlyFs& fs = self(req);
      // From the open handle, or in no-open mode from the small cache of recently read files
      // (one pread of the record on a miss).
      const std::shared_ptr<ReadOnlyFs::ReadState> state =
          fi->fh ? Handles<std::shared_ptr<ReadOnlyFs::ReadState>>::get(fi->fh)
                 : fs.read_state(ino);
      const Node* node = &state->node;
      imagecore::ZisofsReader* zisofs = state->zisofs.get();
      const auto offset = static_cast<uint64_t>(off);
      const int fd = fs.fs_->source().fd();
      // Splicing costs three system calls; for small replies (random 4 KiB reads, small
      // files) one pread into a buffer is cheaper even where splice pays off.
      constexpr size_t kSpliceMin = 64 * 1024;
      // What the file still holds from `offset`: requests are readahead-sized (up to 1 MiB)
      // even for a file of a few bytes, so buffers are sized by this, not by the request.
      const size_t want =
          offset >= node->attr.size
              ? 0
              : static_cast<size_t>(std::min<uint64_t>(size, node->attr.size - offset));
      if (zisofs || fd < 0 || want < kSpliceMin || !fs.opts_.splice || node->has_inline_data) {
        std::vector<std::byte> buf(want);
        size_t got = zisofs ? zisofs->read(offset, buf) : fs.fs_->read(*node, offset, buf);
        fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), got);
        return;
      }
      // Zero-copy: hand the kernel descriptor ranges, which libfuse splices.
      std::vector<imagecore::Extent> ranges = fs.fs_->map(*node, offset, size);
      if (std::any_of(ranges.begin(), ranges.end(), [](const imagecore::Extent& e) {
            return e.offset == imagecore::kZeroExtent;
          })) {
        std::vector<std::byte> buf(want);  // sparse parts are zeros, not descriptor ranges
        size_t got = fs.fs_->read(*node, offset, buf);
        fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), got);
        return;
      }
      std::vector<char> storage(sizeof(fuse_bufvec) + ranges.size() * sizeof(fuse_buf));
      auto* bv = reinterpret_cast<fuse_bufvec*>(storage.data());
      *bv = FUSE_BUFVEC_INIT(0);
      bv->count = ranges.size();
      for (size_t i = 0; i < ranges.size(); ++i) {
        fuse_buf& b = bv->buf[i];
        b = fuse_buf{};
        b.size = ranges[i].length;
        b.flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
        b.fd = fd;
        b.pos = static_cast<off_t>(ranges[i].offset);
      }
      fuse_reply_data(req, bv, FUSE_BUF_SPLICE_MOVE);
    });
  }

  static void statfs(fuse_req_t req, fuse_ino_t) {
    guarded(req, [&] {
      struct statvfs s {};
      s.f_bsize = s.f_frsize = 2048;
      s.f_blocks = (self(req).fs_->source().size() + 2047) / 2048;
      s.f_namemax = 255;
      fuse_reply_statfs(req, &s);
    });
  }

  // Images without extended attributes answer ENOSYS: the kernel then answers EOPNOTSUPP
  // itself from now on, instead of asking us twice for every `ls -l` of every file.
  static void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    guarded(req, [&] {
      ReadOnlyFs& fs = self(req);
      if (!fs.fs_->has_xattrs())
        throw Error(ENOSYS, "no extended attributes");
      std::string names;
      for (const imagecore::Xattr& x : fs.fs_->xattrs(ino))
        names.append(x.name).push_back('\0');
      if (size == 0)
        fuse_reply_xattr(req, names.size());
      else if (size < names.size())
        throw Error(ERANGE, "buffer too small");
      else
        fuse_reply_buf(req, names.data(), names.size());
    });
  }
  static void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    guarded(req, [&] {
      ReadOnlyFs& fs = self(req);
      if (!fs.fs_->has_xattrs())
        throw Error(ENOSYS, "no extended attributes");
      for (const imagecore::Xattr& x : fs.fs_->xattrs(ino)) {
        if (x.name != name)
          continue;
        if (size == 0)
          fuse_reply_xattr(req, x.value.size());
        else if (size < x.value.size())
          throw Error(ERANGE, "buffer too small");
        else
          fuse_reply_buf(req, x.value.data(), x.value.size());
        return;
      }
      throw Error(ENODATA, "no such attribute");
    });
  }

  // Everything that would change the image.
  static void setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) { rofs(req); }
  static void mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { rofs(req); }
  static void mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { rofs(req); }
  static void unlink(fuse_req_t req, fuse_ino_t, const char*) { rofs(req); }
  static void rmdir(fuse_req_t req, fuse_ino_t, const char*) { rofs(req); }
  static void symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { rofs(req); }
  static void rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
    rofs(req);
  }
  static void link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { rofs(req); }
  static void create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
    rofs(req);
  }
  static void setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
    rofs(req);
  }
  static void removexattr(fuse_req_t req, fuse_ino_t, const char*) { rofs(req); }
  static void rofs(fuse_req_t req) { fuse_reply_err(req, EROFS); }
};

const fuse_lowlevel_ops& ReadOnlyFs::ops() {
  static const fuse_lowlevel_ops table = [] {
    fuse_lowlevel_ops o{};
    o.init = Ops::init;
    o.lookup = Ops::lookup;
    o.forget = Ops::forget;
    o.forget_multi = Ops::forget_multi;
    o.getattr = Ops::getattr;
    o.readlink = Ops::readlink;
    o.opendir = Ops::opendir;
    o.readdir = Ops::readdir;
    o.readdirplus = Ops::readdirplus;
    o.releasedir = Ops::releasedir;
    o.open = Ops::open;
    o.read = Ops::read;
    o.release = Ops::release;
    o.statfs = Ops::statfs;
    o.listxattr = Ops::listxattr;
    o.getxattr = Ops::getxattr;
    o.setattr = Ops::setattr;
    o.mknod = Ops::mknod;
    o.mkdir = Ops::mkdir;
    o.unlink = Ops::unlink;
    o.rmdir = Ops::rmdir;
    o.symlink = Ops::symlink;
    o.rename = Ops::rename;
    o.link = Ops::link;
    o.create = Ops::create;
    o.setxattr = Ops::setxattr;
    o.removexattr = Ops::removexattr;
    return o;
  }();
  return table;
}

}  // namespace fusefs
