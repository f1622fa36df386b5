// What the kernel may still cache of a stage mount: the inodes it holds (lookup counts) and
// the names it was told do not exist (negative entries). A commit or a discard renumbers or
// rewrites entries the kernel may still hold for up to the entry timeout; this tells it to
// drop them. Thread-safe: one mutex, never held across a call into the store or the kernel.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "imagecore/node.h"

namespace stage {
class Store;
}

namespace fusefs {

// A name the kernel may hold: `name` in `parent` is `ino` (parent 0: no name known).
struct KernelName {
  imagecore::Ino parent;
  std::string name;
  imagecore::Ino ino;
};

class KernelCache {
 public:
  // `store` names inodes for kernel_names() and must outlive this object; `timeout` is the
  // entry timeout the replies give, in seconds.
  KernelCache(stage::Store& store, double timeout) : store_(store), timeout_(timeout) {}

  // The session to notify; without one forget_in_kernel() does nothing.
  void set_session(fuse_session* se) { se_ = se; }

  // Counts one lookup of `ino`: a reply handed the kernel a reference to it. Throws bad_alloc.
  void looked_up(imagecore::Ino ino);
  // The kernel dropped `n` references to `ino`. True when that was its last one. More than
  // it held (or an inode it never got) is a bug: aborts in debug builds, is logged as an
  // error in release builds. Throws nothing.
  bool forget(imagecore::Ino ino, uint64_t n);
  // Whether the kernel holds a reference to `ino`. Throws nothing.
  bool held(imagecore::Ino ino);

  // Records that "no such entry" for `name` in `parent` is about to be cached by the kernel.
  // False when too many are remembered: then the reply must not let the kernel cache it.
  bool remember_negative(imagecore::Ino parent, const char* name);

  // The names the kernel may hold, for forget_in_kernel() after a change; take them before
  // the change. Throws bad_alloc.
  std::vector<KernelName> kernel_names();
  // Tells the kernel to drop these names, the negative entries it may still hold, and the
  // attributes and pages of these inodes and of the root. Throws nothing.
  void forget_in_kernel(const std::vector<KernelName>& names);

 private:
  stage::Store& store_;
  const double timeout_;
  fuse_session* se_ = nullptr;

  std::mutex mu_;
  std::unordered_map<imagecore::Ino, uint64_t> lookups_;
  // Names answered "no such entry" as cached negative entries, oldest first. A discard can
  // bring such a name back, so forget_in_kernel() drops those still within the timeout.
  struct Negative {
    std::chrono::steady_clock::time_point at;
    imagecore::Ino parent;
    std::string name;
  };
  std::deque<Negative> negatives_;
};

}  // namespace fusefs
