#include "cli/control.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "imagecore/base/error.h"

namespace discfs {
namespace {

// A request is a verb and a few words; an answer may list every staged path.
constexpr size_t kMaxRequest = 64 * 1024;
constexpr size_t kMaxAnswer = size_t{1} << 30;

std::string clean(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r')
      c = ' ';
  return s;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos)
      return out;
    start = tab + 1;
  }
}

sockaddr_un address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path))
    throw imagecore::Error(ENAMETOOLONG,
                           fmt::format("{}: the control socket path is too long", path));
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// Reads one line (without the newline) from fd; false at end of stream or past `max` bytes.
bool read_line(int fd, std::string* buf, std::string* line, size_t max) {
  size_t searched = 0;  // no newline before this
  for (;;) {
    const size_t nl = buf->find('\n', searched);
    if (nl != std::string::npos) {
      *line = buf->substr(0, nl);
      buf->erase(0, nl + 1);
      return true;
    }
    searched = buf->size();
    if (buf->size() > max)
      return false;
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    buf->append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace

void Reply::line(const std::string& s) {
  if (!connected_)
    return;
  std::string out = s + "\n";
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::send(fd_, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      connected_ = false;
      return;
    }
    done += static_cast<size_t>(n);
  }
}

void Reply::progress(uint64_t done, uint64_t total) {
  line(fmt::format("progress\t{}\t{}", done, total));
}
void Reply::phase(const std::string& name) {
  line("phase\t" + clean(name));
}
bool Reply::cancel_requested(int ms) {
  if (early_cancel_)
    return true;
  pollfd p{fd_, POLLIN, 0};
  const int n = ::poll(&p, 1, ms);
  if (n <= 0)
    return false;
  char buf[256];
  const ssize_t got = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
  if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
    return true;  // the client went away: nobody would hear the result
  return got > 0 && std::string(buf, static_cast<size_t>(got)).find("cancel") != std::string::npos;
}
void Reply::info(const std::string& text) {
  line("info\t" + clean(text));
}
void Reply::ok(const std::string& json) {
  line("ok\t" + clean(json));
}
void Reply::error(int err, const std::string& sentence) {
  line(fmt::format("error\t{}\t{}", err, clean(sentence)));
}

ControlServer::ControlServer(std::string path, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)) {
  const sockaddr_un a = address(path_);
  ::unlink(path_.c_str());  // a socket left by a daemon that was killed
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
      ::chmod(path_.c_str(), 0600) != 0 || ::listen(listen_fd_, 8) != 0 ||
      ::pipe2(wake_, O_CLOEXEC) != 0) {
    const int e = errno;
    if (listen_fd_ >= 0)
      ::close(listen_fd_);
    throw imagecore::Error(
        e, fmt::format("{}: cannot listen for commands: {}", path_, std::strerror(e)));
  }
  thread_ = std::thread([this] { loop(); });
}

ControlServer::~ControlServer() {
  if (wake_[1] >= 0) {
    const char c = 0;
    [[maybe_unused]] ssize_t n = ::write(wake_[1], &c, 1);
  }
  if (thread_.joinable())
    thread_.join();
  for (int fd : {listen_fd_, wake_[0], wake_[1]})
    if (fd >= 0)
      ::close(fd);
  ::unlink(path_.c_str());
}

void ControlServer::loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      spdlog::error("{}: waiting for commands failed: {}", path_, std::strerror(errno));
      return;
    }
    if (fds[1].revents)
      return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    // One request per connection, each on its own thread: a long commit must not keep
    // `discfs status` from answering.
    std::thread([this, fd] {
      std::string buf, line;
      Reply reply(fd);
      if (read_line(fd, &buf, &line, kMaxRequest)) {
        reply.sent_after_request(buf);
        try {
          handler_(split_tabs(line), reply);
        } catch (const imagecore::Error& e) {
          reply.error(e.code(), e.what());
        } catch (const std::exception& e) {
          reply.error(EIO, e.what());
        }
      }
      ::close(fd);
    }).detach();
  }
}

ControlResult control_request(const std::string& path,
                              const std::vector<std::string>& request,
                              const std::function<void(const std::vector<std::string>&)>& on_line,
                              int cancel_fd) {
  const sockaddr_un a = address(path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    if (fd >= 0)
      ::close(fd);
    throw imagecore::Error(e,
                           fmt::format("{}: no stage daemon answers: {}", path, std::strerror(e)));
  }
  std::string req;
  for (const std::string& w : request)
    req += (req.empty() ? "" : "\t") + clean(w);
  req += "\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    const int e = errno;
    ::close(fd);
    throw imagecore::Error(e,
                           fmt::format("{}: cannot send the request: {}", path, std::strerror(e)));
  }
  std::string buf, line;
  ControlResult result;
  result.err = EPIPE;
  result.text = "the stage daemon stopped before answering (see its log)";
  // Waits until the answer has a line, sending "cancel" when cancel_fd is readable.
  auto await_line = [&] {
    if (cancel_fd < 0 || buf.find('\n') != std::string::npos)
      return;
    for (;;) {
      pollfd fds[2] = {{fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR)
          continue;
        return;
      }
      if (fds[1].revents) {
        char drain[64];
        [[maybe_unused]] ssize_t n = ::read(cancel_fd, drain, sizeof drain);
        static const char kCancel[] = "cancel\n";
        [[maybe_unused]] ssize_t s = ::send(fd, kCancel, sizeof kCancel - 1, MSG_NOSIGNAL);
        cancel_fd = -1;
        on_line({"cancel"});
        return;
      }
      if (fds[0].revents)
        return;
    }
  };
  for (;;) {
    await_line();
    if (!read_line(fd, &buf, &line, kMaxAnswer))
      break;
    std::vector<std::string> words = split_tabs(line);
    if (words[0] == "ok") {
      result = {true, 0, words.size() > 1 ? words[1] : ""};
      break;
    }
    if (words[0] == "error") {
      result = {false, words.size() > 1 ? std::atoi(words[1].c_str()) : EIO,
                words.size() > 2 ? words[2] : "failed"};
      break;
    }
    on_line(words);
  }
  ::close(fd);
  return result;
}

std::string registry_file(const std::string& mountpoint_realpath) {
  std::string dir;
  if (const char* rt = std::getenv("XDG_RUNTIME_DIR"); rt && *rt)
    dir = std::string(rt) + "/discfs";
  else
    dir = fmt::format("/tmp/discfs-{}", ::getuid());
  std::string name;
  for (char c : mountpoint_realpath) {
    if (c == '%')
      name += "%25";
    else if (c == '/')
      name += "%2F";
    else
      name += c;
  }
  if (name.size() > 200) {                // a deep path: keep a file name the filesystem takes
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : mountpoint_realpath)
      h = (h ^ c) * 1099511628211ull;
    name = fmt::format("{}-{:016x}", name.substr(name.size() - 150), h);
  }
  return dir + "/" + name;
}

}  // namespace discfs
