#include "fusefs/kernel_cache.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "imagecore/base/error.h"
#include "stage/store.h"

namespace fusefs {

using imagecore::Ino;

namespace {

// The kernel forgot more lookups than the replies counted: a reply that hands out a
// reference does not count it, or a forget is counted twice. Either breaks the purge of
// deleted files, so debug builds stop here (as libfuse's passthrough_hp does); release
// builds log it and go on with the count at zero.
void count_underflow(Ino ino, uint64_t held, uint64_t n) {
  spdlog::error("INTERNAL ERROR: Negative lookup count for inode {}: {} forgotten, {} held", ino, n,
                held);
#ifndef NDEBUG
  spdlog::default_logger()->flush();
  std::abort();
#endif
}

}  // namespace

void KernelCache::looked_up(Ino ino) {
  std::lock_guard lock(mu_);
  ++lookups_[ino];
}

bool KernelCache::forget(Ino ino, uint64_t n) {
  uint64_t held = 0;
  {
    std::lock_guard lock(mu_);
    auto it = lookups_.find(ino);
    if (it != lookups_.end()) {
      held = it->second;
      if (n < held) {
        it->second -= n;
        return false;
      }
      lookups_.erase(it);
    }
  }
  if (n > held)
    count_underflow(ino, held, n);
  return held != 0;
}

bool KernelCache::held(Ino ino) {
  std::lock_guard lock(mu_);
  return lookups_.count(ino) != 0;
}

std::vector<KernelName> KernelCache::kernel_names() {
  std::vector<imagecore::Ino> held;
  {
    std::lock_guard lock(mu_);
    held.reserve(lookups_.size());
    for (const auto& [ino, count] : lookups_)
      held.push_back(ino);
  }
  std::vector<KernelName> out;
  for (imagecore::Ino ino : held) {
    std::vector<std::pair<imagecore::Ino, std::string>> names;
    try {
      names = store_.names_of(ino);
    } catch (const imagecore::Error& e) {
      spdlog::debug("names of inode {}: {}", ino, e.what());
    }
    for (auto& [parent, name] : names)
      out.push_back({parent, std::move(name), ino});
    if (names.empty())
      out.push_back({0, {}, ino});
  }
  return out;
}

bool KernelCache::remember_negative(Ino parent, const char* name) {
  constexpr size_t kMaxNegatives = 1 << 16;
  const auto now = std::chrono::steady_clock::now();
  const auto keep = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(timeout_ + 1.0));
  std::lock_guard lock(mu_);
  while (!negatives_.empty() && now - negatives_.front().at > keep)
    negatives_.pop_front();
  if (negatives_.size() >= kMaxNegatives)
    return false;
  negatives_.push_back({now, parent, name});
  return true;
}

void KernelCache::forget_in_kernel(const std::vector<KernelName>& names) {
  if (!se_)
    return;
  std::vector<std::pair<Ino, std::string>> negatives;
  {
    std::lock_guard lock(mu_);
    for (const Negative& n : negatives_)
      negatives.emplace_back(n.parent, n.name);
  }
  // Entries first (the kernel drops the dentries and, with them, the subtrees), then the
  // inodes' attributes and pages. ENOENT means the kernel had already let go.
  for (const KernelName& k : names)
    if (k.parent != 0)
      fuse_lowlevel_notify_inval_entry(se_, k.parent, k.name.c_str(), k.name.size());
  for (const auto& [parent, name] : negatives)
    fuse_lowlevel_notify_inval_entry(se_, parent, name.c_str(), name.size());
  for (const KernelName& k : names)
    fuse_lowlevel_notify_inval_inode(se_, k.ino, 0, 0);
  fuse_lowlevel_notify_inval_inode(se_, imagecore::kRootIno, 0, 0);
}

}  // namespace fusefs
