// The pure parts of burner/master.h: graft points, SOURCE_DATE_EPOCH and the PVD time.
#include "burner/master.h"

#include <gtest/gtest.h>

#include "imagecore/base/error.h"

namespace {

using burner::parse_graft;

TEST(Graft, PlainSourceHasNoImagePath) {
  const burner::Graft g = parse_graft("some/dir");
  EXPECT_EQ(g.disk_path, "some/dir");
  EXPECT_EQ(g.image_path, "");
}

TEST(Graft, ImagePathIsAbsoluteAndNormalized) {
  EXPECT_EQ(parse_graft("d=x/y/").image_path, "/x/y");
  EXPECT_EQ(parse_graft("d=//x//y").image_path, "/x/y");
  EXPECT_EQ(parse_graft("d=/").image_path, "/");
  EXPECT_EQ(parse_graft("d=/x").disk_path, "d");
}

TEST(Graft, OnlyTheFirstUnescapedEqualsSplits) {
  burner::Graft g = parse_graft("a\\=b=/c=d");
  EXPECT_EQ(g.disk_path, "a=b");
  EXPECT_EQ(g.image_path, "/c=d");
  g = parse_graft("back\\\\slash");
  EXPECT_EQ(g.disk_path, "back\\slash");
  EXPECT_EQ(g.image_path, "");
  EXPECT_EQ(parse_graft("x\\y").disk_path, "x\\y");  // other backslashes stay
}

TEST(Graft, EmptySidesAndDotsAreRefused) {
  for (const char* bad : {"", "=/x", "d=", "d=/a/../b", "d=./a", "d=/a/."}) {
    try {
      parse_graft(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const imagecore::Error& e) {
      EXPECT_EQ(e.code(), EINVAL) << bad;
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(SourceDateEpoch, DecimalSecondsOnly) {
  EXPECT_EQ(burner::parse_source_date_epoch("0"), 0);
  EXPECT_EQ(burner::parse_source_date_epoch("1700000000"), 1700000000);
  for (const char* bad : {"", "-1", "1.5", "12a", " 1", "0x10", "9999999999999"})
    EXPECT_THROW(burner::parse_source_date_epoch(bad), imagecore::Error) << bad;
}

TEST(SourceDateEpoch, PvdUuidIsGmt) {
  EXPECT_EQ(burner::pvd_uuid_for(0), "1970010100000000");
  EXPECT_EQ(burner::pvd_uuid_for(1700000000), "2023111422132000");
  EXPECT_EQ(burner::pvd_uuid_for(951868799), "2000022923595900");  // a leap day
}

}  // namespace
