#!/usr/bin/env bash
# Builds the third-party file-system test suites the tests run against the stage mount
# (tests/py/test_suites_*.py): pjdfstest, and fsx and fsstress from xfstests.
#
#   tests/thirdparty/build.sh [OUTDIR]      (default: build/thirdparty in the checkout)
#
# The sources are the unmodified upstream tarballs in ../shared/third-party/ (next to the
# checkout; DISCFS_THIRDPARTY names another directory), whose README.md says where each came
# from. The patches in this directory are applied to the unpacked copy, never to the tarball.
# A build is kept and reused while its tarball and patches are unchanged (the stamp file holds
# their sha256). Several callers at once are serialized by a lock on OUTDIR.
#
# Exit 0 with OUTDIR/{pjdfstest,xfstests} built; exit 0 and a message on stderr, building
# nothing, when the sources are not there (the tests then skip, naming why); non-zero when a
# build fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$top/build/thirdparty}

src=${DISCFS_THIRDPARTY:-}
if [ -z "$src" ]; then
  for cand in "$top/../shared/third-party" /work/shared/third-party; do
    if [ -d "$cand" ]; then src=$cand; break; fi
  done
fi
pjd_tar=$src/pjdfstest-85a8aea.tar.gz
xfs_tar=$src/xfstests-63a29724.tar.gz
if [ -z "$src" ] || [ ! -f "$pjd_tar" ] || [ ! -f "$xfs_tar" ]; then
  echo "thirdparty/build.sh: the third-party sources are not there (../shared/third-party/" \
    "next to the checkout, or set DISCFS_THIRDPARTY): nothing built" >&2
  exit 0
fi

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

jobs=${THIRDPARTY_JOBS:-2}

# build NAME TARBALL STAMPKEY COMMANDS: unpack into OUTDIR/NAME.new, run COMMANDS there, then
# move it to OUTDIR/NAME with its stamp; skipped when the stamp matches.
build() {
  local name=$1 tarball=$2 key=$3 cmds=$4
  if [ -f "$out/$name/.discfs-stamp" ] && [ "$(cat "$out/$name/.discfs-stamp")" = "$key" ]; then
    return 0
  fi
  echo "thirdparty/build.sh: building $name from $tarball" >&2
  rm -rf "$out/$name" "$out/$name.new"
  mkdir -p "$out/$name.new"
  tar xzf "$tarball" -C "$out/$name.new" --strip-components=1
  local log=$out/$name.log
  if ! (cd "$out/$name.new" && eval "$cmds") >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "thirdparty/build.sh: building $name failed (whole log: $log)" >&2
    exit 1
  fi
  echo "$key" >"$out/$name.new/.discfs-stamp"
  mv "$out/$name.new" "$out/$name"
}

sum() { cat "$@" | sha256sum | cut -d' ' -f1; }

build pjdfstest "$pjd_tar" "$(sum "$pjd_tar")" \
  "autoreconf -ifs && ./configure && make -j$jobs"

build xfstests "$xfs_tar" "$(sum "$xfs_tar" "$here"/fsx-*.patch)" \
  "for p in '$here'/fsx-*.patch; do patch -p1 <\"\$p\"; done &&
   make configure && ./configure && make -C lib -j$jobs && make -C ltp -j$jobs fsx fsstress"

for f in pjdfstest/pjdfstest xfstests/ltp/fsx xfstests/ltp/fsstress; do
  if [ ! -x "$out/$f" ]; then
    echo "thirdparty/build.sh: $out/$f was not built" >&2
    exit 1
  fi
done
