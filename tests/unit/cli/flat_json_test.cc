// Reading the flat JSON objects a stage daemon answers with: every escape json_string()
// writes comes back as the byte it stands for, and anything else is refused, not guessed.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "cli/flat_json.h"
#include "imagecore/base/error.h"
#include "imagecore/base/json.h"

namespace discfs {
namespace {

using Kind = FlatJsonValue::Kind;

int error_of(const std::string& json) {
  try {
    parse_flat_json(json);
  } catch (const imagecore::Error& e) {
    return e.code();
  }
  return 0;
}

TEST(FlatJson, EveryKindOfMember) {
  const auto m = parse_flat_json(R"( { "s" : "x" , "n":12,"t":true,"f":false,"z":null } )");
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m.at("s").kind, Kind::String);
  EXPECT_EQ(m.at("s").text, "x");
  EXPECT_EQ(m.at("n").kind, Kind::Number);
  EXPECT_EQ(m.at("n").text, "12");
  EXPECT_EQ(m.at("t").kind, Kind::True);
  EXPECT_EQ(m.at("f").kind, Kind::False);
  EXPECT_EQ(m.at("z").kind, Kind::Null);
  EXPECT_TRUE(parse_flat_json("{}").empty());
}

TEST(FlatJson, StringsComeBackAsJsonStringWroteThem) {
  const std::string odd = "a\"b\\c/d\ne\tf\rg\x01h\x1f gr\xc3\xbc\xc3\x9f \xff end\\";
  const auto m = parse_flat_json("{\"k\":" + imagecore::json_string(odd) + "}");
  EXPECT_EQ(m.at("k").text, odd);
}

TEST(FlatJson, UnicodeEscapesBecomeUtf8) {
  const auto m = parse_flat_json(R"({"k":"\u00e9\u20ac\ud83d\ude00\/\b\f"})");
  EXPECT_EQ(m.at("k").text, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/\b\f");
}

TEST(FlatJson, ALaterDuplicateWins) {
  EXPECT_EQ(parse_flat_json(R"({"k":1,"k":2})").at("k").text, "2");
}

TEST(FlatJson, AnythingElseIsAProtocolError) {
  for (const char* bad :
       {"", "[]", "{", "{\"k\"}", "{\"k\":}", "{\"k\":1,}", "{\"k\":1} x", "{\"k\":\"open}",
        "{\"k\":\"\\x\"}", "{\"k\":\"\\u12\"}", "{\"k\":\"\\ud83d\"}", "{\"k\":\"\\ude00\"}",
        "{\"k\":\"a\tb\"}", "{\"k\":{}}", "{\"k\":-}", "{\"k\":tru}", "{k:1}"})
    EXPECT_EQ(error_of(bad), EPROTO) << bad;
}

}  // namespace
}  // namespace discfs
