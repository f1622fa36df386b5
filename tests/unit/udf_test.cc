// The UDF reader on hand-built images: structure, attributes, damage, bounds and caps.
#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include "imagecore/iso9660/volume.h"
#include "imagecore/udf/udf_format.h"
#include "imagecore/udf/udf_fs.h"
#include "tests/unit/udf_builder.h"

namespace imagecore {
namespace {

using namespace testing_udf;

std::unique_ptr<UdfFs> open(Image& img) {
  return std::make_unique<UdfFs>(make_memory_source(img.bytes(), "test.udf"));
}

std::string read_all(const FileTree& fs, const Node& n) {
  std::string s(n.attr.size, '\0');
  const size_t got = fs.read(n, 0, std::as_writable_bytes(std::span(s.data(), s.size())));
  s.resize(got);
  return s;
}

TEST(Udf, RecognisesAndDescribesTheVolume) {
  Image img;
  img.dir(1, 1, {});
  auto src = make_memory_source(img.bytes(), "t");
  EXPECT_TRUE(has_udf(*src));
  const UdfInfo info = read_udf_info(*src);
  EXPECT_EQ(info.revision, "2.01");
  EXPECT_EQ(info.revision_bcd, 0x0201);
  EXPECT_EQ(info.block_size, 2048u);
  EXPECT_EQ(info.volume_id, "TESTVOL");
  EXPECT_EQ(info.volume_set_id, "TESTSET");
  EXPECT_EQ(info.logical_volume_id, "TESTLV");
  ASSERT_TRUE(info.recorded.has_value());
  EXPECT_EQ(info.recorded->sec, 1577934245);  // 2020-01-02 03:04:05 UTC
  EXPECT_EQ(info.partition_kinds, std::vector<std::string>{"physical"});
  EXPECT_EQ(open(img)->kind(), "UDF 2.01");

  auto zeros = make_memory_source(std::vector<std::byte>(1 << 20), "z");
  EXPECT_FALSE(has_udf(*zeros));
  EXPECT_THROW(read_udf_info(*zeros), NotAnImage);
}

// CS0 in 8-bit compression (id 8) is Latin-1: each byte is U+0000..U+00FF, as the kernel's
// udf driver and 7-Zip show it; names and volume identifiers alike. udfclient records a
// UTF-8 local name's bytes this way, so "caf\xc3\xa9" on disc shows as "caf\u00c3\u00a9".
TEST(Udf, EightBitNamesAreLatin1) {
  Image img;
  const uint32_t a = img.file("one"), b = img.file("two");
  img.dir(1, 1, {fid(u"na\u00efve", a), fid(u"caf\u00c3\u00a9", b)});
  ASSERT_EQ(cs0(u"na\u00efve")[0], std::byte(8));  // the builder wrote 8-bit CS0
  auto fs = open(img);
  EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "na\xc3\xafve")), "one");
  EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "caf\xc3\x83\xc2\xa9")), "two");

  Bytes field(32);
  dstring(field.data(), field.size(), "Vol\xe9\xff");
  EXPECT_EQ(udf::dstring(ByteView(field.data(), field.size())), "Vol\xc3\xa9\xc3\xbf");
}

TEST(Udf, OtherBlockSizesAndTheAnchorAtTheEnd) {
  for (uint32_t bs : {512u, 1024u, 4096u}) {
    Image img(400, bs);
    const uint32_t f = img.file("data");
    img.dir(1, 1, {fid(u"f", f)});
    auto fs = open(img);
    EXPECT_EQ(fs->info().block_size, bs);
    EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "f")), "data");
  }
  // Anchor at 256 destroyed: the copy in the last block is found.
  Image img;
  img.dir(1, 1, {});
  std::memcpy(&img.bytes()[size_t{399} * 2048], &img.bytes()[size_t{256} * 2048], 2048);
  put32(&img.bytes()[size_t{399} * 2048 + 12], 399);
  tag(&img.bytes()[size_t{399} * 2048], 2, 399, 512);
  img.bytes()[size_t{256} * 2048 + 4] ^= std::byte{1};
  EXPECT_NO_THROW(open(img));
}

TEST(Udf, ReserveSequenceStandsInForADamagedMainOne) {
  Image img;
  img.dir(1, 1, {});
  img.bytes()[size_t{34} * 2048 + 4] ^= std::byte{1};  // main LVD checksum
  auto fs = open(img);
  EXPECT_EQ(fs->info().logical_volume_id, "TESTLV");
}

TEST(Udf, NamesPermissionsOwnersAndTimes) {
  Image img;
  Fe owned;
  owned.uid = 1234;
  owned.gid = 5678;
  owned.mode = 0751;
  owned.icb_flags = 0x40 | 0x100;  // setuid, sticky
  const uint32_t a = img.file("hello", owned);
  Fe unset;
  unset.uid = 0xFFFFFFFF;
  unset.gid = 0xFFFFFFFF;
  unset.extended = true;
  const uint32_t b = img.file("x", unset);
  img.dir(1, 1,
          {fid(u"hello.txt", a), fid(u"\u00fcn\u00ef \u2713", b), fid(u"hid", b, 1),
           fid(u"gone", a, 4), fid(u"a/b", a)});
  auto fs = open(img);
  auto root = fs->list(kRootIno);
  ASSERT_EQ(root->entries.size(), 3u);  // neither the deleted FID nor the hidden one is shown
  const Node h = fs->lookup(kRootIno, "hello.txt");
  EXPECT_EQ(read_all(*fs, h), "hello");
  EXPECT_TRUE(h.attr.has_posix);
  EXPECT_TRUE(h.attr.has_owner);
  EXPECT_EQ(h.attr.perm, 05751u);
  EXPECT_EQ(h.attr.uid, 1234u);
  EXPECT_EQ(h.attr.gid, 5678u);
  EXPECT_EQ(h.attr.mtime.sec, 1577930645);  // 03:04:05.06 at UTC+1
  EXPECT_EQ(h.attr.mtime.nsec, 60000000u);
  EXPECT_EQ(h.attr.atime.sec, 1614834367);  // 2021-03-04 05:06:07
  EXPECT_EQ(h.attr.ctime.sec, 1651820889);  // 2022-05-06 07:08:09
  const Node u = fs->lookup(kRootIno, "\xc3\xbcn\xc3\xaf \xe2\x9c\x93");
  EXPECT_FALSE(u.attr.has_owner);
  EXPECT_EQ(u.attr.uid, 0u);  // -1 is not a user
  EXPECT_EQ(read_all(*fs, u), "x");
  EXPECT_THROW(fs->lookup(kRootIno, "hid"), Error);  // hidden, as the kernel hides it
  EXPECT_NO_THROW(fs->lookup(kRootIno, "a_b"));      // '/' cannot be in a name
  EXPECT_THROW(fs->lookup(kRootIno, "gone"), Error);
  EXPECT_EQ(fs->stat(kRootIno).attr.type, FileType::Directory);
  EXPECT_EQ(fs->stat(kRootIno).attr.nlink, 2u);
}

TEST(Udf, SymlinksDevicesAndHardLinks) {
  Image img;
  // Path components (4/14.16.1): parent, "a", "b"; and root, "etc".
  auto pc = [](uint8_t type, std::string_view name) {
    Bytes b{std::byte(type), std::byte(name.empty() ? 0 : name.size() + 1), std::byte(0),
            std::byte(0)};
    if (!name.empty()) {
      b.push_back(std::byte(8));
      for (char c : name)
        b.push_back(std::byte(c));
    }
    return b;
  };
  Fe link;
  link.type = 12;
  const Bytes rel = pc(3, "") + pc(5, "a") + pc(5, "b");
  const uint32_t l1 =
      img.embedded(std::string(reinterpret_cast<const char*>(rel.data()), rel.size()), link);
  const Bytes absolute = pc(2, "") + pc(5, "etc");
  const uint32_t l2 = img.embedded(
      std::string(reinterpret_cast<const char*>(absolute.data()), absolute.size()), link);
  Fe dev;
  dev.type = 6;
  dev.ea.resize(24 + 24);
  tag(dev.ea.data(), 262, 0, 24);
  put32(dev.ea.data() + 24, 12);  // device specification EA
  dev.ea[28] = std::byte(1);
  put32(dev.ea.data() + 32, 24);
  put32(dev.ea.data() + 40, 8);
  put32(dev.ea.data() + 44, 17);
  const uint32_t d = img.embedded("", dev);
  Fe fifo;
  fifo.type = 9;
  const uint32_t p = img.embedded("", fifo);
  Fe two;
  two.links = 2;
  const uint32_t h = img.file("shared", two);
  img.dir(1, 1,
          {fid(u"rel", l1), fid(u"abs", l2), fid(u"sda1", d), fid(u"pipe", p), fid(u"one", h),
           fid(u"two", h)});
  auto fs = open(img);
  const Node r = fs->lookup(kRootIno, "rel");
  EXPECT_EQ(r.attr.type, FileType::Symlink);
  EXPECT_EQ(r.symlink, "../a/b");
  EXPECT_EQ(fs->lookup(kRootIno, "abs").symlink, "/etc");
  const Node dn = fs->lookup(kRootIno, "sda1");
  EXPECT_EQ(dn.attr.type, FileType::BlockDevice);
  EXPECT_EQ(dn.attr.rdev, makedev(8, 17));
  EXPECT_EQ(fs->lookup(kRootIno, "pipe").attr.type, FileType::Fifo);
  const Node one = fs->lookup(kRootIno, "one");
  EXPECT_EQ(one.attr.ino, fs->lookup(kRootIno, "two").attr.ino);
  EXPECT_EQ(one.attr.nlink, 2u);
  // A fresh reader resolves every number without having listed anything.
  auto fresh = open(img);
  EXPECT_EQ(fresh->stat(one.attr.ino).attr.size, 6u);
  EXPECT_EQ(fresh->stat(r.attr.ino).symlink, "../a/b");
  EXPECT_EQ(one.attr.ino & kViewMask, 0u);
  EXPECT_GE(one.attr.ino, kSyntheticInoEnd);
  EXPECT_THROW(fresh->stat(12345), Error);
}

TEST(Udf, EmbeddedSparseAndLongFiles) {
  Image img;
  const uint32_t e = img.embedded("inline bytes");
  // Recorded 2048, not allocated 4096, recorded 10 bytes.
  const uint32_t s = img.alloc();
  const uint32_t d1 = img.alloc(), d2 = img.alloc();
  std::memset(img.block(d1), 'a', 2048);
  std::memset(img.block(d2), 'b', 10);
  Fe sparse;
  sparse.size = 2048 + 4096 + 10;
  sparse.ads = short_ad(2048, d1) + short_ad(4096, 0, 2) + short_ad(10, d2);
  img.fe(s, sparse);
  // A file of 5 GiB made of not-allocated extents (long_ad).
  const uint32_t big = img.alloc();
  Fe huge;
  huge.ad_type = 1;
  huge.size = 5ull << 30;
  for (int i = 0; i < 6; ++i)
    huge.ads = huge.ads + long_ad(0x3FFFF800u | 1u << 30, 0);
  img.fe(big, huge);
  img.dir(1, 1, {fid(u"e", e), fid(u"s", s), fid(u"big", big)});
  auto fs = open(img);
  const Node en = fs->lookup(kRootIno, "e");
  EXPECT_TRUE(en.has_inline_data);
  EXPECT_EQ(read_all(*fs, en), "inline bytes");
  const std::string sd = read_all(*fs, fs->lookup(kRootIno, "s"));
  EXPECT_EQ(sd, std::string(2048, 'a') + std::string(4096, '\0') + std::string(10, 'b'));
  const Node bn = fs->lookup(kRootIno, "big");
  EXPECT_EQ(bn.attr.size, 5ull << 30);
  std::byte buf[4];
  EXPECT_EQ(fs->read(bn, (5ull << 30) - 4, buf), 4u);
  EXPECT_EQ(buf[0], std::byte{0});
}

TEST(Udf, DirectoryLoopsAreHidden) {
  Image img;
  const uint32_t sub = img.alloc();
  img.dir(sub, 1, {fid(u"up", 1, 2), fid(u"self", sub, 2), fid(u"ok", img.file("k"))});
  img.dir(1, 1, {fid(u"sub", sub, 2), fid(u"me", 1, 2)});
  auto fs = open(img);
  auto root = fs->list(kRootIno);
  ASSERT_EQ(root->entries.size(), 1u);
  const Node s = fs->lookup(kRootIno, "sub");
  auto d = fs->list(s.attr.ino);
  ASSERT_EQ(d->entries.size(), 1u);
  EXPECT_EQ(d->entries[0].name, "ok");
  EXPECT_EQ(d->parent, kRootIno);
}

TEST(Udf, DamagedEntriesAreDefectsAndTheRestReads) {
  Image img;
  const uint32_t good = img.file("good");
  const uint32_t bad_sum = img.file("x");
  img.block(bad_sum)[4] ^= std::byte{1};
  const uint32_t bad_crc = img.file("y");
  img.block(bad_crc)[100] ^= std::byte{1};
  // Two indirect entries pointing at each other.
  const uint32_t i1 = img.alloc(), i2 = img.alloc();
  img.indirect(i1, i2);
  img.indirect(i2, i1);
  // Data past the end of the image.
  const uint32_t far = img.alloc();
  Fe f;
  f.size = 100;
  f.ads = short_ad(100, 100000);
  img.fe(far, f);
  // Allocation extent chain that points at itself.
  const uint32_t chain = img.alloc(), aed = img.alloc();
  Fe c;
  c.size = 4096;
  c.ads = short_ad(2048 | 3u << 30, aed);
  img.fe(chain, c);
  const Bytes next = short_ad(2048 | 3u << 30, aed);
  put32(img.block(aed) + 20, 8);
  std::memcpy(img.block(aed) + 24, next.data(), 8);
  tag(img.block(aed), 258, aed, 32);
  img.dir(1, 1,
          {fid(u"good", good), fid(u"sum", bad_sum), fid(u"crc", bad_crc), fid(u"loop", i1),
           fid(u"far", far), fid(u"chain", chain)});
  auto fs = open(img);
  EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "good")), "good");
  for (const char* name : {"sum", "crc", "loop", "far", "chain"}) {
    const Node n = fs->lookup(kRootIno, name);
    EXPECT_NE(n.defect.find(std::string("'") + name + "'"), std::string::npos) << n.defect;
    std::byte buf[8];
    EXPECT_THROW(fs->read(n, 0, buf), FormatError) << name;
    EXPECT_NO_THROW(fs->stat(n.attr.ino)) << name;
  }
  EXPECT_NE(fs->lookup(kRootIno, "sum").defect.find("checksum"), std::string::npos);
  EXPECT_NE(fs->lookup(kRootIno, "crc").defect.find("CRC"), std::string::npos);
}

TEST(Udf, DamagedDirectoryThrowsNamingIt) {
  Image img;
  const uint32_t sub = img.alloc();
  img.dir(sub, 1, {fid(u"f", img.file("z"))});
  img.dir(1, 1, {fid(u"broken", sub, 2), fid(u"fine", img.file("fine"))});
  // Damage the FID of "f": its data block follows the parent FID.
  std::byte* fids = img.block(sub + 3);
  fids[40 + 4] ^= std::byte{1};
  auto fs = open(img);
  const Node b = fs->lookup(kRootIno, "broken");
  try {
    fs->list(b.attr.ino);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'broken'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "fine")), "fine");
}

TEST(Udf, TruncatedImage) {
  Image img;
  const uint32_t f = img.file("end of the image");
  const uint32_t g = img.alloc();
  img.dir(1, 1, {fid(u"f", f), fid(u"g", g)});
  const uint32_t g_data = img.alloc();  // the last block in use
  Fe gf;
  gf.size = 2;
  gf.ads = short_ad(2, g_data);
  img.fe(g, gf);
  // Cut the image inside the data of "g"; the end anchors are gone, the one at 256 is not.
  std::vector<std::byte> cut = img.bytes();
  cut.resize(size_t{kPartStart + g_data} * 2048 + 1);
  auto fs = std::make_unique<UdfFs>(make_memory_source(cut, "cut.udf"));
  EXPECT_EQ(read_all(*fs, fs->lookup(kRootIno, "f")), "end of the image");
  EXPECT_FALSE(fs->lookup(kRootIno, "g").defect.empty());
  cut.resize(200 * 2048);  // before the anchor
  EXPECT_THROW(UdfFs(make_memory_source(cut, "cut.udf")), NotAnImage);
}

}  // namespace
}  // namespace imagecore
