#include "cli/progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "imagecore/base/json.h"

namespace discfs {
namespace {

// Columns of the terminal on standard error (80 when it does not say).
size_t columns() {
  winsize w{};
  if (::ioctl(2, TIOCGWINSZ, &w) == 0 && w.ws_col > 0)
    return w.ws_col;
  return 80;
}

}  // namespace

ProgressBar::ProgressBar(bool json) : json_(json), tty_(::isatty(2) && !json) {}

void ProgressBar::draw(const std::string& text) {
  // One column short of the width: a full line would make some terminals wrap.
  const size_t width = columns() > 1 ? columns() - 1 : 1;
  std::cerr << "\r" << text.substr(0, width) << "\x1b[K" << std::flush;
  drawn_ = true;
}

void ProgressBar::phase(const std::string& name) {
  if (json_) {
    std::cout << fmt::format("{{\"event\":\"phase\",\"phase\":{}}}\n", imagecore::json_string(name))
              << std::flush;
    return;
  }
  phase_ = name;
  start_ = std::chrono::steady_clock::now();
  last_ = {};
  if (tty_ && name != "written")
    draw(name + "...");
}

void ProgressBar::update(uint64_t done, uint64_t total) {
  const auto now = std::chrono::steady_clock::now();
  if (json_) {
    std::cout << fmt::format("{{\"event\":\"progress\",\"done\":{},\"total\":{}}}\n", done, total)
              << std::flush;
    return;
  }
  if (!tty_ || (now - last_ < std::chrono::milliseconds(200) && done < total))
    return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? done / secs : 0;
  const double frac = total ? std::min(1.0, static_cast<double>(done) / total) : 0;
  const int bar = 20, filled = static_cast<int>(frac * bar);
  std::string left;
  if (rate > 0 && total > done) {
    const auto s = static_cast<uint64_t>((total - done) / rate);
    if (s > 0)  // under a second: no "0:00 left" while the last bytes go out
      left = fmt::format("  {}:{:02} left", s / 60, s % 60);
  }
  draw(fmt::format("writing [{}{}] {:3.0f}%  {:.1f} / {:.1f} MiB  {:.1f} MiB/s{}",
                   std::string(filled, '='), std::string(bar - filled, ' '), frac * 100,
                   done / 1048576.0, total / 1048576.0, rate / 1048576.0, left));
}

void ProgressBar::note(const std::string& text) {
  if (drawn_)
    std::cerr << "\r\x1b[K";
  drawn_ = false;
  std::cerr << "discfs: " << text << "\n" << std::flush;
}

void ProgressBar::done() {
  if (drawn_)
    std::cerr << "\r\x1b[K" << std::flush;
  drawn_ = false;
}

}  // namespace discfs
