#include "imagecore/iso9660/aaip.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace imagecore {
namespace {

constexpr uint8_t kContinue = 0x01;  // AL flags and component record flags alike

// AAIP 2.0 "Namespaces": the reserved first bytes of a name.
constexpr uint8_t kLiteral = 0x01;
constexpr std::array<std::string_view, 7> kNamespaces = {"",       "",         "system.",  "user.",
                                                         "isofs.", "trusted.", "security."};
constexpr uint8_t kLastReserved = 0x1f;

// AAIP 2.0 binary ACL: entry flags and four-bit tag types.
constexpr uint8_t kAclExec = 0x01, kAclQualifier = 0x08, kAclPerms = 0x07;
enum AaipAclType : uint8_t {
  kTranslate = 0,
  kUserObj = 1,
  kGroupObj = 3,
  kMask = 5,
  kOther = 6,
  kSwitchMark = 8,
  kUserN = 10,
  kGroupN = 12,
  kFutureVersion = 15,
};
constexpr size_t kMaxQualifier = 4096;  // bytes of one qualifier (ids take 4 at most)

// linux/posix_acl_xattr.h and linux/posix_acl.h.
constexpr uint32_t kPosixAclXattrVersion = 2;
constexpr uint16_t kAclUserObj = 0x01, kAclUser = 0x02, kAclGroupObj = 0x04, kAclGroup = 0x08,
                   kAclMask = 0x10, kAclOther = 0x20;
constexpr uint32_t kAclUndefinedId = 0xffffffffu;

struct AclEntry {
  uint16_t tag;
  uint16_t perm;
  uint32_t id;
};

// Splits one list's component records into components (AAIP 2.0 [A]-[C]).
std::vector<std::string> components(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  size_t at = 0;
  while (at + 2 <= s.size()) {
    const uint8_t flags = static_cast<uint8_t>(s[at]);
    const uint8_t len = static_cast<uint8_t>(s[at + 1]);
    if (len > s.size() - at - 2)
      break;  // the last record is cut short
    cur.append(s.substr(at + 2, len));
    at += 2 + len;
    if (!(flags & kContinue)) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  return out;
}

// The name with its short namespace expanded; nullopt for a name Linux cannot carry.
std::optional<std::string> expand_name(std::string_view raw) {
  if (raw.find('\0') != std::string_view::npos)
    return std::nullopt;
  if (raw.empty())
    return std::string();
  const uint8_t first = static_cast<uint8_t>(raw[0]);
  if (first == kLiteral)
    return std::string(raw.substr(1));
  if (first < kNamespaces.size() && !kNamespaces[first].empty())
    return std::string(kNamespaces[first]) + std::string(raw.substr(1));
  if (first <= kLastReserved)
    return std::nullopt;
  return std::string(raw);
}

bool linux_namespace(std::string_view name) {
  for (std::string_view ns : {"user.", "trusted.", "security.", "system."})
    if (name.size() > ns.size() && name.substr(0, ns.size()) == ns)
      return true;
  return false;
}

void put_le16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v & 0xff));
  s->push_back(static_cast<char>(v >> 8));
}
void put_le32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Sorted as posix_acl_valid() wants it (by tag, named entries by id), duplicates dropped.
std::string encode_linux_acl(std::vector<AclEntry> v) {
  std::stable_sort(v.begin(), v.end(), [](const AclEntry& a, const AclEntry& b) {
    return a.tag != b.tag ? a.tag < b.tag : a.id < b.id;
  });
  v.erase(std::unique(
              v.begin(), v.end(),
              [](const AclEntry& a, const AclEntry& b) { return a.tag == b.tag && a.id == b.id; }),
          v.end());
  std::string out;
  put_le32(&out, kPosixAclXattrVersion);
  for (const AclEntry& e : v) {
    put_le16(&out, e.tag);
    put_le16(&out, e.perm);
    put_le32(&out, e.id);
  }
  return out;
}

bool has_tag(const std::vector<AclEntry>& v, uint16_t tag) {
  return std::any_of(v.begin(), v.end(), [&](const AclEntry& e) { return e.tag == tag; });
}

bool has_named(const std::vector<AclEntry>& v) {
  return has_tag(v, kAclUser) || has_tag(v, kAclGroup);
}

}  // namespace

void AaipCollector::add_entry(ByteView e) {
  const uint8_t len = e.u8(2);
  if (len < 5 || len > e.size())
    throw FormatError(fmt::format("an AL entry has a bad length {}", len));
  const uint8_t flags = e.u8(4);
  total_ += len - 5u;
  if (total_ > kMaxAaipBytes)
    throw FormatError(fmt::format("more than {} bytes of AL entries", kMaxAaipBytes));
  if (!open_)
    lists_.emplace_back();
  lists_.back() += e.chars(5, len - 5u);
  open_ = flags & kContinue;
}

std::vector<AaipPair> AaipCollector::pairs() const {
  std::vector<AaipPair> out;
  for (const std::string& list : lists_) {
    std::vector<std::string> comps = components(list);
    for (size_t i = 0; i + 1 < comps.size(); i += 2) {
      std::optional<std::string> name = expand_name(comps[i]);
      if (!name) {
        spdlog::debug("an AAIP attribute name with a reserved first byte or a NUL is skipped");
        continue;
      }
      out.push_back({std::move(*name), std::move(comps[i + 1])});
    }
  }
  return out;
}

std::optional<ChecksumArea> parse_isofs_ca(std::string_view v) {
  // libisofs iso_root_set_isofsca(): four length-prefixed big-endian numbers (START, END,
  // COUNT, SIZE) and the checksum type text.
  std::array<uint32_t, 4> num{};
  size_t at = 0;
  for (uint32_t& n : num) {
    if (at >= v.size())
      return std::nullopt;
    const size_t len = static_cast<uint8_t>(v[at++]);
    if (len > 4 || len > v.size() - at)
      return std::nullopt;
    for (size_t i = 0; i < len; ++i)
      n = n << 8 | static_cast<uint8_t>(v[at++]);
  }
  if (num[3] != 16 || v.substr(at) != "MD5")
    return std::nullopt;
  return ChecksumArea{num[0], num[1], num[2]};
}

std::optional<uint32_t> parse_isofs_cx(std::string_view v) {
  if (v.empty() || v.size() > 4)
    return std::nullopt;
  uint32_t n = 0;
  for (char c : v)
    n = n << 8 | static_cast<uint8_t>(c);
  return n;
}

LinuxAcls aaip_acl_to_linux(ByteView acl, uint32_t mode, bool is_dir) {
  std::array<std::vector<AclEntry>, 2> lists;  // access, default
  size_t which = 0;
  try {
    for (size_t at = 0; at < acl.size();) {
      const uint8_t flags = acl.u8(at++);
      const uint8_t type = flags >> 4;
      const uint16_t perm = flags & kAclPerms;
      std::string q;
      if (flags & kAclQualifier) {
        for (bool more = true; more;) {
          const uint8_t head = acl.u8(at++);
          more = head & 0x80;
          q += acl.chars(at, head & 0x7f);
          at += head & 0x7f;
          if (q.size() > kMaxQualifier)
            throw FormatError("an ACL qualifier is too long");
        }
      }
      auto& v = lists[which];
      switch (type) {
        case kUserObj:
          v.push_back({kAclUserObj, perm, kAclUndefinedId});
          break;
        case kGroupObj:
          v.push_back({kAclGroupObj, perm, kAclUndefinedId});
          break;
        case kMask:
          v.push_back({kAclMask, perm, kAclUndefinedId});
          break;
        case kOther:
          v.push_back({kAclOther, perm, kAclUndefinedId});
          break;
        case kSwitchMark:
          which = (flags & kAclExec) ? 1 : 0;
          break;
        case kUserN:
        case kGroupN: {
          if (q.empty() || q.size() > 4)
            break;  // not a numeric id: the entry cannot be shown
          uint32_t id = 0;
          for (char c : q)
            id = id << 8 | static_cast<uint8_t>(c);
          v.push_back({type == kUserN ? kAclUser : kAclGroup, perm, id});
          break;
        }
        case kFutureVersion:
          spdlog::debug("an AAIP ACL of a later version is not shown");
          return {};
        case kTranslate:
        default:
          break;  // name maps and the AAIP 0.2 by-name entries are not ids: skipped
      }
    }
  } catch (const FormatError& e) {
    spdlog::debug("an AAIP ACL is damaged and not shown: {}", e.what());
    return {};
  }

  LinuxAcls out;
  auto& access = lists[0];
  // libisofs aaip_add_acl_st_mode(): entries the mode already says may be left out.
  if (has_named(access) || has_tag(access, kAclMask)) {
    if (!has_tag(access, kAclUserObj))
      access.push_back({kAclUserObj, static_cast<uint16_t>((mode >> 6) & 7), kAclUndefinedId});
    if (!has_tag(access, kAclGroupObj))
      access.push_back({kAclGroupObj, static_cast<uint16_t>((mode >> 3) & 7), kAclUndefinedId});
    if (!has_tag(access, kAclOther))
      access.push_back({kAclOther, static_cast<uint16_t>(mode & 7), kAclUndefinedId});
    if (!has_tag(access, kAclMask))
      access.push_back({kAclMask, static_cast<uint16_t>((mode >> 3) & 7), kAclUndefinedId});
    out.access = encode_linux_acl(std::move(access));
  }
  auto& def = lists[1];
  if (is_dir && !def.empty()) {
    if (has_tag(def, kAclUserObj) && has_tag(def, kAclGroupObj) && has_tag(def, kAclOther) &&
        (!has_named(def) || has_tag(def, kAclMask)))
      out.def = encode_linux_acl(std::move(def));
    else
      spdlog::debug("an incomplete AAIP default ACL is not shown");
  }
  return out;
}

AaipAttributes aaip_to_linux(const std::vector<AaipPair>& pairs, uint32_t mode, bool is_dir) {
  AaipAttributes out;
  const bool has_acl =
      std::any_of(pairs.begin(), pairs.end(), [](const AaipPair& p) { return p.name.empty(); });
  bool acl_done = false;
  auto add = [&](std::string name, std::string value) {
    if (name.size() > kMaxXattrName || value.size() > kMaxXattrValue) {
      spdlog::debug("the recorded attribute '{}' is too long for Linux and is not shown",
                    name.substr(0, 64));
      return;
    }
    for (const Xattr& x : out.xattrs)
      if (x.name == name)
        return;  // the first of equal names counts
    out.xattrs.push_back({std::move(name), std::move(value)});
  };
  for (const AaipPair& p : pairs) {
    if (p.name.empty()) {
      if (acl_done)
        continue;
      acl_done = true;
      LinuxAcls acls = aaip_acl_to_linux(
          ByteView(reinterpret_cast<const std::byte*>(p.value.data()), p.value.size()), mode,
          is_dir);
      if (!acls.access.empty())
        add("system.posix_acl_access", std::move(acls.access));
      if (!acls.def.empty())
        add("system.posix_acl_default", std::move(acls.def));
    } else if (p.name == "isofs.cx") {
      out.md5_index = parse_isofs_cx(p.value);
    } else if (p.name == "isofs.ca") {
      out.checksum_area = parse_isofs_ca(p.value);
    } else if (has_acl &&
               (p.name == "system.posix_acl_access" || p.name == "system.posix_acl_default")) {
      continue;  // the AAIP ACL says the same, in the form xorriso restores
    } else if (linux_namespace(p.name)) {
      add(p.name, p.value);
    }
  }
  return out;
}

std::string hex_digest(ByteView md5) {
  std::string out;
  for (size_t i = 0; i < md5.size(); ++i)
    out += fmt::format("{:02x}", md5.u8(i));
  return out;
}

}  // namespace imagecore
