#include "cli/detach.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "imagecore/base/error.h"

namespace discfs {

using imagecore::Error;

void Detach::fork_and_wait() {
  if (::pipe2(pipe_, O_CLOEXEC) != 0)
    throw Error(errno, fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  const pid_t pid = ::fork();
  if (pid < 0)
    throw Error(errno, fmt::format("cannot fork: {}", std::strerror(errno)));
  if (pid > 0) {
    ::close(pipe_[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipe_[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
      if (n > 0)
        msg.append(buf, static_cast<size_t>(n));
    if (msg.empty())
      msg = std::string(1, static_cast<char>(ExitCode::Internal)) +
            "the stage daemon ended before the mount was live (see the system log)";
    const int code = static_cast<unsigned char>(msg[0]);
    if (msg.size() > 1)
      std::cerr << "discfs: " << msg.substr(1) << "\n";
    std::_Exit(code);
  }
  ::close(pipe_[0]);
  ::setsid();
  child_ = true;
}

void Detach::report(ExitCode code, const std::string& message) {
  if (!child_ || reported_)
    return;
  reported_ = true;
  std::string out(1, static_cast<char>(code));
  out += message;
  [[maybe_unused]] ssize_t n = ::write(pipe_[1], out.data(), out.size());
  ::close(pipe_[1]);
  if (code == ExitCode::Ok) {
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::close(null);
    }
    [[maybe_unused]] int rc = ::chdir("/");
  }
}

ExitCode Detach::fail(ExitCode code, const std::string& message) {
  if (child_)
    report(code, message);
  else
    std::cerr << "discfs: " << message << "\n";
  return code;
}

}  // namespace discfs
