#!/usr/bin/env bash
# Installs every Debian 12 package discfs needs to build, test and benchmark.
# Safe to run again: apt-get skips what is already there.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang-14 libclang-rt-14-dev clang-format
  # libraries
  libfuse3-dev fuse3 libisofs-dev libburn-dev libisoburn-dev libudfread-dev
  libsqlite3-dev libboost-dev libspdlog-dev libssl-dev libfmt-dev libcli11-dev zlib1g-dev libgtest-dev libgmock-dev
  # the Debian package (packaging/build-deb.sh) and its installed checks
  dpkg-dev debhelper lintian ccache man-db bash-completion
  # independent writers and readers used by the tests
  xorriso genisoimage python3 python3-pycdlib p7zip-full xz-utils attr acl
  udftools udfclient grub-rescue-pc dosfstools isolinux syslinux-common fdisk mtools e2fsprogs
  libglib2.0-bin
  # building the third-party suites (tests/thirdparty/build.sh: pjdfstest, fsx, fsstress)
  autoconf automake libtool libacl1-dev perl xfslibs-dev libattr1-dev uuid-dev
  # peers and tools used by the benchmark
  fuseiso archivemount fio util-linux
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
