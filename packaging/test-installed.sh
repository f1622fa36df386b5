#!/usr/bin/env bash
# Checks an installed discfs package (scripts/test.sh runs it after installing
# build/deb/discfs_*.deb): the files are where Debian tools look for them, `man discfs-stage`
# opens, the completion loads the way bash-completion loads it, the manual pages and the
# completion are true to the installed command, and `mount -t fuse.discfs` and an fstab line
# (`mount -T FSTAB DIR`) mount with the safe defaults of `discfs mount`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

fail() { echo "test-installed.sh: $*" >&2; exit 1; }

[ "$(command -v discfs)" = /usr/bin/discfs ] || fail "discfs is not /usr/bin/discfs"
discfs --version
for f in /usr/share/doc/discfs/README.md.gz /usr/share/doc/discfs/copyright \
  /usr/share/bash-completion/completions/discfs /usr/share/man/man1/discfs.1.gz; do
  [ -e "$f" ] || fail "$f is missing"
done

# man finds every verb's page through its index, as a user types it.
for verb in $(discfs --help | awk '/^Subcommands:/ { s = 1; next } s && /^  [a-z]/ { print $1 }'); do
  MANPAGER=cat MANWIDTH=80 man "discfs-$verb" >/dev/null 2>&1 || fail "'man discfs-$verb' does not open"
done
MANPAGER=cat MANWIDTH=80 man discfs-stage | grep -q 'staging folder' || fail "'man discfs-stage' shows no stage page"

# bash-completion loads the completion on first use of discfs, in a fresh interactive shell.
out=$(bash --norc -ic 'source /usr/share/bash-completion/bash_completion
  __load_completion discfs && complete -p discfs' 2>/dev/null) || true
[[ $out == *"-F _discfs"*" discfs" ]] || fail "bash-completion did not load the completion ($out)"

cd "$top/tests/py"
export DISCFS_BIN=/usr/bin/discfs DISCFS_INSTALLED=1 PYTHONDONTWRITEBYTECODE=1
DISCFS_MANDIR=/usr/share/man/man1 /usr/bin/python3 -m testlib test_man
DISCFS_COMPLETION=/usr/share/bash-completion/completions/discfs /usr/bin/python3 -m testlib test_completion
/usr/bin/python3 -m testlib -v test_mount.Options.test_mount_t_fuse_discfs test_mount.Options.test_fstab_line \
  test_mount.Options.test_fstab_form_is_nosuid_nodev test_mount.Options.test_mount_fuse3_helper
echo "installed package: passed"
