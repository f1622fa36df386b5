// eio_fs: a FUSE file system serving one file, /image, with the bytes of BACKING, whose
// chosen byte ranges fail with EIO: a source with bad sectors for `discfs rip`'s tests.
//
//   eio_fs BACKING RANGES LOG MOUNTPOINT [FUSE options, e.g. -f]
//
// RANGES holds lines "START END" (bytes, END exclusive, decimal), and optionally a line
// "delay MS": every read then takes that many milliseconds more (so a test can interrupt a
// run midway). It is read again for every read, so a test "heals" a range by rewriting it. Each
// read request is appended to LOG as "OFFSET SIZE ok|eio" (which areas a rerun read). The file is
// served with direct_io, so every read(2) reaches here with its own offset and size, not the page
// cache's.
#define FUSE_USE_VERSION 35
#include <fuse3/fuse.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

namespace {

std::string g_backing, g_ranges, g_log;
std::mutex g_mutex;
constexpr const char* kName = "/image";

// Whether [off, off+size) touches a bad range; sleeps the delay the file asks for.
bool bad(off_t off, size_t size) {
  std::ifstream in(g_ranges);
  std::string line;
  bool hit = false;
  while (std::getline(in, line)) {
    long long a = 0, b = 0;
    if (std::sscanf(line.c_str(), "delay %lld", &a) == 1)
      ::usleep(static_cast<useconds_t>(a * 1000));
    else if (std::sscanf(line.c_str(), "%lld %lld", &a, &b) == 2 &&
             a < static_cast<long long>(off + static_cast<off_t>(size)) && b > off)
      hit = true;
  }
  return hit;
}

int getattr(const char* path, struct stat* st, fuse_file_info*) {
  std::memset(st, 0, sizeof *st);
  if (std::strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (std::strcmp(path, kName) != 0)
    return -ENOENT;
  struct stat b {};
  if (::stat(g_backing.c_str(), &b) != 0)
    return -errno;
  st->st_mode = S_IFREG | 0444;
  st->st_nlink = 1;
  st->st_size = b.st_size;
  return 0;
}

int readdir(const char* path,
            void* buf,
            fuse_fill_dir_t fill,
            off_t,
            fuse_file_info*,
            fuse_readdir_flags) {
  if (std::strcmp(path, "/") != 0)
    return -ENOENT;
  fill(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  fill(buf, kName + 1, nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  return 0;
}

int open(const char* path, fuse_file_info* fi) {
  if (std::strcmp(path, kName) != 0)
    return -ENOENT;
  if ((fi->flags & O_ACCMODE) != O_RDONLY)
    return -EROFS;
  const int fd = ::open(g_backing.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  fi->fh = static_cast<uint64_t>(fd);
  fi->direct_io = 1;
  return 0;
}

int read(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const bool fail = bad(off, size);
  if (FILE* log = std::fopen(g_log.c_str(), "a")) {
    std::fprintf(log, "%lld %zu %s\n", static_cast<long long>(off), size, fail ? "eio" : "ok");
    std::fclose(log);
  }
  if (fail)
    return -EIO;
  const ssize_t n = ::pread(static_cast<int>(fi->fh), buf, size, off);
  return n < 0 ? -errno : static_cast<int>(n);
}

int release(const char*, fuse_file_info* fi) {
  ::close(static_cast<int>(fi->fh));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: eio_fs BACKING RANGES LOG MOUNTPOINT [FUSE options]\n");
    return 2;
  }
  char real[4096];
  g_backing = ::realpath(argv[1], real) ? real : argv[1];
  g_ranges = ::realpath(argv[2], real) ? real : argv[2];
  g_log = argv[3];
  if (g_log[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd))
      g_log = std::string(cwd) + "/" + g_log;
  }
  fuse_operations ops{};
  ops.getattr = getattr;
  ops.readdir = readdir;
  ops.open = open;
  ops.read = read;
  ops.release = release;
  // argv for fuse_main: program, mountpoint, options.
  std::string prog = argv[0];
  char* fargv[64];
  int fargc = 0;
  fargv[fargc++] = prog.data();
  for (int i = 4; i < argc && fargc < 63; ++i)
    fargv[fargc++] = argv[i];
  fargv[fargc] = nullptr;
  return fuse_main(fargc, fargv, &ops, nullptr);
}
