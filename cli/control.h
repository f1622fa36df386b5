// The stage daemon's control socket: how `discfs commit`, `status` and `discard` (separate
// processes) ask the daemon that serves a staging mount to act, and follow its progress.
//
// A UNIX stream socket STORE/control.sock. The client sends one request line; the daemon
// answers with any number of lines and closes. During a commit the client may send one more
// line, "cancel" (or close the connection), to stop it before its commit point. Lines are
// tab-separated words:
//   request:  VERB [ARG...]                       e.g. "commit\tdummy=0\tvolid=BACKUP"
//   answers:  "progress\tDONE\tTOTAL"             bytes written so far, of TOTAL
//             "phase\tNAME"                       a commit step starts (burner/commit.h)
//             "info\tTEXT"                        a line for the user
//             "ok\tJSON"                          the verb succeeded; JSON is its result
//             "error\tERRNO\tSENTENCE"            the verb failed
// Arguments and texts never contain tabs or newlines (they are replaced by spaces).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace discfs {

// Sends answer lines back to the client of one request.
class Reply {
 public:
  explicit Reply(int fd) : fd_(fd) {}
  void progress(uint64_t done, uint64_t total);
  void phase(const std::string& name);
  // Waits up to `ms` for the client to send "cancel" or to go away; true when it did.
  bool cancel_requested(int ms);
  // What the client sent after its request line, read with it.
  void sent_after_request(const std::string& rest) { early_cancel_ = rest.starts_with("cancel"); }
  void info(const std::string& text);
  void ok(const std::string& json);
  void error(int err, const std::string& sentence);
  // False once the client went away (then the verb may stop early).
  bool connected() const { return connected_; }

 private:
  void line(const std::string& s);
  int fd_;
  std::atomic<bool> connected_{true};
  bool early_cancel_ = false;
};

using Handler = std::function<void(const std::vector<std::string>& request, Reply& reply)>;

// Listens on `path` (replacing a stale socket file) and serves each connection on its own
// thread with `handler` until destroyed. Throws imagecore::Error when it cannot listen.
class ControlServer {
 public:
  ControlServer(std::string path, Handler handler);
  ~ControlServer();
  const std::string& path() const { return path_; }

 private:
  void loop();
  std::string path_;
  Handler handler_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

struct ControlResult {
  bool ok = false;
  int err = 0;
  std::string text;  // the JSON of "ok", or the sentence of "error"
};

// Connects to the daemon at `path`, sends the request, calls on_line for each progress/info
// line, and returns the final answer. When `cancel_fd` (>= 0) becomes readable, it is
// drained, "cancel" is sent once and on_line hears {"cancel"}; the answer is still awaited.
// Throws imagecore::Error(ECONNREFUSED/ENOENT) when no daemon listens there.
ControlResult control_request(const std::string& path,
                              const std::vector<std::string>& request,
                              const std::function<void(const std::vector<std::string>&)>& on_line,
                              int cancel_fd = -1);

// Where a stage daemon registers the control socket of its mount point, so that
// `discfs commit MOUNTPOINT` finds it: a file under $XDG_RUNTIME_DIR/discfs (or
// /tmp/discfs-UID) named after the mount point's real path, holding the store directory.
std::string registry_file(const std::string& mountpoint_realpath);

}  // namespace discfs
