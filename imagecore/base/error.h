// Errors raised by imagecore. Every error carries the errno a filesystem caller should see
// and one plain sentence naming what and where (file, LBA).
#pragma once

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace imagecore {

// An error with the errno a caller should report.
class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// On-disc data that violates the format or the image's bounds: reads as EIO.
class FormatError : public Error {
 public:
  explicit FormatError(const std::string& what) : Error(EIO, what) {}
};

// Something valid that discfs does not handle (yet): reads as EOPNOTSUPP.
class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& what) : Error(EOPNOTSUPP, what) {}
};

// The input is not an image of the kind asked for (ISO 9660, UDF); what() says what it
// looks like instead.
class NotAnImage : public Error {
 public:
  explicit NotAnImage(const std::string& what) : Error(EINVAL, what) {}
};

}  // namespace imagecore
