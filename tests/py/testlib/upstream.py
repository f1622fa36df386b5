"""Disc images from other projects' test suites (libcdio, libarchive), in the shared data.

They live xz-compressed next to MANIFEST.tsv, which names each one's origin and the
sha256 of the decompressed image.  REFUSED says which of them discfs must refuse, and with
what exit code; every other one must open.
"""

import hashlib
import os
import subprocess
import unittest

from testlib import env

# Images that cannot be shown, with the exit code man/discfs.1 (EXIT STATUS) gives for
# them.  A damaged image whose root cannot be read is "not an ISO 9660 image" (4), as
# discfs reports a FormatError; a block size other than 2048 is "unsupported" (5).
REFUSED = {
    "cdio-bad-dir.iso": env.EXIT_NOT_AN_IMAGE,      # no directory starts where the root is
    "cdio-malformed.iso": env.EXIT_UNSUPPORTED,     # logical block size 12336
    "cdio-malformed2.iso": env.EXIT_NOT_AN_IMAGE,   # no directory starts where the root is
}


def exit_code(name):
    """The exit code discfs-dump and `discfs mount` must end with on image `name`."""
    return REFUSED.get(name, env.EXIT_OK)


def data_dir():
    """The directory holding MANIFEST.tsv and the .iso.xz files, or None."""
    testdata = os.environ.get("DISCFS_TESTDATA")
    for cand in (os.environ.get("DISCFS_UPSTREAM_DATA"),
                 testdata and os.path.join(testdata, "upstream"),
                 os.path.join(env.PROJECT, "tests", "data", "upstream"),
                 os.path.normpath(os.path.join(env.PROJECT, "..", "shared", "testdata",
                                               "upstream")),
                 "/work/shared/testdata/upstream"):
        if cand and os.path.isfile(os.path.join(cand, "MANIFEST.tsv")):
            return cand
    return None


def require_data():
    """The data directory, or SkipTest saying how to point at it."""
    d = data_dir()
    if d is None:
        raise unittest.SkipTest("the upstream test images are not there (set "
                                "DISCFS_UPSTREAM_DATA to the directory with MANIFEST.tsv)")
    return d


def manifest():
    """[(file, source, licence, sha256)] from MANIFEST.tsv (comment lines skipped)."""
    d = data_dir()
    if d is None:
        return []
    rows = []
    with open(os.path.join(d, "MANIFEST.tsv"), encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                rows.append(tuple(line.rstrip("\n").split("\t")[:4]))
    return rows


def names():
    """The images' names (without .xz), sorted."""
    return sorted(row[0][:-3] for row in manifest())


def xz_decompress(src, dest):
    """xz -dc src > dest; returns the sha256 of what was written."""
    with open(dest, "wb") as out:
        p = subprocess.run(["xz", "-dc", src], stdout=out, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"xz -dc {src} failed: {env.txt(p.stderr)}")
    h = hashlib.sha256()
    with open(dest, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


class Images:
    """The images decompressed into a directory, each once, checked against the manifest."""

    def __init__(self, where):
        self.where = where
        self.done = {}

    def path(self, name):
        """The decompressed image `name` (e.g. "la-iso.iso"); raises AssertionError when
        its sha256 is not the manifest's (the test data is damaged)."""
        if name not in self.done:
            row = next(r for r in manifest() if r[0] == name + ".xz")
            dest = os.path.join(self.where, name)
            got = xz_decompress(os.path.join(data_dir(), row[0]), dest)
            self.done[name] = (dest, got, row[3])
        dest, got, want = self.done[name]
        if got != want:
            raise AssertionError(f"{name}.xz: sha256 of the decompressed image is {got}, "
                                 f"MANIFEST.tsv says {want}: the test data is damaged")
        return dest
