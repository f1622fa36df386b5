// File identifiers as xorriso, 7-Zip and bsdtar show them.
#include "imagecore/names.h"

#include <gtest/gtest.h>

namespace imagecore {
namespace {

TEST(PlainName, DropsVersionAndTrailingDotKeepsCase) {
  EXPECT_EQ(plain_name("README.TXT;1"), "README.TXT");
  EXPECT_EQ(plain_name("FOO.;1"), "FOO");
  EXPECT_EQ(plain_name("MixedCase.c;12"), "MixedCase.c");
  EXPECT_EQ(plain_name("NOVERSION"), "NOVERSION");
  EXPECT_EQ(plain_name("A;B"), "A;B");  // not a version
}

TEST(JolietName, Ucs2ToUtf8) {
  // "Größe.txt;1" in UCS-2 big-endian.
  const char raw[] =
      "\0G\0r\0\xf6\0\xdf\0e\0.\0t\0x\0t\0;\0"
      "1";
  EXPECT_EQ(joliet_name(std::string_view(raw, sizeof raw - 1)),
            "Gr\xc3\xb6\xc3\x9f"
            "e.txt");
}

TEST(JolietName, SurrogatePairsAndBrokenInput) {
  // U+1F600 as the pair D83D DE00.
  const char pair[] = "\xd8\x3d\xde\x00";
  EXPECT_EQ(joliet_name(std::string_view(pair, 4)), "\xf0\x9f\x98\x80");
  // A lone high surrogate and an odd trailing byte become U+FFFD.
  const char lone[] =
      "\xd8\x3d\x00"
      "a"
      "\x00";
  EXPECT_EQ(joliet_name(std::string_view(lone, 5)),
            "\xef\xbf\xbd"
            "a\xef\xbf\xbd");
}

TEST(SanitizeName, NothingEscapesTheDirectory) {
  std::string s = "../../etc/passwd";
  ASSERT_TRUE(sanitize_name(&s));
  EXPECT_EQ(s.find('/'), std::string::npos);
  s = "..";
  ASSERT_TRUE(sanitize_name(&s));
  EXPECT_EQ(s, "__");
  s = ".";
  ASSERT_TRUE(sanitize_name(&s));
  EXPECT_EQ(s, "_");
  s = std::string("a\0b", 3);
  ASSERT_TRUE(sanitize_name(&s));
  EXPECT_EQ(s, "a_b");
  s = "";
  EXPECT_FALSE(sanitize_name(&s));
}

}  // namespace
}  // namespace imagecore
