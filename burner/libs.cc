// Process-wide libburnia setup: one initialization, messages queued and drained into spdlog.
#include "burner/libs.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <mutex>

#include "imagecore/base/error.h"

namespace burner::detail {
namespace {

std::mutex g_lib_mutex;

// Severity ranks as the libraries name them; higher is worse.
int severity_rank(const char* sev) {
  static const char* const kOrder[] = {"DEBUG", "UPDATE", "NOTE",    "HINT",  "WARNING",
                                       "SORRY", "MISHAP", "FAILURE", "FATAL", "ABORT"};
  for (int i = 0; i < static_cast<int>(std::size(kOrder)); ++i) {
    if (std::strcmp(sev, kOrder[i]) == 0)
      return i;
  }
  return 0;
}

void log_one(const char* lib, const char* sev, const char* text, int code) {
  std::string msg(text);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
    msg.pop_back();
  const int rank = severity_rank(sev);
  if (rank >= severity_rank("SORRY")) {
    spdlog::error("{} {}: {} (0x{:x})", lib, sev, msg, static_cast<unsigned>(code));
  } else if (rank >= severity_rank("WARNING")) {
    spdlog::warn("{} {}: {}", lib, sev, msg);
  } else if (rank >= severity_rank("NOTE")) {
    spdlog::info("{} {}: {}", lib, sev, msg);
  } else {
    spdlog::debug("{} {}: {}", lib, sev, msg);
  }
}

}  // namespace

void ensure_libraries() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    char msg[1024] = {};
    // libburn's message queue exists only after initialization; queue everything and
    // print nothing right after it.
    if (isoburn_initialize(msg, 0) <= 0) {
      failure = std::string("cannot start libisoburn: ") + msg;
      return;
    }
    iso_set_msgs_severities(const_cast<char*>("ALL"), const_cast<char*>("NEVER"),
                            const_cast<char*>("discfs: "));
    burn::burn_msgs_set_severities(const_cast<char*>("ALL"), const_cast<char*>("NEVER"),
                                   const_cast<char*>("discfs: "));
    // libburn installs no signal handler until burn_set_signal_handling() is called, and
    // burner never calls it: its handlers end in exit(1). A stdio: target needs no drive
    // cleanup, and a killed commit leaves the previous session in force (see commit.cc).
  });
  if (!failure.empty())
    throw imagecore::Error(EIO, failure);
}

std::string drain_messages() {
  std::string worst;
  int worst_rank = severity_rank("SORRY") - 1;
  char text[4096 + 16];
  char sev[96];
  for (int guard = 0; guard < 100000; ++guard) {
    int code = 0, os_errno = 0;
    text[0] = sev[0] = 0;
    if (burn::burn_msgs_obtain(const_cast<char*>("ALL"), &code, text, &os_errno, sev) <= 0) {
      break;
    }
    log_one("libburn", sev, text, code);
    if (severity_rank(sev) > worst_rank) {
      worst_rank = severity_rank(sev);
      worst = text;
    }
  }
  for (int guard = 0; guard < 100000; ++guard) {
    int code = 0, imgid = 0;
    text[0] = sev[0] = 0;
    if (iso_obtain_msgs(const_cast<char*>("ALL"), &code, &imgid, text, sev) <= 0)
      break;
    log_one("libisofs", sev, text, code);
    if (severity_rank(sev) > worst_rank) {
      worst_rank = severity_rank(sev);
      worst = text;
    }
  }
  while (!worst.empty() && (worst.back() == '\n' || worst.back() == ' '))
    worst.pop_back();
  return worst;
}

std::unique_lock<std::mutex> lock_libraries() {
  return std::unique_lock<std::mutex>(g_lib_mutex);
}

Drive::Drive(const std::string& path, int flags) {
  std::string adr = "stdio:" + path;
  const int ret = isoburn_drive_aquire(&info_, adr.data(), flags);
  if (ret <= 0 || info_ == nullptr) {
    const std::string why = drain_messages();
    info_ = nullptr;
    throw imagecore::Error(EIO, path + ": cannot open as a libburn drive" +
                                    (why.empty() ? std::string() : ": " + why));
  }
}

Drive::~Drive() {
  if (info_ == nullptr)
    return;
  isoburn_drive_release(info_[0].drive, 0);
  burn::burn_drive_info_free(info_);
  drain_messages();
}

}  // namespace burner::detail
