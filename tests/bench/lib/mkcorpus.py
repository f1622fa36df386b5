#!/usr/bin/env python3
"""Create the small-file tree for the discfs benchmark.

mkcorpus.py DIR NFILES [SEED]

Writes NFILES regular files of 0..8192 bytes of random content into a
4-level directory tree under DIR (DIR/aNN/bNN/cNN/dNN/fNNNNNN-xxxxx.bin).
Each level has its own letter: archivemount 0.8.7 misplaces entries whose
path repeats a component (d00/d00/f shows up as d00/f).
The fan-out is chosen so that each leaf directory holds about 20 files
(10x10x10x10 leaves for 200,000 files).  Content is sliced from a pool of
random bytes at random offsets, so it does not compress; the sizes and names
are reproducible for a given SEED.
"""
import os
import random
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    top, nfiles = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 20240601
    rnd = random.Random(seed)
    fan = max(2, round((nfiles / 20) ** 0.25))
    leaves = []
    for a in range(fan):
        for b in range(fan):
            for c in range(fan):
                for d in range(fan):
                    leaves.append(f"a{a:02d}/b{b:02d}/c{c:02d}/d{d:02d}")
    pool = os.urandom(16 << 20) + os.urandom(8192)
    made = set()
    total = 0
    for i in range(nfiles):
        leaf = leaves[i % len(leaves)]
        if leaf not in made:
            os.makedirs(os.path.join(top, leaf), exist_ok=True)
            made.add(leaf)
        size = rnd.randint(0, 8192)
        off = rnd.randrange(0, len(pool) - 8192)
        suffix = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                         for _ in range(rnd.randint(3, 12)))
        name = f"f{i:06d}-{suffix}.bin"
        with open(os.path.join(top, leaf, name), "wb") as f:
            f.write(pool[off:off + size])
        total += size
    ndirs = sum(fan ** k for k in range(1, 5))
    print(f"{nfiles} files, {ndirs} directories (fan-out {fan}), {total} bytes of data")


if __name__ == "__main__":
    main()
