#!/usr/bin/env python3
"""Turn a `genisoimage -udf` hybrid into a UDF-only image (in place).

udfonly.py IMAGE

genisoimage -udf writes an ISO 9660 + UDF 1.02 bridge image.  Its volume
recognition sequence (2048-byte sectors from 16 on) is

    CD001 (primary) ... CD001 (terminator)  BEA01  NSR02  TEA01

and the UDF structures (anchor at sector 256, volume descriptor sequence,
partition, file set, file entries) never refer to the ISO 9660 descriptors.
This script rewrites the sequence as it stands on a pure UDF volume (what
mkudffs writes): BEA01 NSR0x TEA01 from sector 16 on, and zeroes the sectors
the longer sequence used.  Afterwards no ISO 9660 reader finds a volume in the
image (no CD001 at sector 16) and a UDF reader sees the same UDF volume as
before.  Nothing else in the image changes; the ISO 9660 directory records
and path tables stay behind as unreferenced bytes.

Exits non-zero (and leaves the image alone) unless the sequence is exactly the
expected one: ISO 9660 descriptors, then BEA01, one NSR02/NSR03, TEA01.
"""
import sys

SECTOR = 2048
FIRST = 16
MAX_DESCRIPTORS = 64


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    with open(path, "r+b") as f:
        idents = []
        for i in range(MAX_DESCRIPTORS):
            f.seek((FIRST + i) * SECTOR)
            block = f.read(SECTOR)
            if len(block) != SECTOR:
                sys.exit(f"udfonly: {path}: image ends inside the volume recognition sequence")
            ident = block[1:6]
            if ident not in (b"CD001", b"BEA01", b"NSR02", b"NSR03", b"TEA01", b"BOOT2",
                             b"CDW02"):
                break
            idents.append((ident, block))
            if ident == b"TEA01":
                break
        names = [i.decode() for i, _ in idents]
        if (len(idents) < 4 or idents[-1][0] != b"TEA01" or idents[-2][0] not in (b"NSR02", b"NSR03")
                or idents[-3][0] != b"BEA01"
                or any(i != b"CD001" for i, _ in idents[:-3])):
            sys.exit(f"udfonly: {path}: unexpected volume recognition sequence {names}")
        extended = [block for _, block in idents[-3:]]
        f.seek(FIRST * SECTOR)
        for block in extended:
            f.write(block)
        f.write(bytes(SECTOR * (len(idents) - 3)))
    print(f"udfonly: {path}: recognition sequence {' '.join(names)} -> "
          f"{' '.join(n for n in names[-3:])} (sectors {FIRST}-{FIRST + 2}), "
          f"{len(idents) - 3} ISO 9660 descriptor sector(s) zeroed")


if __name__ == "__main__":
    main()
