#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the main job on the
# bundled example tree: master an image, mount it with discfs and browse it, stage a change and
# commit it as a second session, look at both sessions side by side, and show `discfs info`.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" release >/dev/null
discfs="$top/build/release/cli/discfs"

work=$(mktemp -d /tmp/discfs-demo.XXXXXX)
mnt="$work/mnt"
mkdir -p "$mnt"
cleanup() {
  fusermount3 -u "$mnt" 2>/dev/null || true
  fusermount3 -u "$work/stage" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

# xorriso masters the image in its growable layout (the first session at LBA 32), so that
# `xorriso -toc` below lists every session; `discfs create` writes a plain image from LBA 0,
# as mkisofs does, which discfs grows too but xorriso then shows as one session.
run xorriso -report_about FAILURE -outdev "$work/sample.iso" -joliet on -hardlinks on \
  -map "$top/examples/sample-tree" / -commit
run "$discfs" mount "$work/sample.iso" "$mnt"
run ls -l "$mnt"
run find "$mnt" -type f
run cat "$mnt/latest-notes"
run stat -c '%A %U %y %n' "$mnt/docs/notes.txt"
say "touch $mnt/new-file   # read-only: fails with EROFS"
touch "$mnt/new-file" || true
run df -h "$mnt"
run fusermount3 -u "$mnt"

# Stage a change: a writable folder over the image's newest session. Edit it with any tool,
# then commit: one new session holding only what changed is appended to the image.
stage="$work/stage"
mkdir -p "$stage"
run "$discfs" stage --store "$work/store" "$work/sample.iso" "$stage"
say "echo 'Changed in session 2.' > $stage/docs/notes.txt; cp $top/README.md $stage/docs/added.txt"
echo 'Changed in session 2.' >"$stage/docs/notes.txt"
cp "$top/README.md" "$stage/docs/added.txt"
run "$discfs" status "$stage"
run "$discfs" commit "$stage"
run fusermount3 -u "$stage"
run "$discfs" mount --sessions "$work/sample.iso" "$mnt"
run ls "$mnt" "$mnt/1/docs" "$mnt/2/docs"
run diff "$mnt/1/docs/notes.txt" "$mnt/2/docs/notes.txt" || true
run fusermount3 -u "$mnt"
run "$discfs" info "$work/sample.iso"
# An independent check: xorriso lists both sessions and their MD5 tags match.
run xorriso -report_about WARNING -md5 on -indev "$work/sample.iso" -toc -check_md5 FAILURE --
