"""Source trees: what images are made from, and so what they must show.

build_tree() is the rich tree of the ISO 9660 suites (odd names, sizes, modes, owners,
times, hard links, symlinks, device nodes); build_udf_tree() the smaller one of the UDF
suites; write() puts one file with fixed times into a tree.
"""

import calendar
import os
import random
import stat

from testlib import env, trees


def utc(y, mo=1, d=1, h=0, mi=0, s=0):
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


T1950 = utc(1950, 6, 15, 12, 30, 45)
T1980 = utc(1980, 1, 1, 0, 0, 0)
T2020 = utc(2020, 2, 29, 23, 59, 58)
T2100 = utc(2100, 12, 31, 8, 0, 1)
T_ATIME = utc(1999, 12, 31, 23, 59, 59)
T_DIR = utc(2011, 11, 11, 11, 11, 11)

LONG_NAME = ("long_name_" + "abcdefghijklmnopqrstuvwxyz0123456789" * 6)[:196] + ".txt"
LONG_DIR = "long_directory_" + "Z" * 120
UNICODE_NAME = "Ünïcødé — 日本語 ñ.txt"
UNICODE_DIR = "répertoire_ß"
DEEP_DIRS = ["deep%02d" % i for i in range(1, 12)]     # 11 levels: > 8 forces RR relocation
NESTED = ["a", "b", "c", "d", "e"]
ODD_SIZES = [1, 2, 511, 2047, 2048, 2049, 4095, 65537, 100003]


def rand_bytes(seed, n):
    """n bytes, the same for the same seed."""
    return random.Random(seed).randbytes(n)


def write(root, rel, data, mode=0o644, mtime=T2020, atime=T_ATIME):
    """Write root/rel (parents made) with data, mode and times; returns its path."""
    p = os.path.join(root, rel.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
    os.utime(p, (atime, mtime))
    return p


class SourceTree:
    """Description of what build_tree made (so tests can name specific entries)."""

    def __init__(self, root, special):
        self.root = root
        self.special = special          # device nodes and fifo made (root only)
        self.hardlink_groups = []       # lists of relative paths ('/x/y') sharing an inode
        self.symlinks = {}              # '/path' -> target
        self.deep_file = None
        self.regular_files = []


def build_tree(root, special=None, deep=True, big_random=True, very_long_symlink=True):
    """Build the rich source tree under root (which must not exist or be empty).

    special: make device nodes and a fifo (defaults to "when root").
    deep: include a directory chain deeper than 8 levels.
    very_long_symlink: include a 390-byte symlink target of 30 components
      (genisoimage 1.1.11 writes a broken SL/CE chain for it, so its trees
      leave it out; the 195-byte one is always there).
    """
    if special is None:
        special = env.is_root()
    os.makedirs(root, exist_ok=True)
    st = SourceTree(root, special)

    def P(rel):
        return os.path.join(root, rel.lstrip("/"))

    def wfile(rel, data, mode=0o644, mtime=T2020, atime=T_ATIME):
        st.regular_files.append("/" + rel.lstrip("/"))
        return write(root, rel, data, mode, mtime, atime)

    wfile("README", b"discfs test tree\nsecond line\n", mtime=T2020)
    wfile("empty", b"", mtime=T1980)
    wfile("UPPER.TXT", b"upper case name\n")
    wfile("lower.txt", b"lower case name\n")
    wfile("Mixed.Case.Name.TXT", b"mixed\n")
    wfile("archive.tar.gz", rand_bytes(7, 3000))
    wfile("Makefile", b"all:\n\ttrue\n")
    wfile("name with spaces.txt", b"spaces in the name\n")
    wfile(UNICODE_NAME, "unicode content é\n".encode())
    wfile(os.path.join(UNICODE_DIR, "fichier.txt"), b"in a unicode dir\n")
    wfile(LONG_NAME, b"a file with a 200 character name\n")
    wfile(os.path.join(LONG_DIR, "inner.txt"), b"inside a long-named dir\n")
    # Names that collide after 8.3 mapping.
    for i in range(3):
        wfile("collide_name_%d.text" % i, b"collide %d\n" % i)

    for n in ODD_SIZES:
        wfile("sizes/size_%d.bin" % n, rand_bytes(n, n))
    if big_random:
        wfile("sizes/random_1MiB.bin", rand_bytes(1, 1 << 20))
    # Compressible data (zisofs compresses these; small files stay plain).
    text = b"".join(b"line %06d of a compressible text file\n" % i for i in range(9000))
    wfile("sizes/compressible.txt", text[:300007])
    wfile("sizes/zeros_100000.bin", bytes(100000))
    wfile("sizes/text_zeros_text.bin", text[:40000] + bytes(70000) + text[:33333])

    nested = "/".join(NESTED)
    wfile(nested + "/leaf.txt", b"five levels down\n")
    wfile("a/b/mid.txt", b"two levels down\n")
    if deep:
        deep_path = "/".join(DEEP_DIRS)
        wfile(deep_path + "/deepfile.txt", b"eleven levels down\n")
        wfile("/".join(DEEP_DIRS[:9]) + "/nine.txt", b"nine levels down\n")
        st.deep_file = "/" + deep_path + "/deepfile.txt"

    # Modes.
    wfile("modes/setuid", b"#!/bin/sh\n", mode=0o4755)
    wfile("modes/setgid", b"#!/bin/sh\n", mode=0o2755)
    wfile("modes/readonly", b"ro\n", mode=0o444)
    wfile("modes/none", b"no perms\n", mode=0o000)
    wfile("modes/exec_only", b"x\n", mode=0o711)
    wfile("modes/group_write", b"gw\n", mode=0o664)
    os.makedirs(P("modes/sticky_dir"))
    wfile("modes/sticky_dir/inside", b"sticky\n")
    os.makedirs(P("modes/private_dir"))
    wfile("modes/private_dir/secret", b"secret\n", mode=0o600)

    # Owners.
    wfile("owners/u1234_g5678", b"owned\n")
    os.makedirs(P("owners/dir_u1234"))
    wfile("owners/dir_u1234/f", b"owned dir\n")

    # Times.
    wfile("times/y1950", b"1950\n", mtime=T1950, atime=T1950 + 3600)
    wfile("times/y1980", b"1980\n", mtime=T1980, atime=T1980 + 60)
    wfile("times/y2020", b"2020\n", mtime=T2020, atime=T2020 - 86400)
    wfile("times/y2100", b"2100\n", mtime=T2100, atime=T2100 - 7)

    # Hard links.
    wfile("hard/one", b"hard link pair\n")
    os.link(P("hard/one"), P("hard/two"))
    wfile("hard/three_a", rand_bytes(3, 5000))
    os.link(P("hard/three_a"), P("hard/three_b"))
    os.link(P("hard/three_a"), P("a/three_c"))
    st.hardlink_groups = [["/hard/one", "/hard/two"],
                          ["/a/three_c", "/hard/three_a", "/hard/three_b"]]
    st.regular_files += ["/hard/two", "/hard/three_b", "/a/three_c"]

    # Symlinks.
    os.makedirs(P("links"))
    links = {
        "links/absolute": "/etc/hostname",
        "links/relative": "../README",
        "links/dangling": "does/not/exist",
        "links/to_dir": "../a/b",
        "links/to_dir_abs": "/usr/share",
        "links/dot": ".",
        "links/long_target": "/" + "/".join(["component%03d" % i for i in range(15)]),
        "links/unicode": "../" + UNICODE_NAME,
    }
    if very_long_symlink:
        links["links/very_long_target"] = "/".join(["component%03d" % i for i in range(30)])
    for rel, target in links.items():
        os.symlink(target, P(rel))
        st.symlinks["/" + rel] = target

    if special:
        os.makedirs(P("dev"))
        os.mknod(P("dev/null_like"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(P("dev/block_7_0"), 0o660 | stat.S_IFBLK, os.makedev(7, 0))
        os.mknod(P("dev/char_big"), 0o600 | stat.S_IFCHR, os.makedev(259, 300))
        os.mkfifo(P("dev/fifo"), 0o644)

    # Owners and times last (chown clears setuid bits, utime must follow writes).
    if env.is_root():
        for rel in ("owners/u1234_g5678", "owners/dir_u1234", "owners/dir_u1234/f"):
            os.lchown(P(rel), 1234, 5678)
        os.lchown(P("links/relative"), 1234, 5678)
        if special:
            os.lchown(P("dev/char_big"), 1234, 5678)
    os.chmod(P("modes/sticky_dir"), 0o1777)
    os.chmod(P("modes/private_dir"), 0o700)
    os.chmod(P("owners/dir_u1234"), 0o750)
    os.chmod(P("modes/setuid"), 0o4755)
    os.chmod(P("modes/setgid"), 0o2755)
    for rel, target in links.items():
        os.utime(P(rel), (T_ATIME, T1980 + 1000), follow_symlinks=False)
    if special:
        for rel in ("dev/null_like", "dev/block_7_0", "dev/char_big", "dev/fifo"):
            os.utime(P(rel), (T_ATIME, T2020 - 1000))
    set_dir_times(root)
    return st


def set_dir_times(root, mtime=T_DIR, atime=T_ATIME):
    """Give every directory a fixed, distinct-from-now time, deepest first."""
    for dirpath, dirnames, _ in os.walk(root, topdown=False):
        os.utime(dirpath, (atime, mtime))
    # A few directories with special dates.
    for rel, t in (("times", T1950), ("a/b", T2100), ("modes", T1980)):
        p = os.path.join(root, rel)
        if os.path.isdir(p):
            os.utime(p, (atime, t))


def big_file_tree(root, after_name, after_text):
    """root/big.bin (make_sparse_big_file) and a small file after_name written after it;
    returns (path of big.bin, its marks)."""
    os.makedirs(root)
    big = os.path.join(root, "big.bin")
    marks = make_sparse_big_file(big)
    with open(os.path.join(root, after_name), "wb") as f:
        f.write(after_text)
    return big, marks


def make_sparse_big_file(path, size=4500 * 1024 * 1024):
    """A sparse file over 4 GiB with distinct bytes at several offsets.

    Returns {offset: bytes} of what was written."""
    marks = {
        0: b"START-OF-BIG-FILE",
        4095: b"\x01\x02\x03",
        (1 << 32) - 5: b"ACROSS-4GiB-BOUNDARY",       # straddles 4 GiB
        0xFFFFF800 - 6: b"EXTENT-SPLIT",              # libisofs ends extent 1 here
        3 * (1 << 30) + 12345: b"three-gib",
        size - 9: b"LAST-BYTE",
    }
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in marks.items():
            f.seek(off)
            f.write(data)
    return marks


# --------------------------------------------------------------------------
# The UDF suites' tree
# --------------------------------------------------------------------------

UDF_LONG_NAME = ("long_udf_name_" + "abcdefghijklmnopqrstuvwxyz0123456789" * 6)[:200] + ".txt"
UDF_SIZES = [0, 1, 2047, 2048, 2049, (1 << 20) + 7]
T_OLD = utc(1999, 12, 31, 23, 59, 59)
T_NEW = utc(2033, 5, 18, 3, 33, 20)


class UdfSource:
    """Description of what build_udf_tree made."""

    def __init__(self, root):
        self.root = root
        self.symlinks = {}          # '/path' -> target
        self.hardlinks = []         # [['/a', '/b'], ...]
        self.modes = {}             # '/path' -> mode bits set on purpose
        self.owned = []             # paths chowned 1234:5678
        self.tree = None            # trees.walk(root) after building


def build_udf_tree(root, unicode=True, links=True, owners=True):
    """A small tree with the features the brief lists.

    unicode: include a non-ASCII name (udfclient mangles them, see images.make_udfclient).
    links: include a symlink and a hard link (udfclient follows/duplicates them)."""
    s = UdfSource(root)
    os.makedirs(root, exist_ok=True)

    def P(rel):
        return os.path.join(root, rel.lstrip("/"))

    def wfile(rel, data, mode=0o644, mtime=T2020):
        return write(root, rel, data, mode, mtime)

    wfile("README.txt", b"udf test tree\n")
    for n in UDF_SIZES:
        wfile("sizes/size_%d.bin" % n, rand_bytes(n + 11, n))
    wfile("a/b/c/d/leaf.txt", b"four levels down\n")
    wfile("a/mid.txt", b"one level down\n")
    wfile(UDF_LONG_NAME, b"a 204 character name\n")
    if unicode:
        wfile(UNICODE_NAME, "unicode content é\n".encode())
        wfile("répertoire_ß/fichier.txt", b"in a unicode dir\n")
    wfile("modes/private", b"0700\n", mode=0o700)
    wfile("modes/public", b"0644\n", mode=0o644)
    wfile("modes/setuid", b"#!/bin/sh\n", mode=0o4755)
    s.modes = {"/modes/private": 0o700, "/modes/public": 0o644, "/modes/setuid": 0o4755}
    wfile("times/old", b"1999\n", mtime=T_OLD)
    wfile("times/new", b"2033\n", mtime=T_NEW)
    wfile("owners/u1234_g5678", b"owned\n")
    if links:
        wfile("links/target.txt", b"link target\n")
        os.symlink("target.txt", P("links/rel"))
        os.symlink("../a/b/c/d/leaf.txt", P("links/up"))
        s.symlinks = {"/links/rel": "target.txt", "/links/up": "../a/b/c/d/leaf.txt"}
        os.link(P("links/target.txt"), P("links/hard"))
        s.hardlinks = [["/links/hard", "/links/target.txt"]]
    if owners and env.is_root():
        os.chown(P("owners/u1234_g5678"), 1234, 5678)
        s.owned = ["/owners/u1234_g5678"]
        os.chmod(P("modes/setuid"), 0o4755)         # chown clears setuid
    set_dir_times(root)
    s.tree = trees.walk(root)
    return s
