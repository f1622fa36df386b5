"""Shared helpers for the discfs integration tests.

Everything a test compares against comes from an independent source: the
directory tree an image was made from, what `xorriso -osirrox` extracts, or
what pycdlib reads.  discfs output (discfs-dump JSON lines, a FUSE mount) is
turned into the same record shape so the two can be compared field by field.

Run with the system python (/usr/bin/python3): it has python3-pycdlib.
"""

import calendar
import collections
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.normpath(os.path.join(HERE, "..", ".."))

# Exit code a test module uses when it cannot run at all (CTest SKIP_RETURN_CODE).
SKIP_RC = 77

# Guard against a hung tool or daemon.  Never used as an assertion on speed:
# a command that has not finished by then is reported as hung.
HANG_GUARD = 300

SANITIZER_MARKERS = ("runtime error:", "ERROR: AddressSanitizer",
                     "ERROR: LeakSanitizer", "ERROR: UndefinedBehaviorSanitizer",
                     "ERROR: ThreadSanitizer", "WARNING: ThreadSanitizer")


# --------------------------------------------------------------------------
# Binaries and the environment
# --------------------------------------------------------------------------

def _binary(env_name, default_rel):
    path = os.environ.get(env_name)
    if path:
        return path
    return os.path.join(PROJECT, default_rel)


def discfs_bin():
    return _binary("DISCFS_BIN", os.path.join("build", "dev", "cli", "discfs"))


def discfs_dump_bin():
    return _binary("DISCFS_DUMP",
                   os.path.join("build", "dev", "tests", "tools", "discfs-dump"))


def require_binary(path, what):
    """Raise SkipTest (with a clear message) when a binary under test is absent."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise unittest.SkipTest(f"{what} not built: {path} does not exist "
                                f"(set DISCFS_BIN/DISCFS_DUMP or build the dev preset)")


def require_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise unittest.SkipTest("missing tools: " + ", ".join(missing))


def require_pycdlib():
    """Skip the calling module when pycdlib (the independent reader) is missing."""
    try:
        import pycdlib
        del pycdlib
    except ImportError:
        raise unittest.SkipTest("pycdlib missing: run with /usr/bin/python3 (python3-pycdlib)")


def fuse_unavailable_reason():
    """None when FUSE mounts can be tried here, else why not."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent: FUSE mount tests cannot run"
    try:
        fd = os.open("/dev/fuse", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        return f"/dev/fuse cannot be opened ({e.strerror}): FUSE mount tests cannot run"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (install fuse3): FUSE mount tests cannot run"
    return None


def as_user(uid, gid, cmd):
    """cmd run as uid:gid (setpriv, no supplementary groups)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"] + list(cmd)


_USER_FUSE_PROBE = r"""
import os, shutil, sys
try:
    os.close(os.open("/dev/fuse", os.O_RDWR))
except OSError as e:
    st = os.stat("/dev/fuse")
    print("cannot open /dev/fuse (%s; it is mode %04o, owner %d:%d)"
          % (e.strerror, st.st_mode & 0o7777, st.st_uid, st.st_gid))
    sys.exit(0)
fm = shutil.which("fusermount3") or "/usr/bin/fusermount3"
if not os.access(fm, os.X_OK):
    print("cannot run %s" % fm)
"""


def user_fuse_unavailable_reason(uid, gid):
    """None when a daemon run as uid:gid can mount (it opens /dev/fuse itself and runs
    fusermount3), else why not.  Asked of a child process running as that user, since
    root's own access says nothing about another user's."""
    reason = fuse_unavailable_reason()
    if reason:
        return reason
    if shutil.which("setpriv") is None:
        return f"setpriv is missing (util-linux): cannot run the daemon as uid {uid}"
    p = run(as_user(uid, gid, [sys.executable, "-c", _USER_FUSE_PROBE]), check=False,
            timeout=60)
    why = _txt(p.stdout).strip()
    if p.returncode != 0 or why:
        return (f"uid {uid} {why or 'cannot run python: ' + _txt(p.stderr).strip()[-200:]}: "
                f"a daemon run as that user cannot mount (scripts/test.sh makes /dev/fuse "
                f"0666 as Debian's udev rule does)")
    return None


def require_fuse(test, user=None):
    """Skips `test` (with the reason) where FUSE mounts cannot work or discfs is missing;
    user=(uid, gid): a daemon run as that user must be able to mount."""
    reason = fuse_unavailable_reason() if user is None else user_fuse_unavailable_reason(*user)
    if reason:
        test.skipTest(reason)
    require_binary(discfs_bin(), "discfs")


def fail_diff(test, lines, what):
    """Fails `test` listing the difference lines, if there are any."""
    if lines:
        test.fail(f"{what}:\n  " + "\n  ".join(lines))


def memo(cache, key, make):
    """cache[key], made by make() the first time (images shared by a module's tests)."""
    if key not in cache:
        cache[key] = make()
    return cache[key]


def is_root():
    return os.geteuid() == 0


def sanitizer_report(text):
    """Return the first sanitizer report line found in text, or None."""
    for line in text.splitlines():
        for marker in SANITIZER_MARKERS:
            if marker in line:
                return line.strip()
    return None


def run(cmd, check=True, timeout=HANG_GUARD, **kw):
    """subprocess.run with captured text output and a hang guard."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    try:
        p = subprocess.run(cmd, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"command hung (no exit after {timeout}s): {cmd!r}") from e
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed with exit {p.returncode}: {' '.join(map(str, cmd))}\n"
                           f"stdout: {_txt(p.stdout)[-2000:]}\nstderr: {_txt(p.stderr)[-4000:]}")
    return p


def _txt(b):
    if b is None:
        return ""
    if isinstance(b, bytes):
        return b.decode("utf-8", "replace")
    return b


class TempDir:
    """A temporary directory removed at cleanup (lazy-unmounting anything left on it)."""

    def __init__(self, prefix="discfs-test-"):
        base = os.environ.get("DISCFS_TEST_TMP") or None
        self.path = tempfile.mkdtemp(prefix=prefix, dir=base)

    def sub(self, *parts, make=True):
        p = os.path.join(self.path, *parts)
        if make:
            os.makedirs(p, exist_ok=True)
        return p

    def cleanup(self):
        if not os.path.exists(self.path):
            return
        # Never recurse into a live mount: unmount anything still mounted below us.
        for mnt in mounts_below(self.path):
            subprocess.run(["fusermount3", "-uz", mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(self.path, ignore_errors=True)


def mounts_below(path):
    """Mount points (from /proc/self/mountinfo) at or below path."""
    path = os.path.realpath(path)
    out = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                mp = fields[4].encode().decode("unicode_escape")
                if mp == path or mp.startswith(path + "/"):
                    out.append(mp)
    except OSError:
        pass
    return sorted(out, key=len, reverse=True)


def is_mountpoint_in_mountinfo(path):
    return os.path.realpath(path) in mounts_below(path)


# --------------------------------------------------------------------------
# Source tree
# --------------------------------------------------------------------------

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


def _rand_bytes(seed, n):
    return random.Random(seed).randbytes(n)


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
        special = is_root()
    os.makedirs(root, exist_ok=True)
    st = SourceTree(root, special)

    def P(rel):
        return os.path.join(root, rel.lstrip("/"))

    def wfile(rel, data, mode=0o644, mtime=T2020, atime=T_ATIME):
        p = P(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        os.utime(p, (atime, mtime))
        st.regular_files.append("/" + rel.lstrip("/"))
        return p

    wfile("README", b"discfs test tree\nsecond line\n", mtime=T2020)
    wfile("empty", b"", mtime=T1980)
    wfile("UPPER.TXT", b"upper case name\n")
    wfile("lower.txt", b"lower case name\n")
    wfile("Mixed.Case.Name.TXT", b"mixed\n")
    wfile("archive.tar.gz", _rand_bytes(7, 3000))
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
        wfile("sizes/size_%d.bin" % n, _rand_bytes(n, n))
    if big_random:
        wfile("sizes/random_1MiB.bin", _rand_bytes(1, 1 << 20))
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
    wfile("hard/three_a", _rand_bytes(3, 5000))
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
    if is_root():
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
# Image makers (all external tools: xorriso, genisoimage, pycdlib)
# --------------------------------------------------------------------------

def _xorriso(args, **kw):
    return run(["xorriso", "-abort_on", "FAILURE", "-return_with", "FAILURE", "32"] + args, **kw)


def make_xorriso_native(img, src, joliet=True, hardlinks=True, extra=()):
    """xorriso native commands: Rock Ridge (always) + Joliet, hard links recorded."""
    args = ["-outdev", img, "-blank", "as_needed",
            "-joliet", "on" if joliet else "off",
            "-hardlinks", "on" if hardlinks else "off",
            "-compliance", "joliet_long_names",
            "-volid", "DISCFS_NATIVE"]
    args += list(extra)
    args += ["-map", src, "/", "-commit"]
    _xorriso(args)
    return img


def make_xorriso_mkisofs(img, src, extra=("-R", "-J")):
    run(["xorriso", "-as", "mkisofs"] + list(extra) +
        ["-joliet-long", "-V", "DISCFS_MKISOFS", "-o", img, src])
    return img


def make_genisoimage(img, src, flags):
    """genisoimage with the given flags (e.g. ['-R','-J'], ['-J'], [], ['-iso-level','3'])."""
    cmd = ["genisoimage", "-quiet", "-input-charset", "utf-8", "-V", "DISCFS_GENISO"]
    cmd += list(flags)
    if "-J" in flags:
        cmd.append("-joliet-long")
    cmd += ["-o", img, src]
    run(cmd)
    return img


def make_zisofs(img, src):
    """Rock Ridge + Joliet image whose regular files are zisofs-compressed."""
    _xorriso(["-outdev", img, "-blank", "as_needed", "-joliet", "on",
              "-hardlinks", "on", "-compliance", "joliet_long_names",
              "-zisofs", "level=6:block_size=32k",
              "-map", src, "/",
              "-set_filter_r", "--zisofs", "/", "--",
              "-commit"])
    return img


def make_big_level3(img, src):
    """Level-3 image (multi-extent files) from src, which holds a > 4 GiB file.

    xorriso writes to a pipe and `cp --sparse=always` keeps the zero runs as
    holes, so the 4.4 GiB image costs almost no disk space or time."""
    x = subprocess.Popen(["xorriso", "-as", "mkisofs", "-iso-level", "3", "-R", "-J",
                          "-joliet-long", "-V", "DISCFS_BIG", "-o", "-", src],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    c = subprocess.run(["cp", "--sparse=always", "/dev/stdin", img], stdin=x.stdout,
                       stderr=subprocess.PIPE)
    x.stdout.close()
    err = _txt(x.stderr.read())
    rc = x.wait()
    if rc != 0 or c.returncode != 0:
        raise RuntimeError(f"making {img} failed: xorriso {rc}: {err[-2000:]} / cp: "
                           f"{_txt(c.stderr)}")
    os.chmod(img, 0o644)
    return img


def make_pycdlib_image(img, src, rock_ridge="1.09", joliet=3, interchange=3):
    """Build an image from a (simple) source tree with pycdlib's PyCdlib API.

    Regular files, directories, symlinks and hard links are added; pycdlib
    records its own times, so compare such images with pycdlib's reading.
    Returns the map of rr_path -> iso_path used."""
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=interchange, rock_ridge=rock_ridge, joliet=joliet,
            vol_ident="DISCFS_PYCDLIB")
    seen_inodes = {}
    counter = [0]
    open_files = []

    def iso_name(is_dir):
        counter[0] += 1
        return ("D%06d" % counter[0]) if is_dir else ("F%06d.DAT;1" % counter[0])

    def walk(src_dir, iso_dir, jol_dir):
        for name in sorted(os.listdir(src_dir)):
            sp = os.path.join(src_dir, name)
            lst = os.lstat(sp)
            jname = name[:64]
            jp = (jol_dir.rstrip("/") + "/" + jname) if joliet else None
            if stat.S_ISDIR(lst.st_mode):
                ip = iso_dir.rstrip("/") + "/" + iso_name(True)
                iso.add_directory(ip, rr_name=name, joliet_path=jp,
                                  file_mode=stat.S_IFDIR | stat.S_IMODE(lst.st_mode))
                walk(sp, ip, jp)
            elif stat.S_ISLNK(lst.st_mode):
                ip = iso_dir.rstrip("/") + "/" + iso_name(False)
                iso.add_symlink(symlink_path=ip, rr_symlink_name=name,
                                rr_path=os.readlink(sp), joliet_path=jp)
            elif stat.S_ISREG(lst.st_mode):
                ip = iso_dir.rstrip("/") + "/" + iso_name(False)
                key = (lst.st_dev, lst.st_ino)
                if lst.st_nlink > 1 and key in seen_inodes:
                    iso.add_hard_link(iso_old_path=seen_inodes[key], iso_new_path=ip,
                                      rr_name=name)
                    if jp:
                        iso.add_hard_link(iso_old_path=seen_inodes[key], joliet_new_path=jp)
                    continue
                f = open(sp, "rb")
                open_files.append(f)
                iso.add_fp(f, lst.st_size, ip, rr_name=name, joliet_path=jp,
                           file_mode=stat.S_IFREG | stat.S_IMODE(lst.st_mode))
                seen_inodes[key] = ip
            # device nodes and fifos: not supported by pycdlib's API

    walk(src, "/", "/")
    iso.write(img)
    iso.close()
    for f in open_files:
        f.close()
    return img


def make_multisession(img, work):
    """Grow an image with three xorriso sessions (adds, deletes, renames, rewrites).

    Returns the path of a directory that mirrors what the newest session must show."""
    expect = os.path.join(work, "expect")
    s1 = os.path.join(work, "s1")
    os.makedirs(s1)
    data = {
        "keep.txt": b"kept through all sessions\n",
        "to_delete.txt": b"deleted in session 2\n",
        "to_rename.txt": b"renamed in session 2\n",
        "rewrite.txt": b"version one\n",
        "dir1/inner.txt": b"inner one\n",
        "dir_gone/x.txt": b"dir removed in session 3\n",
        "dir_move/y.txt": b"dir renamed in session 3\n",
    }
    for rel, content in data.items():
        p = os.path.join(s1, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content)
        os.utime(p, (T_ATIME, T2020))
    os.symlink("keep.txt", os.path.join(s1, "link_to_keep"))
    set_dir_times(s1)
    _xorriso(["-dev", img, "-joliet", "on", "-hardlinks", "on",
              "-map", s1, "/", "-commit"])
    # (every session is written with -joliet on so that each keeps a Joliet tree)
    shutil.copytree(s1, expect, symlinks=True)

    # Session 2: add, delete, rename, replace content.
    s2 = os.path.join(work, "s2")
    os.makedirs(os.path.join(s2, "added_dir"))
    with open(os.path.join(s2, "added.txt"), "wb") as f:
        f.write(b"added in session 2\n")
    with open(os.path.join(s2, "added_dir", "z.bin"), "wb") as f:
        f.write(_rand_bytes(22, 70000))
    with open(os.path.join(s2, "rewrite.txt"), "wb") as f:
        f.write(b"version two, longer than version one\n")
    for p in ("added.txt", "added_dir/z.bin", "rewrite.txt"):
        os.utime(os.path.join(s2, p), (T_ATIME, T2100))
    os.utime(os.path.join(s2, "added_dir"), (T_ATIME, T1980))
    _xorriso(["-dev", img, "-joliet", "on", "-hardlinks", "on",
              "-rm", "/to_delete.txt", "--",
              "-mv", "/to_rename.txt", "/renamed.txt", "--",
              "-map", os.path.join(s2, "added.txt"), "/added.txt",
              "-map", os.path.join(s2, "added_dir"), "/added_dir",
              "-map", os.path.join(s2, "rewrite.txt"), "/rewrite.txt",
              "-commit"])
    os.remove(os.path.join(expect, "to_delete.txt"))
    os.rename(os.path.join(expect, "to_rename.txt"), os.path.join(expect, "renamed.txt"))
    shutil.copy2(os.path.join(s2, "added.txt"), os.path.join(expect, "added.txt"))
    shutil.copytree(os.path.join(s2, "added_dir"), os.path.join(expect, "added_dir"))
    shutil.copy2(os.path.join(s2, "rewrite.txt"), os.path.join(expect, "rewrite.txt"))

    # Session 3: remove a directory, rename a directory, rewrite again, add a symlink.
    s3 = os.path.join(work, "s3")
    os.makedirs(s3)
    with open(os.path.join(s3, "rewrite.txt"), "wb") as f:
        f.write(b"v3\n")
    os.utime(os.path.join(s3, "rewrite.txt"), (T_ATIME, T1950))
    _xorriso(["-dev", img, "-joliet", "on", "-hardlinks", "on",
              "-rm_r", "/dir_gone", "--",
              "-mv", "/dir_move", "/dir_moved", "--",
              "-map", os.path.join(s3, "rewrite.txt"), "/rewrite.txt",
              "-commit"])
    shutil.rmtree(os.path.join(expect, "dir_gone"))
    os.rename(os.path.join(expect, "dir_move"), os.path.join(expect, "dir_moved"))
    shutil.copy2(os.path.join(s3, "rewrite.txt"), os.path.join(expect, "rewrite.txt"))
    return expect


def session_count(img):
    """Number of sessions xorriso sees in img."""
    p = run(["xorriso", "-indev", img, "-toc"], check=True)
    out = _txt(p.stdout) + _txt(p.stderr)
    return sum(1 for line in out.splitlines() if line.startswith("ISO session"))


# --------------------------------------------------------------------------
# Independent readers
# --------------------------------------------------------------------------

def xorriso_extract(img, dest, devices=True):
    """Extract the whole (Rock Ridge) tree with xorriso -osirrox, hard links kept.

    Device nodes are restored when devices is set and xorriso can (it cannot
    for mkisofs-style PN records, whose major/minor it misreads): then the
    extraction is retried without them.  Returns True if devices were restored."""
    base = ["-for_backup", "-hardlinks", "on", "-indev", img, "-extract", "/", dest]
    if devices:
        try:
            _xorriso(["-osirrox", "on:device_files:auto_chmod_on"] + base)
            return True
        except RuntimeError:
            shutil.rmtree(dest, ignore_errors=True)
    _xorriso(["-osirrox", "on:auto_chmod_on"] + base)
    return False


def pycdlib_open(img):
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.open(img)
    return iso


def iso_name_shown(name):
    """How a plain ISO 9660 name is shown: as recorded, ';N' and a trailing '.' dropped."""
    if ";" in name:
        base, ver = name.rsplit(";", 1)
        if ver.isdigit():
            name = base
    if name.endswith("."):
        name = name[:-1]
    return name


def _dr_date_to_epoch(d):
    """ISO 9660 7-byte (DirectoryRecordDate) or 17-byte (VolumeDescriptorDate) date to epoch."""
    if d is None:
        return None
    if hasattr(d, "years_since_1900"):
        y = 1900 + d.years_since_1900
        secs = d.second
    else:
        y = d.year
        secs = d.second
    if not (1 <= d.month <= 12 and 1 <= d.day_of_month <= 31 and d.hour < 24
            and d.minute < 60 and secs < 61):
        return None                  # unspecified (all zero) or malformed: unknown
    t = calendar.timegm((y, d.month, d.day_of_month, d.hour, d.minute, secs, 0, 0, 0))
    off = d.gmtoffset
    if off > 127:
        off -= 256
    # ECMA-119 9.1.5: -48..+52 quarter hours.  Writers do record nonsense
    # (genisoimage 1.1.11 writes -96 for dates in 2100); like Linux isofs,
    # treat an offset out of range as 0.
    if not -48 <= off <= 52:
        off = 0
    return t - off * 15 * 60


Rec = collections.namedtuple(
    "Rec", "type mode uid gid nlink size mtime target rdev sha256 ino atime ctime error")
Rec.__new__.__defaults__ = (None,) * len(Rec._fields)

# Fields that the equality helpers look at by default.
COMPARE_ALL = ("type", "mode", "uid", "gid", "nlink", "size", "mtime", "target", "rdev",
               "sha256")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


_TYPE_OF = ((stat.S_ISREG, "reg"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "lnk"),
            (stat.S_ISCHR, "chr"), (stat.S_ISBLK, "blk"), (stat.S_ISFIFO, "fifo"),
            (stat.S_ISSOCK, "sock"))


def type_of(mode):
    for f, name in _TYPE_OF:
        if f(mode):
            return name
    return "?"


def walk(root, data=True, skip=None):
    """Record every entry below root: {'/rel/path': Rec}.  Root itself is '/'."""
    out = {}

    def rec_of(path):
        st = os.lstat(path)
        t = type_of(st.st_mode)
        # Whole seconds, rounded down (also before 1970), like the dump's times.
        r = Rec(type=t, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                nlink=st.st_nlink, size=st.st_size if t != "dir" else None,
                mtime=st.st_mtime_ns // 10**9, ino=st.st_ino,
                atime=st.st_atime_ns // 10**9, ctime=st.st_ctime_ns // 10**9)
        if t == "lnk":
            r = r._replace(target=os.readlink(path))
        elif t in ("chr", "blk"):
            r = r._replace(rdev=(os.major(st.st_rdev), os.minor(st.st_rdev)))
        elif t == "reg" and data:
            try:
                r = r._replace(sha256=sha256_file(path))
            except OSError as e:
                r = r._replace(error=f"{e.__class__.__name__}: {e.strerror}")
        return r

    def fail(e):
        raise e

    out["/"] = rec_of(root)
    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else "/" + rel_dir
        for name in sorted(dirnames + filenames):
            rel = rel_dir + "/" + name
            if skip and skip(rel):
                continue
            out[rel] = rec_of(os.path.join(dirpath, name))
        dirnames[:] = [d for d in dirnames if not (skip and skip(rel_dir + "/" + d))]
    return out


def pycdlib_tree(img, kind, data=True):
    """Records of one tree of img as pycdlib reads it; kind is 'rr', 'joliet' or 'iso'.

    Names: Rock Ridge NM names; Joliet names decoded from UCS-2 and plain ISO
    9660 names as recorded, both through iso_name_shown (';N' and a trailing
    '.' dropped).  Rock Ridge relocation (CL/RE) is resolved the way RRIP
    describes it.  File data is fetched with get_file_from_iso_fp; pycdlib
    1.12 gets multi-extent files wrong, so those are read extent by extent.
    Fields the tree does not record stay None (and are not compared)."""
    iso = pycdlib_open(img)
    try:
        with open(img, "rb") as raw:
            return _PycdlibWalker(iso, raw, kind, data).run()
    finally:
        iso.close()


class _PycdlibWalker:
    def __init__(self, iso, raw, kind, data):
        self.iso, self.raw, self.kind, self.data = iso, raw, kind, data
        self.key = {"rr": "rr_path", "joliet": "joliet_path", "iso": "iso_path"}[kind]
        self.out = {}

    def run(self):
        root = self.iso.get_record(**{self.key: "/"})
        dot = next(c for c in root.children if c is not None and c.is_dot())
        self.out["/"] = self.rec_for([dot], "/", "/")
        self.walk_dir(root, "", "")
        return self.out

    def name_of(self, record):
        if self.kind == "rr":
            return record.rock_ridge.name().decode("utf-8", "surrogateescape")
        if self.kind == "joliet":
            return iso_name_shown(record.file_identifier().decode("utf-16_be"))
        return iso_name_shown(record.file_identifier().decode("latin-1"))

    def walk_dir(self, dir_rec, shown_dir, lookup_dir):
        groups = collections.OrderedDict()
        for c in dir_rec.children:
            if c is None or c.is_dot() or c.is_dotdot():
                continue
            if self.kind == "rr" and c.rock_ridge is not None and c.rock_ridge.relocated_record():
                continue                      # reached through its CL entry instead
            groups.setdefault(c.file_identifier(), []).append(c)
        for ident, records in groups.items():
            first = records[0]
            name = self.name_of(first)
            shown = shown_dir + "/" + name
            if self.kind == "joliet":
                lookup = lookup_dir + "/" + ident.decode("utf-16_be")
            elif self.kind == "rr":
                lookup = lookup_dir + "/" + name
            else:
                lookup = lookup_dir + "/" + ident.decode("latin-1")
            target_dir = None
            if first.is_dir():
                target_dir = first
            elif (self.kind == "rr" and first.rock_ridge is not None
                  and first.rock_ridge.child_link_record_exists()):
                target_dir = first.rock_ridge.cl_to_moved_dr
            if target_dir is not None:
                self.out[shown] = self.rec_for([target_dir], shown, lookup, is_dir=True)
                self.walk_dir(target_dir, shown, lookup)
            else:
                self.out[shown] = self.rec_for(records, shown, lookup)

    def rec_for(self, records, shown, lookup, is_dir=None):
        record = records[0]
        if is_dir is None:
            is_dir = record.is_dir()
        r = Rec(type="dir" if is_dir else "reg", mtime=_dr_date_to_epoch(record.date))
        rr = record.rock_ridge if self.kind == "rr" else None
        if rr is not None:
            r = self.apply_rock_ridge(r, rr)
        if r.type == "reg":
            size = sum(x.get_data_length() for x in records)
            r = r._replace(size=size)
            if self.data:
                r = r._replace(sha256=self.digest(records, lookup))
        elif r.type in ("chr", "blk", "fifo", "sock"):
            r = r._replace(size=0)
        return r

    @staticmethod
    def apply_rock_ridge(r, rr):
        def entry(name):
            return getattr(rr.dr_entries, name) or getattr(rr.ce_entries, name)
        px, tf, pn = entry("px_record"), entry("tf_record"), entry("pn_record")
        if px is not None:
            m = px.posix_file_mode
            r = r._replace(type=type_of(m), mode=stat.S_IMODE(m), uid=px.posix_user_id,
                           gid=px.posix_group_id, nlink=px.posix_file_links,
                           ino=px.posix_serial_number or None)
        if tf is not None:
            # RRIP TF flag bits: 0 creation, 1 modify, 2 access, 3 attributes.
            # pycdlib names its fields in another order (its 'access_time'
            # holds bit 1), so go by position.
            t = [getattr(tf, f) for f in tf.FIELDNAMES]
            r = r._replace(mtime=_dr_date_to_epoch(t[1]) if t[1] else r.mtime,
                           atime=_dr_date_to_epoch(t[2]), ctime=_dr_date_to_epoch(t[3]))
        if rr.is_symlink():
            target = rr.symlink_path().decode("utf-8", "surrogateescape")
            r = r._replace(type="lnk", target=target, size=len(target.encode()))
        if pn is not None and r.type in ("chr", "blk"):
            if pn.dev_t_high:
                # mkisofs style: major in the high word, minor in the low word
                r = r._replace(rdev=(pn.dev_t_high, pn.dev_t_low))
            else:
                # libisofs style: the whole (glibc) dev_t in the low word
                r = r._replace(rdev=(os.major(pn.dev_t_low), os.minor(pn.dev_t_low)))
        return r

    def digest(self, records, lookup):
        h = hashlib.sha256()
        if len(records) == 1:
            if records[0].get_data_length() == 0:
                return h.hexdigest()

            class W:
                def write(self, b):
                    h.update(b)
            self.iso.get_file_from_iso_fp(W(), **{self.key: lookup})
            return h.hexdigest()
        # Multi-extent: every record but the last has the multi-extent flag
        # (0x80); writers lay the extents out in order.
        ordered = ([x for x in sorted(records, key=lambda x: x.extent_location())
                    if x.file_flags & 0x80] +
                   [x for x in records if not x.file_flags & 0x80])
        for x in ordered:
            self.raw.seek(x.extent_location() * 2048)
            left = x.get_data_length()
            while left:
                b = self.raw.read(min(left, 1 << 20))
                if not b:
                    raise AssertionError(f"image ends inside the extent of {lookup}")
                h.update(b)
                left -= len(b)
        return h.hexdigest()


def pycdlib_extent_count(img, iso_path):
    """How many directory records (extents) pycdlib lists for the ISO 9660 name iso_path."""
    iso = pycdlib_open(img)
    try:
        parent, name = iso_path.rsplit("/", 1)
        d = iso.get_record(iso_path=parent or "/")
        return sum(1 for c in d.children
                   if c is not None and c.file_identifier().decode("latin-1") == name)
    finally:
        iso.close()


def zisofs_files(img):
    """Paths of files xorriso reads through its zisofs decoder (i.e. stored compressed)."""
    p = run(["xorriso", "-indev", img, "-find", "/", "-type", "f", "-exec", "show_stream"])
    out = set()
    for line in _txt(p.stdout).splitlines():
        if "zisofs-decode" in line and line.startswith("'"):
            out.add(line[1:line.index("' <")])
    return out


def rock_ridge_reference(img, workdir, name="x"):
    """What two independent readers agree a Rock Ridge image holds.

    Metadata (mode, owners, nlink, times, symlink targets, device numbers,
    PX serial numbers as ino) from pycdlib; sizes and content from an
    `xorriso -osirrox` extraction (which decodes zisofs).  Raises if the two
    readers disagree on paths or types, because then neither can be trusted
    as the reference."""
    dest = os.path.join(workdir, "extract-" + name)
    xorriso_extract(img, dest)
    ext = walk(dest)
    try:
        ref = pycdlib_tree(img, "rr", data=True)
    except Exception as e:           # pycdlib 1.12 cannot parse ZF (zisofs) entries
        if "SUSP" not in str(e):
            raise
        return extraction_reference(ext), ext
    for p, r in list(ref.items()):
        if p not in ext and r.type in ("chr", "blk"):
            ext[p] = r               # xorriso could not restore it; pycdlib is the reference
    if set(ref) != set(ext):
        raise RuntimeError(f"pycdlib and xorriso disagree on the paths of {img}: "
                           f"only pycdlib {sorted(set(ref) - set(ext))[:10]}, "
                           f"only xorriso {sorted(set(ext) - set(ref))[:10]}")
    for p, r in ref.items():
        e = ext[p]
        if r.type != e.type:
            raise RuntimeError(f"pycdlib and xorriso disagree on the type of {p} in {img}")
        if r.type == "reg":
            ref[p] = r._replace(size=e.size, sha256=e.sha256)
        elif r.type == "lnk":
            # pycdlib 1.12 drops components after a mid-path ROOT flag ('.///file'
            # reads as '/file'); xorriso renders SL like Linux isofs and libarchive.
            ref[p] = r._replace(target=e.target, size=e.size)
        elif r.type in ("chr", "blk") and r.rdev != e.rdev:
            raise RuntimeError(f"pycdlib {r.rdev} and xorriso {e.rdev} disagree on {p}")
    return ref, ext


def extraction_reference(ext):
    """Reference records from an xorriso extraction alone (when pycdlib cannot
    read the image): what extraction cannot carry over is left unknown (None):
    owners and times of symlinks, directory link counts, atime/ctime."""
    groups = link_groups(ext)
    ino_of = {}
    for n, g in enumerate(groups, 1):
        for p in g:
            ino_of[p] = -n
    ref = {}
    for p, r in ext.items():
        r = r._replace(atime=None, ctime=None, ino=ino_of.get(p))
        if r.type == "dir":
            r = r._replace(nlink=None)
        if r.type == "lnk":
            r = r._replace(uid=None, gid=None, mtime=None, mode=None)
        if p == "/":
            r = r._replace(mode=None, uid=None, gid=None, mtime=None)
        ref[p] = r
    return ref


def subdir_counts(tree):
    """{dir path: number of direct subdirectories}."""
    counts = {p: 0 for p, r in tree.items() if r.type == "dir"}
    for p, r in tree.items():
        if r.type == "dir" and p != "/":
            parent = p.rsplit("/", 1)[0] or "/"
            if parent in counts:
                counts[parent] += 1
    return counts


def dir_nlink_problems(ref, actual):
    """A directory's st_nlink must be what Rock Ridge recorded (ref) or 2 + subdirs."""
    counts = subdir_counts(actual)
    out = []
    for p, r in sorted(actual.items()):
        if r.type != "dir" or p not in ref:
            continue
        if ref[p].nlink is None:
            continue                 # the reference does not know what was recorded
        allowed = {2 + counts[p], ref[p].nlink}
        if r.nlink not in allowed:
            out.append(f"{p!r}: directory nlink {r.nlink}, expected one of {sorted(allowed)}")
    return out


def inode_problems(actual, allowed_groups):
    """Entries sharing an inode number that are not hard links of each other.

    allowed_groups: iterable of path lists that are one file (hard links)."""
    allowed = {}
    for g in allowed_groups:
        for p in g:
            allowed[p] = frozenset(g)
    by_ino = collections.defaultdict(list)
    for p, r in actual.items():
        if r.ino is None:
            continue
        by_ino[r.ino].append(p)
    out = []
    for ino, paths in sorted(by_ino.items(), key=lambda kv: kv[1]):
        if len(paths) < 2:
            continue
        ok = all(p in allowed and set(paths) <= allowed[p] for p in paths)
        if not ok:
            out.append(f"ino {ino} shared by unrelated entries: {sorted(paths)[:6]}")
    return out


# --------------------------------------------------------------------------
# discfs-dump
# --------------------------------------------------------------------------

class DumpResult:
    def __init__(self, records, raw, returncode, stderr):
        self.records = records      # {'/path': Rec}
        self.raw = raw              # {'/path': dict}
        self.returncode = returncode
        self.stderr = stderr


def dump(image, tree=None, data=True, extra=(), check=True, timeout=HANG_GUARD):
    """Run discfs-dump and parse its JSON lines into {path: Rec}.

    Raises AssertionError if it fails (when check), prints a sanitizer report,
    emits invalid JSON, or lists a path twice."""
    cmd = [discfs_dump_bin()]
    if tree:
        cmd += ["--tree", tree]
    if not data:
        cmd.append("--no-data")
    cmd += list(extra) + [image]
    p = run(cmd, check=False, timeout=timeout)
    stderr = _txt(p.stderr)
    rep = sanitizer_report(stderr)
    if rep:
        raise AssertionError(f"sanitizer report from discfs-dump {image}: {rep}\n{stderr[-6000:]}")
    if check and p.returncode != 0:
        raise AssertionError(f"discfs-dump exited {p.returncode} on {image}\nstderr: {stderr[-4000:]}")
    records, raw = {}, {}
    for n, line in enumerate(_txt(p.stdout).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise AssertionError(f"discfs-dump line {n} is not JSON: {line[:300]!r}") from e
        path = obj.get("path")
        if not isinstance(path, str):
            raise AssertionError(f"discfs-dump line {n} has no path: {line[:300]!r}")
        if path in raw:
            raise AssertionError(f"discfs-dump lists {path!r} twice")
        raw[path] = obj
        rdev = obj.get("rdev")
        records[path] = Rec(type=obj.get("type"), mode=obj.get("mode"), uid=obj.get("uid"),
                            gid=obj.get("gid"), nlink=obj.get("nlink"),
                            size=obj.get("size") if obj.get("type") != "dir" else None,
                            mtime=obj.get("mtime"), target=obj.get("target"),
                            rdev=tuple(rdev) if rdev is not None else None,
                            sha256=obj.get("sha256"), ino=obj.get("ino"),
                            atime=obj.get("atime"), ctime=obj.get("ctime"),
                            error=obj.get("error"))
    return DumpResult(records, raw, p.returncode, stderr)


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def diff_trees(expected, actual, fields=COMPARE_ALL, field_filter=None, max_lines=60,
               subset=False):
    """Human-readable differences between two {path: Rec} maps (empty list if equal).

    field_filter(path, exp_rec, field) -> bool may exclude a field for an entry.
    subset: entries of actual that expected does not name are fine."""
    lines = []
    missing = sorted(set(expected) - set(actual))
    extra = [] if subset else sorted(set(actual) - set(expected))
    for p in missing:
        lines.append(f"missing: {p!r} (expected {expected[p].type})")
    for p in extra:
        lines.append(f"unexpected: {p!r} ({actual[p].type})")
    for p in sorted(set(expected) & set(actual)):
        e, a = expected[p], actual[p]
        if a.error:
            lines.append(f"{p!r}: error reported: {a.error}")
        for f in fields:
            if f == "type" or e.type == a.type:
                pass
            else:
                continue
            if field_filter and not field_filter(p, e, f):
                continue
            ev, av = getattr(e, f), getattr(a, f)
            if ev is None and f not in ("type",):
                continue   # the reference does not know this field
            if f == "mode" and ev is not None and av is not None:
                if ev != av:
                    lines.append(f"{p!r}: mode expected {ev:#o} got {av:#o}")
                continue
            if ev != av:
                lines.append(f"{p!r}: {f} expected {ev!r} got {av!r}")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... and {len(lines) - max_lines} more"]
    return lines


def link_groups(tree):
    """Sets of non-directory paths that share an inode number (size >= 2 only)."""
    by_ino = collections.defaultdict(set)
    for p, r in tree.items():
        if r.type != "dir" and r.ino is not None:
            by_ino[r.ino].add(p)
    return sorted(sorted(g) for g in by_ino.values() if len(g) > 1)


# --------------------------------------------------------------------------
# FUSE mount
# --------------------------------------------------------------------------

class DaemonDied(AssertionError):
    pass


class Mount:
    """Mount IMAGE on MOUNTPOINT with `discfs mount -f ...` for the life of a with-block.

    The daemon's stderr is collected into a file.  Entry waits until the mount
    point's st_dev changes while polling the daemon: if it exits first, entry
    raises DaemonDied carrying its exit code and stderr.  Exit unmounts
    (fusermount3 -u, then -uz), waits for the daemon, and fails on sanitizer
    reports in its stderr."""

    def __init__(self, image, mountpoint, options=(), tree=None, args=None,
                 ready_guard=60):
        self.image = image
        self.mountpoint = mountpoint
        self.options = list(options)
        self.tree = tree
        self.args = args
        self.ready_guard = ready_guard
        self.proc = None
        self.stderr_path = None
        self._stderr_f = None

    def command(self):
        if self.args is not None:
            return [discfs_bin()] + list(self.args)
        cmd = [discfs_bin(), "mount", "-f"]
        if self.tree:
            cmd += ["--tree", self.tree]
        if self.options:
            cmd += ["-o", ",".join(self.options)]
        return cmd + [self.image, self.mountpoint]

    def stderr_text(self):
        if not self.stderr_path or not os.path.exists(self.stderr_path):
            return ""
        with open(self.stderr_path, "rb") as f:
            return _txt(f.read())

    def __enter__(self):
        os.makedirs(self.mountpoint, exist_ok=True)
        dev0 = os.stat(self.mountpoint).st_dev
        fd, self.stderr_path = tempfile.mkstemp(prefix="discfs-stderr-", suffix=".log")
        self._stderr_f = os.fdopen(fd, "wb")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr_f, stderr=self._stderr_f)
        deadline = time.monotonic() + self.ready_guard
        delay = 0.002
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._close_log()
                err = self.stderr_text()
                self._remove_log()
                self._cleanup_stray()
                raise DaemonDied(f"discfs exited with {rc} before the mount was live: "
                                 f"{' '.join(self.command())}\n--- stderr ---\n{err[-6000:]}")
            try:
                if os.stat(self.mountpoint).st_dev != dev0:
                    break
            except OSError:
                # Mounted, but the root cannot be stat'ed (e.g. EIO): still live.
                if is_mountpoint_in_mountinfo(self.mountpoint):
                    break
            if time.monotonic() > deadline:
                self._stop()
                err = self.stderr_text()
                self._remove_log()
                raise AssertionError(f"mount never became live (hang guard {self.ready_guard}s): "
                                     f"{' '.join(self.command())}\n{err[-4000:]}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        """Raise DaemonDied if the daemon has gone away."""
        if self.proc is not None and self.proc.poll() is not None:
            raise DaemonDied(f"discfs daemon died (exit {self.proc.returncode}) during the test"
                             f"\n--- stderr ---\n{self.stderr_text()[-6000:]}")

    def _close_log(self):
        if self._stderr_f:
            self._stderr_f.close()
            self._stderr_f = None

    def _remove_log(self):
        try:
            os.unlink(self.stderr_path)
        except OSError:
            pass

    def _cleanup_stray(self):
        if is_mountpoint_in_mountinfo(self.mountpoint):
            subprocess.run(["fusermount3", "-uz", self.mountpoint],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _stop(self):
        problems = []
        died_early = self.proc.poll() is not None
        if is_mountpoint_in_mountinfo(self.mountpoint):
            p = subprocess.run(["fusermount3", "-u", self.mountpoint],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if p.returncode != 0:
                problems.append("fusermount3 -u failed: " + _txt(p.stderr).strip())
                subprocess.run(["fusermount3", "-uz", self.mountpoint],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            problems.append("daemon did not exit after unmount; killed")
        self._close_log()
        err = self.stderr_text()
        rep = sanitizer_report(err)
        if rep:
            problems.append(f"sanitizer report in daemon stderr: {rep}\n{err[-6000:]}")
        if died_early:
            problems.append(f"daemon died (exit {rc}) while mounted\n{err[-6000:]}")
        elif rc not in (0,):
            problems.append(f"daemon exited {rc} after unmount\n{err[-3000:]}")
        return problems

    def __exit__(self, exc_type, exc, tb):
        problems = self._stop()
        self._remove_log()
        if problems and exc_type is None:
            raise AssertionError("; ".join(problems))
        if problems and exc is not None:
            # Keep the original failure, but make sure the daemon's trouble is visible.
            sys.stderr.write("\n[discfs mount trouble] " + "; ".join(problems) + "\n")
        return False


# --------------------------------------------------------------------------
# Runner: `python3 -m discfs_testlib [-v] MODULE...`
# --------------------------------------------------------------------------

def main(argv=None):
    """Run test modules like `python3 -m unittest`, but exit SKIP_RC (77) when
    nothing ran because everything was skipped (e.g. no FUSE), so that CTest
    shows the module as skipped rather than passed."""
    argv = sys.argv[1:] if argv is None else argv
    prog = unittest.main(module=None, argv=["discfs_testlib"] + list(argv), exit=False)
    r = prog.result
    skipped_tests = sum(1 for t, _ in r.skipped if isinstance(t, unittest.TestCase))
    ran = r.testsRun - skipped_tests
    if not r.wasSuccessful():
        return 1
    if ran == 0 and r.skipped:
        sys.stderr.write("discfs_testlib: every test was skipped\n")
        return SKIP_RC
    return 0


if __name__ == "__main__":
    sys.exit(main())
