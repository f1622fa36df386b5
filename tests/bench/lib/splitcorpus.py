#!/usr/bin/env python3
"""Split a tree made by mkcorpus.py into per-session trees.

splitcorpus.py SRC OUT NSESSIONS

Moves every file of SRC into OUT/s1 ... OUT/sN (same relative path), file
fNNNNNN-... going to session 1 + NNNNNN * N // NFILES, so each session adds
about NFILES / N files.  mkcorpus.py spreads consecutive files over all leaf
directories, so every session adds files to (nearly) every directory, and
`xorriso -map OUT/sK / -commit` merges them into the tree of the sessions
before: session K then shows files 0 .. K*NFILES/N - 1.

Prints, and writes to OUT/sessions.meta, the number of entries (root
directory, directories, files) that `find` shows in each session's tree:
entries_1=... entries_N=..., plus entries_all (what `find MNT` shows for a
mount holding every session side by side in MNT/1 ... MNT/N, MNT included).
"""
import os
import re
import sys

NAME = re.compile(r"^f(\d+)-")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    files = []
    for dirpath, _, names in os.walk(src):
        for name in names:
            m = NAME.match(name)
            if not m:
                sys.exit(f"splitcorpus: unexpected file {os.path.join(dirpath, name)}")
            files.append((int(m.group(1)), os.path.relpath(os.path.join(dirpath, name), src)))
    files.sort()
    total = len(files)
    if total == 0 or n < 1:
        sys.exit("splitcorpus: nothing to split")
    dirs_seen = set()
    per_session_files = [0] * n
    per_session_dirs = [0] * n
    for idx, (num, rel) in enumerate(files):
        k = min(n - 1, idx * n // total)
        dst = os.path.join(out, f"s{k + 1}", rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(os.path.join(src, rel), dst)
        per_session_files[k] += 1
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs_seen:
                dirs_seen.add(d)
                per_session_dirs[k] += 1
    lines = []
    cum_files = cum_dirs = 0
    entries_all = 1
    for k in range(n):
        cum_files += per_session_files[k]
        cum_dirs += per_session_dirs[k]
        entries = 1 + cum_dirs + cum_files
        entries_all += entries
        lines.append(f"entries_{k + 1}={entries}")
        lines.append(f"files_added_{k + 1}={per_session_files[k]}")
    lines.append(f"sessions={n}")
    lines.append(f"entries_newest={1 + cum_dirs + cum_files}")
    lines.append(f"entries_all={entries_all}")
    with open(os.path.join(out, "sessions.meta"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(" ".join(lines))


if __name__ == "__main__":
    main()
