// The progress of a long write as the user sees it: a bar on a terminal, or JSON lines.
#pragma once

#include <chrono>
#include <cstdint>

namespace discfs {

class ProgressBar {
 public:
  // `json`: each update is a {"event":"progress",...} line on standard output. Otherwise a
  // bar on standard error, drawn only when it is a terminal.
  explicit ProgressBar(bool json);
  // `done` of `total` bytes are written. Throws only what writing to the streams throws.
  void update(uint64_t done, uint64_t total);
  // Ends the bar's line, if one was drawn.
  void done();

 private:
  bool json_, tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

}  // namespace discfs
