// The history discfs records in the sessions it writes onto an image that started at LBA 0:
// the record's encoding, and the session table found by walking the records back, on
// hand-built images, including records that lie.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>

#include "imagecore/media/session_history.h"
#include "imagecore/media/sessions.h"
#include "tests/unit/iso_builder.h"

namespace imagecore {
namespace {

using namespace testing_iso;

constexpr size_t kAppUse = 883;

// A PVD at session_start+16 recording `blocks` and, when given, a discfs record.
void session_pvd(Bytes& b,
                 uint64_t session_start,
                 uint32_t blocks,
                 std::optional<HistoryRecord> r = std::nullopt) {
  const size_t p = size_t{session_start + 16} * kBlock;
  b[p] = std::byte(1);
  std::memcpy(b.data() + p + 1, "CD001", 5);
  b[p + 6] = std::byte(1);
  both32(b, p + 80, blocks);
  both16(b, p + 128, kBlock);
  if (r) {
    const auto enc = encode_history_record(*r);
    std::memcpy(b.data() + p + kAppUse, enc.data(), enc.size());
  }
  b[p + kBlock] = std::byte(255);
  std::memcpy(b.data() + p + kBlock + 1, "CD001", 5);
}

// An image of 100 blocks from genisoimage (session 1 at LBA 0), grown by discfs: the copy of
// session 1 at 128 (20 blocks), then sessions at 160 (20 blocks) and 192 (20 blocks); LBA 16
// holds the newest descriptors with the whole size.
const HistoryRecord kCopy{128, 0, 100};
const HistoryRecord kSecond{160, 128, 0};
const HistoryRecord kThird{192, 160, 0};

Bytes grown_lba0_image() {
  Bytes b(size_t{212} * kBlock);
  session_pvd(b, 128, 20, kCopy);
  session_pvd(b, 160, 20, kSecond);
  session_pvd(b, 192, 20, kThird);
  session_pvd(b, 0, 212, kThird);
  return b;
}

SessionTable table_of(Bytes b) {
  return read_session_table(*make_memory_source(std::move(b), "test.iso"));
}

TEST(SessionHistory, RecordRoundTrips) {
  for (const HistoryRecord& r : {kCopy, kSecond, kThird}) {
    const auto enc = encode_history_record(r);
    std::array<std::byte, 512> use{};
    std::memcpy(use.data(), enc.data(), enc.size());
    const std::optional<HistoryRecord> back = decode_history_record(use);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, r);
  }
}

TEST(SessionHistory, RecordsThatContradictThemselvesAreNotRecords) {
  const auto decoded = [](const HistoryRecord& r) {
    const auto enc = encode_history_record(r);
    std::array<std::byte, 512> use{};
    std::memcpy(use.data(), enc.data(), enc.size());
    return decode_history_record(use).has_value();
  };
  EXPECT_FALSE(decoded(HistoryRecord{160, 160, 0}));  // grown from itself
  EXPECT_FALSE(decoded(HistoryRecord{160, 192, 0}));  // grown from a later session
  EXPECT_FALSE(decoded(HistoryRecord{161, 128, 0}));  // not on a 32-block boundary
  EXPECT_FALSE(decoded(HistoryRecord{0, 0, 0}));      // at LBA 0
  EXPECT_FALSE(decoded(HistoryRecord{128, 96, 5}));   // a copy grown from a session
  std::array<std::byte, 512> zeros{};
  EXPECT_FALSE(decode_history_record(zeros));
  EXPECT_FALSE(decode_history_record(std::span<const std::byte>(zeros.data(), 10)));
}

TEST(SessionHistory, EverySessionOfAGrownLba0Image) {
  SessionTable t = table_of(grown_lba0_image());
  EXPECT_EQ(t.layout, SessionTable::Layout::History);
  EXPECT_STREQ(layout_name(t.layout), "history");
  ASSERT_EQ(t.sessions.size(), 3u);  // the copy is not a session of its own
  EXPECT_EQ(t.sessions[0].number, 1u);
  EXPECT_EQ(t.sessions[0].start_lba, 0u);
  EXPECT_EQ(t.sessions[0].blocks, 100u);
  EXPECT_EQ(t.sessions[0].tree_start(), 128u);  // read through the copy's descriptors
  EXPECT_EQ(t.sessions[1].start_lba, 160u);
  EXPECT_EQ(t.sessions[1].tree_start(), 160u);
  EXPECT_EQ(t.sessions[2].number, 3u);
  EXPECT_EQ(t.sessions[2].start_lba, 192u);
  EXPECT_EQ(t.sessions[2].blocks, 20u);
  EXPECT_EQ(t.next_writable_lba, 224u);
  EXPECT_TRUE(t.note.empty()) << t.note;
}

TEST(SessionHistory, OnlyTheCopySoFarIsSessionOne) {
  // A commit stopped after the copy was made the newest: the image shows session 1.
  Bytes b(size_t{148} * kBlock);
  session_pvd(b, 128, 20, kCopy);
  session_pvd(b, 0, 148, kCopy);
  SessionTable t = table_of(std::move(b));
  ASSERT_EQ(t.sessions.size(), 1u);
  EXPECT_EQ(t.sessions[0].start_lba, 0u);
  EXPECT_EQ(t.sessions[0].blocks, 100u);
  EXPECT_EQ(t.sessions[0].tree_start(), 128u);
}

TEST(SessionHistory, AnotherProgramsSessionOnTopHidesTheHistory) {
  // xorriso appended at 224 and its libisofs kept the loaded session's record: LBA 16 names
  // the session at 192, which does not end where the volume now ends.
  Bytes b = grown_lba0_image();
  b.resize(size_t{240} * kBlock);
  session_pvd(b, 0, 240, kThird);
  SessionTable t = table_of(std::move(b));
  EXPECT_NE(t.layout, SessionTable::Layout::History);
  ASSERT_EQ(t.sessions.size(), 1u);
}

TEST(SessionHistory, BrokenWalkKeepsWhatIsIntactAndSaysSo) {
  Bytes b = grown_lba0_image();
  std::memset(b.data() + size_t{160 + 16} * kBlock, 0, kBlock);  // session 2's PVD is gone
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::History);
  ASSERT_EQ(t.sessions.size(), 1u);
  EXPECT_EQ(t.sessions[0].start_lba, 192u);
  EXPECT_NE(t.note.find("breaks at LBA 160"), std::string::npos) << t.note;
}

TEST(SessionHistory, RecordPointingPastTheEndIsIgnored) {
  Bytes b = grown_lba0_image();
  session_pvd(b, 0, 212, HistoryRecord{uint64_t{1} << 40, 160, 0});
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.layout, SessionTable::Layout::Single);
  ASSERT_EQ(t.sessions.size(), 1u);
}

TEST(SessionHistory, CopyLongerThanItsPlaceIsCut) {
  Bytes b = grown_lba0_image();
  session_pvd(b, 128, 20, HistoryRecord{128, 0, 5000});
  SessionTable t = table_of(std::move(b));
  ASSERT_EQ(t.sessions.size(), 3u);
  EXPECT_EQ(t.sessions[0].blocks, 128u);
  EXPECT_NE(t.note.find("5000"), std::string::npos) << t.note;
}

TEST(SessionHistory, LongHistoryIsCappedAtMaxSessions) {
  // kMaxSessions + 5 sessions of one block each, 32 blocks apart, no copy at the bottom.
  const uint64_t n = kMaxSessions + 5;
  Bytes b(size_t{32 + 32 * n} * kBlock);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t start = 32 + 32 * i;
    session_pvd(b, start, 17, HistoryRecord{start, start - 32, 0});
  }
  const uint64_t last = 32 + 32 * (n - 1);
  session_pvd(b, 0, static_cast<uint32_t>(last + 17), HistoryRecord{last, last - 32, 0});
  SessionTable t = table_of(std::move(b));
  EXPECT_EQ(t.sessions.size(), kMaxSessions);
  EXPECT_NE(t.note.find("stopped after"), std::string::npos) << t.note;
}

}  // namespace
}  // namespace imagecore
