// Private to burner/: keeping El Torito boot records and the system area (isohybrid MBR, GPT)
// of the newest session in the next one, as xorriso's `-boot_image any replay` does.
#pragma once

#include <memory>
#include <string>

#include "burner/libs.h"

namespace burner::detail {

// The boot setup of a loaded session. Capture it right after loading, before the tree is
// rebuilt; apply it after the rebuild and before the session is prepared.
class BootReplay {
 public:
  // Reads the El Torito catalog and the system area that libisofs loaded with `image`, and
  // keeps references to the boot image files, so a rebuild of the tree cannot lose them.
  BootReplay(IsoImage* image, const std::string& target);
  ~BootReplay();
  BootReplay(const BootReplay&) = delete;
  BootReplay& operator=(const BootReplay&) = delete;

  // True when the session has neither El Torito records nor a system area.
  bool empty() const;

  // Re-creates the catalog in the rebuilt tree of `image` (same boot images, platforms,
  // emulation, load sizes, boot-info-table and GRUB2 patching) and gives `gen` the system
  // area with the options that make libisofs rewrite its MBR/GPT for the new image size.
  // What cannot be kept is dropped with one warning naming it. Returns a short note of
  // what was kept and dropped ("" when the session was not bootable).
  std::string apply(IsoImage* image, isoburn_imgen_opts* gen);

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace burner::detail
