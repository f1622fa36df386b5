// ISO 9660 date formats (ECMA-119 8.4.26.1 and 9.1.5) as 64-bit UTC times.
#pragma once

#include <cstdint>

#include "imagecore/base/bytes.h"

namespace imagecore {

// Seconds and nanoseconds since 1970-01-01 UTC; seconds are 64-bit so dates past 2038 and
// before 1970 are kept.
struct Timestamp {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timestamp&) const = default;
};

// Days from 1970-01-01 to the given proleptic Gregorian date (month 1-12, day 1-31).
int64_t days_from_civil(int64_t year, unsigned month, unsigned day);

// The 7-byte directory-record date (ECMA-119 9.1.5): years since 1900, month, day, hour,
// minute, second, offset from GMT in 15-minute steps. Out-of-range fields are clamped rather
// than rejected, as Linux does, so a sloppy writer's dates still show.
Timestamp decode_short_date(ByteView b);

// The 17-byte "dec-digits" date (ECMA-119 8.4.26.1): "YYYYMMDDhhmmsscc" and a GMT offset.
// Returns false when the date is "not specified" (all zero digits) or not digits.
bool decode_long_date(ByteView b, Timestamp* out);

}  // namespace imagecore
