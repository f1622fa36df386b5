// The El Torito boot images of a session as read-only files of a ".boot" folder in the root
// (`discfs mount --boot`), holding the bytes `xorriso -osirrox on -extract_boot_images` gives.
#pragma once

#include <memory>

#include "imagecore/media/eltorito.h"
#include "imagecore/tree.h"

namespace imagecore {

// `base` with a ".boot" folder added to its root, one file per entry of `catalog` (an empty
// catalog gives an empty folder). Throws what base->stat(kRootIno) throws.
std::shared_ptr<const FileTree> make_boot_view(std::shared_ptr<const FileTree> base,
                                               const BootCatalog& catalog);

}  // namespace imagecore
