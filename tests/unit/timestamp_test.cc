// Dates decoded from ECMA-119 fields; expected epoch values come from `date -u -d ... +%s`.
#include "imagecore/base/timestamp.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

namespace imagecore {
namespace {

Timestamp short_date(int years_since_1900, int mon, int day, int h, int mi, int s, int8_t gmt) {
  std::array<std::byte, 7> b{std::byte(years_since_1900),
                             std::byte(mon),
                             std::byte(day),
                             std::byte(h),
                             std::byte(mi),
                             std::byte(s),
                             std::byte(gmt)};
  return decode_short_date(ByteView(b.data(), b.size()));
}

bool long_date(const char* digits, int8_t gmt, Timestamp* t) {
  std::array<std::byte, 17> b{};
  std::memcpy(b.data(), digits, 16);
  b[16] = std::byte(gmt);
  return decode_long_date(ByteView(b.data(), b.size()), t);
}

TEST(ShortDate, PastTheYear2038) {
  EXPECT_EQ(short_date(200, 1, 1, 0, 0, 0, 0).sec, 4102444800);       // 2100-01-01
  EXPECT_EQ(short_date(138, 1, 19, 3, 14, 8, 0).sec, 2147483648);     // one past INT32_MAX
  EXPECT_EQ(short_date(255, 12, 31, 23, 59, 59, 0).sec, 5869583999);  // the format's last day
}

TEST(ShortDate, BeforeTheEpoch) {
  EXPECT_EQ(short_date(50, 6, 15, 12, 30, 45, 0).sec, -616850955);  // 1950-06-15 12:30:45
}

TEST(ShortDate, HonoursTheGmtOffset) {
  // 13:30:45 at GMT+1 (4 steps of 15 minutes) is 12:30:45 UTC.
  EXPECT_EQ(short_date(50, 6, 15, 13, 30, 45, 4).sec, -616850955);
  // 02:30:45 at GMT-10 (-40 steps) is 12:30:45 UTC.
  EXPECT_EQ(short_date(50, 6, 15, 2, 30, 45, -40).sec, -616850955);
}

TEST(ShortDate, OutOfRangeOffsetIsTakenAsUtc) {
  EXPECT_EQ(short_date(80, 1, 1, 0, 0, 0, 100).sec, 315532800);
}

TEST(LongDate, DigitsAndHundredths) {
  Timestamp t;
  ASSERT_TRUE(long_date("2100010100000050", 0, &t));
  EXPECT_EQ(t.sec, 4102444800);
  EXPECT_EQ(t.nsec, 500000000u);
  ASSERT_TRUE(long_date("9999123123595900", 0, &t));
  EXPECT_EQ(t.sec, 253402300799);
  ASSERT_TRUE(long_date("1980010101000000", 4, &t));  // 01:00 at GMT+1
  EXPECT_EQ(t.sec, 315532800);
}

TEST(LongDate, UnspecifiedAndGarbageAreRejected) {
  Timestamp t;
  EXPECT_FALSE(long_date("0000000000000000", 0, &t));
  EXPECT_FALSE(long_date("20XX010100000000", 0, &t));
}

}  // namespace
}  // namespace imagecore
