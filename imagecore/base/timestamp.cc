#include "imagecore/base/timestamp.h"

#include <algorithm>

namespace imagecore {

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's algorithm: exact for every proleptic Gregorian date.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

namespace {

// The offset byte is a signed count of 15-minute steps, -48 (GMT-12) to +52 (GMT+13).
int64_t gmt_offset_seconds(uint8_t raw) {
  int v = static_cast<int8_t>(raw);
  if (v < -48 || v > 52)
    return 0;  // out of range: treat as UTC, as Linux and libisofs do
  return static_cast<int64_t>(v) * 15 * 60;
}

int64_t to_epoch(int64_t year, unsigned mon, unsigned day, unsigned h, unsigned mi, unsigned s) {
  mon = std::clamp(mon, 1u, 12u);
  day = std::clamp(day, 1u, 31u);
  return days_from_civil(year, mon, day) * 86400 + static_cast<int64_t>(h) * 3600 +
         static_cast<int64_t>(mi) * 60 + s;
}

}  // namespace

Timestamp decode_short_date(ByteView b) {
  const int64_t year = 1900 + b.u8(0);
  const int64_t local = to_epoch(year, b.u8(1), b.u8(2), std::min<unsigned>(b.u8(3), 23),
                                 std::min<unsigned>(b.u8(4), 59), std::min<unsigned>(b.u8(5), 60));
  if (b.u8(1) == 0 && b.u8(2) == 0 && b.u8(0) == 0)
    return Timestamp{0, 0};  // "not specified"
  return Timestamp{local - gmt_offset_seconds(b.u8(6)), 0};
}

bool decode_long_date(ByteView b, Timestamp* out) {
  std::string_view s = b.chars(0, 16);
  unsigned v[16];
  bool all_zero = true;
  for (size_t i = 0; i < 16; ++i) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v[i] = static_cast<unsigned>(s[i] - '0');
    all_zero = all_zero && v[i] == 0;
  }
  if (all_zero)
    return false;
  auto num = [&](size_t at, size_t n) {
    unsigned r = 0;
    for (size_t i = 0; i < n; ++i)
      r = r * 10 + v[at + i];
    return r;
  };
  const int64_t local = to_epoch(num(0, 4), num(4, 2), num(6, 2), std::min(num(8, 2), 23u),
                                 std::min(num(10, 2), 59u), std::min(num(12, 2), 60u));
  out->sec = local - gmt_offset_seconds(b.u8(16));
  out->nsec = num(14, 2) * 10'000'000u;
  return true;
}

}  // namespace imagecore
