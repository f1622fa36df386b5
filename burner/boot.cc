// Replaying the boot setup of the loaded session, after xorriso's `-boot_image any replay`:
// it turns the loaded El Torito catalog and system area into mkisofs-style settings
// (-report_el_torito as_mkisofs) and applies them to the next session. Here the same
// settings go straight into libisofs:
//  - every catalog entry is re-created from the file it boots (followed through renames of
//    the tree rebuild) with its platform, emulation, load segment and size, bootable flag,
//    id string and selection criteria; boot-info-table and GRUB2 boot info patching are
//    switched on where libisofs finds them in the loaded image (el_torito_seems_*), so a
//    patched image is rewritten with values for the new session;
//  - the system area is given back with its loaded options, its MBR partition table, GPT
//    and APM zeroed (xorriso's zero_mbrpt,zero_gpt,zero_apm), so libisofs writes a new
//    protective / isohybrid MBR, GPT and APM for the new image size; GPT and APM entries
//    that pointed at boot images are asked for again (isohybrid-gpt-basdat / -hfsplus,
//    -efi-boot-part --efi-boot-image, isohybrid-apm-hfsplus), with the same partition
//    offset, geometry, ISO partition type and active flag.
// Appended partitions and boot images that are no file of the tree are not replayed; they
// are named in the one warning.
#include "burner/boot.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "imagecore/base/error.h"

namespace burner::detail {
namespace {

constexpr size_t kSystemAreaSize = 32768;
constexpr int kHideEverywhere = LIBISO_HIDE_ON_RR | LIBISO_HIDE_ON_JOLIET | LIBISO_HIDE_ON_1999;

// GPT partition type GUIDs as the libisofs report shows them (on-disk byte order).
constexpr const char* kGptBasicData = "a2a0d0ebe5b9334487c068b6b72699c7";
constexpr const char* kGptEfiSystem = "28732ac11ff8d211ba4b00a0c93ec93b";
constexpr const char* kGptHfsPlus = "005346480000aa11aa1100306543ecac";

std::string owned(char* s) {
  std::string out = s ? s : "";
  std::free(s);
  return out;
}

// One line of iso_image_report_system_area(): "Name padded : values".
struct ReportLine {
  std::string key;
  std::vector<std::string> fields;
};

std::vector<ReportLine> system_area_report(IsoImage* image) {
  std::vector<ReportLine> out;
  char** lines = nullptr;
  int count = 0;
  if (iso_image_report_system_area(image, &lines, &count, 0) != 1 || lines == nullptr)
    return out;
  for (int i = 0; i < count && i < 100000; ++i) {
    const std::string line = lines[i] ? lines[i] : "";
    // The name is padded to 19 characters and followed by ':' ("System area options: 0x102",
    // "MBR partition      :   1   0x80 ...").
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
      continue;
    ReportLine r;
    r.key = line.substr(0, colon);
    while (!r.key.empty() && r.key.back() == ' ')
      r.key.pop_back();
    std::istringstream ss(line.substr(colon + 1));
    std::string f;
    while (ss >> f)
      r.fields.push_back(f);
    out.push_back(std::move(r));
  }
  iso_image_report_system_area(image, &lines, &count, 1 << 15);
  return out;
}

std::optional<uint64_t> number(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (errno != 0 || end == nullptr || *end != 0)
    return std::nullopt;
  return static_cast<uint64_t>(v);
}

// True when `node` hangs below the root of `image` (the root is its own parent).
bool attached(IsoImage* image, IsoNode* node) {
  IsoNode* root = reinterpret_cast<IsoNode*>(iso_image_get_root(image));
  for (int depth = 0; node != nullptr && depth < 10000; ++depth) {
    if (node == root)
      return true;
    IsoNode* parent = reinterpret_cast<IsoNode*>(iso_node_get_parent(node));
    if (parent == node)
      return false;
    node = parent;
  }
  return false;
}

const char* platform_name(int id) {
  switch (id) {
    case 0:
      return "BIOS";
    case 0xef:
      return "UEFI";
    case 1:
      return "PPC";
    case 2:
      return "Mac";
    default:
      return "other";
  }
}

}  // namespace

struct BootReplay::State {
  struct Entry {
    IsoFile* node = nullptr;  // one reference held
    std::string path;         // in the loaded tree; empty when it was no file of the tree
    enum eltorito_boot_media_type type = ELTORITO_NO_EMUL;
    int platform = 0;
    int load_seg = 0;
    int load_size = 0;
    int full_load = 0;
    bool bootable = true;
    uint8_t id_string[28] = {};
    uint8_t selection_crit[20] = {};
    int isolinux = 0;  // el_torito_set_isolinux_options() bits to apply
    bool efi_boot_part = false;
    uint32_t lba = 0;
    uint64_t size = 0;
  };

  std::string target;
  std::vector<Entry> entries;
  IsoBoot* catalog = nullptr;  // one reference held
  std::string catalog_path;
  bool catalog_hidden = false;

  bool has_system_area = false;
  std::vector<char> system_area;
  int sa_options = 0;
  uint32_t part_offset = 0;
  int heads = 0, secs = 0;
  int iso_part_type = -1;
  bool force_bootable = false;
  std::vector<std::string> dropped;  // named in the one warning

  ~State() {
    for (Entry& e : entries) {
      if (e.node)
        iso_node_unref(reinterpret_cast<IsoNode*>(e.node));
    }
    if (catalog)
      iso_node_unref(reinterpret_cast<IsoNode*>(catalog));
  }

  void capture_el_torito(IsoImage* image) {
    int n = 0;
    ElToritoBootImage** boots = nullptr;
    IsoFile** nodes = nullptr;
    if (iso_image_get_all_boot_imgs(image, &n, &boots, &nodes, 0) != 1 || n <= 0) {
      std::free(boots);
      std::free(nodes);
      return;
    }
    for (int i = 0; i < n && i < 64; ++i) {
      ElToritoBootImage* b = boots[i];
      Entry e;
      e.node = nodes[i];
      if (e.node)
        iso_node_ref(reinterpret_cast<IsoNode*>(e.node));
      if (e.node && attached(image, reinterpret_cast<IsoNode*>(e.node)))
        e.path = owned(iso_tree_get_node_path(reinterpret_cast<IsoNode*>(e.node)));
      el_torito_get_boot_media_type(b, &e.type);
      e.platform = el_torito_get_boot_platform_id(b);
      e.load_seg = el_torito_get_load_seg(b);
      e.load_size = el_torito_get_load_size(b);
      e.full_load = el_torito_get_full_load(b);
      e.bootable = el_torito_get_bootable(b) == 1;
      el_torito_get_id_string(b, e.id_string);
      el_torito_get_selection_crit(b, e.selection_crit);
      const int loaded = el_torito_get_isolinux_options(b, 0);
      e.isolinux = loaded > 0 ? (loaded & ~0x2) : 0;  // bit1 (old isohybrid) is obsolete
      if (el_torito_seems_boot_info_table(b, 0) == 1)
        e.isolinux |= 1;
      if (el_torito_seems_boot_info_table(b, 1) == 1)
        e.isolinux |= 1 << 9;
      if (e.node) {
        iso_file_get_old_image_lba(e.node, &e.lba, 0);
        e.size = static_cast<uint64_t>(iso_file_get_size(e.node));
      }
      spdlog::debug("boot replay: El Torito image {} at LBA {} size {} options 0x{:x}", e.path,
                    e.lba, e.size, e.isolinux);
      entries.push_back(std::move(e));
    }
    std::free(boots);
    std::free(nodes);

    uint32_t lba = 0;
    char* content = nullptr;
    off_t size = 0;
    IsoBoot* cat = nullptr;
    if (iso_image_get_bootcat(image, &cat, &lba, &content, &size) == 1 && cat != nullptr) {
      catalog = cat;
      iso_node_ref(reinterpret_cast<IsoNode*>(cat));
      if (attached(image, reinterpret_cast<IsoNode*>(cat))) {
        catalog_path = owned(iso_tree_get_node_path(reinterpret_cast<IsoNode*>(cat)));
        catalog_hidden = (iso_node_get_hidden(reinterpret_cast<IsoNode*>(cat)) & kHideEverywhere) ==
                         kHideEverywhere;
      }
    }
    std::free(content);
    if (catalog_path.empty()) {
      catalog_path = "/boot.catalog";
      catalog_hidden = true;
    }
  }

  void capture_system_area(IsoImage* image) {
    system_area.assign(kSystemAreaSize, 0);
    int options = 0;
    if (iso_image_get_system_area(image, system_area.data(), &options, 0) != 1)
      return;
    if (std::all_of(system_area.begin(), system_area.end(), [](char c) { return c == 0; }))
      return;
    has_system_area = true;
    sa_options = options;
    spdlog::debug("boot replay: loaded system area options 0x{:x}", options);
    const auto report = system_area_report(image);
    uint64_t image_512 = 0;
    uint64_t apm_block = 512;
    std::map<int, std::pair<uint64_t, uint64_t>> gpt_extent;  // number -> start, size (512)
    std::map<int, std::string> gpt_type;
    std::map<int, std::string> gpt_name;
    for (const ReportLine& r : report) {
      const auto& f = r.fields;
      if (r.key == "System area options" && !f.empty()) {
        // libisofs leaves the loaded options 0; its report tells what the area is made of.
        sa_options = static_cast<int>(number(f[0]).value_or(0) & 0xffff);
      } else if (r.key == "ISO image size/512" && !f.empty()) {
        image_512 = number(f[0]).value_or(0);
      } else if (r.key == "Partition offset" && !f.empty()) {
        part_offset = static_cast<uint32_t>(number(f[0]).value_or(0));
      } else if (r.key == "MBR heads per cyl" && !f.empty()) {
        heads = static_cast<int>(number(f[0]).value_or(0));
      } else if (r.key == "MBR secs per head" && !f.empty()) {
        secs = static_cast<int>(number(f[0]).value_or(0));
      } else if (r.key == "MBR partition" && f.size() >= 5) {
        const uint64_t status = number(f[1]).value_or(0);
        const uint64_t type = number(f[2]).value_or(0);
        const uint64_t start = number(f[3]).value_or(0);
        const uint64_t blocks = number(f[4]).value_or(0);
        if (status & 0x80)
          force_bootable = true;
        if ((start == 0 || start == 1 || start == uint64_t{part_offset} * 4) && iso_part_type < 0 &&
            blocks > 0) {
          iso_part_type = static_cast<int>(type);
        }
        if (image_512 && start >= image_512 && blocks > 0)
          dropped.push_back("appended MBR partition " + f[0]);
      } else if (r.key == "GPT partname local" && f.size() >= 2) {
        gpt_name[static_cast<int>(number(f[0]).value_or(0))] = f[1];
      } else if (r.key == "GPT type GUID" && f.size() >= 2) {
        gpt_type[static_cast<int>(number(f[0]).value_or(0))] = f[1];
      } else if (r.key == "GPT start and size" && f.size() >= 3) {
        gpt_extent[static_cast<int>(number(f[0]).value_or(0))] = {number(f[1]).value_or(0),
                                                                  number(f[2]).value_or(0)};
      } else if (r.key == "APM block size" && !f.empty()) {
        apm_block = number(f[0]).value_or(512);
      } else if (r.key == "APM start and size" && f.size() >= 3) {
        const uint64_t start = number(f[1]).value_or(0) * apm_block / 512;
        const uint64_t size = number(f[2]).value_or(0) * apm_block / 512;
        if (Entry* e = entry_at(start, size))
          e->isolinux |= 1 << 8;
      }
    }
    for (const auto& [num, ext] : gpt_extent) {
      spdlog::debug("boot replay: GPT partition {} at {} size {} type {}", num, ext.first,
                    ext.second, gpt_type[num]);
      const std::string& type = gpt_type[num];
      Entry* e = entry_at(ext.first, ext.second);
      if (e == nullptr) {
        // The partition over the ISO image and the gaps around boot images are made anew by
        // libisofs; anything else (appended partitions) is not replayed.
        const bool iso_part = ext.first == 0 || ext.first == 1 || ext.first == part_offset * 4;
        if (!iso_part && gpt_name[num].rfind("Gap", 0) != 0)
          dropped.push_back("GPT partition " + std::to_string(num) + " at " +
                            std::to_string(ext.first) + " (appended partitions are not replayed)");
        continue;
      }
      if (type == kGptEfiSystem)
        e->efi_boot_part = true;
      else if (type == kGptHfsPlus)
        e->isolinux = (e->isolinux & ~0xfc) | (2 << 2);
      else if (type == kGptBasicData)
        e->isolinux = (e->isolinux & ~0xfc) | (1 << 2);
      else
        dropped.push_back("GPT partition " + std::to_string(num) + " of type " + type);
    }
  }

  // The GPT "EFI boot partition" of -efi-boot-part. libisofs 1.5.4 exposes only a newly added
  // El Torito EFI image as that partition ("--efi-boot-image"; xorriso's own replay fails on
  // an image kept from the loaded session), and given as an interval of the imported image
  // ("imported_iso:Sd-Ed::") it lays out a GPT entry overlapping the old sessions and the
  // write fails. So an old image is not exposed: the El Torito entry stays, the partition
  // goes, and the warning names it.
  static bool set_efi_boot_part(bool from_old_image, isoburn_imgen_opts* gen) {
    if (from_old_image)
      return false;
    isoburn_igopt_set_efi_bootp(gen, const_cast<char*>("--efi-boot-image"), 0);
    return true;
  }

  // The boot image that a partition of `start` and `size` 512-byte blocks points at.
  Entry* entry_at(uint64_t start, uint64_t size) {
    for (Entry& e : entries) {
      if (e.node == nullptr || e.size == 0)
        continue;
      const uint64_t e_start = uint64_t{e.lba} * 4;
      const uint64_t e_size = (e.size + 511) / 512;
      if (start == e_start && (size == e_size || size == (e_size + 3) / 4 * 4))
        return &e;
    }
    return nullptr;
  }

  // xorriso's zero_mbrpt, zero_gpt and zero_apm on the loaded system area.
  void zero_partition_tables() {
    char* d = system_area.data();
    std::memset(d + 446, 0, 64);
    if (std::memcmp(d + 512, "EFI PART", 8) == 0) {
      // Header block plus the entry array that follows it inside the system area.
      uint32_t entries_lba = 0, count = 0, entry_size = 0;
      std::memcpy(&entries_lba, d + 512 + 72, 4);  // little-endian hosts (x86, arm)
      std::memcpy(&count, d + 512 + 80, 4);
      std::memcpy(&entry_size, d + 512 + 84, 4);
      std::memset(d + 512, 0, 512);
      const uint64_t from = uint64_t{entries_lba} * 512;
      const uint64_t len = uint64_t{count} * entry_size;
      if (from >= 1024 && from < kSystemAreaSize) {
        std::memset(d + from, 0,
                    static_cast<size_t>(std::min<uint64_t>(len, kSystemAreaSize - from)));
      }
    }
    for (size_t block : {size_t{512}, size_t{2048}}) {
      if (d[0] == 'E' && d[1] == 'R' && d[block] == 'P' && d[block + 1] == 'M') {
        for (size_t off = block; off + block <= kSystemAreaSize; off += block) {
          if (d[off] != 'P' || d[off + 1] != 'M')
            break;
          std::memset(d + off, 0, block);
        }
      }
    }
  }
};

BootReplay::BootReplay(IsoImage* image, const std::string& target) : s_(std::make_unique<State>()) {
  s_->target = target;
  s_->capture_el_torito(image);
  s_->capture_system_area(image);
}

BootReplay::~BootReplay() = default;

bool BootReplay::empty() const {
  return s_->entries.empty() && !s_->has_system_area;
}

std::string BootReplay::apply(IsoImage* image, isoburn_imgen_opts* gen) {
  State& s = *s_;
  if (empty())
    return "";
  std::vector<std::string> dropped = s.dropped;
  int kept = 0;
  bool first_kept = false;
  std::optional<int> efi_bootp_entry;
  bool efi_from_old_image = false;
  const std::string efi_part_dropped =
      "the GPT EFI boot partition over the unchanged EFI boot image (El Torito entry kept)";

  if (!s.entries.empty()) {
    // The loaded catalog goes (with its node, wherever the rebuild put it) and is made anew.
    iso_image_remove_boot_image(image);
    std::string cat_path = s.catalog_path;
    bool cat_hidden = s.catalog_hidden;
    IsoNode* occupant = nullptr;
    if (iso_tree_path_to_node(image, cat_path.c_str(), &occupant) == 1 && occupant != nullptr) {
      dropped.push_back("the catalog's name " + cat_path + " (a staged file has it)");
      cat_path = "/boot.catalog.discfs";
      cat_hidden = true;
    }
    for (size_t i = 0; i < s.entries.size(); ++i) {
      State::Entry& e = s.entries[i];
      std::string path;
      if (e.node && attached(image, reinterpret_cast<IsoNode*>(e.node)))
        path = owned(iso_tree_get_node_path(reinterpret_cast<IsoNode*>(e.node)));
      else if (!e.path.empty())
        path = e.path;  // replaced by a staged file of the same name
      const std::string what = "boot image " + std::to_string(i + 1) + " (" +
                               platform_name(e.platform) + (e.path.empty() ? "" : ", " + e.path) +
                               ")";
      IsoNode* node = nullptr;
      if (path.empty() || iso_tree_path_to_node(image, path.c_str(), &node) != 1 ||
          node == nullptr || iso_node_get_type(node) != LIBISO_FILE) {
        dropped.push_back(what +
                          (e.path.empty() ? ": it is no file of the tree" : ": its file is gone"));
        continue;
      }
      ElToritoBootImage* boot = nullptr;
      int ret = 0;
      if (kept == 0) {
        ret = iso_image_set_boot_image(image, path.c_str(), e.type, cat_path.c_str(), &boot);
        if (ret == static_cast<int>(ISO_NODE_DOESNT_EXIST) ||
            ret == static_cast<int>(ISO_NODE_NAME_NOT_UNIQUE)) {
          // The catalog's directory is gone: keep the catalog, hidden, in the root.
          dropped.push_back("the catalog's name " + cat_path);
          cat_path = "/boot.catalog.discfs";
          cat_hidden = true;
          ret = iso_image_set_boot_image(image, path.c_str(), e.type, cat_path.c_str(), &boot);
        }
      } else {
        ret = iso_image_add_boot_image(image, path.c_str(), e.type, 0, &boot);
      }
      if (ret < 0 || boot == nullptr) {
        dropped.push_back(what + ": " + iso_error_to_msg(ret));
        drain_messages();
        continue;
      }
      if (i == 0)
        first_kept = true;
      // An isohybrid MBR is made by libisofs only for a first image marked isohybrid.
      if (kept == 0 && s.has_system_area && ((s.sa_options >> 2) & 0x3f) == 0 &&
          (s.sa_options & 0x2) && i == 0)
        e.isolinux |= 0x2;
      ++kept;
      el_torito_set_boot_platform_id(boot, static_cast<uint8_t>(e.platform));
      el_torito_set_load_seg(boot, static_cast<short>(e.load_seg));
      el_torito_set_load_size(boot, static_cast<short>(e.load_size));
      el_torito_set_full_load(boot, e.full_load);
      if (!e.bootable)
        el_torito_set_no_bootable(boot);
      el_torito_set_id_string(boot, e.id_string);
      el_torito_set_selection_crit(boot, e.selection_crit);
      el_torito_set_isolinux_options(boot, e.isolinux, 0);
      if (e.efi_boot_part && !efi_bootp_entry) {
        efi_bootp_entry = static_cast<int>(i);
        efi_from_old_image = node == reinterpret_cast<IsoNode*>(e.node);
      }
    }
    if (kept > 0 && cat_hidden)
      iso_image_set_boot_catalog_hidden(image, kHideEverywhere);
    if (s.catalog) {
      iso_node_unref(reinterpret_cast<IsoNode*>(s.catalog));
      s.catalog = nullptr;
    }
  }

  bool sa_kept = false;
  if (s.has_system_area) {
    int options = s.sa_options;
    const int type = (options >> 2) & 0x3f;
    if (type == 0 && (options & 0x3)) {
      // Protective or isohybrid MBR: libisofs writes the partition table for the new size.
      // Both patch the first boot image into the MBR, so it must still be the first one.
      if ((options & 0x2) && !first_kept) {
        dropped.push_back("the isohybrid MBR (its ISOLINUX boot image is gone)");
        options &= ~0x2;
      }
      if ((options & (1 << 14)) && !first_kept) {
        dropped.push_back("the GRUB2 MBR boot address (its boot image is gone)");
        options &= ~(1 << 14);
      }
      s.zero_partition_tables();  // xorriso's zero_mbrpt,zero_gpt,zero_apm
      if (s.force_bootable && !(options & (1 << 10)))
        options |= 1 << 15;
      // The isohybrid MBR's partition type is asked for again; libisofs chooses the type of
      // a protective label itself (0xcd with the GRUB2 MBR), as xorriso's replay leaves it.
      if ((options & 0x2) && s.iso_part_type >= 0 && s.iso_part_type <= 0xff)
        isoburn_igopt_set_iso_mbr_part_type(gen, s.iso_part_type);
    } else if (type == 0) {
      s.zero_partition_tables();  // plain MBR boot code: kept, partition entries remade
      if (s.force_bootable)
        options |= 1 << 15;
    } else {
      dropped.push_back("updating the system area of type " + std::to_string(type) +
                        " (kept as it was)");
      options = 0;
    }
    // libisoburn 1.5.4 declares isoburn_igopt_set_part_offset() but does not export it, so
    // only libisofs' defaults (offset 0, 64 heads, 32 sectors) can be had.
    if ((options & 0x3) &&
        (s.part_offset != 0 || (s.heads && s.heads != 64) || (s.secs && s.secs != 32))) {
      dropped.push_back("the partition offset " + std::to_string(s.part_offset) + " and geometry " +
                        std::to_string(s.heads) + "/" + std::to_string(s.secs) +
                        " (libisofs defaults used)");
    }
    if (efi_bootp_entry && !s.set_efi_boot_part(efi_from_old_image, gen))
      dropped.push_back(efi_part_dropped);
    spdlog::debug("boot replay: system area options 0x{:x}, ISO partition type {}", options,
                  s.iso_part_type);
    if (isoburn_igopt_set_system_area(gen, s.system_area.data(), options) <= 0) {
      dropped.push_back("the system area");
    } else {
      sa_kept = true;
    }
  } else if (efi_bootp_entry && !s.set_efi_boot_part(efi_from_old_image, gen)) {
    dropped.push_back(efi_part_dropped);
  }

  std::string note;
  if (!s.entries.empty())
    note = "El Torito: " + std::to_string(kept) + " of " + std::to_string(s.entries.size()) +
           " boot images kept";
  if (s.has_system_area)
    note += std::string(note.empty() ? "" : "; ") +
            (sa_kept ? "system area kept, partition tables sized for the new image"
                     : "system area dropped");
  if (!dropped.empty()) {
    std::string list;
    for (const std::string& d : dropped)
      list += (list.empty() ? "" : "; ") + d;
    spdlog::warn("commit {}: the new session does not keep all of the boot setup: {}", s.target,
                 list);
    note += "; dropped: " + list;
  }
  spdlog::info("commit {}: {}", s.target, note);
  return note;
}

}  // namespace burner::detail
