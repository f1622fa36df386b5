// Own read-back of a new session against its MD5 tags, before it is made the newest one.
#include "burner/verify.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "burner/libs.h"
#include "burner/target.h"
#include "imagecore/base/error.h"

namespace burner {
namespace {

struct Tag {
  int type = 0;
  uint32_t pos = 0, range_start = 0, range_size = 0, next = 0;
  char md5[16] = {};
};

[[noreturn]] void fail(const std::string& path, uint64_t lba, const std::string& what) {
  throw imagecore::Error(EIO, path + ": verifying the new session failed at block " +
                                  std::to_string(lba) + ": " + what);
}

bool read_tag(int fd, uint64_t lba, int want, Tag* tag) {
  char buf[kBlockSize];
  if (::pread(fd, buf, kBlockSize, static_cast<off_t>(lba * kBlockSize)) !=
      static_cast<ssize_t>(kBlockSize)) {
    return false;
  }
  const int ret = iso_util_decode_md5_tag(buf, &tag->type, &tag->pos, &tag->range_start,
                                          &tag->range_size, &tag->next, tag->md5, want);
  return ret == 1 && tag->pos == lba;
}

struct Md5 {
  void* ctx = nullptr;
  Md5() {
    if (iso_md5_start(&ctx) < 0)
      ctx = nullptr;
  }
  ~Md5() {
    if (ctx != nullptr) {
      char dummy[16];
      iso_md5_end(&ctx, dummy);
    }
  }
};

}  // namespace

SessionCheck verify_session(const std::string& path, uint64_t start_lba) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(path, start_lba, std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // Drop cached pages so the check reads what reached the medium (best effort).
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

  // The superblock tag follows the volume descriptor set terminator.
  Tag sb;
  uint64_t lba = start_lba + 17;
  for (; lba < start_lba + 17 + 64; ++lba) {
    if (read_tag(fd, lba, 2, &sb))
      break;
  }
  if (lba == start_lba + 17 + 64)
    fail(path, start_lba, "no superblock MD5 tag found");
  if (sb.range_start != start_lba)
    fail(path, lba, "superblock tag names another session");
  Tag tree;
  if (sb.next <= lba || !read_tag(fd, sb.next, 3, &tree)) {
    fail(path, sb.next, "no directory tree MD5 tag where the superblock tag points");
  }
  Tag session;
  if (tree.next <= tree.pos || !read_tag(fd, tree.next, 1, &session)) {
    fail(path, tree.next, "no session MD5 tag where the tree tag points");
  }
  if (session.range_start != start_lba || session.range_size != session.pos - start_lba) {
    fail(path, session.pos, "the session tag covers another range");
  }

  Md5 md5;
  if (md5.ctx == nullptr)
    fail(path, start_lba, "out of memory for MD5");
  std::vector<char> buf(512 * kBlockSize);
  uint64_t done = 0;
  const uint64_t total = session.range_size;
  while (done < total) {
    const uint64_t n = std::min<uint64_t>(total - done, buf.size() / kBlockSize);
    const off_t off = static_cast<off_t>((start_lba + done) * kBlockSize);
    const ssize_t got = ::pread(fd, buf.data(), n * kBlockSize, off);
    if (got != static_cast<ssize_t>(n * kBlockSize)) {
      fail(path, start_lba + done, "short read");
    }
    iso_md5_compute(md5.ctx, buf.data(), static_cast<int>(got));
    done += n;
  }
  char digest[16];
  iso_md5_end(&md5.ctx, digest);
  md5.ctx = nullptr;
  if (!iso_md5_match(digest, session.md5)) {
    fail(path, start_lba, "the session MD5 does not match what was read back");
  }
  SessionCheck check;
  check.start_lba = start_lba;
  check.tag_lba = session.pos;
  check.blocks = session.pos + 1 - start_lba;
  return check;
}

}  // namespace burner
