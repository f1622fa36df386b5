// El Torito catalogs on hand-built images: entries, names, sizes (xorriso's rules) and damage.
#include <gtest/gtest.h>

#include "imagecore/iso9660/iso_fs.h"
#include "imagecore/media/eltorito.h"
#include "tests/unit/iso_builder.h"

namespace imagecore {
namespace {

using namespace testing_iso;

void le16(Bytes& b, size_t at, uint16_t v) {
  b[at] = std::byte(v);
  b[at + 1] = std::byte(v >> 8);
}
void le32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b[at + i] = std::byte(v >> (8 * i));
}

void entry(Bytes& b, size_t at, uint8_t indicator, uint8_t media, uint16_t count, uint32_t lba) {
  b[at] = std::byte(indicator);
  b[at + 1] = std::byte(media);
  le16(b, at + 6, count);
  le32(b, at + 8, lba);
}

// LBA 16 PVD (volume of 64 blocks), 17 boot record, 18 terminator, 19 root directory,
// 20 catalog: BIOS no-emulation image at 21 (4 sectors) and a section for EFI at 30.
Image boot_image(bool good_checksum = true) {
  Image img(64);
  img.volume(19, kBlock);
  Bytes& b = img.bytes();
  const size_t br = 17 * kBlock;
  std::memset(b.data() + br, 0, kBlock);
  std::memcpy(b.data() + br + 1, "CD001", 5);
  b[br + 6] = std::byte(1);
  std::memcpy(b.data() + br + 7, "EL TORITO SPECIFICATION", 23);
  le32(b, br + 0x47, 20);
  const size_t t = 18 * kBlock;
  b[t] = std::byte(255);
  std::memcpy(b.data() + t + 1, "CD001", 5);
  img.directory(19, kBlock, 19, {});
  const size_t c = 20 * kBlock;
  b[c] = std::byte(1);
  b[c + 30] = std::byte(0x55);
  b[c + 31] = std::byte(0xAA);
  uint16_t sum = 0;
  for (size_t i = 0; i < 32; i += 2)
    sum = static_cast<uint16_t>(
        sum + (static_cast<unsigned>(b[c + i]) | static_cast<unsigned>(b[c + i + 1]) << 8));
  le16(b, c + 28, static_cast<uint16_t>(-sum + (good_checksum ? 0 : 1)));
  entry(b, c + 32, 0x88, 0, 4, 21);
  b[c + 64] = std::byte(0x91);
  b[c + 65] = std::byte(0xEF);
  le16(b, c + 66, 1);
  entry(b, c + 96, 0x88, 0, 0, 30);
  return img;
}

std::optional<BootCatalog> catalog_of(Image& img, const FileTree* tree = nullptr) {
  auto src = make_memory_source(img.bytes(), "boot.iso");
  return read_boot_catalog(*src, 0, tree);
}

TEST(ElTorito, ReadsEntriesInCatalogOrder) {
  Image img = boot_image();
  auto cat = catalog_of(img);
  ASSERT_TRUE(cat);
  EXPECT_EQ(cat->catalog_lba, 20u);
  EXPECT_TRUE(cat->note.empty()) << cat->note;
  ASSERT_EQ(cat->entries.size(), 2u);
  const BootEntry& a = cat->entries[0];
  EXPECT_EQ(a.number, 1u);
  EXPECT_EQ(a.platform, "bios");
  EXPECT_EQ(a.emulation, "noemul");
  EXPECT_TRUE(a.bootable);
  EXPECT_EQ(a.sector_count, 4u);
  EXPECT_EQ(a.load_lba, 21u);
  EXPECT_EQ(a.file_name, "1-bios-noemul.img");
  const BootEntry& e = cat->entries[1];
  EXPECT_EQ(e.platform_id, 0xEF);
  EXPECT_EQ(e.file_name, "2-efi-noemul.img");
}

TEST(ElTorito, HiddenImagesRunToTheNextClaimedBlock) {
  // libisofs' estimate for images outside any file: up to the next boot image (30), and the
  // last one up to the end of the volume (64).
  Image img = boot_image();
  auto cat = catalog_of(img);
  ASSERT_TRUE(cat);
  EXPECT_EQ(cat->entries[0].size, 9u * kBlock);
  EXPECT_EQ(cat->entries[1].size, 34u * kBlock);
  EXPECT_TRUE(cat->entries[0].tree_path.empty());
}

TEST(ElTorito, ImageInATreeFileTakesTheFileSize) {
  Image img = boot_image();
  img.directory(19, kBlock, 19,
                {record(21, 5000, 0, "ISOLINUX.BIN;1"), record(40, 100, 0, "OTHER.DAT;1")});
  auto src = std::shared_ptr<const Source>(make_memory_source(img.bytes(), "boot.iso"));
  IsoFs fs(src, Options{});
  auto cat = read_boot_catalog(*src, 0, &fs);
  ASSERT_TRUE(cat);
  EXPECT_EQ(cat->entries[0].tree_path, "/ISOLINUX.BIN");
  EXPECT_EQ(cat->entries[0].size, 5000u);  // the file, byte for byte
  // The EFI image at 30 now ends where OTHER.DAT's data starts.
  EXPECT_EQ(cat->entries[1].size, 10u * kBlock);
}

TEST(ElTorito, FloppyEmulationIsNamedByItsSize) {
  Image img = boot_image();
  Bytes& b = img.bytes();
  entry(b, 20 * kBlock + 32, 0x88, 2, 1, 21);
  b.resize(b.size() + 1474560);  // room for the floppy behind the volume
  auto cat = catalog_of(img);
  ASSERT_TRUE(cat);
  EXPECT_EQ(cat->entries[0].emulation, "fd1.44m");
  EXPECT_EQ(cat->entries[0].file_name, "1-bios-fd1.44m.img");
}

TEST(ElTorito, BadChecksumIsANote) {
  Image img = boot_image(false);
  auto cat = catalog_of(img);
  ASSERT_TRUE(cat);
  EXPECT_NE(cat->note.find("checksum"), std::string::npos);
  EXPECT_EQ(cat->entries.size(), 2u);
}

TEST(ElTorito, EntriesPastTheCatalogEndAreANote) {
  Image img = boot_image();
  Bytes& b = img.bytes();
  le16(b, 20 * kBlock + 66, 60000);  // a section claiming 60000 entries
  auto cat = catalog_of(img);
  ASSERT_TRUE(cat);
  EXPECT_FALSE(cat->note.empty());
  EXPECT_LE(cat->entries.size(), kMaxBootEntries);
}

TEST(ElTorito, CatalogPastTheEndIsANote) {
  Image img = boot_image();
  le32(img.bytes(), 17 * kBlock + 0x47, 1000000);
  auto cat = catalog_of(img);
  ASSERT_TRUE(cat);
  EXPECT_TRUE(cat->entries.empty());
  EXPECT_FALSE(cat->note.empty());
}

TEST(ElTorito, BootImagePastTheEndIsClipped) {
  Image img = boot_image();
  entry(img.bytes(), 20 * kBlock + 96, 0x88, 0, 0, 5000000);
  auto cat = catalog_of(img);
  ASSERT_TRUE(cat);
  EXPECT_EQ(cat->entries[1].size, 0u);
  EXPECT_FALSE(cat->note.empty());
}

TEST(ElTorito, NoBootRecordGivesNothing) {
  Image img(40);
  img.volume(18, kBlock);
  img.directory(18, kBlock, 18, {});
  EXPECT_FALSE(catalog_of(img));
}

}  // namespace
}  // namespace imagecore
