// Keeps requests out while a commit or a discard renumbers the store's inodes (StageFs): the
// FUSE workers hold it shared while they turn the kernel's node ids into store inodes and use
// them; the commit thread holds it alone from taking the paths of the inodes the kernel holds
// until it has bound them to the renumbered inodes. A waiting holder alone goes first, so a
// stream of requests cannot starve a commit. No FUSE in here.
#pragma once

#include <condition_variable>
#include <mutex>

namespace fusefs {

class Renumbering {
 public:
  void lock_shared() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !alone_; });
    ++shared_;
  }
  void unlock_shared() {
    std::lock_guard lock(mu_);
    if (--shared_ == 0)
      cv_.notify_all();
  }
  void lock() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !alone_; });
    alone_ = true;
    cv_.wait(lock, [this] { return shared_ == 0; });
  }
  void unlock() {
    std::lock_guard lock(mu_);
    alone_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned shared_ = 0;
  bool alone_ = false;
};

}  // namespace fusefs
