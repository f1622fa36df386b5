// The ddrescue mapfile `discfs rip` keeps: blocks set, merged and written in ddrescue's text
// format, and read back (also maps written by ddrescue, with its other states).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "burner/rip.h"
#include "imagecore/base/error.h"

namespace burner {
namespace {

std::string statuses(const RescueMap& m) {
  std::string s;
  for (const MapBlock& b : m.blocks())
    s += std::to_string(b.pos) + ":" + std::to_string(b.size) + b.status + " ";
  return s;
}

TEST(RescueMap, SetSplitsAndMerges) {
  RescueMap m(10 * 2048);
  m.set(0, 4096, '+');
  m.set(4096, 2048, '-');
  m.set(6144, 4 * 2048, '+');
  EXPECT_EQ(statuses(m), "0:4096+ 4096:2048- 6144:8192+ 14336:6144? ");
  m.set(4096, 2048, '+');
  EXPECT_EQ(statuses(m), "0:14336+ 14336:6144? ");
  m.set(14336, 6144, '+');
  EXPECT_EQ(statuses(m), "0:20480+ ");
  EXPECT_EQ(m.size(), 20480u);
  EXPECT_EQ(m.bytes_with('+'), 20480u);
}

TEST(RescueMap, TextRoundTrips) {
  RescueMap m(8192);
  m.set(2048, 2048, '-');
  m.set(0, 2048, '+');
  const std::string t = m.text({"Mapfile. Created by a test"}, 4096);
  EXPECT_NE(t.find("# Mapfile. Created by a test\n"), std::string::npos);
  EXPECT_NE(t.find("0x00001000     ?               1\n"), std::string::npos);
  EXPECT_NE(t.find("0x00000800  0x00000800  -\n"), std::string::npos);
  EXPECT_EQ(statuses(RescueMap::parse(t, "m")), statuses(m));
}

TEST(RescueMap, ReadsDdrescueStates) {
  // As GNU ddrescue writes it: trimming and scraping states are "not yet read" here.
  const std::string t =
      "# Mapfile. Created by GNU ddrescue version 1.27\n"
      "# current_pos  current_status  current_pass\n"
      "0x00000000     ?               1\n"
      "#      pos        size  status\n"
      "0x00000000  0x00000800  +\n"
      "0x00000800  0x00000800  *\n"
      "0x00001000  0x00000800  /\n"
      "0x00001800  0x00000800  -\n";
  EXPECT_EQ(statuses(RescueMap::parse(t, "m")), "0:2048+ 2048:2048? 4096:2048? 6144:2048- ");
}

TEST(RescueMap, RefusesWhatIsNoMap) {
  EXPECT_THROW(RescueMap::parse("hello\nworld\n", "m"), imagecore::Error);
  EXPECT_THROW(RescueMap::parse("", "m"), imagecore::Error);
  // A gap between blocks.
  EXPECT_THROW(RescueMap::parse("0 +\n0x0 0x800 +\n0x1000 0x800 +\n", "m"), imagecore::Error);
}

}  // namespace
}  // namespace burner
