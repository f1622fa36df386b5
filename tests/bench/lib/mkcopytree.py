#!/usr/bin/env python3
"""Create the trees that the stage_copy rows copy into a staging mount.

mkcopytree.py DIR TOTAL_BYTES NBIG NSMALL [SEED]

Writes NBIG big files of TOTAL_BYTES * 3 / 4 / NBIG bytes each (DIR/big/bigN.bin,
fresh random bytes from os.urandom) and NSMALL small files that hold the
remaining quarter (DIR/small/sNN/fNNNNNN.bin, 100 files a directory, sizes
uniform in 0 .. 2 * mean, content sliced from a 64 MiB random pool at random
offsets, so nothing compresses).  The last small file is sized so that the
tree holds exactly TOTAL_BYTES bytes of file data.  With NSMALL = 0 the big
files hold all the bytes (TOTAL_BYTES / NBIG each, the last one takes the
remainder) and there is no DIR/small (the stage_copy_big tree).

Prints files=, dirs= (directories, DIR included), bytes=, big_files=,
small_files= on one line (run.sh keeps them next to DIR, not inside it, so
that the copy holds only the tree).
"""
import os
import random
import sys

CHUNK = 16 << 20
PER_DIR = 100


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, CHUNK)
            f.write(os.urandom(n))
            left -= n


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    top = sys.argv[1]
    total, nbig, nsmall = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 20240602
    if total <= 0 or nbig < 0 or nsmall < 0 or nbig + nsmall < 1 or (nsmall == 0 and nbig < 1):
        sys.exit("mkcopytree: TOTAL_BYTES > 0, NBIG >= 0, NSMALL >= 0, NBIG >= 1 if NSMALL = 0")
    rnd = random.Random(seed)
    dirs = 1
    os.makedirs(os.path.join(top, "big"), exist_ok=True)
    dirs += 1
    if nsmall == 0:     # big files only
        each = total // nbig
        for i in range(nbig):
            size = each if i < nbig - 1 else total - each * (nbig - 1)
            write_random(os.path.join(top, "big", f"big{i}.bin"), size)
        print(f"files={nbig} dirs={dirs} bytes={total} big_files={nbig} small_files=0")
        return
    big_each = total * 3 // 4 // nbig if nbig else 0
    small_total = total - big_each * nbig
    mean = small_total // nsmall
    for i in range(nbig):
        write_random(os.path.join(top, "big", f"big{i}.bin"), big_each)
    pool = os.urandom(64 << 20)
    os.makedirs(os.path.join(top, "small"), exist_ok=True)
    dirs += 1
    left = small_total
    for i in range(nsmall):
        if i % PER_DIR == 0:
            d = os.path.join(top, "small", f"s{i // PER_DIR:03d}")
            os.makedirs(d, exist_ok=True)
            dirs += 1
        if i == nsmall - 1:
            size = left
        else:
            size = min(left, rnd.randint(0, 2 * mean))
        left -= size
        with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
            pos = 0
            while pos < size:   # the last file may be larger than the pool
                n = min(size - pos, len(pool) // 2)
                off = rnd.randrange(0, len(pool) - n + 1)
                f.write(pool[off:off + n])
                pos += n
    files = nbig + nsmall
    lines = [f"files={files}", f"dirs={dirs}", f"bytes={total}", f"big_files={nbig}",
             f"small_files={nsmall}"]
    print(" ".join(lines))


if __name__ == "__main__":
    main()
