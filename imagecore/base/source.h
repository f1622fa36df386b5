// Byte sources an image is read from: a file or block device (pread on a descriptor, which
// the FUSE layer also splices from) or a memory buffer (fuzzers, unit tests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace imagecore {

// Random-access, read-only bytes. Implementations are safe to call from many threads.
class Source {
 public:
  virtual ~Source() = default;
  // Size in bytes.
  virtual uint64_t size() const = 0;
  // Reads exactly out.size() bytes at offset. Throws FormatError when the range lies past the
  // end, Error(errno) when the read fails.
  virtual void read(uint64_t offset, std::span<std::byte> out) const = 0;
  // The descriptor to splice from, or -1 when the bytes are not in a file.
  virtual int fd() const { return -1; }
  // What to call the source in messages.
  virtual const std::string& name() const = 0;
};

// An image file or block device, opened read-only. Throws Error(errno) when it cannot be
// opened, or when it is a directory.
std::unique_ptr<Source> open_file_source(const std::string& path);

// A copy of the bytes in memory.
std::unique_ptr<Source> make_memory_source(std::vector<std::byte> bytes, std::string name);

}  // namespace imagecore
