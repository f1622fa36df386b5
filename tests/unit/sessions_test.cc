// The session table on hand-built images: libisoburn's chain from LBA 32, single-session
// images, broken chains, sessions appended one after another from LBA 0, and the drive table
// of contents turned into sessions.
#include <gtest/gtest.h>

#include <cstdio>

#include "imagecore/iso9660/volume.h"
#include "imagecore/media/device.h"
#include "imagecore/media/sessions.h"
#include "tests/unit/iso_builder.h"

namespace imagecore {
namespace {

using namespace testing_iso;

// A PVD at session_start+16 recording `blocks`, and a terminator after it.
void session_pvd(Bytes& b, uint32_t session_start, uint32_t blocks) {
  const size_t p = size_t{session_start + 16} * kBlock;
  b[p] = std::byte(1);
  std::memcpy(b.data() + p + 1, "CD001", 5);
  b[p + 6] = std::byte(1);
  both32(b, p + 80, blocks);
  both16(b, p + 128, kBlock);
  b[p + kBlock] = std::byte(255);
  std::memcpy(b.data() + p + kBlock + 1, "CD001", 5);
}

// The layout xorriso 1.5.4 made with three `-map DIR /DIR -commit` runs on a new image file:
// `xorriso -indev IMG -toc` listed sessions at 32 (171 blocks), 224 (74) and 320 (29),
// "Media nwa: 352s"; LBA 16 held the newest descriptors with 349 blocks.
Bytes grown_image() {
  Bytes b(size_t{352} * kBlock);
  session_pvd(b, 0, 349);
  session_pvd(b, 32, 171);
  session_pvd(b, 224, 74);
  session_pvd(b, 320, 29);
  return b;
}

SessionTable table_of(Bytes b) {
  return read_session_table(*make_memory_source(std::move(b), "test.iso"));
}

void expect_session(const SessionEntry& s, unsigned n, uint64_t start, uint64_t blocks) {
  EXPECT_EQ(s.number, n);
  EXPECT_EQ(s.start_lba, start);
  EXPECT_EQ(s.blocks, blocks);
}

TEST(Sessions, GrownChainMatchesXorrisoToc) {
  SessionTable t = table_of(grown_image());
  EXPECT_EQ(t.layout, SessionTable::Layout::Grown);
  ASSERT_EQ(t.sessions.size(), 3u);
  expect_session(t.sessions[0], 1, 32, 171);
  expect_session(t.sessions[1], 2, 224, 74);
  expect_session(t.sessions[2], 3, 320, 29);
  EXPECT_EQ(t.next_writable_lba, 352u);
  EXPECT_TRUE(t.note.empty()) << t.note;
}

TEST(Sessions, ImageWithFirstSessionAtZeroIsOneSession) {
  // genisoimage: 328 blocks at LBA 0; xorriso -toc shows one session and nwa 352.
  Image img(328);
  img.volume(18, kBlock);
  SessionTable t = table_of(img.bytes());
  EXPECT_EQ(t.layout, SessionTable::Layout::Single);
  ASSERT_EQ(t.sessions.size(), 1u);
  expect_session(t.sessions[0], 1, 0, 328);
  EXPECT_EQ(t.next_writable_lba, 352u);
}

TEST(Sessions, GarbageWhereASessionShouldBeKeepsTheEarlierOnes) {
  Bytes b = grown_image();
  std::memset(b.data() + size_t{224 + 16} * kBlock, 0x5A, kBlock);
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::Grown);
  // The newest session is still there through the copy of its descriptors at LBA 16,
  // listed at LBA 0 with the whole size, as xorriso -toc lists it.
  ASSERT_EQ(t.sessions.size(), 2u);
  expect_session(t.sessions[0], 1, 32, 171);
  expect_session(t.sessions[1], 2, 0, 349);
  EXPECT_NE(t.note.find("session 2"), std::string::npos) << t.note;
  EXPECT_NE(t.note.find("LBA 240"), std::string::npos) << t.note;
  // Never below what LBA 16 says the volume covers.
  EXPECT_EQ(t.next_writable_lba, 352u);
}

TEST(Sessions, ZeroLengthSessionEndsTheChain) {
  Bytes b = grown_image();
  session_pvd(b, 224, 0);
  SessionTable t = table_of(std::move(b));
  ASSERT_EQ(t.sessions.size(), 2u);  // session 1, and the newest through LBA 16
  expect_session(t.sessions[1], 2, 0, 349);
  EXPECT_NE(t.note.find("0 blocks"), std::string::npos) << t.note;
}

TEST(Sessions, SessionPastTheEndIsClippedAndNoted) {
  Bytes b = grown_image();
  session_pvd(b, 320, 5000);
  SessionTable t = table_of(std::move(b));
  ASSERT_EQ(t.sessions.size(), 3u);
  expect_session(t.sessions[2], 3, 320, 32);  // the image holds 352 blocks
  EXPECT_NE(t.note.find("claims 5000 blocks"), std::string::npos) << t.note;
}

TEST(Sessions, TruncatedGrownImageStopsAtItsEnd) {
  Bytes b = grown_image();
  b.resize(size_t{260} * kBlock);  // session 3's descriptors are gone
  SessionTable t = table_of(std::move(b));
  ASSERT_EQ(t.sessions.size(), 3u);  // the third only as LBA 16 describes it, cut short
  expect_session(t.sessions[2], 3, 0, 260);
  EXPECT_FALSE(t.note.empty());
}

TEST(Sessions, SingleSessionLongerThanTheImageIsNoted) {
  Image img(40);
  img.volume(18, kBlock);
  both32(img.bytes(), 16 * kBlock + 80, 1000);
  SessionTable t = table_of(img.bytes());
  ASSERT_EQ(t.sessions.size(), 1u);
  expect_session(t.sessions[0], 1, 0, 40);
  EXPECT_NE(t.note.find("1000"), std::string::npos);
}

TEST(Sessions, ManySmallSessionsEndAndAreNumbered) {
  // 200 sessions of one block each, 32 blocks apart.
  const uint32_t n = 200;
  Bytes b(size_t{32 + 32 * n} * kBlock);
  session_pvd(b, 0, 32 * n + 18);
  for (uint32_t i = 0; i < n; ++i)
    session_pvd(b, 32 + 32 * i, 18);
  SessionTable t = table_of(std::move(b));
  ASSERT_EQ(t.sessions.size(), n);
  expect_session(t.sessions.back(), n, 32 + 32 * (n - 1), 18);
}

TEST(Sessions, NotAnImageOrTinyInputThrowsNotAnImage) {
  EXPECT_THROW(table_of(Bytes{}), NotAnImage);
  EXPECT_THROW(table_of(Bytes(100)), NotAnImage);
  EXPECT_THROW(table_of(Bytes(size_t{40} * kBlock)), NotAnImage);
}

// Appended sessions ------------------------------------------------------------------------

// The descriptors genisoimage -C writes at start+16: a PVD recording the session's own
// `blocks` with its root directory at start+18, and a terminator.
void appended_pvd(Bytes& b, uint32_t start, uint32_t blocks, uint32_t root = 0) {
  session_pvd(b, start, blocks);
  const size_t p = size_t{start + 16} * kBlock;
  const size_t r = p + 156;
  b[r] = std::byte(34);
  both32(b, r + 2, root ? root : start + 18);
  both32(b, r + 10, kBlock);
  b[r + 25] = std::byte(2);
}

TEST(Appended, ContiguousSessionsAreEachFound) {
  // genisoimage -C 0,100 and -C 100,150 sessions written one after another into one file.
  Bytes b(size_t{190} * kBlock);
  appended_pvd(b, 0, 100);
  appended_pvd(b, 100, 50);
  appended_pvd(b, 150, 40);
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::Appended);
  EXPECT_STREQ(layout_name(t.layout), "appended");
  ASSERT_EQ(t.sessions.size(), 3u);
  expect_session(t.sessions[0], 1, 0, 100);
  expect_session(t.sessions[1], 2, 100, 50);
  expect_session(t.sessions[2], 3, 150, 40);
  EXPECT_FALSE(t.next_writable_lba);  // libisoburn would write over session 2
  EXPECT_TRUE(t.note.empty()) << t.note;
}

TEST(Appended, CdGapsBetweenSessionsAreCrossed) {
  // A copy of a CD-R: 11,400 blocks after the first session, 6,900 after the second.
  const uint32_t s2 = 100 + 11400, s3 = s2 + 50 + 6900;
  Bytes b(size_t{s3 + 40} * kBlock);
  appended_pvd(b, 0, 100);
  appended_pvd(b, s2, 50);
  appended_pvd(b, s3, 40);
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::Appended);
  ASSERT_EQ(t.sessions.size(), 3u);
  expect_session(t.sessions[1], 2, s2, 50);
  expect_session(t.sessions[2], 3, s3, 40);
}

TEST(Appended, AbsoluteEndOfTheLastSessionIsRecognised) {
  // A writer recording where the session ends rather than its length.
  Bytes b(size_t{300} * kBlock);
  appended_pvd(b, 0, 100);
  appended_pvd(b, 120, 300);
  SessionTable t = table_of(std::move(b));
  ASSERT_EQ(t.sessions.size(), 2u);
  expect_session(t.sessions[1], 2, 120, 180);
  EXPECT_TRUE(t.note.empty()) << t.note;
}

TEST(Appended, SessionBeyondTheWindowIsNotSearchedFor) {
  const uint32_t far = 100 + kAppendedSearchBlocks + 1;
  Bytes b(size_t{far + 40} * kBlock);
  appended_pvd(b, 0, 100);
  appended_pvd(b, far, 40);
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::Single);
  ASSERT_EQ(t.sessions.size(), 1u);
}

TEST(Appended, SizePastTheEndIsClippedAndNoted) {
  Bytes b(size_t{200} * kBlock);
  appended_pvd(b, 0, 100);
  appended_pvd(b, 100, 0xFFFFFFFFu);  // a huge claimed size
  SessionTable t = table_of(std::move(b));
  ASSERT_EQ(t.sessions.size(), 2u);
  expect_session(t.sessions[1], 2, 100, 100);
  EXPECT_NE(t.note.find("claims 4294967295 blocks"), std::string::npos) << t.note;
}

TEST(Appended, DescriptorsThatDoNotValidateAreNotSessions) {
  // "CD001" blocks in the gap that are not a session's PVD: wrong version, a block size that
  // is not 2048, a root that is not a directory, a root before the descriptor, a size smaller
  // than the descriptors themselves, a size pointing back before the start.
  Bytes b(size_t{400} * kBlock);
  appended_pvd(b, 0, 100);
  appended_pvd(b, 110, 50);
  b[size_t{126} * kBlock + 6] = std::byte(2);
  appended_pvd(b, 120, 50);
  both16(b, size_t{136} * kBlock + 128, 512);
  appended_pvd(b, 130, 50);
  b[size_t{146} * kBlock + 156 + 25] = std::byte(0);
  appended_pvd(b, 140, 50, 3);
  appended_pvd(b, 150, 5);
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::Single);
  ASSERT_EQ(t.sessions.size(), 1u);
}

TEST(Appended, WindowFullOfValidDescriptorsStopsAtTheCap) {
  // Every 20 blocks a small valid session: the walk moves forward and stops at kMaxSessions.
  const uint32_t n = kMaxSessions + 10;
  Bytes b(size_t{20} * (n + 1) * kBlock);
  appended_pvd(b, 0, 20);
  for (uint32_t i = 1; i <= n; ++i)
    appended_pvd(b, 20 * i, 20);
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::Appended);
  ASSERT_EQ(t.sessions.size(), kMaxSessions);
  EXPECT_NE(t.note.find("stopped after"), std::string::npos) << t.note;
  for (size_t i = 1; i < t.sessions.size(); ++i)
    EXPECT_GE(t.sessions[i].start_lba, t.sessions[i - 1].start_lba + t.sessions[i - 1].blocks);
}

TEST(Appended, TrailingZerosAfterOneSessionStaySingle) {
  Bytes b(size_t{5000} * kBlock);
  appended_pvd(b, 0, 100);
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::Single);
  ASSERT_EQ(t.sessions.size(), 1u);
  EXPECT_EQ(t.next_writable_lba, 128u);
}

TEST(DiscToc, DataTracksBecomeSessions) {
  DiscToc toc;
  toc.tracks = {{1, true, 0}, {2, true, 20000}, {3, true, 35000}};
  toc.leadout_lba = 36000;
  toc.last_session_lba = 35000;
  SessionTable t = sessions_from_toc(toc, "/dev/sr0");
  EXPECT_EQ(t.layout, SessionTable::Layout::DiscToc);
  ASSERT_EQ(t.sessions.size(), 3u);
  expect_session(t.sessions[0], 1, 0, 20000);
  expect_session(t.sessions[2], 3, 35000, 1000);
  EXPECT_FALSE(t.next_writable_lba);
  EXPECT_TRUE(t.note.empty());
}

TEST(DiscToc, AudioTracksAreLeftOut) {
  DiscToc toc;  // an Enhanced CD: audio first, data in a second session
  toc.tracks = {{1, false, 0}, {2, false, 15000}, {3, true, 40000}};
  toc.leadout_lba = 50000;
  SessionTable t = sessions_from_toc(toc, "/dev/sr0");
  ASSERT_EQ(t.sessions.size(), 1u);
  expect_session(t.sessions[0], 1, 40000, 10000);
}

TEST(DiscToc, AudioOnlyDiscIsAClearError) {
  DiscToc toc;
  toc.tracks = {{1, false, 0}, {2, false, 15000}};
  toc.leadout_lba = 30000;
  try {
    sessions_from_toc(toc, "/dev/sr0");
    FAIL() << "no error";
  } catch (const NotAnImage& e) {
    EXPECT_STREQ(e.what(), "the disc in /dev/sr0 holds only audio tracks");
  }
}

TEST(DiscToc, InconsistentTocIsNotedNotFatal) {
  DiscToc toc;
  toc.tracks = {{1, true, 0}, {2, true, 0}};
  toc.leadout_lba = 100;
  toc.last_session_lba = 77;
  SessionTable t = sessions_from_toc(toc, "/dev/sr0");
  ASSERT_EQ(t.sessions.size(), 1u);
  EXPECT_FALSE(t.note.empty());
}

TEST(DiscToc, MemorySourceIsNotADrive) {
  EXPECT_FALSE(is_optical_drive(-1));
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(is_optical_drive(fileno(f)));  // a regular file
  std::fclose(f);
}

}  // namespace
}  // namespace imagecore
