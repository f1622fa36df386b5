#!/bin/sh
# tests/drive/run.sh - discfs against an emulated optical writer (CTest drive.emu).
#
# Boots ../shared/drive-emu's Debian 12 guest once (CDEmu: an emulated CD-R driven by libburn
# over real SG_IO on /dev/srN) and runs guest-test.sh in it with a Release discfs given over
# the 9p share: drives, info, burn --multi twice, read back with xorriso, refusals, Ctrl-C.
#
# Usage: run.sh SOURCE_DIR BUILD_DIR
#   The guest (about 1.4 GB) is kept in BUILD_DIR/drive-emu/guest; delete it to rebuild.
#   The Release discfs (sanitizers off: the guest lacks their runtime) is built with the
#   `release` preset into SOURCE_DIR/build/release, as scripts/quickstart.sh does.
# Exits 77 (skipped, with the reason) when ../shared/drive-emu, QEMU, or what building the
# guest needs (root, mmdebstrap, a Debian mirror) is missing.
set -eu
SRC=$(cd "$1" && pwd); BUILD=$(cd "$2" && pwd)
EMU=${DRIVE_EMU:-$SRC/../shared/drive-emu}
skip() { echo "SKIP: $*"; exit 77; }
[ -f "$EMU/boot-guest.sh" ] || skip "no drive emulator at $EMU (../shared/drive-emu)"
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 is not installed"
export WORK=$BUILD/drive-emu; mkdir -p "$WORK"
# The guest needs discfs's runtime libraries (ldd build/release/cli/discfs, Debian 12 names).
export EXTRA_PKGS=${EXTRA_PKGS:-libfuse3-3,fuse3,libburn4,libisoburn1,libisofs6,libfmt9,libspdlog1.10,libsqlite3-0,libssl3,libacl1}
if [ ! -e "$WORK/guest/base.img" ]; then
  [ "$(id -u)" = 0 ] || skip "building the guest needs root (build-guest.sh); none cached in $WORK/guest"
  command -v mmdebstrap >/dev/null 2>&1 || skip "building the guest needs mmdebstrap"
  echo "== building the guest (about 3 minutes; kept in $WORK/guest)"
  if ! sh "$EMU/build-guest.sh" > "$WORK/build-guest.log" 2>&1; then
    tail -20 "$WORK/build-guest.log"
    skip "the guest could not be built (no Debian mirror?); log: $WORK/build-guest.log"
  fi
fi
echo "== Release discfs for the guest"
(cd "$SRC" && { [ -f build/release/CMakeCache.txt ] || cmake --preset release >/dev/null; } &&
  cmake --build --preset release --target discfs -j2 >/dev/null)
SHARE=$WORK/share-discfs; rm -rf "$SHARE"; mkdir -p "$SHARE"
cp "$SRC/build/release/cli/discfs" "$SHARE/discfs"
rc=0
sh "$EMU/boot-guest.sh" "$SRC/tests/drive/guest-test.sh" "$SHARE" > "$WORK/boot.log" 2>&1 || rc=$?
cat "$SHARE/guest-test.log" 2>/dev/null || { tail -30 "$WORK/boot.log"; tail -30 "$WORK/qemu-console.log" 2>/dev/null; }
[ $rc = 99 ] && echo "the guest did not finish (boot log: $WORK/boot.log, console: $WORK/qemu-console.log)"
exit $rc
