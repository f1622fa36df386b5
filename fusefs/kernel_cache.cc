#include "fusefs/kernel_cache.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <unordered_set>

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

Ino KernelCache::store_ino(Ino nodeid) {
  std::lock_guard lock(mu_);
  const auto it = to_store_.find(nodeid);
  return it == to_store_.end() ? nodeid : it->second;
}

Ino KernelCache::nodeid(Ino ino) {
  std::lock_guard lock(mu_);
  const auto it = to_kernel_.find(ino);
  return it == to_kernel_.end() ? ino : it->second;
}

Ino KernelCache::hand_out(Ino ino) {
  std::lock_guard lock(mu_);
  const auto it = to_kernel_.find(ino);
  const Ino id = it == to_kernel_.end() ? ino : it->second;
  ++lookups_[id];
  return id;
}

void KernelCache::looked_up(Ino nodeid, Ino ino) {
  std::lock_guard lock(mu_);
  ++lookups_[nodeid];
  // The kernel may have forgotten `nodeid` between nodeid() and this count: bind it again.
  if (nodeid != ino && !to_store_.count(nodeid) && !to_kernel_.count(ino)) {
    to_store_.emplace(nodeid, ino);
    to_kernel_.emplace(ino, nodeid);
  }
}

std::optional<Ino> KernelCache::forget(Ino nodeid, uint64_t n) {
  uint64_t held = 0;
  Ino ino = nodeid;
  {
    std::lock_guard lock(mu_);
    auto it = lookups_.find(nodeid);
    if (it != lookups_.end()) {
      held = it->second;
      if (n < held) {
        it->second -= n;
        return std::nullopt;
      }
      lookups_.erase(it);
    }
    const auto b = to_store_.find(nodeid);
    if (b != to_store_.end()) {
      ino = b->second;
      to_kernel_.erase(ino);
      to_store_.erase(b);
    }
  }
  if (n > held)
    count_underflow(nodeid, held, n);
  if (held == 0)
    return std::nullopt;
  return ino;
}

bool KernelCache::held(Ino ino) {
  std::lock_guard lock(mu_);
  const auto it = to_kernel_.find(ino);
  return lookups_.count(it == to_kernel_.end() ? ino : it->second) != 0;
}

std::vector<std::pair<Ino, Ino>> KernelCache::held_nodeids() {
  std::lock_guard lock(mu_);
  std::vector<std::pair<Ino, Ino>> out;
  out.reserve(lookups_.size());
  for (const auto& [id, count] : lookups_) {
    const auto it = to_store_.find(id);
    out.emplace_back(id, it == to_store_.end() ? id : it->second);
  }
  return out;
}

void KernelCache::rebind(const std::vector<std::pair<Ino, Ino>>& now) {
  std::lock_guard lock(mu_);
  to_store_.clear();
  to_kernel_.clear();
  std::unordered_set<Ino> taken;  // store inodes given a node id
  // Node ids still their inode's own number first: no other node id may take that inode.
  for (const auto& [id, ino] : now)
    if (id == ino && lookups_.count(id))
      taken.insert(ino);
  for (const auto& [id, ino] : now) {
    if (id == ino || !lookups_.count(id) || !taken.insert(ino).second)
      continue;
    to_store_.emplace(id, ino);
    to_kernel_.emplace(ino, id);
  }
}

std::vector<KernelName> KernelCache::kernel_names() {
  std::vector<KernelName> out;
  for (const auto& [id, ino] : held_nodeids()) {
    std::vector<std::pair<imagecore::Ino, std::string>> names;
    try {
      names = store_.names_of(ino);
    } catch (const imagecore::Error& e) {
      spdlog::debug("names of inode {}: {}", ino, e.what());
    }
    for (auto& [parent, name] : names)
      out.push_back({nodeid(parent), std::move(name), id});
    if (names.empty())
      out.push_back({0, {}, id});
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
