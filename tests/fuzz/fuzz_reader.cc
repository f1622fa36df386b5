// libFuzzer target: any bytes as an image: every tree (ISO 9660 and UDF), the session table
// (libisoburn's chain and the search for appended sessions), every session, the boot catalog,
// every directory, every file's data and attributes.
// Caps keep one input's work bounded, so a slow input is a finding, not a timeout of ours.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "imagecore/iso9660/zisofs.h"
#include "imagecore/media/sessions.h"
#include "imagecore/open.h"

using namespace imagecore;

namespace {

constexpr size_t kMaxNodes = 4000;
constexpr uint64_t kMaxBytesPerFile = 1 << 20;

void read_file(const FileTree& fs, const Node& n) {
  std::vector<std::byte> buf(64 * 1024);
  try {
    std::unique_ptr<ZisofsReader> z;
    if (n.zisofs)
      z = std::make_unique<ZisofsReader>(fs.source(), n);
    for (uint64_t off = 0; off < std::min(n.attr.size, kMaxBytesPerFile);) {
      const size_t got = z ? z->read(off, buf) : fs.read(n, off, buf);
      if (got == 0)
        break;
      off += got;
    }
  } catch (const Error&) {
  }
}

void walk(const FileTree& fs, Ino dir, size_t* visited, int depth) {
  std::shared_ptr<const Directory> d;
  try {
    d = fs.list(dir);
  } catch (const Error&) {
    return;
  }
  for (const Node& n : d->entries) {
    if (++*visited > kMaxNodes || depth > 64)
      return;
    try {
      fs.lookup(dir, n.name);
      fs.stat(n.attr.ino);
      if (fs.has_xattrs())
        fs.xattrs(n.attr.ino);
    } catch (const Error&) {
    }
    if (n.attr.type == FileType::Directory)
      walk(fs, n.attr.ino, visited, depth + 1);
    else if (n.attr.type == FileType::Regular)
      read_file(fs, n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spdlog::set_level(spdlog::level::off);
  std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data),
                               reinterpret_cast<const std::byte*>(data) + size);
  std::shared_ptr<const Source> src = make_memory_source(std::move(bytes), "fuzz.iso");
  try {
    // The table alone, and each session it lists, also when a session's tree cannot be read.
    const SessionTable table = read_session_table(*src);
    for (const SessionEntry& s : table.sessions) {
      OpenOptions o;
      o.session = s.number;
      o.dir_cache_bytes = 256 * 1024;
      try {
        open_tree(src, o)->stat(kRootIno);
      } catch (const Error&) {
      }
      if (s.number >= 8)
        break;
    }
  } catch (const Error&) {
  }
  std::vector<OpenOptions> views;
  for (Tree t : {Tree::Auto, Tree::Joliet, Tree::Iso9660, Tree::Udf}) {
    OpenOptions o;
    o.tree = t;
    o.dir_cache_bytes = 256 * 1024;
    views.push_back(o);
  }
  OpenOptions every;
  every.dir_cache_bytes = 256 * 1024;
  every.all_sessions = true;
  every.boot = true;
  views.push_back(every);
  for (const OpenOptions& o : views) {
    try {
      std::shared_ptr<const FileTree> fs = open_tree(src, o);
      size_t visited = 0;
      fs->stat(kRootIno);
      walk(*fs, kRootIno, &visited, 0);
    } catch (const Error&) {
    }
  }
  return 0;
}
