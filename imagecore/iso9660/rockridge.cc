#include "imagecore/iso9660/rockridge.h"

#include <fmt/format.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "imagecore/iso9660/ecma119.h"

namespace imagecore {
namespace {

constexpr uint8_t kTfCreation = 0x01, kTfModify = 0x02, kTfAccess = 0x04, kTfAttributes = 0x08,
                  kTfBackup = 0x10, kTfExpiration = 0x20, kTfEffective = 0x40, kTfLongForm = 0x80;
constexpr uint8_t kSlContinue = 0x01, kSlCurrent = 0x02, kSlParent = 0x04, kSlRoot = 0x08;
constexpr uint8_t kNmContinue = 0x01, kNmCurrent = 0x02, kNmParent = 0x04;

// Accumulates SL components across SL entries (RRIP 4.1.3.1) into `out`, so that what was
// gathered stays when a later entry is damaged. As in libarchive and Linux, a ROOT component
// writes "/" wherever it stands, so a target recorded as ".///file" (old mkisofs) reads back
// the same; the separator state carries over into the next SL entry.
struct SymlinkBuilder {
  std::string* out;
  bool separator_due = false;

  void add(uint8_t flags, std::string_view content) {
    if (separator_due)
      *out += '/';
    separator_due = true;
    if (flags & kSlRoot) {
      *out += '/';
      separator_due = false;
    } else if (flags & kSlCurrent) {
      *out += '.';
    } else if (flags & kSlParent) {
      *out += "..";
    } else {
      *out += content;
      if (flags & kSlContinue)
        separator_due = false;
    }
  }
};

// One SL entry; `rest` is the system use area from the entry on. Returns false when the last
// component runs past the entry's length: genisoimage records the length of an SL entry (and
// of its continuation area) modulo 256 when a long target does not fit, so the text is there
// but the entries after it cannot be found. Like xorriso, isoinfo and Linux we keep that
// component when its bytes lie inside the area, and the caller stops reading the area.
bool parse_sl(ByteView rest, uint64_t where, RockRidge* rr, SymlinkBuilder* sl) {
  rr->any = rr->sl = true;
  const size_t len = rest.u8(2);
  for (size_t at = 5; at + 2 <= len;) {
    const uint8_t cflags = rest.u8(at), clen = rest.u8(at + 1);
    if (at + 2 + clen > rest.size())
      throw FormatError(
          fmt::format("the symlink component at byte {} (LBA {}) runs past the end of its area",
                      where + at, (where + at) / ecma119::kBlockSize));
    sl->add(cflags, rest.chars(at + 2, clen));
    at += 2 + clen;
    if (at > len)
      return false;
  }
  return true;
}

void parse_tf(ByteView e, RockRidge* rr) {
  const uint8_t flags = e.u8(4);
  const size_t len = flags & kTfLongForm ? 17 : 7;
  size_t at = 5;
  auto take = [&](uint8_t bit, std::optional<Timestamp>* slot) {
    if (!(flags & bit))
      return;
    ByteView b = e.sub(at, len);
    at += len;
    if (!slot)
      return;
    Timestamp t;
    if (len == 7)
      *slot = decode_short_date(b);
    else if (decode_long_date(b, &t))
      *slot = t;
  };
  take(kTfCreation, &rr->birth);
  take(kTfModify, &rr->mtime);
  take(kTfAccess, &rr->atime);
  take(kTfAttributes, &rr->ctime);
  take(kTfBackup, nullptr);
  take(kTfExpiration, nullptr);
  take(kTfEffective, nullptr);
}

void parse_entry(ByteView e, RockRidge* rr) {
  const std::string_view sig = e.chars(0, 2);
  const uint8_t len = e.u8(2);
  if (sig == "SP") {
    if (e.u8(4) == 0xBE && e.u8(5) == 0xEF) {
      rr->sp = true;
      rr->sp_skip = e.u8(6);
    }
  } else if (sig == "ER") {
    const uint8_t id_len = e.u8(4);
    std::string_view id = e.chars(8, id_len);
    if (id == "RRIP_1991A" || id == "IEEE_P1282" || id == "IEEE_1282")
      rr->er_rrip = true;
    else if (id == "AAIP_0200")
      rr->er_aaip = true;
  } else if (sig == "PX") {
    rr->any = rr->px = true;
    rr->mode = e.both32(4);
    rr->nlink = e.both32(12);
    rr->uid = e.both32(20);
    rr->gid = e.both32(28);
    if (len >= 44)
      rr->serial = e.both32(36);
  } else if (sig == "PN") {
    rr->any = rr->pn = true;
    const uint32_t high = e.both32(4), low = e.both32(12);
    // libisofs and Linux: a zero high word means `low` is a whole dev_t; otherwise
    // (cdrtools) high and low are major and minor.
    rr->rdev = high == 0 ? low : makedev(high, low);
  } else if (sig == "NM") {
    rr->any = rr->nm = true;
    const uint8_t flags = e.u8(4);
    if (flags & (kNmCurrent | kNmParent))
      rr->nm_special = true;
    else if (rr->name.size() < kMaxNameBytes)
      rr->name += e.chars(5, len - 5);
    (void)kNmContinue;
  } else if (sig == "TF") {
    rr->any = true;
    parse_tf(e, rr);
  } else if (sig == "CL") {
    rr->any = true;
    rr->child_link = e.both32(4);
  } else if (sig == "RE") {
    rr->any = rr->relocated = true;
  } else if (sig == "PL" || sig == "RR") {
    rr->any = true;
  } else if (sig == "AL") {  // AAIP 2.0: not RRIP, so `any` stays as it is
    rr->al = true;
    if (rr->aaip)
      rr->aaip->add_entry(e);
  } else if (sig == "ZF") {
    rr->any = rr->zf = true;
    rr->zf_algorithm = std::string(e.chars(4, 2));
    rr->zisofs.header_size_div4 = e.u8(6);
    rr->zisofs.block_size_log2 = e.u8(7);
    rr->zisofs.uncompressed_size = e.both32(8);
  }
}

}  // namespace

void parse_system_use(const Source& src, ByteView su, uint64_t where, RockRidge* rr) {
  rr->symlink.clear();
  SymlinkBuilder sl{&rr->symlink};
  std::vector<std::byte> ce_buf;
  int areas = 0;
  std::vector<std::pair<uint32_t, uint32_t>> visited;  // continuation areas seen
  while (true) {
    uint32_t ce_lba = 0, ce_off = 0, ce_len = 0;
    size_t at = 0;
    while (at + 4 <= su.size()) {
      const uint8_t len = su.u8(at + 2);
      if (len < 4 || at + len > su.size())
        throw FormatError(fmt::format("an entry at byte {} (LBA {}) has a bad length {}",
                                      where + at, (where + at) / ecma119::kBlockSize, len));
      ByteView e = su.sub(at, len);
      const std::string_view sig = e.chars(0, 2);
      if (sig == "ST")
        break;
      if (sig == "SL") {
        if (!parse_sl(su.from(at), where + at, rr, &sl))
          break;  // the entries after it cannot be found
      } else if (sig == "CE") {
        ce_lba = e.both32(4);
        ce_off = e.both32(12);
        ce_len = e.both32(20);
      } else {
        parse_entry(e, rr);
      }
      at += len;
    }
    if (ce_len == 0)
      break;
    if (++areas > kMaxContinuationAreas)
      throw FormatError(
          fmt::format("more than {} continuation areas (a loop?)", kMaxContinuationAreas));
    if (ce_off >= ecma119::kBlockSize || ce_len > 4 * ecma119::kBlockSize)
      throw FormatError(
          fmt::format("the continuation area at LBA {} has offset {} and length {} out of range",
                      ce_lba, ce_off, ce_len));
    const std::pair<uint32_t, uint32_t> area{ce_lba, ce_off};
    if (std::find(visited.begin(), visited.end(), area) != visited.end())
      throw FormatError(
          fmt::format("the continuation area at LBA {} offset {} is reached twice "
                      "(a loop)",
                      ce_lba, ce_off));
    visited.push_back(area);
    ce_buf.resize(ce_len);
    src.read(uint64_t{ce_lba} * ecma119::kBlockSize + ce_off, ce_buf);
    su = ByteView(ce_buf.data(), ce_buf.size());
    where = uint64_t{ce_lba} * ecma119::kBlockSize + ce_off;
  }
}

}  // namespace imagecore
