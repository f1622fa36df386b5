#!/usr/bin/env bash
# The README's second command: installs what is missing, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs the whole test suite (unit, reader, mount, bad input,
# upstream images, pjdfstest, fsx and fsstress on the stage), then the README's quick start on
# an optimised build (which also proves that build compiles: GCC warns differently at -O2), the
# Debian package (built, linted, installed and checked: packaging/), the fuzzer for a short
# while and the format check.
# FUZZ_SECONDS (default 60) sets the fuzzing time; 0 skips it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" dev
# Some mount tests run the daemon as another user (nobody), which must open /dev/fuse itself.
# A desktop Debian has /dev/fuse at 0666 (libfuse's udev rule, KERNEL=="fuse" MODE="0666",
# also in systemd's 50-udev-default.rules); a container or a machine without udev has the
# kernel's 0600, and those tests would only skip. Set it here, on purpose, as udev would, so
# that CI really runs them; the tests themselves never rely on it and skip with the reason.
if [ -c /dev/fuse ]; then
  chmod 0666 /dev/fuse || echo "test.sh: cannot make /dev/fuse 0666; tests that mount as another user will skip" >&2
fi
# The third-party suites (pjdfstest, fsx, fsstress) from ../shared/third-party/, built once into
# build/thirdparty; their tests skip, saying why, where the sources are absent.
"$top/tests/thirdparty/build.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --preset dev -j2 --timeout 1200

echo "== the quick start (release build)"
quick_log=$(mktemp /tmp/discfs-quickstart.XXXXXX.log)
if ! "$top/scripts/quickstart.sh" >"$quick_log" 2>&1; then
  tail -n 40 "$quick_log"
  echo "test.sh: the quick start failed (whole output: $quick_log)" >&2
  exit 1
fi
rm -f "$quick_log"
echo "quick start: passed"

# The Debian package: built (a Release build without the tests; ccache keeps a rebuild
# cheap), checked by lintian, installed, and the checks that need an installed discfs run
# against it: `man discfs-stage`, the completion through bash-completion, `mount -t
# fuse.discfs` and an fstab line. CI is root and a throwaway machine, so installing is fine.
# DISCFS_SKIP_DEB=1 leaves this out (a developer machine where discfs should not be installed).
if [ "${DISCFS_SKIP_DEB:-0}" != 1 ]; then
  echo "== the Debian package"
  deb_log=$(mktemp /tmp/discfs-deb.XXXXXX.log)
  if ! "$top/packaging/build-deb.sh" >"$deb_log" 2>&1; then
    tail -n 60 "$deb_log"
    echo "test.sh: building or linting the package failed (whole output: $deb_log)" >&2
    exit 1
  fi
  grep -E '^(E|W|N|I|O): ' "$deb_log" || true  # lintian's findings, if any
  rm -f "$deb_log"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall "$top"/build/deb/discfs_*.deb
  "$top/packaging/test-installed.sh"
fi

if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  echo "== fuzzing the reader for ${FUZZ_SECONDS:-60} s"
  "$top/tests/fuzz/run.sh" "${FUZZ_SECONDS:-60}"
fi

echo "== clang-format"
files=$(git ls-files '*.cc' '*.h')
clang-format --dry-run -Werror $files
echo "all checks passed"
