#include "imagecore/dir_cache.h"

#include "imagecore/iso9660/iso_fs.h"

namespace imagecore {

DirectoryCache::DirectoryCache(size_t budget)
    : budget_(budget), buckets_(kBuckets), index_(Set::bucket_traits(buckets_.data(), kBuckets)) {}

DirectoryCache::~DirectoryCache() {
  index_.clear();
  lru_.clear_and_dispose([](Entry* e) { delete e; });
}

std::shared_ptr<const Directory> DirectoryCache::get(Ino ino) {
  std::lock_guard lock(mu_);
  auto it = index_.find(ino, KeyHash(), KeyEqual());
  if (it == index_.end())
    return nullptr;
  lru_.splice(lru_.begin(), lru_, lru_.iterator_to(*it));
  return it->dir;
}

void DirectoryCache::put(Ino ino, std::shared_ptr<const Directory> dir) {
  auto e = std::make_unique<Entry>();
  e->ino = ino;
  e->bytes = dir->bytes() + sizeof(Entry);
  e->dir = std::move(dir);
  std::lock_guard lock(mu_);
  auto it = index_.find(ino, KeyHash(), KeyEqual());
  if (it != index_.end()) {
    Entry* old = &*it;
    bytes_ -= old->bytes;
    index_.erase(it);
    lru_.erase(lru_.iterator_to(*old));
    delete old;
  }
  bytes_ += e->bytes;
  index_.insert(*e);
  lru_.push_front(*e.release());
  evict_locked();
}

size_t DirectoryCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

void DirectoryCache::evict_locked() {
  // Always keep the newest entry, even when it alone exceeds the budget.
  while (bytes_ > budget_ && lru_.size() > 1) {
    Entry& victim = lru_.back();
    bytes_ -= victim.bytes;
    index_.erase(index_.iterator_to(victim));
    lru_.pop_back_and_dispose([](Entry* e) { delete e; });
  }
}

}  // namespace imagecore
