// A small least-recently-used map for per-node facts that are cheap to recompute (extended
// attributes, directory record indexes): bounded by entry count and by approximate bytes.
// Not thread-safe: the owner locks.
#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>

namespace imagecore {

template <typename Key, typename Value>
class SmallLru {
 public:
  SmallLru(size_t max_entries, size_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // The value for key, marked most recently used, or nullopt.
  std::optional<Value> get(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end())
      return std::nullopt;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->value;
  }
  // Adds or replaces key; `bytes` is its approximate size. A value larger than the byte
  // budget is not kept.
  void put(const Key& key, Value value, size_t bytes) {
    erase(key);
    if (bytes > max_bytes_ || max_entries_ == 0)
      return;
    order_.push_front({key, std::move(value), bytes});
    index_[key] = order_.begin();
    bytes_ += bytes;
    while (order_.size() > max_entries_ || bytes_ > max_bytes_)
      erase(order_.back().key);
  }
  size_t size() const { return order_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Item {
    Key key;
    Value value;
    size_t bytes;
  };
  void erase(const Key& key) {
    auto it = index_.find(key);
    if (it == index_.end())
      return;
    bytes_ -= it->second->bytes;
    order_.erase(it->second);
    index_.erase(it);
  }

  size_t max_entries_, max_bytes_;
  size_t bytes_ = 0;
  std::list<Item> order_;  // most recently used first
  std::unordered_map<Key, typename std::list<Item>::iterator> index_;
};

}  // namespace imagecore
