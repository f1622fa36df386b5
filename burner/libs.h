// Private to burner/: the libburnia headers, usable from C++, and process-wide setup.
//
// Under C++ libburn.h puts its API in `namespace burn`, while libisoburn.h names the same
// structs at global scope; the using-declarations below make libisoburn's `struct burn_drive`
// refer to libburn's. libisofs.h needs <cstdint> first. Include this file only from
// burner/*.cc, never from a public header.
#pragma once

// clang-format off
#include <cstdint>

#include <libburn/libburn.h>
using burn::burn_disc;
using burn::burn_drive;
using burn::burn_drive_info;
using burn::burn_progress;
using burn::burn_session;
using burn::burn_toc_entry;
using burn::burn_track;
using burn::burn_write_opts;

#include <libisofs/libisofs.h>
#include <libisoburn/libisoburn.h>
// clang-format on

#include <memory>
#include <mutex>
#include <string>

namespace burner::detail {

// Initializes libisoburn (and so libisofs and libburn) once per process, with every message
// queued (never printed) and libburn's signal handlers left uninstalled. Throws
// imagecore::Error when the libraries cannot start. Thread-safe.
void ensure_libraries();

// Moves every queued libisofs/libburn message into the spdlog log; returns the text of the
// most severe message at SORRY or worse seen, or "" (for error sentences).
std::string drain_messages();

// Serializes all libburnia use in this process: the libraries keep global state (message
// queues, the drive list) and IsoImage objects are not thread-safe.
std::unique_lock<std::mutex> lock_libraries();

// An acquired stdio: pseudo-drive, released on destruction.
class Drive {
 public:
  // Acquires "stdio:PATH". `flags` as for isoburn_drive_aquire. Throws imagecore::Error
  // naming `path` when it cannot.
  Drive(const std::string& path, int flags);
  ~Drive();
  Drive(const Drive&) = delete;
  Drive& operator=(const Drive&) = delete;
  burn_drive* get() const { return info_[0].drive; }

 private:
  burn_drive_info* info_ = nullptr;
};

}  // namespace burner::detail
