#include "imagecore/base/source.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstring>

#include "imagecore/base/error.h"
#include "imagecore/media/device.h"

namespace imagecore {
namespace {

void check_range(uint64_t offset, size_t len, uint64_t size, const std::string& name) {
  if (offset > size || len > size - offset)
    throw FormatError(fmt::format("{}: read of {} bytes at byte {} runs past the end ({} bytes)",
                                  name, len, offset, size));
}

class FileSource final : public Source {
 public:
  FileSource(int fd, uint64_t size, std::string name)
      : fd_(fd), size_(size), name_(std::move(name)) {}
  ~FileSource() override { ::close(fd_); }

  uint64_t size() const override { return size_; }
  int fd() const override { return fd_; }
  const std::string& name() const override { return name_; }

  void read(uint64_t offset, std::span<std::byte> out) const override {
    check_range(offset, out.size(), size_, name_);
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, offset + done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        throw Error(errno, fmt::format("{}: cannot read at byte {}: {}", name_, offset + done,
                                       std::strerror(errno)));
      if (n == 0)
        throw FormatError(fmt::format("{}: image ended early at byte {}", name_, offset + done));
      done += static_cast<size_t>(n);
    }
  }

 private:
  int fd_;
  uint64_t size_;
  std::string name_;
};

class MemorySource final : public Source {
 public:
  MemorySource(std::vector<std::byte> bytes, std::string name)
      : bytes_(std::move(bytes)), name_(std::move(name)) {}
  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  void read(uint64_t offset, std::span<std::byte> out) const override {
    check_range(offset, out.size(), bytes_.size(), name_);
    if (!out.empty())
      std::memcpy(out.data(), bytes_.data() + offset, out.size());
  }

 private:
  std::vector<std::byte> bytes_;
  std::string name_;
};

}  // namespace

std::unique_ptr<Source> open_file_source(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    throw Error(errno, fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(e, fmt::format("{}: cannot stat: {}", path, std::strerror(e)));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  uint64_t size = 0;
  if (S_ISBLK(st.st_mode)) {
    // A CD/DVD/BD drive: say plainly when there is nothing to read in it.
    if (is_optical_drive(fd)) {
      try {
        // Throws ENOMEDIUM naming the drive's state (no disc, tray open, not ready), and
        // NotAnImage for a disc of audio tracks only.
        read_disc_toc(fd, path);
      } catch (...) {
        ::close(fd);
        throw;
      }
    }
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) {
      int e = errno;
      ::close(fd);
      throw Error(e, fmt::format("{}: cannot get the device size: {}", path, std::strerror(e)));
    }
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else {
    ::close(fd);
    throw Error(S_ISDIR(st.st_mode) ? EISDIR : ENODEV,
                fmt::format("{}: is {}, not an image file or block device", path,
                            S_ISDIR(st.st_mode) ? "a directory" : "a special file"));
  }
  return std::make_unique<FileSource>(fd, size, path);
}

std::unique_ptr<Source> make_memory_source(std::vector<std::byte> bytes, std::string name) {
  return std::make_unique<MemorySource>(std::move(bytes), std::move(name));
}

}  // namespace imagecore
