#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <string>

namespace discfs {

ProgressBar::ProgressBar(bool json) : json_(json), tty_(::isatty(2) && !json) {}

void ProgressBar::update(uint64_t done, uint64_t total) {
  const auto now = std::chrono::steady_clock::now();
  if (json_) {
    std::cout << fmt::format("{{\"event\":\"progress\",\"done\":{},\"total\":{}}}\n", done, total)
              << std::flush;
    return;
  }
  if (!tty_ || now - last_ < std::chrono::milliseconds(200))
    return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? done / secs : 0;
  const double frac = total ? static_cast<double>(done) / total : 0;
  const int width = 30, filled = static_cast<int>(frac * width);
  std::string left = "--:--";
  if (rate > 0 && total > done) {
    const auto s = static_cast<uint64_t>((total - done) / rate);
    left = fmt::format("{}:{:02}", s / 60, s % 60);
  }
  std::cerr << fmt::format("\r[{}{}] {:.1f} / {:.1f} MiB  {:.1f} MiB/s  {} left ",
                           std::string(filled, '='), std::string(width - filled, ' '),
                           done / 1048576.0, total / 1048576.0, rate / 1048576.0, left)
            << std::flush;
  drawn_ = true;
}

void ProgressBar::done() {
  if (drawn_)
    std::cerr << "\n";
}

}  // namespace discfs
