// Own read-back of a new session against its MD5 tags, before it is made the newest one.
#include "burner/verify.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "burner/libs.h"
#include "burner/md5_tags.h"
#include "burner/target.h"
#include "imagecore/base/error.h"

namespace burner {
namespace {

[[noreturn]] void fail(const std::string& path, uint64_t lba, const std::string& what) {
  throw imagecore::Error(EIO, path + ": verifying the new session failed at block " +
                                  std::to_string(lba) + ": " + what);
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

  const BlockReader read = [fd](uint64_t lba, std::span<char, 2048> out) {
    return ::pread(fd, out.data(), out.size(), static_cast<off_t>(lba * kBlockSize)) ==
           static_cast<ssize_t>(out.size());
  };
  const std::optional<Md5Tag> sb = find_superblock_tag(read, start_lba);
  if (!sb)
    fail(path, start_lba, "no superblock MD5 tag found");
  if (sb->range_start != start_lba)
    fail(path, sb->lba, "superblock tag names another session");
  std::optional<Md5Tag> tree;
  if (sb->next <= sb->lba || !(tree = read_md5_tag(read, sb->next, Md5TagType::Tree)))
    fail(path, sb->next, "no directory tree MD5 tag where the superblock tag points");
  std::optional<Md5Tag> session;
  if (tree->next <= tree->lba || !(session = read_md5_tag(read, tree->next, Md5TagType::Session)))
    fail(path, tree->next, "no session MD5 tag where the tree tag points");
  if (session->range_start != start_lba || session->range_size != session->lba - start_lba)
    fail(path, session->lba, "the session tag covers another range");

  Md5 md5;
  if (md5.ctx == nullptr)
    fail(path, start_lba, "out of memory for MD5");
  std::vector<char> buf(512 * kBlockSize);
  uint64_t done = 0;
  const uint64_t total = session->range_size;
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
  if (!iso_md5_match(digest, session->md5.data())) {
    fail(path, start_lba, "the session MD5 does not match what was read back");
  }
  SessionCheck check;
  check.start_lba = start_lba;
  check.tag_lba = session->lba;
  check.blocks = session->lba + 1 - start_lba;
  return check;
}

}  // namespace burner
