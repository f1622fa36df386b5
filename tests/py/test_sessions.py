"""Sessions of grown (multisession) images: --session N, --sessions, the default.

Images are grown by xorriso (`-dev IMG ... -commit`, one session per run):
files added, rewritten, deleted, chmod'ed, directories renamed and removed.
The reference for session N is what xorriso itself extracts after
`-load sbsector START` (START from `xorriso -indev IMG -toc`).  discfs shows
the same session three ways, each compared with that reference: discfs-dump
--session N, a FUSE mount with --session N (or -o session=N), and MNT/N of a
--sessions mount (or -o sessions).  Also: the default is the newest session,
bad session numbers are refused with one clear line, a single-session image
(first session at LBA 0) still has a session 1, and a grown image whose
session chain is broken or cut short still shows what is intact.

FUSE parts skip (with the reason) where /dev/fuse is missing.
Run: /usr/bin/python3 -m discfs_testlib -v test_sessions   (from tests/py)
"""

import collections
import errno
import hashlib
import os
import re
import sys
import unittest

import discfs_testlib as L

_tmp = None
_cache = {}

# What an extraction can tell about each entry (see L.extraction_reference).
FIELDS = ("type", "mode", "uid", "gid", "nlink", "size", "mtime", "target", "sha256")


def setUpModule():
    global _tmp
    L.require_binary(L.discfs_dump_bin(), "discfs-dump")
    L.require_tools("xorriso", "genisoimage")
    _tmp = L.TempDir(prefix="discfs-sessions-")


def tearDownModule():
    if _tmp is not None:
        _tmp.cleanup()


def cached(key, make):
    return L.memo(_cache, key, make)


require_fuse = L.require_fuse


fail_diff = L.fail_diff


def xorriso(args, **kw):
    return L.run(["xorriso", "-abort_on", "FAILURE", "-return_with", "FAILURE", "32"] + args, **kw)


# ---------------------------------------------------------------------------
# What xorriso says
# ---------------------------------------------------------------------------

TOC_LINE = re.compile(r"^ISO session\s*:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)s\s*,")


def toc(img):
    """[(session number, start LBA, size in blocks)] from `xorriso -indev IMG -toc`."""
    p = L.run(["xorriso", "-abort_on", "NEVER", "-indev", img, "-toc"], check=False)
    out = L._txt(p.stdout) + L._txt(p.stderr)
    rows = []
    for line in out.splitlines():
        m = TOC_LINE.match(line.strip())
        if m:
            rows.append(tuple(int(x) for x in m.groups()))
    return rows


def extract_session(img, start, dest):
    """What xorriso extracts of the session starting at LBA start: {path: Rec}."""
    xorriso(["-osirrox", "on:auto_chmod_on", "-for_backup", "-hardlinks", "on",
             "-load", "sbsector", str(start), "-indev", img, "-extract", "/", dest])
    return L.extraction_reference(L.walk(dest))


def session_refs(img, name):
    """{session number: reference records}, one xorriso extraction per session."""
    def make():
        rows = toc(img)
        if not rows:
            raise RuntimeError(f"precondition: xorriso lists no session of {img}")
        refs = {}
        for n, start, _ in rows:
            refs[n] = extract_session(img, start, os.path.join(_tmp.path, f"x-{name}-{n}"))
        return refs
    return cached(("refs", name), make)


def sha(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------

def wfile(root, rel, data, mode=0o644, mtime=L.T2020):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
    os.utime(p, (L.T_ATIME, mtime))
    return p


def three_session_image():
    """Three xorriso sessions; every kind of change a user makes between them."""
    def make():
        work = _tmp.sub("three")
        img = os.path.join(work, "three.iso")
        s1 = os.path.join(work, "s1")
        wfile(s1, "README", b"three sessions\n")
        wfile(s1, "docs/a.txt", b"doc a\n")
        wfile(s1, "docs/b.txt", b"doc b\n", mtime=L.T1980)
        wfile(s1, "docs/sub/c.txt", b"doc c, removed with its folder in session 3\n")
        wfile(s1, "data/big.bin", L._rand_bytes(11, 200003))
        wfile(s1, "data/rewrite.txt", b"version one\n")
        wfile(s1, "data/untouched.bin", L._rand_bytes(12, 70001), mtime=L.T1950)
        wfile(s1, "bin/tool", b"#!/bin/sh\necho tool\n", mode=0o755)
        wfile(s1, "bin/setuid", b"#!/bin/sh\n", mode=0o4755)
        wfile(s1, "private", b"secret\n", mode=0o600)
        wfile(s1, "to_delete.txt", b"deleted in session 2\n")
        wfile(s1, "olddir/x.txt", b"in a folder renamed in session 2\n")
        wfile(s1, "olddir/deeper/y.txt", b"deeper in the renamed folder\n")
        wfile(s1, "hard/h1", b"a hard link pair\n")
        os.link(os.path.join(s1, "hard/h1"), os.path.join(s1, "hard/h2"))
        os.symlink("docs/a.txt", os.path.join(s1, "link_rel"))
        os.symlink("/etc/hostname", os.path.join(s1, "link_abs"))
        if L.is_root():
            wfile(s1, "owned", b"owned by 1234:5678\n")
            os.chown(os.path.join(s1, "owned"), 1234, 5678)
        L.set_dir_times(s1)
        xorriso(["-hardlinks", "on", "-dev", img, "-map", s1, "/", "-commit"])

        s2 = os.path.join(work, "s2")
        wfile(s2, "new.txt", b"added in session 2\n", mtime=L.T2100)
        wfile(s2, "newdir/n1.bin", L._rand_bytes(21, 5000))
        wfile(s2, "newdir/n2.txt", b"second new file\n")
        wfile(s2, "rewrite.txt", b"version two, longer than version one\n", mtime=L.T2100)
        L.set_dir_times(s2)
        xorriso(["-hardlinks", "on", "-dev", img,
                 "-map", os.path.join(s2, "new.txt"), "/new.txt",
                 "-map", os.path.join(s2, "newdir"), "/newdir",
                 "-map", os.path.join(s2, "rewrite.txt"), "/data/rewrite.txt",
                 "-rm", "/to_delete.txt", "--",
                 "-mv", "/olddir", "/renamed_dir", "--",
                 "-chmod", "0640", "/docs/b.txt", "--",
                 "-lns", "docs/b.txt", "/link_new",
                 "-commit"])

        s3 = os.path.join(work, "s3")
        wfile(s3, "big.bin", L._rand_bytes(31, 150001), mtime=L.T2100)
        wfile(s3, "rewrite.txt", b"v3\n", mtime=L.T1950)
        wfile(s3, "late/l.txt", b"added in session 3\n")
        L.set_dir_times(s3)
        xorriso(["-hardlinks", "on", "-dev", img,
                 "-rm_r", "/docs/sub", "--",
                 "-mv", "/README", "/README.md", "--",
                 "-mv", "/newdir", "/newdir_moved", "--",
                 "-map", os.path.join(s3, "big.bin"), "/data/big.bin",
                 "-map", os.path.join(s3, "rewrite.txt"), "/data/rewrite.txt",
                 "-map", os.path.join(s3, "late"), "/late",
                 "-mkdir", "/emptydir", "--",
                 "-rm", "/link_abs", "--",
                 "-commit"])
        rows = toc(img)
        if len(rows) != 3:
            raise RuntimeError(f"precondition: xorriso should list 3 sessions of {img}: {rows}")
        return img
    return cached("three", make)


def five_session_image():
    """Five small xorriso sessions, each adding, rewriting, deleting and renaming."""
    def make():
        work = _tmp.sub("five")
        img = os.path.join(work, "five.iso")
        base = os.path.join(work, "base")
        wfile(base, "counter.txt", b"1\n")
        wfile(base, "keep.bin", L._rand_bytes(50, 40000))
        wfile(base, "d1/inside.txt", b"the folder is renamed every session\n")
        wfile(base, "f1.txt", b"file 1\n")
        L.set_dir_times(base)
        xorriso(["-dev", img, "-map", base, "/", "-commit"])
        for k in range(2, 6):
            sk = os.path.join(work, f"s{k}")
            wfile(sk, "counter.txt", b"%d\n" % k * k, mtime=L.T2020 + k)
            wfile(sk, f"f{k}.txt", b"file %d\n" % k)
            args = ["-dev", img,
                    "-map", os.path.join(sk, "counter.txt"), "/counter.txt",
                    "-map", os.path.join(sk, f"f{k}.txt"), f"/f{k}.txt",
                    "-mv", f"/d{k - 1}", f"/d{k}", "--"]
            if k >= 3:
                args += ["-rm", f"/f{k - 2}.txt", "--"]
            xorriso(args + ["-commit"])
        rows = toc(img)
        if len(rows) != 5:
            raise RuntimeError(f"precondition: xorriso should list 5 sessions of {img}: {rows}")
        return img
    return cached("five", make)


def single_session_image():
    """genisoimage writes its only session at LBA 0 (no libisoburn chain)."""
    def make():
        work = _tmp.sub("single")
        src = os.path.join(work, "src")
        wfile(src, "one.txt", b"only session\n")
        wfile(src, "dir/two.bin", L._rand_bytes(60, 9000))
        os.symlink("one.txt", os.path.join(src, "link"))
        L.set_dir_times(src)
        img = L.make_genisoimage(os.path.join(work, "single.iso"), src, ["-R", "-J"])
        rows = toc(img)
        if len(rows) != 1 or rows[0][1] != 0:
            raise RuntimeError(f"precondition: xorriso should list one session at LBA 0: {rows}")
        return img
    return cached("single", make)


def copy_image(src, dst):
    with open(src, "rb") as a, open(dst, "wb") as b:
        while True:
            chunk = a.read(1 << 20)
            if not chunk:
                break
            b.write(chunk)
    return dst


def zero_descriptors(img, start):
    """Zero the volume descriptors of the session starting at start (LBA start+16 up to
    and including the set terminator); LBA 0..31 still hold their copy."""
    with open(img, "r+b") as f:
        lba = start + 16
        for _ in range(64):
            f.seek(lba * 2048)
            b = f.read(2048)
            if len(b) < 7 or b[1:6] != b"CD001":
                break
            f.seek(lba * 2048)
            f.write(bytes(2048))
            if b[0] == 255:
                return
            lba += 1
    raise RuntimeError(f"precondition: no descriptor set terminator after LBA {start + 16}")


# ---------------------------------------------------------------------------
# discfs views
# ---------------------------------------------------------------------------

def dump(img, *extra, check=True, data=True):
    return L.dump(img, extra=list(extra), check=check, data=data)


def split_sessions(records):
    """{session: {path: Rec}} from a --sessions view (paths '/N/...'), plus the root."""
    out = collections.defaultdict(dict)
    root = None
    for p, r in records.items():
        if p == "/":
            root = r
            continue
        head, _, rest = p[1:].partition("/")
        out[head]["/" + rest] = r
    return root, dict(out)


def mount_args(img, mnt, *opts):
    return ["mount", "-f"] + list(opts) + [img, mnt]


_mnt_seq = [0]


def new_mountpoint(name):
    _mnt_seq[0] += 1
    return _tmp.sub(f"mnt-{name}-{_mnt_seq[0]}")


def walk_mount(m, root, data=True):
    got = L.walk(root, data=data)
    m.check_alive()
    return got


def refuse(test, cmd, what, must_mention=()):
    """cmd must fail at once with exit 2 or 5 and a clear first line."""
    p = L.run(cmd, check=False, timeout=120)
    err = L._txt(p.stderr)
    rep = L.sanitizer_report(err)
    test.assertIsNone(rep, f"{what}: sanitizer report: {rep}")
    test.assertIn(p.returncode, (2, 5), f"{what}: exit {p.returncode}, stderr {err!r}")
    lines = [line for line in err.splitlines() if line.strip()]
    test.assertTrue(lines, f"{what}: refused without a message")
    first = lines[0]
    test.assertIn("session", first.lower(), f"{what}: the message must name the problem: {first!r}")
    for word in must_mention:
        test.assertIn(word, first, f"{what}: the message should say {word!r}: {first!r}")
    if p.returncode == 5:
        test.assertEqual(len(lines), 1, f"{what}: one line expected, got {lines!r}")
    test.assertNotIn("Traceback", err)
    return p


# ---------------------------------------------------------------------------
# Three sessions
# ---------------------------------------------------------------------------

class ThreeSessions(unittest.TestCase):
    """Every session of a three-session image, three ways, against xorriso."""

    @classmethod
    def setUpClass(cls):
        cls.image = three_session_image()
        cls.refs = session_refs(cls.image, "three")

    def check(self, n, got, what):
        fail_diff(self, L.diff_trees(self.refs[n], got, fields=FIELDS),
                  f"session {n} {what} differs from xorriso's extraction after -load sbsector")

    def test_references_differ_as_committed(self):
        # Guards the test itself: the sessions really hold different trees.
        r1, r2, r3 = (self.refs[n] for n in (1, 2, 3))
        self.assertIn("/to_delete.txt", r1)
        self.assertNotIn("/to_delete.txt", r2)
        self.assertIn("/olddir/deeper/y.txt", r1)
        self.assertIn("/renamed_dir/deeper/y.txt", r2)
        self.assertEqual(r1["/data/rewrite.txt"].sha256, sha(b"version one\n"))
        self.assertEqual(r2["/data/rewrite.txt"].sha256,
                         sha(b"version two, longer than version one\n"))
        self.assertEqual(r3["/data/rewrite.txt"].sha256, sha(b"v3\n"))
        self.assertNotIn("/docs/sub", r3)
        self.assertEqual(r2["/docs/b.txt"].mode, 0o640)

    def test_dump_each_session(self):
        for n in sorted(self.refs):
            with self.subTest(session=n):
                d = dump(self.image, "--session", str(n))
                errs = {p: r.error for p, r in d.records.items() if r.error}
                self.assertFalse(errs, f"session {n}: entries with errors {errs}")
                self.check(n, d.records, "(discfs-dump --session)")

    def test_default_is_newest(self):
        newest = max(self.refs)
        d = dump(self.image)
        self.check(newest, d.records, "(discfs-dump without --session)")
        dn = dump(self.image, "--session", str(newest))
        strip = {p: r._replace(ino=None) for p, r in dn.records.items()}
        self.assertEqual({p: r._replace(ino=None) for p, r in d.records.items()}, strip,
                         "the default view must be the newest session")

    def test_dump_sessions_view(self):
        d = dump(self.image, "--sessions")
        root, per = split_sessions(d.records)
        self.assertIsNotNone(root, "the --sessions view needs a root record")
        self.assertEqual(root.type, "dir")
        self.assertEqual(sorted(per), [str(n) for n in sorted(self.refs)],
                         "the --sessions root must hold exactly 1..N")
        for n in sorted(self.refs):
            with self.subTest(session=n):
                self.check(n, per[str(n)], "(discfs-dump --sessions, /N)")
        # Entries of different sessions are different files: no shared inode numbers.
        groups = []
        for n in per:
            groups += [[f"/{n}{p}" for p in g] for g in L.link_groups(self.refs[int(n)])]
        fail_diff(self, L.inode_problems(d.records, groups), "inode numbers in --sessions view")

    def test_dump_session_out_of_range(self):
        dump_bin = L.discfs_dump_bin()
        refuse(self, [dump_bin, "--session", "0", self.image], "discfs-dump --session 0")
        refuse(self, [dump_bin, "--session", "4", self.image], "discfs-dump --session 4",
               must_mention=("4",))
        refuse(self, [dump_bin, "--session", "99999", self.image], "discfs-dump --session 99999")

    # --- FUSE ---------------------------------------------------------------

    def test_mount_each_session(self):
        require_fuse(self)
        for n in sorted(self.refs):
            with self.subTest(session=n):
                mnt = new_mountpoint(f"s{n}")
                with L.Mount(self.image, mnt,
                             args=mount_args(self.image, mnt, "--session", str(n))) as m:
                    self.check(n, walk_mount(m, mnt), "(mount --session)")

    def test_mount_option_session(self):
        require_fuse(self)
        mnt = new_mountpoint("o-session")
        with L.Mount(self.image, mnt, options=["ro", "session=2"]) as m:
            self.check(2, walk_mount(m, mnt), "(mount -o session=2)")

    def test_mount_default_is_newest(self):
        require_fuse(self)
        mnt = new_mountpoint("default")
        with L.Mount(self.image, mnt) as m:
            self.check(max(self.refs), walk_mount(m, mnt), "(mount without --session)")

    def test_mount_sessions_side_by_side(self):
        require_fuse(self)
        mnt = new_mountpoint("sessions")
        with L.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--sessions")) as m:
            self.assertEqual(sorted(os.listdir(mnt)), [str(n) for n in sorted(self.refs)])
            st = os.stat(mnt)
            self.assertEqual(st.st_mode & 0o555, 0o555,
                             f"the --sessions root must be readable by all: {st.st_mode:#o}")
            whole = walk_mount(m, mnt)
            for n in sorted(self.refs):
                with self.subTest(session=n):
                    self.check(n, walk_mount(m, os.path.join(mnt, str(n))), "(MNT/N of --sessions)")
            groups = []
            for n in self.refs:
                groups += [[f"/{n}{p}" for p in g] for g in L.link_groups(self.refs[n])]
            fail_diff(self, L.inode_problems(whole, groups),
                      "st_ino shared between entries of different sessions")
            f = L.run(["find", mnt, "-printf", "%P\\n"], check=False)
            m.check_alive()
            self.assertEqual(f.returncode, 0, L._txt(f.stderr))
            self.assertEqual(L._txt(f.stderr), "",
                             "find must not warn (e.g. 'File system loop detected')")

    def test_mount_sessions_untouched_files_same_in_both(self):
        require_fuse(self)
        r1, r2 = self.refs[1], self.refs[2]
        untouched = sorted(p for p, r in r1.items()
                           if r.type == "reg" and p in r2 and r2[p].sha256 == r.sha256)
        changed = sorted(p for p, r in r1.items()
                         if r.type == "reg" and p in r2 and r2[p].sha256 != r.sha256)
        self.assertIn("/data/untouched.bin", untouched)
        self.assertIn("/data/rewrite.txt", changed)
        mnt = new_mountpoint("o-sessions")
        with L.Mount(self.image, mnt, options=["sessions"]) as m:
            bad = []
            for p in untouched + changed:
                # Read the two versions interleaved, through two open files.
                with open(os.path.join(mnt, "1", p[1:]), "rb") as a, \
                        open(os.path.join(mnt, "2", p[1:]), "rb") as b:
                    ha, hb = hashlib.sha256(), hashlib.sha256()
                    while True:
                        ca, cb = a.read(4096), b.read(4096)
                        if not ca and not cb:
                            break
                        ha.update(ca)
                        hb.update(cb)
                if ha.hexdigest() != r1[p].sha256:
                    bad.append(f"MNT/1{p}: content is not session 1's")
                if hb.hexdigest() != r2[p].sha256:
                    bad.append(f"MNT/2{p}: content is not session 2's")
            m.check_alive()
            fail_diff(self, bad, "files read side by side from MNT/1 and MNT/2")

    def test_mount_session_out_of_range(self):
        require_fuse(self)
        mnt = new_mountpoint("bad")
        dev0 = os.stat(mnt).st_dev
        for n, mention in (("0", ()), ("4", ("4",))):
            with self.subTest(session=n):
                refuse(self, [L.discfs_bin()] + mount_args(self.image, mnt, "--session", n),
                       f"discfs mount --session {n}", must_mention=mention)
                self.assertFalse(L.is_mountpoint_in_mountinfo(mnt), "nothing may stay mounted")
                self.assertEqual(os.stat(mnt).st_dev, dev0)
        refuse(self, [L.discfs_bin(), "mount", "-f", "-o", "session=7", self.image, mnt],
               "discfs mount -o session=7", must_mention=("7",))
        refuse(self, [L.discfs_bin(), "mount", "-f", "-o", "session=0", self.image, mnt],
               "discfs mount -o session=0")
        refuse(self, [L.discfs_bin(), "mount", "-f", "--session", "2", "--sessions", self.image,
                      mnt], "discfs mount --session 2 --sessions")
        self.assertFalse(L.is_mountpoint_in_mountinfo(mnt), "nothing may stay mounted")


# ---------------------------------------------------------------------------
# Five sessions
# ---------------------------------------------------------------------------

class FiveSessions(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.image = five_session_image()
        cls.refs = session_refs(cls.image, "five")

    def test_references(self):
        for k in range(1, 6):
            r = self.refs[k]
            self.assertIn(f"/d{k}/inside.txt", r)
            self.assertEqual(r["/counter.txt"].sha256,
                             sha(b"1\n" if k == 1 else b"%d\n" % k * k))

    def test_dump_every_session(self):
        for k in range(1, 6):
            with self.subTest(session=k):
                d = dump(self.image, "--session", str(k))
                fail_diff(self, L.diff_trees(self.refs[k], d.records, fields=FIELDS),
                          f"session {k} (discfs-dump --session)")
        refuse(self, [L.discfs_dump_bin(), "--session", "6", self.image],
               "discfs-dump --session 6 of 5", must_mention=("6",))

    def test_dump_sessions_view(self):
        _, per = split_sessions(dump(self.image, "--sessions").records)
        self.assertEqual(sorted(per, key=int), [str(k) for k in range(1, 6)])
        for k in range(1, 6):
            fail_diff(self, L.diff_trees(self.refs[k], per[str(k)], fields=FIELDS),
                      f"session {k} of discfs-dump --sessions")

    def test_mount_sessions(self):
        require_fuse(self)
        mnt = new_mountpoint("five")
        with L.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--sessions")) as m:
            self.assertEqual(sorted(os.listdir(mnt), key=int), [str(k) for k in range(1, 6)])
            for k in range(1, 6):
                with self.subTest(session=k):
                    fail_diff(self, L.diff_trees(self.refs[k],
                                                 walk_mount(m, os.path.join(mnt, str(k))),
                                                 fields=FIELDS),
                              f"MNT/{k} of a --sessions mount")

    def test_mount_session_4(self):
        require_fuse(self)
        mnt = new_mountpoint("five-4")
        with L.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--session", "4")) as m:
            fail_diff(self, L.diff_trees(self.refs[4], walk_mount(m, mnt), fields=FIELDS),
                      "mount --session 4")


# ---------------------------------------------------------------------------
# One session at LBA 0
# ---------------------------------------------------------------------------

class SingleSession(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.image = single_session_image()
        cls.refs = session_refs(cls.image, "single")

    def test_dump_session_1(self):
        d = dump(self.image, "--session", "1")
        fail_diff(self, L.diff_trees(self.refs[1], d.records, fields=FIELDS),
                  "--session 1 of a genisoimage image")
        default = dump(self.image)
        self.assertEqual({p: r._replace(ino=None) for p, r in d.records.items()},
                         {p: r._replace(ino=None) for p, r in default.records.items()})

    def test_dump_sessions_view(self):
        _, per = split_sessions(dump(self.image, "--sessions").records)
        self.assertEqual(list(per), ["1"])
        fail_diff(self, L.diff_trees(self.refs[1], per["1"], fields=FIELDS),
                  "/1 of --sessions on a genisoimage image")

    def test_dump_session_2_refused(self):
        refuse(self, [L.discfs_dump_bin(), "--session", "2", self.image],
               "discfs-dump --session 2 of a one-session image", must_mention=("2",))

    def test_mount_sessions_and_session_1(self):
        require_fuse(self)
        mnt = new_mountpoint("single-all")
        with L.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--sessions")) as m:
            self.assertEqual(os.listdir(mnt), ["1"])
            fail_diff(self, L.diff_trees(self.refs[1], walk_mount(m, os.path.join(mnt, "1")),
                                         fields=FIELDS), "MNT/1 of --sessions")
        mnt = new_mountpoint("single-1")
        with L.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--session", "1")) as m:
            fail_diff(self, L.diff_trees(self.refs[1], walk_mount(m, mnt), fields=FIELDS),
                      "mount --session 1")


# ---------------------------------------------------------------------------
# Damaged chains
# ---------------------------------------------------------------------------

class DamagedChain(unittest.TestCase):
    """Grown images whose newest session is damaged: what is intact is still shown."""

    @classmethod
    def setUpClass(cls):
        cls.intact = three_session_image()
        cls.refs = session_refs(cls.intact, "three")
        cls.rows = toc(cls.intact)
        cls.work = _tmp.sub("damaged")

    def image(self, name, damage):
        def make():
            p = copy_image(self.intact, os.path.join(self.work, name + ".iso"))
            damage(p)
            return p
        return cached(("damaged", name), make)

    def broken_descriptors(self):
        start3 = self.rows[2][1]
        return self.image("no-descriptors-3", lambda p: zero_descriptors(p, start3))

    def cut_in_data(self):
        _, start3, size3 = self.rows[2]
        # The new data/big.bin (150001 bytes, 74 blocks) is the bulk of session 3 and lies
        # after its directories: cutting 40 blocks before the session's end cuts into it.
        return self.image("cut-in-data", lambda p: os.truncate(p, (start3 + size3 - 40) * 2048))

    def cut_at_start(self):
        start3 = self.rows[2][1]
        return self.image("cut-at-start", lambda p: os.truncate(p, start3 * 2048))

    def dump_sessions(self, img):
        d = dump(img, "--sessions", check=False)
        self.assertEqual(d.returncode, 0, f"discfs-dump --sessions {img}: {d.stderr[-2000:]}")
        return split_sessions(d.records)[1]

    def check_intact(self, per, what, sessions=(1, 2)):
        for n in sessions:
            self.assertIn(str(n), per, f"{what}: intact session {n} must be shown")
            fail_diff(self, L.diff_trees(self.refs[n], per[str(n)], fields=FIELDS),
                      f"{what}: intact session {n}")

    def check_no_wrong_data(self, ref, got, what):
        """Every file reads as the intact image held it, or reports an error; never other
        bytes, never silently short."""
        bad = []
        for p, r in got.items():
            if p not in ref:
                bad.append(f"{p!r}: not in the intact session")
                continue
            if r.type == "reg" and not r.error and r.sha256 != ref[p].sha256:
                bad.append(f"{p!r}: wrong content without an error "
                           f"(size {r.size}, intact {ref[p].size})")
        fail_diff(self, bad, what)

    def test_zeroed_descriptors_dump(self):
        img = self.broken_descriptors()
        per = self.dump_sessions(img)
        self.check_intact(per, "descriptors of session 3 zeroed")
        # xorriso still offers the newest tree through the copy at LBA 0..31; if discfs
        # lists a third session it must be that tree.
        if "3" in per:
            fail_diff(self, L.diff_trees(self.refs[3], per["3"], fields=FIELDS),
                      "session 3 shown through the copy at LBA 0..31")
        self.assertLessEqual(len(per), 3)
        d = dump(img, check=False)
        self.assertIn(d.returncode, (0, 3, 4, 5))
        if d.returncode == 0:
            fail_diff(self, L.diff_trees(self.refs[3], d.records, fields=FIELDS),
                      "default view: the descriptors at LBA 16 still name session 3's tree")
        refuse_or_ok = dump(img, "--session", "2", check=False)
        self.assertEqual(refuse_or_ok.returncode, 0, refuse_or_ok.stderr[-2000:])
        fail_diff(self, L.diff_trees(self.refs[2], refuse_or_ok.records, fields=FIELDS),
                  "--session 2 with session 3's descriptors zeroed")

    def test_zeroed_descriptors_newest_tree_listed(self):
        # The copy at LBA 0..31 still names session 3's intact tree: the default view shows
        # it, and xorriso -toc lists it as the newest session.  --sessions must not hide it.
        img = self.broken_descriptors()
        rows = toc(img)
        self.assertEqual(len(rows), 3, f"precondition: xorriso lists 3 sessions: {rows}")
        per = self.dump_sessions(img)
        self.assertEqual(sorted(per), ["1", "2", "3"],
                         "discfs-dump --sessions must list what xorriso -toc lists")
        fail_diff(self, L.diff_trees(self.refs[3], per["3"], fields=FIELDS),
                  "session 3 reached through the copy at LBA 0..31")
        d = dump(img, "--session", "3", check=False)
        self.assertEqual(d.returncode, 0, f"--session 3: {d.stderr[-1000:]}")

    def test_cut_in_data_dump(self):
        img = self.cut_in_data()
        per = self.dump_sessions(img)
        self.check_intact(per, "image cut inside session 3's data")
        if "3" in per:
            self.check_no_wrong_data(self.refs[3], per["3"], "session 3 of the cut image")
            self.assertIsNotNone(per["3"]["/data/big.bin"].error,
                                 "a file whose data lies past the end must report an error")
        d = dump(img, check=False)
        self.assertIn(d.returncode, (0, 3, 4, 5))
        if d.returncode == 0:
            self.check_no_wrong_data(self.refs[3], d.records, "default view of the cut image")
            self.assertIsNotNone(d.records["/data/big.bin"].error,
                                 "a file whose data lies past the end must report an error")
        else:
            self.assertTrue(d.stderr.strip(), "a refused image needs a message")

    def test_cut_at_start_dump(self):
        img = self.cut_at_start()
        per = self.dump_sessions(img)
        self.check_intact(per, "image cut where session 3 starts")
        d = dump(img, check=False)
        self.assertIn(d.returncode, (0, 3, 4, 5),
                      f"default view of an image cut short: {d.stderr[-2000:]}")
        if d.returncode != 0:
            lines = [line for line in d.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, f"one clear line expected: {lines!r}")

    def test_damaged_mounts(self):
        require_fuse(self)
        for name, img in (("zeroed", self.broken_descriptors()), ("cut-data", self.cut_in_data()),
                          ("cut-start", self.cut_at_start())):
            with self.subTest(image=name):
                mnt = new_mountpoint("dmg-" + name)
                with L.Mount(img, mnt, args=mount_args(img, mnt, "--sessions")) as m:
                    names = os.listdir(mnt)
                    for n in (1, 2):
                        self.assertIn(str(n), names)
                        fail_diff(self, L.diff_trees(self.refs[n],
                                                     walk_mount(m, os.path.join(mnt, str(n))),
                                                     fields=FIELDS),
                                  f"{name}: MNT/{n}")
                    if "3" in names:
                        # Session 3 may be listed but unreadable (its tree lies past the
                        # cut): then its folder reads as EIO, and nothing else is affected.
                        try:
                            got = walk_mount(m, os.path.join(mnt, "3"))
                        except OSError as e:
                            self.assertEqual(e.errno, errno.EIO, f"{name}: MNT/3: {e}")
                            self.assertNotEqual(name, "zeroed",
                                                "session 3 is intact through the LBA 16 copy")
                        else:
                            self.check_no_wrong_data(self.refs[3], got, f"{name}: MNT/3")
                        m.check_alive()
                    if name == "cut-data" and "3" in names:
                        with self.assertRaises(OSError) as cm:
                            with open(os.path.join(mnt, "3", "data", "big.bin"), "rb") as f:
                                while f.read(1 << 16):
                                    pass
                        self.assertEqual(cm.exception.errno, errno.EIO)
                        m.check_alive()
                # The default mount of a damaged image either works or is refused cleanly.
                mnt = new_mountpoint("dmg-default-" + name)
                try:
                    with L.Mount(img, mnt) as m:
                        got = walk_mount(m, mnt)
                        self.check_no_wrong_data(self.refs[3], got, f"{name}: default mount")
                except L.DaemonDied as e:
                    self.assertRegex(str(e), r"exited with [345] ",
                                     f"{name}: a refused default mount needs exit 3, 4 or 5")


class HostileChain(unittest.TestCase):
    """Impossible volume sizes in the chain's descriptors (0, 1, past the end, and one that
    wraps a 32-bit sum back before its own start): the walk ends, nothing crashes, the
    sessions before the damaged one are shown, and what is shown is real.  (xorriso 1.5.4
    itself hangs on a first session of 0 blocks, so it is no reference here.)"""

    SIZES = (0, 1, 0xFFFFFFFF, 0x80000000, 0xFFFFFF9B)

    @classmethod
    def setUpClass(cls):
        cls.intact = three_session_image()
        cls.refs = session_refs(cls.intact, "three")
        cls.rows = toc(cls.intact)
        cls.work = _tmp.sub("hostile")

    def patched(self, session, size):
        start = self.rows[session - 1][1]
        p = copy_image(self.intact, os.path.join(self.work, f"s{session}-{size:x}.iso"))
        with open(p, "r+b") as f:
            f.seek((start + 16) * 2048)
            if f.read(6)[1:6] != b"CD001":
                raise RuntimeError(f"precondition: no PVD at LBA {start + 16}")
            f.seek((start + 16) * 2048 + 80)          # volume space size, both-endian
            f.write(size.to_bytes(4, "little") + size.to_bytes(4, "big"))
        return p

    def test_dump_sessions(self):
        for session in (1, 2):
            for size in self.SIZES:
                with self.subTest(session=session, size=hex(size)):
                    img = self.patched(session, size)
                    d = dump(img, "--sessions", check=False, data=True)
                    self.assertEqual(d.returncode, 0, d.stderr[-2000:])
                    _, per = split_sessions(d.records)
                    self.assertLessEqual(set(per), {"1", "2", "3"})
                    for n in range(1, session):
                        self.assertIn(str(n), per)
                        fail_diff(self, L.diff_trees(self.refs[n], per[str(n)], fields=FIELDS),
                                  f"session {n}")
                    # Whatever else is shown is one of the image's real trees, whole.
                    for n, got in per.items():
                        self.assertTrue(any(not L.diff_trees(ref, got, fields=FIELDS)
                                            for ref in self.refs.values()),
                                        f"MNT/{n} is none of the image's session trees")

    def test_mount_sessions(self):
        require_fuse(self)
        img = self.patched(2, 0xFFFFFF9B)
        mnt = new_mountpoint("hostile")
        with L.Mount(img, mnt, args=mount_args(img, mnt, "--sessions")) as m:
            for n in ("1", "2"):
                fail_diff(self, L.diff_trees(self.refs[int(n)],
                                             walk_mount(m, os.path.join(mnt, n)), fields=FIELDS),
                          f"MNT/{n}")


if __name__ == "__main__":
    sys.exit(L.main(sys.argv[1:] + ["__main__"]))
