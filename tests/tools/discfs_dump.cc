// discfs-dump: walks an image through imagecore alone (no FUSE) and prints one JSON object per
// entry, for comparison with independent readers in the tests. Also proof that imagecore
// stands without the FUSE layer.
#include <openssl/evp.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "imagecore/base/json.h"
#include "imagecore/iso9660/zisofs.h"
#include "imagecore/open.h"

using namespace imagecore;

namespace {

const char* type_name(FileType t) {
  switch (t) {
    case FileType::Regular:
      return "reg";
    case FileType::Directory:
      return "dir";
    case FileType::Symlink:
      return "lnk";
    case FileType::CharDevice:
      return "chr";
    case FileType::BlockDevice:
      return "blk";
    case FileType::Fifo:
      return "fifo";
    case FileType::Socket:
      return "sock";
  }
  return "?";
}

std::string digest(const FileTree& fs, const Node& n) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<std::byte> buf(1 << 20);
  std::unique_ptr<ZisofsReader> z;
  if (n.zisofs)
    z = std::make_unique<ZisofsReader>(fs.source(), n);
  for (uint64_t off = 0; off < n.attr.size;) {
    size_t got = z ? z->read(off, buf) : fs.read(n, off, buf);
    if (got == 0)
      throw Error(EIO, "short read");
    EVP_DigestUpdate(ctx.get(), buf.data(), got);
    off += got;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &md_len);
  std::string hex;
  for (unsigned char c : std::string_view(reinterpret_cast<char*>(md), md_len))
    hex += fmt::format("{:02x}", c);
  return hex;
}

bool g_xattrs = false;

unsigned long parse_count(const std::string& s) {
  size_t used = 0;
  unsigned long n = 0;
  try {
    n = std::stoul(s, &used);
  } catch (const std::exception&) {
  }
  if (s.empty() || used != s.size() || n == 0 || n > 100000)
    throw Error(EINVAL, "--session wants a session number from 1");
  return n;
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes)
    out += fmt::format("{:02x}", c);
  return out;
}

void print(const FileTree& fs, const std::string& path, const Node& n, bool data) {
  const Attr& a = n.attr;
  std::string line = "{\"path\":" + json_string(path) + ",\"type\":\"" + type_name(a.type) + "\"" +
                     fmt::format(
                         ",\"mode\":{},\"uid\":{},\"gid\":{},\"nlink\":{},"
                         "\"size\":{},\"ino\":{},\"mtime\":{},\"atime\":{},"
                         "\"ctime\":{},\"posix\":{}",
                         a.perm, a.uid, a.gid, a.nlink, a.size, a.ino, a.mtime.sec, a.atime.sec,
                         a.ctime.sec, a.has_posix);
  if (a.type == FileType::Symlink)
    line += ",\"target\":" + json_string(n.symlink);
  if (a.type == FileType::CharDevice || a.type == FileType::BlockDevice)
    line += fmt::format(",\"rdev\":[{},{}]", major(a.rdev), minor(a.rdev));
  std::string error = n.defect;
  if (g_xattrs && fs.has_xattrs()) {
    try {
      std::string xs;
      for (const Xattr& x : fs.xattrs(a.ino))
        xs += (xs.empty() ? "" : ",") + json_string(x.name) + ":\"" + hex(x.value) + "\"";
      line += ",\"xattrs\":{" + xs + "}";
    } catch (const Error& e) {
      error = e.what();
    }
  }
  if (data && a.type == FileType::Regular && error.empty()) {
    try {
      line += ",\"sha256\":\"" + digest(fs, n) + "\"";
    } catch (const Error& e) {
      error = e.what();
    }
  }
  if (!error.empty())
    line += ",\"error\":" + json_string(error);
  std::cout << line << "}\n";
}

// Depth first, each entry printed once; a directory that cannot be listed carries the error.
// A directory already on the path (a loop deeper than imagecore hides) is not entered, as
// find(1) reports it.
void walk(const FileTree& fs,
          const Directory& dir,
          const std::string& path,
          bool data,
          std::vector<Ino>* path_inos) {
  for (const Node& n : dir.entries) {
    const std::string p = (path == "/" ? "" : path) + "/" + n.name;
    if (n.attr.type != FileType::Directory || !n.defect.empty()) {
      print(fs, p, n, data);
      continue;
    }
    Node shown = n;
    std::shared_ptr<const Directory> sub;
    if (std::find(path_inos->begin(), path_inos->end(), n.attr.ino) != path_inos->end()) {
      shown.defect = "directory loop: this directory is one of its own ancestors";
    } else {
      try {
        sub = fs.list(n.attr.ino);
      } catch (const Error& e) {
        shown.defect = e.what();
      }
    }
    print(fs, p, shown, data);
    if (sub) {
      path_inos->push_back(n.attr.ino);
      walk(fs, *sub, p, data, path_inos);
      path_inos->pop_back();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_st("discfs-dump"));
  spdlog::set_level(spdlog::level::warn);
  OpenOptions opts;
  bool data = true;
  const char* usage =
      "usage: discfs-dump [--tree T] [--session N | --sessions] [--boot] [--xattrs] [--no-data] "
      "IMAGE";
  std::string image;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--tree" && i + 1 < argc)
        opts.tree = parse_tree(argv[++i]);
      else if (a == "--no-data")
        data = false;
      else if (a == "--session" && i + 1 < argc)
        opts.session = static_cast<unsigned>(parse_count(argv[++i]));
      else if (a == "--sessions")
        opts.all_sessions = true;
      else if (a == "--boot")
        opts.boot = true;
      else if (a == "--xattrs")
        g_xattrs = true;
      else if (image.empty() && a[0] != '-')
        image = a;
      else
        throw Error(EINVAL, usage);
    }
    if (image.empty() || (opts.session && opts.all_sessions))
      throw Error(EINVAL, usage);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return static_cast<int>(discfs::ExitCode::Usage);
  }
  try {
    std::shared_ptr<const FileTree> tree = open_tree(open_file_source(image), opts);
    const FileTree& fs = *tree;
    Node root = fs.stat(kRootIno);
    std::shared_ptr<const Directory> top;
    try {
      top = fs.list(kRootIno);
    } catch (const Error& e) {
      root.defect = e.what();
    }
    print(fs, "/", root, false);
    std::vector<Ino> path_inos{kRootIno};
    if (top)
      walk(fs, *top, "/", data, &path_inos);
  } catch (const Error& e) {
    std::cerr << "discfs-dump: " << e.what() << "\n";
    return static_cast<int>(discfs::exit_status_for(std::current_exception()).code);
  }
  return 0;
}
