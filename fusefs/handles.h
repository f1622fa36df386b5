// Objects handed to the kernel as file or directory handles (fuse_file_info::fh). A release
// frees its handle's object; the kernel sends none for handles still open when the session
// ends (a SIGTERM right after a close can end it before the close's asynchronous release is
// served), so the table owns every object and frees what is left when it goes.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace fusefs {

template <typename T>
class Handles {
 public:
  // Keeps `object` and returns its handle. Throws bad_alloc.
  uint64_t add(std::unique_ptr<T> object) {
    const auto fh = reinterpret_cast<uint64_t>(object.get());
    std::lock_guard lock(mu_);
    live_.emplace(fh, std::move(object));
    return fh;
  }
  // The object of a handle from add(), valid until remove(). Throws nothing.
  static T& get(uint64_t fh) { return *reinterpret_cast<T*>(fh); }
  // Takes the object of handle `fh` back out of the table (null for an unknown handle).
  // Throws nothing.
  std::unique_ptr<T> remove(uint64_t fh) {
    std::lock_guard lock(mu_);
    auto node = live_.extract(fh);
    return node.empty() ? nullptr : std::move(node.mapped());
  }

  // Replies to open or opendir with `object` as the handle. Throws bad_alloc, before
  // replying.
  void reply_open(fuse_req_t req, fuse_file_info* fi, std::unique_ptr<T> object) {
    fi->fh = add(std::move(object));
    if (fuse_reply_open(req, fi) != 0)
      remove(fi->fh);
  }
  // Replies to release or releasedir, freeing the handle's object. Throws nothing.
  void reply_release(fuse_req_t req, const fuse_file_info* fi) {
    remove(fi->fh);
    fuse_reply_err(req, 0);
  }

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<T>> live_;
};

}  // namespace fusefs
