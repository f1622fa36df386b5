// The staged changes as `discfs status` and `discard` print them, and their JSON round trip.
#include "cli/change_list.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

#include "cli/flat_json.h"
#include "imagecore/base/error.h"

namespace discfs {
namespace {

using Kind = stage::StagedChange::Kind;
using Changes = std::vector<stage::StagedChange>;

TEST(ChangeList, FoldersAddedOrDeletedWholeAreOneLine) {
  const Changes c = {{Kind::Added, "/new", "", false},       {Kind::Added, "/new/a", "", false},
                     {Kind::Added, "/new/a/b", "", false},   {Kind::Added, "/newer", "", false},
                     {Kind::Deleted, "/old", "", false},     {Kind::Deleted, "/old/x", "", false},
                     {Kind::Modified, "/old2/y", "", false}, {Kind::Renamed, "/r2", "/r", false}};
  EXPECT_EQ(to_text(c),
            "A  /new/ (and 2 more inside)\n"
            "A  /newer\n"
            "D  /old/ (and 1 more inside)\n"
            "M  /old2/y\n"
            "R  /r -> /r2\n");
}

TEST(ChangeList, OddNamesStayOnTheirLine) {
  EXPECT_EQ(to_text({{Kind::Added, "/two\nlines", "", false}}), "A  /two\\nlines\n");
}

TEST(ChangeList, JsonReadsBack) {
  const Changes c = {{Kind::Added, "/a \"q\"", "", false},
                     {Kind::Renamed, "/b", "/c\\", true},
                     {Kind::Deleted, "/d", "", false}};
  const auto m = parse_flat_json("{\"changes\":" + to_json(c) + "}");
  EXPECT_EQ(changes_from_json(m.at("changes")), c);
  EXPECT_EQ(changes_from_json(parse_flat_json(R"({"c":[]})").at("c")), Changes{});
}

TEST(ChangeList, MalformedArraysAreProtocolErrors) {
  for (const char* json :
       {R"({"c":"x"})", R"({"c":[{"path":"/a"}]})", R"({"c":[{"change":"eaten","path":"/a"}]})",
        R"({"c":[{"change":"added","path":1}]})"}) {
    try {
      changes_from_json(parse_flat_json(json).at("c"));
      ADD_FAILURE() << json;
    } catch (const imagecore::Error& e) {
      EXPECT_EQ(e.code(), EPROTO) << json;
    }
  }
  // Arrays hold flat objects only: no arrays inside them.
  EXPECT_THROW(parse_flat_json(R"({"c":[{"x":[]}]})"), imagecore::Error);
  EXPECT_THROW(parse_flat_json(R"({"c":[1]})"), imagecore::Error);
}

}  // namespace
}  // namespace discfs
