// A bounded least-recently-used cache of parsed directories, keyed by inode number.
// Boost.Intrusive: the LRU list is the one owning container; the hash set only indexes it.
#pragma once

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set.hpp>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "imagecore/node.h"

namespace imagecore {

class Directory;

class DirectoryCache {
 public:
  // Keeps directories until their approximate sizes add up to more than `budget` bytes.
  explicit DirectoryCache(size_t budget);
  ~DirectoryCache();
  DirectoryCache(const DirectoryCache&) = delete;
  DirectoryCache& operator=(const DirectoryCache&) = delete;

  // The cached directory, marked most recently used, or nullptr.
  std::shared_ptr<const Directory> get(Ino ino);
  // Adds (or replaces) a directory and evicts the least recently used beyond the budget.
  void put(Ino ino, std::shared_ptr<const Directory> dir);
  // Bytes currently held.
  size_t bytes() const;

 private:
#ifdef NDEBUG
  using Link = boost::intrusive::link_mode<boost::intrusive::normal_link>;
#else
  using Link = boost::intrusive::link_mode<boost::intrusive::safe_link>;
#endif
  struct Entry : boost::intrusive::list_base_hook<Link>,
                 boost::intrusive::unordered_set_base_hook<Link> {
    Ino ino;
    std::shared_ptr<const Directory> dir;
    size_t bytes;
    friend bool operator==(const Entry& a, const Entry& b) { return a.ino == b.ino; }
    friend size_t hash_value(const Entry& e) { return std::hash<Ino>()(e.ino); }
  };
  struct KeyHash {
    size_t operator()(Ino k) const { return std::hash<Ino>()(k); }
  };
  struct KeyEqual {
    bool operator()(Ino k, const Entry& e) const { return k == e.ino; }
  };
  using Set = boost::intrusive::unordered_set<Entry, boost::intrusive::power_2_buckets<true>>;
  static constexpr size_t kBuckets = 4096;

  void evict_locked();

  mutable std::mutex mu_;
  size_t budget_;
  size_t bytes_ = 0;
  std::vector<Set::bucket_type> buckets_;
  Set index_;
  boost::intrusive::list<Entry> lru_;  // front: most recently used; owns the entries
};

}  // namespace imagecore
