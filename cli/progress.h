// The progress of a commit as the user sees it: on a terminal, one line on standard error,
// updated in place and cut to the terminal's width, naming the step (waiting for open files,
// writing with a bar, verifying MD5, activating); with --json, JSON lines on standard output;
// otherwise nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace discfs {

class ProgressBar {
 public:
  // `json`: each update is a {"event":"progress",...} or {"event":"phase",...} line on
  // standard output. Otherwise a line on standard error, drawn only when it is a terminal.
  explicit ProgressBar(bool json);
  // A step starts (burner::CommitOptions::phase). Throws only what writing to the streams
  // throws.
  void phase(const std::string& name);
  // `done` of `total` bytes are written.
  void update(uint64_t done, uint64_t total);
  // A message for the user, on its own line on standard error (terminal or not).
  void note(const std::string& text);
  // Clears the line, if one was drawn.
  void done();

 private:
  void draw(const std::string& text);
  bool json_, tty_;
  bool drawn_ = false;
  std::string phase_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

}  // namespace discfs
