// The reader on hand-built images: structure, damage, bounds and caps.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "imagecore/dir_cache.h"
#include "imagecore/iso9660/iso_fs.h"
#include "imagecore/iso9660/volume.h"
#include "tests/unit/iso_builder.h"

namespace imagecore {
namespace {

using namespace testing_iso;

std::unique_ptr<IsoFs> open(Image& img, Tree tree = Tree::Auto) {
  return std::make_unique<IsoFs>(make_memory_source(img.bytes(), "test.iso"), Options{tree});
}

std::string read_all(const IsoFs& fs, const Node& n) {
  std::string s(n.attr.size, '\0');
  size_t got = fs.read(n, 0, std::as_writable_bytes(std::span(s.data(), s.size())));
  s.resize(got);
  return s;
}

// LBA 18: root; 19: file data; 20: second file's data.
Image simple_image() {
  Image img(24);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18,
                {record(19, 5, 0, "HELLO.TXT;1"), record(20, 3, 0, "NOEXT.;1"),
                 record(21, kBlock, 2, "SUB")});
  img.directory(21, kBlock, 18, {});
  img.put(19 * kBlock, "hello");
  img.put(20 * kBlock, "abc");
  return img;
}

TEST(Reader, ListsAndReadsAPlainImage) {
  Image img = simple_image();
  auto fs = open(img);
  EXPECT_EQ(fs->tree(), Tree::Iso9660);
  auto root = fs->list(kRootIno);
  ASSERT_EQ(root->entries.size(), 3u);
  EXPECT_EQ(root->entries[0].name, "HELLO.TXT");
  EXPECT_EQ(root->entries[1].name, "NOEXT");
  EXPECT_EQ(root->entries[2].attr.type, FileType::Directory);
  EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "HELLO.TXT")), "hello");
  EXPECT_EQ(fs->lookup(kRootIno, "HELLO.TXT").attr.mtime.sec, 1577836800);  // 2020-01-01
  EXPECT_THROW(fs->lookup(kRootIno, "MISSING"), Error);
}

TEST(Reader, InodeNumbersAreStableAndResolvable) {
  Image img = simple_image();
  auto fs1 = open(img);
  auto fs2 = open(img);
  const Node a = fs1->lookup(kRootIno, "NOEXT");
  EXPECT_EQ(a.attr.ino, fs2->lookup(kRootIno, "NOEXT").attr.ino);
  // A fresh reader resolves the number without having listed anything.
  const Node b = fs2->stat(a.attr.ino);
  EXPECT_EQ(b.attr.size, 3u);
  EXPECT_EQ(read_all(*fs2, b), "abc");
  const Node sub = fs1->lookup(kRootIno, "SUB");
  EXPECT_EQ(fs2->stat(sub.attr.ino).attr.type, FileType::Directory);
}

TEST(Reader, ADirectoryThatContainsItselfIsHidden) {
  Image img(24);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18, {record(19, kBlock, 2, "LOOP"), record(20, 2, 0, "OK;1")});
  img.directory(19, kBlock, 18, {record(19, kBlock, 2, "SELF"), record(18, kBlock, 2, "ROOT")});
  img.put(20 * kBlock, "ok");
  auto fs = open(img);
  auto loop = fs->list(fs->lookup(kRootIno, "LOOP").attr.ino);
  EXPECT_TRUE(loop->entries.empty());
  EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "OK")), "ok");
}

TEST(Reader, AnExtentPastTheEndReadsAsEioAndTheRestStaysReadable) {
  Image img(24);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18,
                {record(5000, 100, 0, "BAD;1"), record(19, 4, 0, "GOOD;1"),
                 record(19, 0xFFFFFFF0u, 0, "HUGE;1")});
  img.put(19 * kBlock, "good");
  auto fs = open(img);
  const Node bad = fs->lookup(kRootIno, "BAD");
  EXPECT_FALSE(bad.defect.empty());
  std::byte buf[16];
  try {
    fs->read(bad, 0, buf);
    FAIL() << "read of a damaged file succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EIO);
  }
  EXPECT_FALSE(fs->lookup(kRootIno, "HUGE").defect.empty());
  EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "GOOD")), "good");
}

TEST(Reader, MultiExtentSectionsJoin) {
  Image img(24);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18, {record(19, kBlock, 0x80, "BIG;1"), record(21, 3, 0, "BIG;1")});
  img.put(19 * kBlock, std::string(kBlock, 'x'));
  img.put(21 * kBlock, "end");
  auto fs = open(img);
  auto root = fs->list(kRootIno);
  ASSERT_EQ(root->entries.size(), 1u);
  const Node& big = root->entries[0];
  EXPECT_EQ(big.attr.size, kBlock + 3);
  EXPECT_EQ(read_all(*fs, big), std::string(kBlock, 'x') + "end");
  EXPECT_EQ(read_all(*fs, fs->stat(big.attr.ino)), std::string(kBlock, 'x') + "end");
}

TEST(Reader, AMultiExtentFileAcrossSectorsResolvesInAFreshReader) {
  // 51 small files fill the first sector of the root so that BIG's second section starts
  // the next one; a stage store asks a later reader for BIG by number before any listing.
  Image img(28);
  img.volume(18, 2 * kBlock);
  std::vector<Bytes> recs;
  for (int i = 0; i < 51; ++i)
    recs.push_back(record(22, 1, 0, fmt::format("F{:02};1", i)));
  recs.push_back(record(23, kBlock, 0x80, "BIG;1"));
  recs.push_back(record(25, 3, 0, "BIG;1"));
  img.directory(18, 2 * kBlock, 18, recs);
  img.put(23 * kBlock, std::string(kBlock, 'x'));
  img.put(25 * kBlock, "end");
  auto first = open(img);
  const Node big = first->lookup(kRootIno, "BIG");
  ASSERT_LE(big.attr.ino % kBlock + 38, kBlock + 0u) << "precondition: BIG starts in sector 1";
  ASSERT_GT(big.attr.ino % kBlock + 2 * 38, kBlock + 0u) << "precondition: and ends in sector 2";
  EXPECT_EQ(big.attr.size, kBlock + 3);
  auto fresh = open(img);
  const Node n = fresh->stat(big.attr.ino);
  EXPECT_TRUE(n.defect.empty()) << n.defect;
  EXPECT_EQ(read_all(*fresh, n), std::string(kBlock, 'x') + "end");
}

TEST(Reader, AMultiExtentChainStopsAtAnotherName) {
  Image img(24);
  img.volume(18, kBlock);
  // "A" claims a further section, but the next record is "B"; "C" ends the directory with the
  // multi-extent flag still set.
  img.directory(18, kBlock, 18,
                {record(19, 2, 0x80, "A;1"), record(20, 2, 0, "B;1"), record(21, 2, 0x80, "C;1")});
  img.put(19 * kBlock, "aa");
  img.put(20 * kBlock, "bb");
  img.put(21 * kBlock, "cc");
  auto fs = open(img);
  auto root = fs->list(kRootIno);
  ASSERT_EQ(root->entries.size(), 3u);
  EXPECT_FALSE(root->entries[0].defect.empty());  // A: broken chain, reads EIO
  EXPECT_EQ(root->entries[0].attr.size, 2u);
  EXPECT_EQ(read_all(*fs, root->entries[1]), "bb");  // B is its own file, not A's tail
  EXPECT_EQ(root->entries[2].name, "C");
  EXPECT_FALSE(root->entries[2].defect.empty());
}

TEST(Reader, ALoopThroughTheParentIsHidden) {
  Image img(24);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18, {record(19, kBlock, 2, "TOP")});
  img.directory(19, kBlock, 18, {record(20, kBlock, 2, "SUB")});
  img.directory(20, kBlock, 19, {record(19, kBlock, 2, "BACK"), record(21, 0, 0, "F;1")});
  auto fs = open(img);
  const Node sub = fs->lookup(fs->lookup(kRootIno, "TOP").attr.ino, "SUB");
  auto listing = fs->list(sub.attr.ino);
  ASSERT_EQ(listing->entries.size(), 1u);
  EXPECT_EQ(listing->entries[0].name, "F");
}

TEST(Reader, AnEmptyFileAnywhereIsNotDamaged) {
  Image img(24);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18, {record(0xFFFFFFF0u, 0, 0, "EMPTY;1")});
  auto fs = open(img);
  const Node n = fs->lookup(kRootIno, "EMPTY");
  EXPECT_TRUE(n.defect.empty()) << n.defect;
  EXPECT_EQ(read_all(*fs, n), "");
}

Bytes rr_sp() {
  return susp("SP", Bytes{std::byte(0xBE), std::byte(0xEF), std::byte(0)});
}
Bytes rr_ce(uint32_t lba, uint32_t off, uint32_t len) {
  Bytes p(24);
  both32(p, 0, lba);
  both32(p, 8, off);
  both32(p, 16, len);
  return susp("CE", p);
}
Bytes rr_nm(std::string_view name) {
  return susp("NM", Bytes{std::byte(0)} + text(name));
}

TEST(RockRidge, NamesFromNmAndAContinuationLoopIsCapped) {
  Image img(24);
  img.volume(18, kBlock);
  // "B" continues its name in an area at LBA 20 whose CE points back at that same area.
  const Bytes area = rr_nm("-x") + rr_ce(20, 0, 35);
  ASSERT_EQ(area.size(), 35u);
  img.directory(18, kBlock, 18,
                {record(19, 2, 0, "A;1", rr_nm("long name.txt")),
                 record(19, 2, 0, "B;1", rr_nm("loopy") + rr_ce(20, 0, 35))},
                rr_sp());
  img.put(19 * kBlock, "hi");
  img.put(20 * kBlock, area);
  auto fs = open(img);
  EXPECT_EQ(fs->tree(), Tree::RockRidge);
  auto root = fs->list(kRootIno);
  ASSERT_EQ(root->entries.size(), 2u);
  EXPECT_EQ(root->entries[0].name, "long name.txt");
  EXPECT_EQ(root->entries[1].name, "loopy-x");  // the looping area is read once, not 32 times
  EXPECT_NE(root->entries[1].defect.find("loop"), std::string::npos);
  EXPECT_EQ(read_all(*fs, root->entries[0]), "hi");
}

// Rock Ridge PX with a file serial number (RRIP 1.12): mode, links, uid, gid, serial.
Bytes rr_px(uint32_t mode, uint32_t nlink, uint32_t serial) {
  Bytes p(40);
  both32(p, 0, mode);
  both32(p, 8, nlink);
  both32(p, 32, serial);
  return susp("PX", p);
}

TEST(RockRidge, AHardLinkResolvesInAFreshReaderWithoutAListing) {
  // Two names of serial 7 in two subfolders; a stage store keeps the number, and a later
  // process asks for it before listing anything.
  Image img(28);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18,
                {record(19, kBlock, 2, "A", rr_px(040755, 2, 1)),
                 record(20, kBlock, 2, "B", rr_px(040755, 2, 2))},
                rr_sp());
  img.directory(19, kBlock, 18, {record(21, 5, 0, "ONE;1", rr_px(0100644, 2, 7))});
  img.directory(20, kBlock, 18,
                {record(22, 3, 0, "OTHER;1", rr_px(0100644, 1, 8)),
                 record(21, 5, 0, "TWO;1", rr_px(0100644, 2, 7))});
  img.put(21 * kBlock, "hello");
  auto first = open(img);
  const Node two = first->lookup(first->lookup(kRootIno, "B").attr.ino, "TWO");
  EXPECT_EQ(two.attr.ino, IsoFs::kLinkTag | 7);
  EXPECT_EQ(two.attr.nlink, 2u);
  auto fresh = open(img);
  const Node n = fresh->stat(two.attr.ino);
  EXPECT_EQ(n.attr.ino, two.attr.ino);
  EXPECT_EQ(read_all(*fresh, n), "hello");
  // A number that no folder names is still unknown (and asking again does not rescan).
  EXPECT_THROW(fresh->stat(IsoFs::kLinkTag | 9), Error);
  EXPECT_THROW(fresh->stat(IsoFs::kLinkTag | 10), Error);
}

TEST(RockRidge, HostileNamesCannotEscape) {
  Image img(24);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18,
                {record(19, 2, 0, "A;1", rr_nm("..")), record(19, 2, 0, "B;1", rr_nm("../x/y"))},
                rr_sp());
  auto fs = open(img);
  for (const Node& n : fs->list(kRootIno)->entries) {
    EXPECT_NE(n.name, "..");
    EXPECT_EQ(n.name.find('/'), std::string::npos) << n.name;
  }
}

// An SL entry (RRIP 4.1.3.1): entry flags, then (component flags, text) pairs.
Bytes rr_sl(uint8_t flags, const std::vector<std::pair<uint8_t, std::string>>& components) {
  Bytes p{std::byte(flags)};
  for (const auto& [cflags, content] : components)
    p = p + Bytes{std::byte(cflags), std::byte(content.size())} +
        (content.empty() ? Bytes{} : text(content));
  return susp("SL", p);
}
constexpr uint8_t kSlContinues = 1, kSlRootComponent = 8;

TEST(RockRidge, ASymlinkTargetSpansSlEntriesAndContinuationAreas) {
  Image img(24);
  img.volume(18, kBlock);
  const std::string c200(200, 'c');
  // The record: "/", "a", and "bb" continued in the next entry; the entry continues.
  const Bytes first = rr_px(0120777, 1, 5) +
                      rr_sl(kSlContinues, {{kSlRootComponent, ""}, {0, "a"}, {1, "bb"}}) +
                      rr_ce(20, 100, 0);
  // LBA 20 offset 100: "bb" ends in "b", then a 200-byte component, and a second area.
  const Bytes area1 = rr_sl(kSlContinues, {{0, "b"}, {0, c200}}) +
                      rr_sl(kSlContinues, {{1, "dd"}}) + rr_ce(21, 0, 0);
  const Bytes area2 = rr_sl(0, {{0, "e"}, {0, "f"}});
  Bytes rec_su = first;
  both32(rec_su, rec_su.size() - 8, static_cast<uint32_t>(area1.size()));
  Bytes a1 = area1;
  both32(a1, a1.size() - 8, static_cast<uint32_t>(area2.size()));
  img.directory(18, kBlock, 18, {record(0, 0, 0, "L;1", rec_su)}, rr_sp());
  img.put(20 * kBlock + 100, a1);
  img.put(21 * kBlock, area2);
  auto fs = open(img);
  const Node n = fs->lookup(kRootIno, "L");
  EXPECT_EQ(n.attr.type, FileType::Symlink);
  const std::string want = "/a/bbb/" + c200 + "/dde/f";
  EXPECT_EQ(n.symlink, want);
  EXPECT_EQ(n.attr.size, want.size());
  EXPECT_EQ(n.defect, "");
}

// genisoimage 1.1.11 records a long target's SL entry (and the continuation area holding it)
// with its length modulo 256: the components are there, the length byte stops early, and
// what follows the stated length is the rest of the text. xorriso, isoinfo and Linux take
// the component that runs past the stated length and no more; so does discfs.
TEST(RockRidge, AnSlEntryWhoseLengthWrappedShowsWhatXorrisoShows) {
  Image img(24);
  img.volume(18, kBlock);
  Bytes area = rr_sl(0, {{0, "c1"}, {0, "c2"}, {0, "c3"}, {0, "c4"}});
  area[2] = std::byte(5 + 4 + 2);  // the stated length ends inside "c2"
  Bytes rec_su = rr_px(0120777, 1, 5) + rr_sl(kSlContinues, {{0, "c0"}}) +
                 rr_ce(20, 0, static_cast<uint32_t>(area.size()));
  img.directory(18, kBlock, 18, {record(0, 0, 0, "L;1", rec_su)}, rr_sp());
  img.put(20 * kBlock, area);
  auto fs = open(img);
  const Node n = fs->lookup(kRootIno, "L");
  EXPECT_EQ(n.attr.type, FileType::Symlink);
  EXPECT_EQ(n.symlink, "c0/c1/c2");
  EXPECT_EQ(n.attr.size, 8u);
  EXPECT_EQ(n.defect, "");
}

// A component whose text lies past the end of the whole area is not read; what came before
// it is shown, and the damage is named.
TEST(RockRidge, AnSlComponentPastItsAreaKeepsWhatCameBefore) {
  Image img(24);
  img.volume(18, kBlock);
  Bytes area = rr_sl(0, {{0, "c1"}, {0, "c2-is-long"}});
  area[2] = std::byte(5 + 4 + 2);
  area.resize(area.size() - 4);  // the area ends inside "c2-is-long"
  Bytes rec_su = rr_px(0120777, 1, 5) + rr_sl(kSlContinues, {{0, "c0"}}) +
                 rr_ce(20, 0, static_cast<uint32_t>(area.size()));
  img.directory(18, kBlock, 18, {record(0, 0, 0, "L;1", rec_su)}, rr_sp());
  img.put(20 * kBlock, area);
  auto fs = open(img);
  const Node n = fs->lookup(kRootIno, "L");
  EXPECT_EQ(n.attr.type, FileType::Symlink);
  EXPECT_EQ(n.symlink, "c0/c1");
  EXPECT_NE(n.defect.find("symlink component at byte 40969 (LBA 20) runs past"), std::string::npos)
      << n.defect;
}

TEST(Volume, NonImagesAreNamed) {
  auto describe = [](Bytes b) {
    try {
      read_volume_descriptors(*make_memory_source(std::move(b), "x"));
    } catch (const NotAnImage& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(describe({}).find("empty"), std::string::npos);
  Bytes gz(70000);
  gz[0] = std::byte(0x1f);
  gz[1] = std::byte(0x8b);
  EXPECT_NE(describe(gz).find("gzip"), std::string::npos);
  EXPECT_NE(describe(Bytes(100)).find("too small"), std::string::npos);
}

TEST(DirectoryCache, StaysWithinItsBudget) {
  DirectoryCache cache(64 * 1024);
  for (Ino i = 0; i < 1000; ++i) {
    auto d = std::make_shared<Directory>();
    d->entries.resize(20);
    for (size_t k = 0; k < d->entries.size(); ++k)
      d->entries[k].name = "some file name number " + std::to_string(k);
    d->finish();
    cache.put(kRootIno + 10 + i, d);
    EXPECT_LE(cache.bytes(), 64u * 1024 + d->bytes() + 256);
  }
  EXPECT_EQ(cache.get(kRootIno + 10), nullptr);    // evicted long ago
  EXPECT_NE(cache.get(kRootIno + 1009), nullptr);  // the newest is kept
}

}  // namespace
}  // namespace imagecore
