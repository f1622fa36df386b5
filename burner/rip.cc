#include "burner/rip.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "burner/target.h"
#include "imagecore/base/error.h"
#include "imagecore/base/fd.h"
#include "imagecore/base/source.h"
#include "imagecore/media/sessions.h"
#include "imagecore/udf/udf_fs.h"

namespace burner {
namespace {

constexpr uint64_t kChunk = 64 * kBlockSize;                  // first pass: 128 KiB reads
constexpr auto kSaveEvery = std::chrono::milliseconds(1000);  // the map, at least this often
constexpr uint64_t kSaveBytes = 16u << 20;                    // or after this many bytes
constexpr uint64_t kMaxMapBytes = uint64_t{1} << 50;          // no disc or device is larger

[[noreturn]] void fail_errno(const std::string& path, const std::string& what) {
  const int e = errno;
  throw imagecore::Error(e, path + ": " + what + ": " + std::strerror(e));
}

using imagecore::Fd;

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%08llX", static_cast<unsigned long long>(v));
  return buf;
}

// Reads exactly out.size() bytes at `off`; false on an error or a short read.
bool read_fully(int fd, uint64_t off, std::span<std::byte> out) {
  size_t have = 0;
  while (have < out.size()) {
    const ssize_t r =
        ::pread(fd, out.data() + have, out.size() - have, static_cast<off_t>(off + have));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    have += static_cast<size_t>(r);
  }
  return true;
}

void write_fully(int fd, uint64_t off, std::span<const std::byte> data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t w =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(off + done));
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      fail_errno(path, "cannot write at byte " + std::to_string(off + done));
    done += static_cast<size_t>(w);
  }
}

// Replaces `path` with `text` atomically (temporary file, fsync, rename).
void save_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0)
      fail_errno(tmp, "cannot write the map");
    write_fully(fd.get(), 0, std::as_bytes(std::span(text.data(), text.size())), tmp);
    if (::fsync(fd.get()) != 0)
      fail_errno(tmp, "cannot write the map");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    fail_errno(path, "cannot replace the map");
}

}  // namespace

RescueMap::RescueMap(uint64_t size) {
  if (size > 0)
    blocks_.push_back({0, size, '?'});
}

RescueMap RescueMap::parse(const std::string& text, const std::string& name) {
  RescueMap m;
  std::istringstream in(text);
  std::string line;
  bool status_line = false;
  unsigned number = 0;
  while (std::getline(in, line)) {
    ++number;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#')
      continue;
    if (!status_line) {  // current_pos current_status [current_pass]
      status_line = true;
      continue;
    }
    unsigned long long pos = 0, size = 0;
    char status = 0;
    if (std::sscanf(line.c_str(), "%lli %lli %c", &pos, &size, &status) != 3 ||
        std::strchr("?*/-+", status) == nullptr || pos != m.size() || size > kMaxMapBytes)
      throw imagecore::Error(EINVAL, name + ": line " + std::to_string(number) +
                                         " is not a contiguous ddrescue mapfile block");
    if (size > 0)
      m.blocks_.push_back({pos, size, status == '*' || status == '/' ? '?' : status});
  }
  if (!status_line)
    throw imagecore::Error(EINVAL, name + ": not a ddrescue mapfile (no status line)");
  return m;
}

std::string RescueMap::text(const std::vector<std::string>& comments, uint64_t current_pos) const {
  std::string t;
  for (const std::string& c : comments)
    t += "# " + c + "\n";
  t += "# current_pos  current_status  current_pass\n";
  t += hex(current_pos) + "     " + (bytes_with('?') || bytes_with('-') ? "?" : "+") +
       "               1\n";
  t += "#      pos        size  status\n";
  for (const MapBlock& b : blocks_)
    t += hex(b.pos) + "  " + hex(b.size) + "  " + b.status + "\n";
  return t;
}

void RescueMap::set(uint64_t pos, uint64_t size, char status) {
  if (size == 0)
    return;
  const uint64_t end = pos + size;
  std::vector<MapBlock> out;
  for (const MapBlock& b : blocks_) {
    const uint64_t bend = b.pos + b.size;
    if (bend <= pos || b.pos >= end) {
      out.push_back(b);
      continue;
    }
    if (b.pos < pos)
      out.push_back({b.pos, pos - b.pos, b.status});
    if (bend > end)
      out.push_back({end, bend - end, b.status});
  }
  // Insert the new block in order.
  const auto at = std::lower_bound(out.begin(), out.end(), pos,
                                   [](const MapBlock& b, uint64_t p) { return b.pos < p; });
  out.insert(at, {pos, size, status});
  // Merge neighbours of the same status.
  blocks_.clear();
  for (const MapBlock& b : out) {
    if (!blocks_.empty() && blocks_.back().status == b.status &&
        blocks_.back().pos + blocks_.back().size == b.pos)
      blocks_.back().size += b.size;
    else
      blocks_.push_back(b);
  }
}

uint64_t RescueMap::size() const {
  return blocks_.empty() ? 0 : blocks_.back().pos + blocks_.back().size;
}

uint64_t RescueMap::bytes_with(char status) const {
  uint64_t n = 0;
  for (const MapBlock& b : blocks_)
    if (b.status == status)
      n += b.size;
  return n;
}

RipResult rip(const RipOptions& o) {
  RipResult r;
  r.map = o.map.empty() ? o.output + ".map" : o.map;
  const std::shared_ptr<const imagecore::Source> src = imagecore::open_file_source(o.source);

  RescueMap map;
  bool resumed = false;
  {
    std::ifstream in(r.map);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      map = RescueMap::parse(text.str(), r.map);
      resumed = true;
    }
  }
  if (!resumed) {
    // As far as the recorded sessions reach: not into a disc's lead-out or a device's rest.
    uint64_t end = 0;
    try {
      const imagecore::SessionTable table = imagecore::read_session_table(*src);
      for (const imagecore::SessionEntry& s : table.sessions)
        end = std::max(end, s.start_lba + s.blocks);
    } catch (const imagecore::NotAnImage&) {
      // UDF without ISO 9660 records no session table here: the whole source, as its last
      // recorded block (where the UDF anchor and VAT are) is its end.
      if (!imagecore::has_udf(*src))
        throw;
      end = src->size() / kBlockSize;
    }
    map = RescueMap(end * kBlockSize);
  }
  r.size = map.size();
  struct stat st {};
  if (resumed && map.bytes_with('+') > 0 &&
      (::stat(o.output.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) < r.size))
    throw imagecore::Error(EINVAL, r.map + ": the map records an earlier copy, but " + o.output +
                                       " is missing or shorter: give the copy it belongs to, or "
                                       "remove the map to start again");

  Fd out(::open(o.output.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (out.get() < 0)
    fail_errno(o.output, "cannot open the output image");
  struct stat in_st {
  }, out_st{};
  if (::fstat(src->fd(), &in_st) == 0 && ::fstat(out.get(), &out_st) == 0 &&
      in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino)
    throw imagecore::Error(EINVAL, o.output + ": is the source itself; give another file");
  if (::ftruncate(out.get(), static_cast<off_t>(r.size)) != 0)
    fail_errno(o.output, "cannot size the output image");
  const int in = src->fd();

  const std::vector<std::string> comments = {"Mapfile. Created by discfs rip (GNU ddrescue format)",
                                             "Command line: " + o.command_line};
  auto last_save = std::chrono::steady_clock::now();
  uint64_t since_save = 0, current = 0;
  const auto save = [&] {
    save_atomically(r.map, map.text(comments, current));
    last_save = std::chrono::steady_clock::now();
    since_save = 0;
  };
  const auto maybe_save = [&] {
    if (since_save >= kSaveBytes || std::chrono::steady_clock::now() - last_save >= kSaveEvery)
      save();
  };
  const auto report = [&] {
    if (o.progress)
      o.progress(map.bytes_with('+') + map.bytes_with('-'), r.size, map.bytes_with('-'));
  };
  const auto stopping = [&] { return o.stop && o.stop->load(); };
  save();

  std::vector<std::byte> buf(kChunk);
  const std::vector<std::byte> zeros(kBlockSize);
  // Reads [pos, pos+len) block by block with retries: good blocks '+', the rest zero-filled
  // and '-'.
  const auto scrape = [&](uint64_t pos, uint64_t len) {
    for (uint64_t b = pos; b < pos + len && !stopping(); b += kBlockSize) {
      const uint64_t n = std::min<uint64_t>(kBlockSize, pos + len - b);
      const std::span<std::byte> block(buf.data(), n);
      bool ok = false;
      for (unsigned t = 0; t <= o.retries && !ok; ++t)
        ok = read_fully(in, b, block);
      r.read_bytes += n;
      if (ok) {
        write_fully(out.get(), b, block, o.output);
        map.set(b, n, '+');
      } else {
        write_fully(out.get(), b, std::span(zeros.data(), n), o.output);
        map.set(b, n, '-');
      }
      current = b + n;
      since_save += n;
      report();
      maybe_save();
    }
  };

  // Pass 1: what was never tried, in large reads; a chunk that fails is scraped. Pass 2:
  // what an earlier run left bad (not what pass 1 just gave up), block by block.
  std::vector<MapBlock> untried, bad;
  for (const MapBlock& b : map.blocks())
    (b.status == '-' ? bad : untried).push_back(b);
  std::erase_if(untried, [](const MapBlock& b) { return b.status != '?'; });
  for (const char pass : {'?', '-'}) {
    for (const MapBlock& area : pass == '?' ? untried : bad) {
      for (uint64_t pos = area.pos; pos < area.pos + area.size && !stopping();) {
        const uint64_t n = std::min<uint64_t>(kChunk, area.pos + area.size - pos);
        if (pass == '?') {
          const std::span<std::byte> chunk(buf.data(), n);
          if (read_fully(in, pos, chunk)) {
            r.read_bytes += n;
            write_fully(out.get(), pos, chunk, o.output);
            map.set(pos, n, '+');
            current = pos + n;
            since_save += n;
            report();
            maybe_save();
          } else {
            scrape(pos, n);
          }
        } else {
          scrape(pos, n);
        }
        pos += n;
      }
    }
  }
  r.stopped = stopping() && map.bytes_with('?') > 0;
  if (::fsync(out.get()) != 0)
    fail_errno(o.output, "cannot write the output image");
  save();
  r.bad_bytes = map.bytes_with('-');
  return r;
}

}  // namespace burner
