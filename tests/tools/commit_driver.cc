// Test driver for burner::commit and burner::probe_target (tests/py/test_commit_engine.py).
//
//   commit_driver probe TARGET [CAPACITY]
//   commit_driver commit TARGET SPEC [--to PATH] [--dummy] [--volid V] [--no-joliet]
//                 [--no-md5] [--capacity C] [--fail-before-activation] [--cancel-at BYTES]
//
// SPEC is a staged tree, one entry per line, fields separated by tabs:
//   KIND PATH PERM(octal) UID GID MTIME A B
// KIND: D directory (A = base path or "-", B = 1 when whole_base_dir), F file with A = "L"
// and B = local path, or A = "B" and B = base path, L symlink (A = target), C/K character/
// block device (A = major, B = minor), P fifo. A ninth field, when present, is link_group.
// Parents come before children; "/" is the root. Prints one JSON object on stdout.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/sysmacros.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "burner/commit.h"
#include "burner/target.h"
#include "imagecore/base/error.h"

using burner::StagedEntry;
using imagecore::FileType;

namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string f;
  while (std::getline(ss, f, '\t'))
    out.push_back(f);
  return out;
}

StagedEntry* find_parent(StagedEntry& root, const std::string& path, std::string* name) {
  StagedEntry* cur = &root;
  size_t pos = 1;
  while (true) {
    const size_t slash = path.find('/', pos);
    if (slash == std::string::npos) {
      *name = path.substr(pos);
      return cur;
    }
    const std::string part = path.substr(pos, slash - pos);
    StagedEntry* next = nullptr;
    for (StagedEntry& c : cur->children) {
      if (c.name == part)
        next = &c;
    }
    if (next == nullptr)
      throw std::runtime_error("spec: parent missing for " + path);
    cur = next;
    pos = slash + 1;
  }
}

StagedEntry parse_spec(const std::string& file) {
  std::ifstream in(file);
  StagedEntry root;
  root.type = FileType::Directory;
  root.perm = 0755;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    const auto f = split(line);
    if (f.size() < 8)
      throw std::runtime_error("spec: short line: " + line);
    StagedEntry e;
    e.perm = static_cast<uint32_t>(std::stoul(f[2], nullptr, 8));
    e.uid = static_cast<uint32_t>(std::stoul(f[3]));
    e.gid = static_cast<uint32_t>(std::stoul(f[4]));
    e.mtime.sec = e.atime.sec = e.ctime.sec = std::stoll(f[5]);
    if (f.size() > 8)
      e.link_group = std::stoull(f[8]);
    const char kind = f[0][0];
    if (kind == 'D') {
      e.type = FileType::Directory;
      if (f[6] != "-")
        e.base_path = f[6];
      e.whole_base_dir = f[7] == "1";
    } else if (kind == 'F') {
      e.type = FileType::Regular;
      if (f[6] == "L") {
        e.data = StagedEntry::Data::Local;
        e.local_path = f[7];
      } else {
        e.data = StagedEntry::Data::Base;
        e.base_path = f[7];
      }
    } else if (kind == 'L') {
      e.type = FileType::Symlink;
      e.symlink_target = f[6];
    } else if (kind == 'C' || kind == 'K') {
      e.type = kind == 'C' ? FileType::CharDevice : FileType::BlockDevice;
      e.rdev = makedev(std::stoul(f[6]), std::stoul(f[7]));
    } else if (kind == 'P') {
      e.type = FileType::Fifo;
    } else {
      throw std::runtime_error("spec: unknown kind " + f[0]);
    }
    if (f[1] == "/") {
      root.perm = e.perm;
      root.uid = e.uid;
      root.gid = e.gid;
      root.mtime = e.mtime;
      root.atime = e.atime;
      root.ctime = e.ctime;
      continue;
    }
    std::string name;
    StagedEntry* parent = find_parent(root, f[1], &name);
    e.name = name;
    parent->children.push_back(std::move(e));
  }
  return root;
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

int probe(int argc, char** argv) {
  std::optional<uint64_t> cap;
  if (argc > 3)
    cap = burner::parse_capacity(argv[3]);
  const burner::TargetInfo t = burner::probe_target(argv[2], cap);
  const char* state = t.state == burner::TargetState::Blank        ? "blank"
                      : t.state == burner::TargetState::Appendable ? "appendable"
                                                                   : "not_appendable";
  std::cout << "{\"state\":\"" << state << "\",\"reason\":" << json_str(t.reason)
            << ",\"capacity_blocks\":"
            << (t.capacity_blocks ? std::to_string(*t.capacity_blocks) : "null")
            << ",\"used_blocks\":" << t.used_blocks << ",\"next_writable\":" << t.next_writable
            << ",\"single_session_at_zero\":" << (t.single_session_at_zero ? "true" : "false")
            << ",\"history\":" << (t.history ? "true" : "false") << ",\"sessions\":[";
  for (size_t i = 0; i < t.sessions.size(); ++i) {
    std::cout << (i ? "," : "") << "{\"start\":" << t.sessions[i].start_lba
              << ",\"blocks\":" << t.sessions[i].blocks << "}";
  }
  std::cout << "]}\n";
  return 0;
}

int commit(int argc, char** argv) {
  burner::CommitOptions o;
  o.target = argv[2];
  const StagedEntry root = parse_spec(argv[3]);
  std::atomic<bool> cancel{false};
  uint64_t cancel_at = 0;
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--to")
      o.to_path = argv[++i];
    else if (a == "--dummy")
      o.dummy = true;
    else if (a == "--volid")
      o.volid = argv[++i];
    else if (a == "--no-joliet")
      o.joliet = false;
    else if (a == "--no-md5")
      o.md5 = false;
    else if (a == "--capacity")
      o.capacity_bytes = burner::parse_capacity(argv[++i]);
    else if (a == "--fail-before-activation")
      o.fail_before_activation = true;
    else if (a == "--fail-after-copy")
      o.fail_after_copy = true;
    else if (a == "--cancel-at")
      cancel_at = std::stoull(argv[++i]);
    else
      throw std::runtime_error("unknown option " + a);
  }
  uint64_t last_done = 0, calls = 0;
  o.progress = [&](uint64_t done, uint64_t) {
    last_done = done;
    ++calls;
    if (cancel_at && done >= cancel_at)
      cancel = true;
  };
  if (cancel_at)
    o.cancel = &cancel;
  const burner::CommitResult r = burner::commit(o, root);
  std::cout << "{\"session\":" << r.session << ",\"start_lba\":" << r.start_lba
            << ",\"blocks\":" << r.blocks << ",\"data_bytes\":" << r.data_bytes
            << ",\"verified\":" << (r.verified ? "true" : "false")
            << ",\"progress_calls\":" << calls << ",\"progress_last\":" << last_done << "}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::debug);
  spdlog::set_default_logger(spdlog::stderr_color_mt("h"));
  try {
    if (argc >= 3 && std::string(argv[1]) == "probe")
      return probe(argc, argv);
    if (argc >= 4 && std::string(argv[1]) == "commit")
      return commit(argc, argv);
    std::cerr << "usage: commit_driver probe TARGET [CAP] | commit TARGET SPEC [options]\n";
    return 2;
  } catch (const imagecore::Error& e) {
    std::cout << "{\"error\":" << json_str(e.what()) << ",\"errno\":" << e.code() << "}\n";
    return 1;
  } catch (const std::exception& e) {
    std::cout << "{\"error\":" << json_str(e.what()) << ",\"errno\":0}\n";
    return 1;
  }
}
