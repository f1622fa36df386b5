#!/usr/bin/env bash
# Builds the Debian package of discfs: packaging/build-deb.sh
#
# Copies the source tree (the files git knows, as they are in the working tree, so
# uncommitted changes are packaged too) to build/deb/discfs-VERSION/, puts packaging/debian/
# there as debian/, writes debian/changelog with the version of CMakeLists.txt's project(),
# and runs `dpkg-buildpackage -b -us -uc`. The package lands in build/deb/:
#   build/deb/discfs_VERSION_ARCH.deb   (and its .buildinfo, .changes, -dbgsym .deb)
# Then, when lintian is installed, lintian checks it (exit 1 on an error; warnings are
# explained in packaging/debian/discfs.lintian-overrides or packaging/README.md).
#
# Needs: dpkg-dev, debhelper, and the Build-Depends of packaging/debian/control
# (scripts/install-deps.sh installs them). JOBS (default 2) sets the parallel build.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

version=$(sed -n 's/^project(discfs VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
if [ -z "$version" ]; then
  echo "build-deb.sh: no 'project(discfs VERSION X.Y.Z' in CMakeLists.txt" >&2
  exit 1
fi

out="$top/build/deb"
src="$out/discfs-$version"
rm -rf "$src"
rm -f "$out"/discfs_* "$out"/discfs-dbgsym_*
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do
    [[ $f == packaging/debian/* || ! -e $f ]] || printf '%s\0' "$f"
  done |
  tar --null -cf - -T - | tar -xf - -C "$src"
cp -a packaging/debian "$src/debian"

# The version is the project's; a date from the last commit keeps the build reproducible.
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
cat >"$src/debian/changelog" <<EOF
discfs ($version) unstable; urgency=medium

  * Built from the discfs source tree (packaging/build-deb.sh).

 -- discfs developers <discfs@localhost.invalid>  $date
EOF

(cd "$src" && dpkg-buildpackage -b -us -uc -j"${JOBS:-2}")

deb=$(ls "$out"/discfs_"$version"_*.deb)
echo "build-deb.sh: $deb"
if command -v lintian >/dev/null; then
  # --fail-on error: warnings are allowed only when explained (overrides or packaging/README.md).
  lintian --fail-on error --info --display-info "$out"/discfs_"$version"_*.changes
fi
