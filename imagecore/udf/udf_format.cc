#include "imagecore/udf/udf_format.h"

#include "imagecore/names.h"

#include <fmt/format.h>

#include <algorithm>

namespace imagecore::udf {
namespace {}  // namespace

uint16_t crc_itu(ByteView b) {
  uint16_t crc = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    crc ^= static_cast<uint16_t>(b.u8(i) << 8);
    for (int k = 0; k < 8; ++k)
      crc = static_cast<uint16_t>(crc & 0x8000 ? crc << 1 ^ 0x1021 : crc << 1);
  }
  return crc;
}

uint8_t tag_checksum(ByteView t) {
  unsigned sum = 0;
  for (size_t i = 0; i < tag::kSize; ++i)
    if (i != tag::kChecksum)
      sum += t.u8(i);
  return static_cast<uint8_t>(sum);
}

std::string check_tag(ByteView d, uint16_t want, std::optional<uint32_t> location) {
  if (d.size() < tag::kSize)
    return "descriptor is truncated";
  if (tag_checksum(d) != d.u8(tag::kChecksum))
    return "descriptor tag checksum is wrong";
  const uint16_t id = d.le16(tag::kId);
  if (id != want)
    return fmt::format("descriptor tag is {} where {} was expected", id, want);
  if (location && d.le32(tag::kLocation) != *location)
    return fmt::format("descriptor tag says block {}, but it lies at block {}",
                       d.le32(tag::kLocation), *location);
  const uint16_t crc_len = d.le16(tag::kCrcLength);
  if (tag::kSize + crc_len <= d.size() && crc_itu(d.sub(tag::kSize, crc_len)) != d.le16(tag::kCrc))
    return "descriptor CRC is wrong";
  return {};
}

std::string cs0_to_utf8(ByteView chars) {
  std::string out;
  if (chars.empty())
    return out;
  const uint8_t id = chars.u8(0);
  if (id == 8 || id == 254) {
    for (size_t i = 1; i < chars.size(); ++i)
      append_utf8(&out, chars.u8(i));
  } else if (id == 16 || id == 255) {
    size_t i = 1;
    for (; i + 1 < chars.size(); i += 2) {
      uint32_t cp = chars.be16(i);
      if (cp >= 0xD800 && cp <= 0xDBFF && i + 3 < chars.size() && chars.be16(i + 2) >= 0xDC00 &&
          chars.be16(i + 2) <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (chars.be16(i + 2) - 0xDC00u);
        i += 2;
      } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        cp = 0xFFFD;
      }
      append_utf8(&out, cp);
    }
    if (i < chars.size())
      append_utf8(&out, 0xFFFD);
  }
  return out;
}

std::string dstring(ByteView field) {
  if (field.size() < 2)
    return {};
  const size_t used = std::min<size_t>(field.u8(field.size() - 1), field.size() - 1);
  std::string s = cs0_to_utf8(field.sub(0, used));
  // Some writers pad with NULs inside the used length.
  while (!s.empty() && s.back() == '\0')
    s.pop_back();
  return s;
}

std::optional<Timestamp> timestamp(ByteView b) {
  bool zero = true;
  for (size_t i = 0; i < 12; ++i)
    zero = zero && b.u8(i) == 0;
  if (zero)
    return std::nullopt;
  const uint16_t type_tz = b.le16(0);
  int tz = type_tz & 0x0FFF;
  if (tz & 0x0800)
    tz -= 0x1000;  // 12-bit two's complement minutes
  const unsigned type = type_tz >> 12;
  const int64_t year = static_cast<int16_t>(b.le16(2));
  const unsigned mon = std::clamp<unsigned>(b.u8(4), 1, 12);
  const unsigned day = std::clamp<unsigned>(b.u8(5), 1, 31);
  int64_t sec = days_from_civil(year, mon, day) * 86400 +
                int64_t{std::min<uint8_t>(b.u8(6), 23)} * 3600 +
                int64_t{std::min<uint8_t>(b.u8(7), 59)} * 60 + std::min<uint8_t>(b.u8(8), 60);
  if (type == 1 && tz >= -1440 && tz <= 1440)
    sec -= int64_t{tz} * 60;  // local time: the offset says how far ahead of UTC
  const uint32_t nsec = std::min<uint32_t>(b.u8(9), 99) * 10'000'000u +
                        std::min<uint32_t>(b.u8(10), 99) * 100'000u +
                        std::min<uint32_t>(b.u8(11), 99) * 1'000u;
  return Timestamp{sec, nsec};
}

size_t ad_size(icb::AdType type) {
  switch (type) {
    case icb::kShort:
      return 8;
    case icb::kLong:
      return 16;
    case icb::kExtended:
      return 20;
    default:
      return 0;
  }
}

Ad read_ad(ByteView b, size_t at, icb::AdType type, uint16_t part) {
  Ad ad;
  const uint32_t raw = b.le32(at);
  ad.length = raw & 0x3FFFFFFF;
  ad.type = static_cast<ExtentType>(raw >> 30);
  ad.part = part;
  switch (type) {
    case icb::kShort:
      ad.block = b.le32(at + 4);
      break;
    case icb::kLong:
      ad.block = b.le32(at + 4);
      ad.part = b.le16(at + 8);
      break;
    case icb::kExtended:
      ad.block = b.le32(at + 12);
      ad.part = b.le16(at + 16);
      break;
    default:
      break;
  }
  return ad;
}

}  // namespace imagecore::udf
