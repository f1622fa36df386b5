#include "imagecore/tree.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "imagecore/base/error.h"

namespace imagecore {

const Node* Directory::find(std::string_view name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                             [&](uint32_t i, std::string_view n) { return entries[i].name < n; });
  if (it == by_name_.end() || entries[*it].name != name)
    return nullptr;
  return &entries[*it];
}

void Directory::finish() {
  std::vector<uint32_t> idx(entries.size());
  for (uint32_t i = 0; i < idx.size(); ++i)
    idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(),
                   [&](uint32_t a, uint32_t b) { return entries[a].name < entries[b].name; });
  // A name may appear once: later duplicates (older ISO versions, hostile images) go.
  std::vector<bool> drop(entries.size(), false);
  for (size_t i = 1; i < idx.size(); ++i)
    if (entries[idx[i]].name == entries[idx[i - 1]].name)
      drop[idx[i]] = true;
  if (std::find(drop.begin(), drop.end(), true) != drop.end()) {
    std::vector<Node> kept;
    for (size_t i = 0; i < entries.size(); ++i)
      if (!drop[i])
        kept.push_back(std::move(entries[i]));
    entries = std::move(kept);
    return finish();
  }
  by_name_ = std::move(idx);
  bytes_ = sizeof(Directory) + entries.capacity() * sizeof(Node) + by_name_.capacity() * 4;
  for (const Node& n : entries)
    bytes_ += n.name.capacity() + n.symlink.capacity() + n.extents.capacity() * sizeof(Extent) +
              n.defect.capacity() + n.inline_data.capacity();
}

Node FileTree::lookup(Ino dir, std::string_view name) const {
  std::shared_ptr<const Directory> d = list(dir);
  if (const Node* n = d->find(name))
    return *n;
  throw Error(ENOENT, "no such entry");
}

std::vector<Extent> FileTree::map(const Node& n, uint64_t off, uint64_t len) const {
  if (!n.defect.empty())
    throw FormatError(n.defect);
  if (n.zisofs)
    throw Error(EINVAL, "a zisofs file has no plain byte ranges");
  std::vector<Extent> out;
  if (off >= n.attr.size || n.has_inline_data)
    return out;
  len = std::min(len, n.attr.size - off);
  uint64_t file_pos = 0;
  for (const Extent& e : n.extents) {
    if (len == 0)
      break;
    if (off < file_pos + e.length) {
      const uint64_t skip = off - file_pos;
      const uint64_t take = std::min(len, e.length - skip);
      out.push_back({e.offset == kZeroExtent ? kZeroExtent : e.offset + skip, take});
      off += take;
      len -= take;
    }
    file_pos += e.length;
  }
  return out;
}

size_t FileTree::read(const Node& n, uint64_t off, std::span<std::byte> out) const {
  if (n.has_inline_data) {
    if (!n.defect.empty())
      throw FormatError(n.defect);
    const uint64_t size = std::min<uint64_t>(n.attr.size, n.inline_data.size());
    if (off >= size)
      return 0;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(out.size(), size - off));
    std::memcpy(out.data(), n.inline_data.data() + off, take);
    return take;
  }
  size_t done = 0;
  for (const Extent& e : map(n, off, out.size())) {
    std::span<std::byte> part = out.subspan(done, e.length);
    if (e.offset == kZeroExtent)
      std::fill(part.begin(), part.end(), std::byte{0});
    else
      source().read(e.offset, part);
    done += e.length;
  }
  return done;
}

}  // namespace imagecore
