// AAIP (libisofs extended attributes and ACLs) and the libisofs MD5 array, on hand-made
// entries: the examples of libisofs doc/susp_aaip_2_0.txt, the kernel's ACL xattr layout
// (linux/posix_acl_xattr.h) written out by hand, and hostile input.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>

#include "imagecore/iso9660/aaip.h"
#include "imagecore/iso9660/iso_fs.h"
#include "tests/unit/iso_builder.h"

namespace imagecore {
namespace {

using namespace testing_iso;

Bytes bytes(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v)
    b.push_back(std::byte(x));
  return b;
}
// One AL entry: flags (CONTINUE) and a component area.
Bytes al(uint8_t flags, const Bytes& area) {
  return susp("AL", Bytes{std::byte(flags)} + area);
}
// One component record.
Bytes comp(uint8_t flags, std::string_view s) {
  return Bytes{std::byte(flags), std::byte(s.size())} + text(s);
}
std::string str(const Bytes& b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
ByteView view(const Bytes& b) {
  return ByteView(b.data(), b.size());
}
std::vector<AaipPair> decode(const std::vector<Bytes>& entries) {
  AaipCollector c;
  for (const Bytes& e : entries)
    c.add_entry(view(e));
  return c.pairs();
}
std::string md5(std::string_view s) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), d, &n, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<const char*>(d), n);
}
std::string hex(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    out += "0123456789abcdef"[c >> 4];
    out += "0123456789abcdef"[c & 15];
  }
  return out;
}
// linux/posix_acl_xattr.h: le32 version 2, then le16 tag, le16 perm, le32 id per entry.
std::string linux_acl(std::initializer_list<std::array<uint32_t, 3>> entries) {
  std::string s("\x02\x00\x00\x00", 4);
  for (const auto& [tag, perm, id] : entries) {
    s += static_cast<char>(tag & 0xff);
    s += static_cast<char>(tag >> 8);
    s += static_cast<char>(perm);
    s += '\0';
    for (int i = 0; i < 4; ++i)
      s += static_cast<char>((id >> (8 * i)) & 0xff);
  }
  return s;
}
constexpr uint32_t kNoId = 0xffffffffu;

TEST(Aaip, TheSpecExampleSplitsARecordAcrossTwoEntries) {
  // susp_aaip_2_0.txt: "name"="long...content" and "one"="more", the value's first record
  // cut after 238 of its 255 bytes; a 255-byte value record plus "content" in a second one.
  std::string value(255, 'v');
  value.replace(0, 4, "long");
  const Bytes whole =
      comp(0, "name") + comp(1, value) + comp(0, "content") + comp(0, "one") + comp(0, "more");
  const size_t first = 250;  // a full AL entry carries 250 bytes of component area
  const Bytes a(whole.begin(), whole.begin() + first), b(whole.begin() + first, whole.end());
  auto pairs = decode({al(1, a), al(0, b)});
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].name, "name");
  EXPECT_EQ(pairs[0].value, value + "content");
  EXPECT_EQ(pairs[1].name, "one");
  EXPECT_EQ(pairs[1].value, "more");
}

TEST(Aaip, NamespaceShortFormsAndWhatLinuxIsShown) {
  auto pairs = decode({al(0, comp(0,
                                  "\x03"
                                  "abc") +
                                 comp(0, "1") +                         // user.abc
                                 comp(0, "user.long") + comp(0, "2") +  // spelled out
                                 comp(0,
                                      "\x05"
                                      "t") +
                                 comp(0, "3") +  // trusted.t
                                 comp(0,
                                      "\x06"
                                      "s") +
                                 comp(0, "4") +  // security.s
                                 comp(0,
                                      "\x04"
                                      "di") +
                                 comp(0, "5") +  // isofs.di: hidden
                                 comp(0,
                                      "\x01\x03"
                                      "x") +
                                 comp(0, "6") +  // "\3x": no namespace
                                 comp(0,
                                      "\x07"
                                      "r") +
                                 comp(0, "7") +                          // reserved: skipped
                                 comp(0, "plain") + comp(0, "8") +       // no namespace
                                 comp(0, "user.abc") + comp(0, "9"))});  // duplicate
  ASSERT_EQ(pairs.size(), 8u);
  EXPECT_EQ(pairs[0].name, "user.abc");
  EXPECT_EQ(pairs[2].name, "trusted.t");
  EXPECT_EQ(pairs[4].name, "isofs.di");
  EXPECT_EQ(pairs[5].name, "\x03x");
  auto shown = aaip_to_linux(pairs, 0100644, false).xattrs;
  ASSERT_EQ(shown.size(), 4u);
  EXPECT_EQ(shown[0].name, "user.abc");
  EXPECT_EQ(shown[0].value, "1");
  EXPECT_EQ(shown[1].name, "user.long");
  EXPECT_EQ(shown[2].name, "trusted.t");
  EXPECT_EQ(shown[3].name, "security.s");
}

TEST(Aaip, TheSpecAclExampleBecomesTheKernelLayout) {
  // u::rw-,u:lisa:rw-,g::r--,g:toolies:rw-,m::r--,o::r-- with lisa 123, toolies 65534.
  const Bytes acl = bytes({0x16, 0xAE, 1, 123, 0x34, 0xCE, 2, 255, 254, 0x54, 0x64});
  LinuxAcls out = aaip_acl_to_linux(view(acl), 0100664, false);
  EXPECT_EQ(out.access, linux_acl({{0x01, 6, kNoId},
                                   {0x02, 6, 123},
                                   {0x04, 4, kNoId},
                                   {0x08, 6, 65534},
                                   {0x10, 4, kNoId},
                                   {0x20, 4, kNoId}}));
  EXPECT_TRUE(out.def.empty());
}

TEST(Aaip, TheSpecDefaultAclExampleOnADirectory) {
  // u::rwx,g::r-x,o::r-x, du::rwx,dg::r-x,dm::rwx,do::r-x,du:lisa:rwx (0x81 switch mark).
  // The spec prints du:lisa as 0xA7, without the QUALIFIER bit its "1, 123" needs; libisofs
  // writes 0xAF.
  const Bytes acl = bytes({0x17, 0x35, 0x65, 0x81, 0x17, 0x35, 0x57, 0x65, 0xAF, 1, 123});
  LinuxAcls dir = aaip_acl_to_linux(view(acl), 040755, true);
  EXPECT_TRUE(dir.access.empty());  // says no more than the mode
  EXPECT_EQ(dir.def, linux_acl({{0x01, 7, kNoId},
                                {0x02, 7, 123},
                                {0x04, 5, kNoId},
                                {0x10, 7, kNoId},
                                {0x20, 5, kNoId}}));
  EXPECT_TRUE(aaip_acl_to_linux(view(acl), 0100755, false).def.empty());  // files have none
}

TEST(Aaip, MissingObjectEntriesComeFromTheMode) {
  // Only u:123:rw- recorded: owner, group, other and mask follow mode 0640.
  LinuxAcls out = aaip_acl_to_linux(view(bytes({0xAE, 1, 123})), 0100640, false);
  EXPECT_EQ(out.access, linux_acl({{0x01, 6, kNoId},
                                   {0x02, 6, 123},
                                   {0x04, 4, kNoId},
                                   {0x10, 4, kNoId},
                                   {0x20, 0, kNoId}}));
}

TEST(Aaip, TheAaipAclWinsOverRawPosixAclAttributes) {
  std::vector<AaipPair> pairs{{"system.posix_acl_access", "raw"},
                              {"", str(bytes({0x16, 0xAE, 1, 123, 0x34, 0x54, 0x64}))},
                              {"user.a", "b"}};
  auto shown = aaip_to_linux(pairs, 0100644, false).xattrs;
  ASSERT_EQ(shown.size(), 2u);
  EXPECT_EQ(shown[0].name, "system.posix_acl_access");
  EXPECT_NE(shown[0].value, "raw");
  // Without an AAIP ACL the raw value is shown as recorded.
  auto raw = aaip_to_linux({pairs[0]}, 0100644, false).xattrs;
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0].value, "raw");
}

TEST(Aaip, ChecksumAreaAndIndexValues) {
  // As xorriso 1.5.4 records them: START 32, END 60, COUNT 4, SIZE 16, "MD5".
  const Bytes ca = bytes({4, 0, 0, 0, 32, 4, 0, 0, 0, 60, 4, 0, 0, 0, 4, 1, 16, 'M', 'D', '5'});
  auto area = parse_isofs_ca(str(ca));
  ASSERT_TRUE(area);
  EXPECT_EQ(area->start_lba, 32u);
  EXPECT_EQ(area->end_lba, 60u);
  EXPECT_EQ(area->count, 4u);
  EXPECT_FALSE(parse_isofs_ca(str(ca).substr(0, 9)));                        // cut short
  EXPECT_FALSE(parse_isofs_ca(str(bytes({9, 0, 0, 0, 0, 0, 0, 0, 0, 0}))));  // 9-byte number
  Bytes sha = ca;
  sha[16] = std::byte(32);
  EXPECT_FALSE(parse_isofs_ca(str(sha)));
  EXPECT_EQ(parse_isofs_cx(str(bytes({0, 0, 1, 2}))), 258u);
  EXPECT_FALSE(parse_isofs_cx(""));
  EXPECT_FALSE(parse_isofs_cx("12345"));
}

TEST(Aaip, HostileEntriesDoNotCrash) {
  // A component record claiming more bytes than follow; a name without value.
  auto pairs = decode({al(0, comp(0, "user.ok") + comp(0, "v") + bytes({0, 200, 'x'}))});
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].value, "v");
  EXPECT_TRUE(decode({al(0, comp(0, "user.lonely"))}).empty());
  // An entry shorter than its header.
  AaipCollector c;
  EXPECT_THROW(c.add_entry(view(bytes({'A', 'L', 4, 1}))), FormatError);
  // More AL bytes than the cap.
  AaipCollector big;
  const Bytes full = al(1, Bytes(250, std::byte(1)));
  EXPECT_THROW(for (size_t i = 0; i <= kMaxAaipBytes / 250; ++i) big.add_entry(view(full)),
               FormatError);
  // ACLs: a qualifier running off the end, an endless qualifier chain, an unknown version.
  EXPECT_TRUE(aaip_acl_to_linux(view(bytes({0xAE, 5, 1})), 0644, false).access.empty());
  Bytes chain{std::byte(0xAE)};
  for (int i = 0; i < 100; ++i)
    chain = chain + Bytes{std::byte(0x80 | 127)} + Bytes(127, std::byte(1));
  EXPECT_TRUE(aaip_acl_to_linux(view(chain), 0644, false).access.empty());
  EXPECT_TRUE(aaip_acl_to_linux(view(bytes({0xAE, 1, 1, 0xF0})), 0644, false).access.empty());
  // A user id of five bytes is not an id: the entry is left out.
  LinuxAcls five = aaip_acl_to_linux(view(bytes({0xAE, 5, 1, 2, 3, 4, 5, 0x16})), 0600, false);
  EXPECT_TRUE(five.access.empty());
}

// ---------------------------------------------------------------------------------------
// Through IsoFs, on a hand-built image.

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
Bytes er_aaip() {
  return susp("ER", bytes({9, 0, 0, 1}) + text("AAIP_0200"));
}
Bytes cx(uint8_t index) {
  return comp(0,
              "\x04"
              "cx") +
         Bytes{std::byte(0), std::byte(4), std::byte(0),
               std::byte(0), std::byte(0), std::byte(index)};
}

// LBA 18 root, 19 "abc", 20 "xyz", 21 SUB, 22 continuation areas, 23 the MD5 array.
Image aaip_image(bool good_array) {
  Image img(26);
  img.volume(18, kBlock);
  // Root: ER and "isofs.ca" (array at LBA 23, 4 entries) in a continuation area.
  const Bytes root_area =
      er_aaip() + al(0, comp(0,
                             "\x04"
                             "ca") +
                            comp(0, str(bytes({1, 0, 1, 23, 1, 4, 1, 16, 'M', 'D', '5'}))));
  // G: a 600-byte value over three AL entries in a continuation area.
  std::string long_value(600, '\0');
  for (size_t i = 0; i < long_value.size(); ++i)
    long_value[i] = static_cast<char>(i * 7);
  const Bytes stream = comp(0,
                            "\x03"
                            "long") +
                       comp(1, long_value.substr(0, 255)) + comp(1, long_value.substr(255, 255)) +
                       comp(0, long_value.substr(510)) + cx(2);
  Bytes g_area;
  for (size_t at = 0; at < stream.size(); at += 250) {
    const size_t n = std::min<size_t>(250, stream.size() - at);
    g_area = g_area + al(at + n < stream.size() ? 1 : 0,
                         Bytes(stream.begin() + at, stream.begin() + at + n));
  }
  img.put(22 * kBlock, root_area);
  img.put(22 * kBlock + 1024, g_area);
  img.directory(
      18, kBlock, 18,
      {record(19, 3, 0, "F;1",
              al(0, comp(0,
                         "\x03"
                         "x") +
                        comp(0, "y") + cx(1))),
       record(20, 3, 0, "G;1", rr_ce(22, 1024, static_cast<uint32_t>(g_area.size()))),
       record(21, kBlock, 2, "SUB",
              al(0, comp(0,
                         "\x03"
                         "d") +
                        comp(0, "dirval") + bytes({0, 0}) + bytes({0, 4, 0x81, 0x17, 0x35, 0x65}))),
       record(19, 3, 0, "H;1")},
      rr_sp() + rr_ce(22, 0, static_cast<uint32_t>(root_area.size())));
  img.directory(21, kBlock, 18, {});
  img.put(19 * kBlock, "abc");
  img.put(20 * kBlock, "xyz");
  // The array: session, F, G, and the MD5 of those three.
  const std::string entries = std::string(16, 's') + md5("abc") + md5("xyz");
  img.put(23 * kBlock, entries + (good_array ? md5(entries) : std::string(16, 'x')));
  return img;
}

std::unique_ptr<IsoFs> open(Image& img, Tree tree = Tree::Auto) {
  return std::make_unique<IsoFs>(make_memory_source(img.bytes(), "test.iso"), Options{tree});
}

TEST(IsoXattrs, FilesDirectoriesAndMd5s) {
  Image img = aaip_image(true);
  auto fs = open(img);
  ASSERT_EQ(fs->tree(), Tree::RockRidge);
  EXPECT_TRUE(fs->has_xattrs());

  auto f = fs->xattrs(fs->lookup(kRootIno, "F").attr.ino);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].name, "user.x");
  EXPECT_EQ(f[0].value, "y");
  EXPECT_EQ(f[1].name, "user.discfs.md5");
  EXPECT_EQ(f[1].value, hex(md5("abc")));

  auto g = fs->xattrs(fs->lookup(kRootIno, "G").attr.ino);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].name, "user.long");
  ASSERT_EQ(g[0].value.size(), 600u);
  EXPECT_EQ(static_cast<uint8_t>(g[0].value[599]), static_cast<uint8_t>(599 * 7));
  EXPECT_EQ(g[1].value, "d16fb36f0911f878998c136191af705e");  // `printf xyz | md5sum`

  // A directory's entries sit in its parent's record; its ACL is a default ACL.
  auto sub = fs->xattrs(fs->lookup(kRootIno, "SUB").attr.ino);
  ASSERT_EQ(sub.size(), 2u);
  EXPECT_EQ(sub[0].name, "user.d");
  EXPECT_EQ(sub[0].value, "dirval");
  EXPECT_EQ(sub[1].name, "system.posix_acl_default");
  EXPECT_EQ(sub[1].value, linux_acl({{0x01, 7, kNoId}, {0x04, 5, kNoId}, {0x20, 5, kNoId}}));

  EXPECT_TRUE(fs->xattrs(fs->lookup(kRootIno, "H").attr.ino).empty());
  EXPECT_TRUE(fs->xattrs(kRootIno).empty());  // isofs.ca is libisofs' own
  // Asked again: the same answer (from the cache).
  EXPECT_EQ(fs->xattrs(fs->lookup(kRootIno, "F").attr.ino).size(), 2u);
}

TEST(IsoXattrs, ADamagedArrayHidesOnlyTheMd5s) {
  Image img = aaip_image(false);
  auto fs = open(img);
  auto f = fs->xattrs(fs->lookup(kRootIno, "F").attr.ino);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].name, "user.x");
}

TEST(IsoXattrs, OtherTreesAndPlainImagesShowNone) {
  Image img = aaip_image(true);
  auto plain = open(img, Tree::Iso9660);
  EXPECT_FALSE(plain->has_xattrs());
  EXPECT_TRUE(plain->xattrs(plain->list(kRootIno)->entries.at(0).attr.ino).empty());

  Image bare(24);
  bare.volume(18, kBlock);
  bare.directory(18, kBlock, 18, {record(19, 2, 0, "A;1")}, rr_sp());
  EXPECT_FALSE(open(bare)->has_xattrs());
}

TEST(IsoXattrs, AContinuationLoopInTheAttributesIsCapped) {
  // F's entries continue in an area at LBA 20 that points back at itself.
  const uint32_t n = static_cast<uint32_t>((al(1, comp(1, "user.")) + rr_ce(20, 0, 0)).size());
  Image img(24);
  img.volume(18, kBlock);
  img.put(20 * kBlock, al(1, comp(1, "user.")) + rr_ce(20, 0, n));
  img.directory(18, kBlock, 18,
                {record(19, 3, 0, "F;1",
                        al(1, comp(0,
                                   "\x03"
                                   "a")) +
                            rr_ce(20, 0, n))},
                rr_sp() + er_aaip());
  auto fs = open(img);
  ASSERT_TRUE(fs->has_xattrs());
  EXPECT_TRUE(fs->xattrs(fs->lookup(kRootIno, "F").attr.ino).empty());
}

}  // namespace
}  // namespace imagecore
