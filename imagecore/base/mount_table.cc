#include "imagecore/base/mount_table.h"

#include <fstream>
#include <sstream>

namespace imagecore {
namespace {

// A mountinfo field with the kernel's octal escapes (\040 for a space, \011, \012, \134)
// decoded.
std::string unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' && field[i + 1] <= '3' &&
        field[i + 2] >= '0' && field[i + 2] <= '7' && field[i + 3] >= '0' && field[i + 3] <= '7') {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

}  // namespace

std::vector<MountEntry> read_mount_table() {
  // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string word, mount_point, device;
    for (int i = 0; i < 5 && fields >> word; ++i) {
      if (i == 2)
        device = word;
      mount_point = word;
    }
    while (fields >> word && word != "-") {
    }
    MountEntry e;
    e.device = device;
    if (!(fields >> e.fstype >> e.source))
      continue;
    e.mount_point = unescape(mount_point);
    e.fstype = unescape(e.fstype);
    e.source = unescape(e.source);
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<MountEntry> mount_at(const std::string& path) {
  std::optional<MountEntry> top;
  for (MountEntry& e : read_mount_table())
    if (e.mount_point == path)
      top = std::move(e);  // a later mount on the same folder hides the earlier ones
  return top;
}

}  // namespace imagecore
