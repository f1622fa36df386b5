// What the kernel may still cache of a stage mount: the inodes it holds (lookup counts), the
// numbers it knows them by, and the names it was told do not exist (negative entries).
//
// Node ids: the kernel knows an inode by the store's number, except across a commit or a
// discard, which renumber the store's inodes (a commit all of them). An inode the kernel holds
// then (a working directory, an open file, a cached name) keeps the number it had, bound to
// the store's new inode at the same path (rebind()), until the kernel forgets it; so a
// process's working directory and open files stay valid and st_ino does not change. The
// store never reuses a number (AUTOINCREMENT), so the new inodes cannot take a number the
// kernel still holds.
//
// A commit or a discard may also rewrite entries the kernel caches for up to the entry
// timeout; forget_in_kernel() tells it to drop those. Thread-safe: one mutex, never held
// across a call into the store or the kernel.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
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

  // The store's inode the kernel's `nodeid` stands for. Throws nothing.
  imagecore::Ino store_ino(imagecore::Ino nodeid);
  // The kernel's number for the store's inode `ino` (st_ino, d_ino), not counted. Throws
  // nothing.
  imagecore::Ino nodeid(imagecore::Ino ino);
  // An entry reply hands the kernel the store's inode `ino`: its node id, counted once.
  // Throws bad_alloc.
  imagecore::Ino hand_out(imagecore::Ino ino);
  // Counts one lookup of `nodeid` (the node id of the store's `ino`): a reply handed the
  // kernel a reference to it. Throws bad_alloc.
  void looked_up(imagecore::Ino nodeid, imagecore::Ino ino);
  // The kernel dropped `n` references to `nodeid`. When that was its last one: the store's
  // inode it stood for (the binding is dropped). More than it held (or a number it never
  // got) is a bug: aborts in debug builds, is logged as an error in release builds. Throws
  // nothing.
  std::optional<imagecore::Ino> forget(imagecore::Ino nodeid, uint64_t n);
  // Whether the kernel holds a reference to the store's inode `ino`. Throws nothing.
  bool held(imagecore::Ino ino);

  // The node ids the kernel holds, with the store's inode each stands for. Throws bad_alloc.
  std::vector<std::pair<imagecore::Ino, imagecore::Ino>> held_nodeids();
  // After the store was renumbered: binds each (node id, store inode) of `now` that the
  // kernel still holds; every other node id stands for the store's inode of its number
  // again. A store inode is given one node id at most. Throws bad_alloc.
  void rebind(const std::vector<std::pair<imagecore::Ino, imagecore::Ino>>& now);

  // Records that "no such entry" for `name` in `parent` is about to be cached by the kernel.
  // False when too many are remembered: then the reply must not let the kernel cache it.
  bool remember_negative(imagecore::Ino parent, const char* name);

  // The names the kernel may hold (in node ids), for forget_in_kernel() after a change; take
  // them before the change. Throws bad_alloc.
  std::vector<KernelName> kernel_names();
  // Tells the kernel to drop these names, the negative entries it may still hold, and the
  // attributes and pages of these inodes and of the root. Throws nothing.
  void forget_in_kernel(const std::vector<KernelName>& names);

 private:
  stage::Store& store_;
  const double timeout_;
  fuse_session* se_ = nullptr;

  std::mutex mu_;
  std::unordered_map<imagecore::Ino, uint64_t> lookups_;  // by node id
  // Node ids that are not the store's number of their inode, both ways.
  std::unordered_map<imagecore::Ino, imagecore::Ino> to_store_, to_kernel_;
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
