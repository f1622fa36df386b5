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
session chain is broken or cut short still shows what is intact.  Sessions
appended one after another without libisoburn's chain (genisoimage -C/-M, as
on a multisession CD-R, with and without the CD's gaps) are each found, the
newest is the default, and `discfs stage` refuses them rather than write over
session 2.

FUSE parts skip (with the reason) where /dev/fuse is missing.
Run: /usr/bin/python3 -m testlib -v test_sessions   (from tests/py)
"""

import collections
import errno
import hashlib
import json
import os
import unittest

from testlib import dump, env, images, mount, readers, sanitizers, sources, stage, trees

M = env.ModuleFixture("discfs-sessions-", binaries=("discfs-dump",),
                      tools=("xorriso", "genisoimage"))
setUpModule, tearDownModule = M.set_up, M.tear_down

# What an extraction can tell about each entry (see readers.extraction_reference).
FIELDS = ("type", "mode", "uid", "gid", "nlink", "size", "mtime", "target", "sha256")


# ---------------------------------------------------------------------------
# What xorriso says
# ---------------------------------------------------------------------------

def extract_session(img, start, dest):
    """What xorriso extracts of the session starting at LBA start: {path: Rec}."""
    readers.xorriso(["-osirrox", "on:auto_chmod_on", "-for_backup", "-hardlinks", "on",
                     "-load", "sbsector", str(start), "-indev", img, "-extract", "/", dest])
    return readers.extraction_reference(trees.walk(dest))


def session_refs(img, name):
    """{session number: reference records}, one xorriso extraction per session."""
    def make():
        rows = readers.toc_rows(img)
        if not rows:
            raise RuntimeError(f"precondition: xorriso lists no session of {img}")
        refs = {}
        for n, start, _ in rows:
            refs[n] = extract_session(img, start, os.path.join(M.path, f"x-{name}-{n}"))
        return refs
    return M.cached(("refs", name), make)


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------

def three_session_image():
    """Three xorriso sessions; every kind of change a user makes between them."""
    def make():
        work = M.sub("three")
        img = os.path.join(work, "three.iso")
        s1 = os.path.join(work, "s1")
        sources.write(s1, "README", b"three sessions\n")
        sources.write(s1, "docs/a.txt", b"doc a\n")
        sources.write(s1, "docs/b.txt", b"doc b\n", mtime=sources.T1980)
        sources.write(s1, "docs/sub/c.txt", b"doc c, removed with its folder in session 3\n")
        sources.write(s1, "data/big.bin", sources.rand_bytes(11, 200003))
        sources.write(s1, "data/rewrite.txt", b"version one\n")
        sources.write(s1, "data/untouched.bin", sources.rand_bytes(12, 70001), mtime=sources.T1950)
        sources.write(s1, "bin/tool", b"#!/bin/sh\necho tool\n", mode=0o755)
        sources.write(s1, "bin/setuid", b"#!/bin/sh\n", mode=0o4755)
        sources.write(s1, "private", b"secret\n", mode=0o600)
        sources.write(s1, "to_delete.txt", b"deleted in session 2\n")
        sources.write(s1, "olddir/x.txt", b"in a folder renamed in session 2\n")
        sources.write(s1, "olddir/deeper/y.txt", b"deeper in the renamed folder\n")
        sources.write(s1, "hard/h1", b"a hard link pair\n")
        os.link(os.path.join(s1, "hard/h1"), os.path.join(s1, "hard/h2"))
        os.symlink("docs/a.txt", os.path.join(s1, "link_rel"))
        os.symlink("/etc/hostname", os.path.join(s1, "link_abs"))
        if env.is_root():
            sources.write(s1, "owned", b"owned by 1234:5678\n")
            os.chown(os.path.join(s1, "owned"), 1234, 5678)
        sources.set_dir_times(s1)
        readers.xorriso(["-hardlinks", "on", "-dev", img, "-map", s1, "/", "-commit"])

        s2 = os.path.join(work, "s2")
        sources.write(s2, "new.txt", b"added in session 2\n", mtime=sources.T2100)
        sources.write(s2, "newdir/n1.bin", sources.rand_bytes(21, 5000))
        sources.write(s2, "newdir/n2.txt", b"second new file\n")
        sources.write(s2, "rewrite.txt", b"version two, longer than version one\n",
                      mtime=sources.T2100)
        sources.set_dir_times(s2)
        readers.xorriso(["-hardlinks", "on", "-dev", img,
                         "-map", os.path.join(s2, "new.txt"), "/new.txt",
                         "-map", os.path.join(s2, "newdir"), "/newdir",
                         "-map", os.path.join(s2, "rewrite.txt"), "/data/rewrite.txt",
                         "-rm", "/to_delete.txt", "--",
                         "-mv", "/olddir", "/renamed_dir", "--",
                         "-chmod", "0640", "/docs/b.txt", "--",
                         "-lns", "docs/b.txt", "/link_new",
                         "-commit"])

        s3 = os.path.join(work, "s3")
        sources.write(s3, "big.bin", sources.rand_bytes(31, 150001), mtime=sources.T2100)
        sources.write(s3, "rewrite.txt", b"v3\n", mtime=sources.T1950)
        sources.write(s3, "late/l.txt", b"added in session 3\n")
        sources.set_dir_times(s3)
        readers.xorriso(["-hardlinks", "on", "-dev", img,
                         "-rm_r", "/docs/sub", "--",
                         "-mv", "/README", "/README.md", "--",
                         "-mv", "/newdir", "/newdir_moved", "--",
                         "-map", os.path.join(s3, "big.bin"), "/data/big.bin",
                         "-map", os.path.join(s3, "rewrite.txt"), "/data/rewrite.txt",
                         "-map", os.path.join(s3, "late"), "/late",
                         "-mkdir", "/emptydir", "--",
                         "-rm", "/link_abs", "--",
                         "-commit"])
        rows = readers.toc_rows(img)
        if len(rows) != 3:
            raise RuntimeError(f"precondition: xorriso should list 3 sessions of {img}: {rows}")
        return img
    return M.cached("three", make)


def five_session_image():
    """Five small xorriso sessions, each adding, rewriting, deleting and renaming."""
    def make():
        work = M.sub("five")
        img = os.path.join(work, "five.iso")
        base = os.path.join(work, "base")
        sources.write(base, "counter.txt", b"1\n")
        sources.write(base, "keep.bin", sources.rand_bytes(50, 40000))
        sources.write(base, "d1/inside.txt", b"the folder is renamed every session\n")
        sources.write(base, "f1.txt", b"file 1\n")
        sources.set_dir_times(base)
        readers.xorriso(["-dev", img, "-map", base, "/", "-commit"])
        for k in range(2, 6):
            sk = os.path.join(work, f"s{k}")
            sources.write(sk, "counter.txt", b"%d\n" % k * k, mtime=sources.T2020 + k)
            sources.write(sk, f"f{k}.txt", b"file %d\n" % k)
            args = ["-dev", img,
                    "-map", os.path.join(sk, "counter.txt"), "/counter.txt",
                    "-map", os.path.join(sk, f"f{k}.txt"), f"/f{k}.txt",
                    "-mv", f"/d{k - 1}", f"/d{k}", "--"]
            if k >= 3:
                args += ["-rm", f"/f{k - 2}.txt", "--"]
            readers.xorriso(args + ["-commit"])
        rows = readers.toc_rows(img)
        if len(rows) != 5:
            raise RuntimeError(f"precondition: xorriso should list 5 sessions of {img}: {rows}")
        return img
    return M.cached("five", make)


def single_session_image():
    """genisoimage writes its only session at LBA 0 (no libisoburn chain)."""
    def make():
        work = M.sub("single")
        src = os.path.join(work, "src")
        sources.write(src, "one.txt", b"only session\n")
        sources.write(src, "dir/two.bin", sources.rand_bytes(60, 9000))
        os.symlink("one.txt", os.path.join(src, "link"))
        sources.set_dir_times(src)
        img = images.make_genisoimage(os.path.join(work, "single.iso"), src, ["-R", "-J"])
        rows = readers.toc_rows(img)
        if len(rows) != 1 or rows[0][1] != 0:
            raise RuntimeError(f"precondition: xorriso should list one session at LBA 0: {rows}")
        return img
    return M.cached("single", make)


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


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

def dumped(img, *extra, check=True, data=True):
    return dump.dump(img, extra=list(extra), check=check, data=data)


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
    return M.sub(f"mnt-{name}-{_mnt_seq[0]}")


def refuse(test, cmd, code, what, must_mention=()):
    """cmd must fail at once with exit `code` (2: a session number that is not one, 5: a
    session the image does not hold) and a clear first line."""
    p = env.run(cmd, check=False, timeout=120)
    err = env.txt(p.stderr)
    rep = sanitizers.report(err)
    test.assertIsNone(rep, f"{what}: sanitizer report: {rep}")
    test.assertEqual(p.returncode, code, f"{what}: exit {p.returncode}, stderr {err!r}")
    lines = [line for line in err.splitlines() if line.strip()]
    test.assertTrue(lines, f"{what}: refused without a message")
    first = lines[0]
    test.assertIn("session", first.lower(), f"{what}: the message must name the problem: {first!r}")
    for word in must_mention:
        test.assertIn(word, first, f"{what}: the message should say {word!r}: {first!r}")
    if code == env.EXIT_UNSUPPORTED:
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
        env.fail_diff(self, trees.diff(self.refs[n], got, fields=FIELDS),
                      f"session {n} {what} differs from xorriso's extraction after -load sbsector")

    def test_references_differ_as_committed(self):
        # Guards the test itself: the sessions really hold different trees.
        r1, r2, r3 = (self.refs[n] for n in (1, 2, 3))
        self.assertIn("/to_delete.txt", r1)
        self.assertNotIn("/to_delete.txt", r2)
        self.assertIn("/olddir/deeper/y.txt", r1)
        self.assertIn("/renamed_dir/deeper/y.txt", r2)
        self.assertEqual(r1["/data/rewrite.txt"].sha256, trees.sha256(b"version one\n"))
        self.assertEqual(r2["/data/rewrite.txt"].sha256,
                         trees.sha256(b"version two, longer than version one\n"))
        self.assertEqual(r3["/data/rewrite.txt"].sha256, trees.sha256(b"v3\n"))
        self.assertNotIn("/docs/sub", r3)
        self.assertEqual(r2["/docs/b.txt"].mode, 0o640)

    def test_dump_each_session(self):
        for n in sorted(self.refs):
            with self.subTest(session=n):
                d = dumped(self.image, "--session", str(n))
                errs = {p: r.error for p, r in d.records.items() if r.error}
                self.assertFalse(errs, f"session {n}: entries with errors {errs}")
                self.check(n, d.records, "(discfs-dump --session)")

    def test_default_is_newest(self):
        newest = max(self.refs)
        d = dumped(self.image)
        self.check(newest, d.records, "(discfs-dump without --session)")
        dn = dumped(self.image, "--session", str(newest))
        strip = {p: r._replace(ino=None) for p, r in dn.records.items()}
        self.assertEqual({p: r._replace(ino=None) for p, r in d.records.items()}, strip,
                         "the default view must be the newest session")

    def test_dump_sessions_view(self):
        d = dumped(self.image, "--sessions")
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
            groups += [[f"/{n}{p}" for p in g] for g in trees.link_groups(self.refs[int(n)])]
        env.fail_diff(self, trees.inode_problems(d.records, groups),
                      "inode numbers in --sessions view")

    def test_dump_session_out_of_range(self):
        dump_bin = env.discfs_dump_bin()
        refuse(self, [dump_bin, "--session", "0", self.image], env.EXIT_USAGE,
               "discfs-dump --session 0")
        refuse(self, [dump_bin, "--session", "4", self.image], env.EXIT_UNSUPPORTED,
               "discfs-dump --session 4", must_mention=("4",))
        refuse(self, [dump_bin, "--session", "99999", self.image], env.EXIT_UNSUPPORTED,
               "discfs-dump --session 99999")

    # --- FUSE ---------------------------------------------------------------

    def test_mount_each_session(self):
        mount.require_fuse(self)
        for n in sorted(self.refs):
            with self.subTest(session=n):
                mnt = new_mountpoint(f"s{n}")
                with mount.Mount(self.image, mnt,
                                 args=mount_args(self.image, mnt, "--session", str(n))) as m:
                    self.check(n, m.walk(), "(mount --session)")

    def test_mount_option_session(self):
        mount.require_fuse(self)
        mnt = new_mountpoint("o-session")
        with mount.Mount(self.image, mnt, options=["ro", "session=2"]) as m:
            self.check(2, m.walk(), "(mount -o session=2)")

    def test_mount_default_is_newest(self):
        mount.require_fuse(self)
        mnt = new_mountpoint("default")
        with mount.Mount(self.image, mnt) as m:
            self.check(max(self.refs), m.walk(), "(mount without --session)")

    def test_mount_sessions_side_by_side(self):
        mount.require_fuse(self)
        mnt = new_mountpoint("sessions")
        with mount.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--sessions")) as m:
            self.assertEqual(sorted(os.listdir(mnt)), [str(n) for n in sorted(self.refs)])
            st = os.stat(mnt)
            self.assertEqual(st.st_mode & 0o555, 0o555,
                             f"the --sessions root must be readable by all: {st.st_mode:#o}")
            whole = m.walk()
            for n in sorted(self.refs):
                with self.subTest(session=n):
                    self.check(n, m.walk(str(n)), "(MNT/N of --sessions)")
            groups = []
            for n in self.refs:
                groups += [[f"/{n}{p}" for p in g] for g in trees.link_groups(self.refs[n])]
            env.fail_diff(self, trees.inode_problems(whole, groups),
                          "st_ino shared between entries of different sessions")
            f = env.run(["find", mnt, "-printf", "%P\\n"], check=False)
            m.check_alive()
            self.assertEqual(f.returncode, 0, env.txt(f.stderr))
            self.assertEqual(env.txt(f.stderr), "",
                             "find must not warn (e.g. 'File system loop detected')")

    def test_mount_sessions_untouched_files_same_in_both(self):
        mount.require_fuse(self)
        r1, r2 = self.refs[1], self.refs[2]
        untouched = sorted(p for p, r in r1.items()
                           if r.type == "reg" and p in r2 and r2[p].sha256 == r.sha256)
        changed = sorted(p for p, r in r1.items()
                         if r.type == "reg" and p in r2 and r2[p].sha256 != r.sha256)
        self.assertIn("/data/untouched.bin", untouched)
        self.assertIn("/data/rewrite.txt", changed)
        mnt = new_mountpoint("o-sessions")
        with mount.Mount(self.image, mnt, options=["sessions"]) as m:
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
            env.fail_diff(self, bad, "files read side by side from MNT/1 and MNT/2")

    def test_mount_session_out_of_range(self):
        mount.require_fuse(self)
        mnt = new_mountpoint("bad")
        dev0 = os.stat(mnt).st_dev
        for n, code, mention in (("0", env.EXIT_USAGE, ()), ("4", env.EXIT_UNSUPPORTED, ("4",))):
            with self.subTest(session=n):
                refuse(self, [env.discfs_bin()] + mount_args(self.image, mnt, "--session", n),
                       code, f"discfs mount --session {n}", must_mention=mention)
                self.assertFalse(env.is_mounted(mnt), "nothing may stay mounted")
                self.assertEqual(os.stat(mnt).st_dev, dev0)
        refuse(self, [env.discfs_bin(), "mount", "-f", "-o", "session=7", self.image, mnt],
               env.EXIT_UNSUPPORTED, "discfs mount -o session=7", must_mention=("7",))
        refuse(self, [env.discfs_bin(), "mount", "-f", "-o", "session=0", self.image, mnt],
               env.EXIT_USAGE, "discfs mount -o session=0")
        refuse(self, [env.discfs_bin(), "mount", "-f", "--session", "2", "--sessions", self.image,
                      mnt], env.EXIT_USAGE, "discfs mount --session 2 --sessions")
        self.assertFalse(env.is_mounted(mnt), "nothing may stay mounted")


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
                             trees.sha256(b"1\n" if k == 1 else b"%d\n" % k * k))

    def test_dump_every_session(self):
        for k in range(1, 6):
            with self.subTest(session=k):
                d = dumped(self.image, "--session", str(k))
                env.fail_diff(self, trees.diff(self.refs[k], d.records, fields=FIELDS),
                              f"session {k} (discfs-dump --session)")
        refuse(self, [env.discfs_dump_bin(), "--session", "6", self.image], env.EXIT_UNSUPPORTED,
               "discfs-dump --session 6 of 5", must_mention=("6",))

    def test_dump_sessions_view(self):
        _, per = split_sessions(dumped(self.image, "--sessions").records)
        self.assertEqual(sorted(per, key=int), [str(k) for k in range(1, 6)])
        for k in range(1, 6):
            env.fail_diff(self, trees.diff(self.refs[k], per[str(k)], fields=FIELDS),
                          f"session {k} of discfs-dump --sessions")

    def test_mount_sessions(self):
        mount.require_fuse(self)
        mnt = new_mountpoint("five")
        with mount.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--sessions")) as m:
            self.assertEqual(sorted(os.listdir(mnt), key=int), [str(k) for k in range(1, 6)])
            for k in range(1, 6):
                with self.subTest(session=k):
                    env.fail_diff(self, trees.diff(self.refs[k],
                                                   m.walk(str(k)),
                                                   fields=FIELDS),
                                  f"MNT/{k} of a --sessions mount")

    def test_mount_session_4(self):
        mount.require_fuse(self)
        mnt = new_mountpoint("five-4")
        with mount.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--session", "4")) as m:
            env.fail_diff(self, trees.diff(self.refs[4], m.walk(), fields=FIELDS),
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
        d = dumped(self.image, "--session", "1")
        env.fail_diff(self, trees.diff(self.refs[1], d.records, fields=FIELDS),
                      "--session 1 of a genisoimage image")
        default = dumped(self.image)
        self.assertEqual({p: r._replace(ino=None) for p, r in d.records.items()},
                         {p: r._replace(ino=None) for p, r in default.records.items()})

    def test_dump_sessions_view(self):
        _, per = split_sessions(dumped(self.image, "--sessions").records)
        self.assertEqual(list(per), ["1"])
        env.fail_diff(self, trees.diff(self.refs[1], per["1"], fields=FIELDS),
                      "/1 of --sessions on a genisoimage image")

    def test_dump_session_2_refused(self):
        refuse(self, [env.discfs_dump_bin(), "--session", "2", self.image], env.EXIT_UNSUPPORTED,
               "discfs-dump --session 2 of a one-session image", must_mention=("2",))

    def test_mount_sessions_and_session_1(self):
        mount.require_fuse(self)
        mnt = new_mountpoint("single-all")
        with mount.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--sessions")) as m:
            self.assertEqual(os.listdir(mnt), ["1"])
            env.fail_diff(self, trees.diff(self.refs[1], m.walk("1"),
                                           fields=FIELDS), "MNT/1 of --sessions")
        mnt = new_mountpoint("single-1")
        with mount.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--session", "1")) as m:
            env.fail_diff(self, trees.diff(self.refs[1], m.walk(), fields=FIELDS),
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
        cls.rows = readers.toc_rows(cls.intact)
        cls.work = M.sub("damaged")

    def image(self, name, damage):
        def make():
            p = copy_image(self.intact, os.path.join(self.work, name + ".iso"))
            damage(p)
            return p
        return M.cached(("damaged", name), make)

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
        d = dumped(img, "--sessions", check=False)
        self.assertEqual(d.returncode, 0, f"discfs-dump --sessions {img}: {d.stderr[-2000:]}")
        return split_sessions(d.records)[1]

    def check_intact(self, per, what, sessions=(1, 2)):
        for n in sessions:
            self.assertIn(str(n), per, f"{what}: intact session {n} must be shown")
            env.fail_diff(self, trees.diff(self.refs[n], per[str(n)], fields=FIELDS),
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
        env.fail_diff(self, bad, what)

    def test_zeroed_descriptors_dump(self):
        img = self.broken_descriptors()
        per = self.dump_sessions(img)
        self.check_intact(per, "descriptors of session 3 zeroed")
        # xorriso still offers the newest tree through the copy at LBA 0..31: the third
        # session is that tree.
        self.assertIn("3", per, "session 3 is still there through the copy at LBA 0..31")
        env.fail_diff(self, trees.diff(self.refs[3], per["3"], fields=FIELDS),
                      "session 3 shown through the copy at LBA 0..31")
        self.assertLessEqual(len(per), 3)
        d = dumped(img, check=False)
        self.assertEqual(d.returncode, env.EXIT_OK, d.stderr[-2000:])
        env.fail_diff(self, trees.diff(self.refs[3], d.records, fields=FIELDS),
                      "default view: the descriptors at LBA 16 still name session 3's tree")
        refuse_or_ok = dumped(img, "--session", "2", check=False)
        self.assertEqual(refuse_or_ok.returncode, 0, refuse_or_ok.stderr[-2000:])
        env.fail_diff(self, trees.diff(self.refs[2], refuse_or_ok.records, fields=FIELDS),
                      "--session 2 with session 3's descriptors zeroed")

    def test_zeroed_descriptors_newest_tree_listed(self):
        # The copy at LBA 0..31 still names session 3's intact tree: the default view shows
        # it, and xorriso -toc lists it as the newest session.  --sessions must not hide it.
        img = self.broken_descriptors()
        rows = readers.toc_rows(img)
        self.assertEqual(len(rows), 3, f"precondition: xorriso lists 3 sessions: {rows}")
        per = self.dump_sessions(img)
        self.assertEqual(sorted(per), ["1", "2", "3"],
                         "discfs-dump --sessions must list what xorriso -toc lists")
        env.fail_diff(self, trees.diff(self.refs[3], per["3"], fields=FIELDS),
                      "session 3 reached through the copy at LBA 0..31")
        d = dumped(img, "--session", "3", check=False)
        self.assertEqual(d.returncode, 0, f"--session 3: {d.stderr[-1000:]}")

    def test_cut_in_data_dump(self):
        img = self.cut_in_data()
        per = self.dump_sessions(img)
        self.check_intact(per, "image cut inside session 3's data")
        # Session 3's directories lie before the cut: it is listed (as xorriso -toc lists
        # it), and its file whose data is cut off reports an error.
        self.assertIn("3", per, "session 3 (its tree is intact) must be shown")
        self.check_no_wrong_data(self.refs[3], per["3"], "session 3 of the cut image")
        self.assertIsNotNone(per["3"]["/data/big.bin"].error,
                             "a file whose data lies past the end must report an error")
        d = dumped(img, check=False)
        self.assertEqual(d.returncode, env.EXIT_OK, d.stderr[-2000:])
        self.check_no_wrong_data(self.refs[3], d.records, "default view of the cut image")
        self.assertIsNotNone(d.records["/data/big.bin"].error,
                             "a file whose data lies past the end must report an error")

    def test_cut_at_start_dump(self):
        img = self.cut_at_start()
        per = self.dump_sessions(img)
        self.check_intact(per, "image cut where session 3 starts")
        # The newest descriptors (LBA 16) name session 3's root, which lies past the end of
        # the file: the default view is no readable ISO 9660 tree (exit 4).
        d = dumped(img, check=False)
        self.assertEqual(d.returncode, env.EXIT_NOT_AN_IMAGE,
                         f"default view of an image cut short: {d.stderr[-2000:]}")
        lines = [line for line in d.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, f"one clear line expected: {lines!r}")

    def test_damaged_mounts(self):
        mount.require_fuse(self)
        # (image, MNT/3 of --sessions reads as EIO, exit of the refused default mount)
        for name, img, eio3, refused in (
                ("zeroed", self.broken_descriptors(), False, None),
                ("cut-data", self.cut_in_data(), False, None),
                ("cut-start", self.cut_at_start(), True, env.EXIT_NOT_AN_IMAGE)):
            with self.subTest(image=name):
                mnt = new_mountpoint("dmg-" + name)
                with mount.Mount(img, mnt, args=mount_args(img, mnt, "--sessions")) as m:
                    names = os.listdir(mnt)
                    for n in (1, 2):
                        self.assertIn(str(n), names)
                        env.fail_diff(self, trees.diff(self.refs[n], m.walk(str(n)),
                                                       fields=FIELDS), f"{name}: MNT/{n}")
                    # Session 3 is listed (as xorriso -toc lists it); where its tree lies
                    # past the cut, its folder reads as EIO and nothing else is affected.
                    self.assertIn("3", names)
                    if eio3:
                        with self.assertRaises(OSError) as cm:
                            m.walk("3")
                        self.assertEqual(cm.exception.errno, errno.EIO, f"{name}: MNT/3")
                    else:
                        self.check_no_wrong_data(self.refs[3], m.walk("3"), f"{name}: MNT/3")
                    m.check_alive()
                    if name == "cut-data":
                        with self.assertRaises(OSError) as cm:
                            with open(os.path.join(mnt, "3", "data", "big.bin"), "rb") as f:
                                while f.read(1 << 16):
                                    pass
                        self.assertEqual(cm.exception.errno, errno.EIO)
                        m.check_alive()
                # The default mount of a damaged image works, or is refused cleanly.
                mnt = new_mountpoint("dmg-default-" + name)
                if refused is None:
                    with mount.Mount(img, mnt) as m:
                        self.check_no_wrong_data(self.refs[3], m.walk(), f"{name}: default mount")
                    continue
                with self.assertRaises(mount.DaemonDied) as cm:
                    with mount.Mount(img, mnt):
                        pass
                self.assertEqual(cm.exception.returncode, refused, str(cm.exception))


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
        cls.rows = readers.toc_rows(cls.intact)
        cls.work = M.sub("hostile")

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
                    d = dumped(img, "--sessions", check=False, data=True)
                    self.assertEqual(d.returncode, 0, d.stderr[-2000:])
                    _, per = split_sessions(d.records)
                    self.assertLessEqual(set(per), {"1", "2", "3"})
                    for n in range(1, session):
                        self.assertIn(str(n), per)
                        env.fail_diff(self, trees.diff(self.refs[n], per[str(n)], fields=FIELDS),
                                      f"session {n}")
                    # Whatever else is shown is one of the image's real trees, whole.
                    for n, got in per.items():
                        self.assertTrue(any(not trees.diff(ref, got, fields=FIELDS)
                                            for ref in self.refs.values()),
                                        f"MNT/{n} is none of the image's session trees")

    def test_mount_sessions(self):
        mount.require_fuse(self)
        img = self.patched(2, 0xFFFFFF9B)
        mnt = new_mountpoint("hostile")
        with mount.Mount(img, mnt, args=mount_args(img, mnt, "--sessions")) as m:
            for n in ("1", "2"):
                env.fail_diff(self, trees.diff(self.refs[int(n)],
                                               m.walk(n), fields=FIELDS),
                              f"MNT/{n}")


# ---------------------------------------------------------------------------
# Appended sessions (no libisoburn chain)
# ---------------------------------------------------------------------------

def appended_image(gaps):
    """Three genisoimage -C/-M sessions in one file (images.make_appended): files added in
    each, one rewritten in each, the tree of each merged with the one before."""
    name = "appended-gaps" if gaps else "appended"

    def make():
        work = M.sub(name)
        srcs = []
        for n, files in enumerate((
                {"a.txt": b"added in session 1\n", "r.txt": b"version one\n",
                 "dir/x.bin": sources.rand_bytes(71, 30001)},
                {"b.txt": b"added in session 2\n", "r.txt": b"version two, longer\n"},
                {"c.txt": b"added in session 3\n", "r.txt": b"v3\n",
                 "dir2/y.bin": sources.rand_bytes(73, 9000)}), start=1):
            src = os.path.join(work, f"s{n}")
            for path, data in files.items():
                sources.write(src, path, data)
            sources.set_dir_times(src)
            srcs.append(src)
        img = os.path.join(work, name + ".iso")
        layout = images.make_appended(img, srcs, gaps=gaps)
        return img, layout
    return M.cached(name, make)


class AppendedSessions(unittest.TestCase):
    """Three sessions one after another, contiguous: each as xorriso sees it after
    -load sbsector START and as isoinfo -T START lists it."""

    GAPS = False

    @classmethod
    def setUpClass(cls):
        cls.image, cls.layout = appended_image(cls.GAPS)
        cls.refs = {}
        for n, (start, _) in enumerate(cls.layout, start=1):
            cls.refs[n] = extract_session(
                cls.image, start, os.path.join(M.path, f"x-{os.path.basename(cls.image)}-{n}"))

    def check(self, n, got, what):
        env.fail_diff(self, trees.diff(self.refs[n], got, fields=FIELDS),
                      f"session {n} {what} differs from xorriso's extraction after -load sbsector")

    def test_references_differ_as_written(self):
        r1, r2, r3 = (self.refs[n] for n in (1, 2, 3))
        self.assertNotIn("/b.txt", r1)
        self.assertIn("/b.txt", r2)
        self.assertIn("/a.txt", r3)  # merged from session 1 by -M
        self.assertEqual(r1["/r.txt"].sha256, trees.sha256(b"version one\n"))
        self.assertEqual(r2["/r.txt"].sha256, trees.sha256(b"version two, longer\n"))
        self.assertEqual(r3["/r.txt"].sha256, trees.sha256(b"v3\n"))

    def test_info_lists_every_session(self):
        p = env.run([env.discfs_bin(), "info", "--json", self.image])
        info = json.loads(env.txt(p.stdout))
        self.assertEqual(info["layout"], "appended")
        self.assertEqual([(s["number"], s["start_lba"], s["blocks"]) for s in info["sessions"]],
                         [(n, start, blocks)
                          for n, (start, blocks) in enumerate(self.layout, start=1)])
        self.assertIsNone(info["next_writable_lba"])
        self.assertEqual(info["volume"]["volume_id"], "APPENDED_3")
        text = env.txt(env.run([env.discfs_bin(), "info", self.image]).stdout)
        self.assertIn("appended", text)
        for start, _ in self.layout:
            self.assertIn(str(start), text)

    def test_dump_each_session(self):
        for n in sorted(self.refs):
            with self.subTest(session=n):
                d = dumped(self.image, "--session", str(n))
                self.check(n, d.records, "(discfs-dump --session)")

    def test_isoinfo_lists_the_same_names(self):
        env.require_tools("isoinfo")
        for n, (start, _) in enumerate(self.layout, start=1):
            with self.subTest(session=n):
                p = env.run(["isoinfo", "-i", self.image, "-T", str(start), "-R", "-f"])
                listed = {line.strip() for line in env.txt(p.stdout).splitlines()
                          if line.strip()}
                shown = set(dumped(self.image, "--session", str(n), data=False).records) - {"/"}
                self.assertEqual(shown, listed, f"session {n}: discfs vs isoinfo -T {start}")

    def test_default_is_newest(self):
        d = dumped(self.image)
        self.check(3, d.records, "(discfs-dump without --session)")

    def test_dump_sessions_view(self):
        _, per = split_sessions(dumped(self.image, "--sessions").records)
        self.assertEqual(sorted(per), ["1", "2", "3"])
        for n in (1, 2, 3):
            with self.subTest(session=n):
                self.check(n, per[str(n)], "(discfs-dump --sessions, /N)")

    def test_mount_default_and_sessions(self):
        mount.require_fuse(self)
        mnt = new_mountpoint("appended-default")
        with mount.Mount(self.image, mnt) as m:
            with open(os.path.join(mnt, "r.txt"), "rb") as f:
                self.assertEqual(f.read(), b"v3\n")
            self.check(3, m.walk(), "(mount without --session)")
        mnt = new_mountpoint("appended-all")
        with mount.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--sessions")) as m:
            self.assertEqual(sorted(os.listdir(mnt)), ["1", "2", "3"])
            for n in (1, 2, 3):
                self.check(n, m.walk(str(n)), f"MNT/{n} of --sessions")
        mnt = new_mountpoint("appended-2")
        with mount.Mount(self.image, mnt, args=mount_args(self.image, mnt, "--session", "2")) as m:
            self.check(2, m.walk(), "(mount --session 2)")

    def test_stage_refuses_and_writes_nothing(self):
        # libisoburn would put a new session after session 1, over session 2.
        stage.use_private_dirs(self, M.sub(f"appended-stage-{self.GAPS}"))
        before = file_sha256(self.image)
        mnt = new_mountpoint("appended-stage")
        p = stage.discfs("stage", "-f", self.image, mnt, check=False)
        self.assertEqual(p.returncode, env.EXIT_UNSUPPORTED, p.err)
        lines = [line for line in p.err.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("session 2", lines[0])
        self.assertFalse(env.is_mounted(mnt))
        self.assertEqual(file_sha256(self.image), before)


class AppendedSessionsWithCdGaps(AppendedSessions):
    """The same with the gaps a CD-R leaves between sessions, zeros in the file."""

    GAPS = True

    def test_gaps_are_there(self):
        (s1, b1), (s2, b2), (s3, _) = self.layout
        self.assertEqual(s2, s1 + b1 + 11400)
        self.assertEqual(s3, s2 + b2 + 6900)


class AppendedHostile(unittest.TestCase):
    """Appended sessions with impossible sizes or a tail of fake descriptors: the search is
    bounded, the sessions that are there are shown as xorriso shows them, nothing hangs."""

    @classmethod
    def setUpClass(cls):
        cls.intact, cls.layout = appended_image(False)
        cls.refs = {n: extract_session(cls.intact, start, os.path.join(M.path, f"xh-{n}"))
                    for n, (start, _) in enumerate(cls.layout, start=1)}
        cls.work = M.sub("appended-hostile")

    def variant(self, name, change):
        img = copy_image(self.intact, os.path.join(self.work, name + ".iso"))
        with open(img, "r+b") as f:
            change(f)
        return img

    def sessions_shown(self, img):
        p = env.run([env.discfs_bin(), "info", "--json", img], timeout=120)
        return json.loads(env.txt(p.stdout))

    def test_huge_size_of_the_last_session(self):
        start3 = self.layout[2][0]

        def change(f):
            f.seek((start3 + 16) * 2048 + 80)
            f.write(b"\xff\xff\xff\xff\xff\xff\xff\xff")
        img = self.variant("huge", change)
        info = self.sessions_shown(img)
        self.assertEqual([s["start_lba"] for s in info["sessions"]],
                         [start for start, _ in self.layout])
        self.assertTrue(any("4294967295" in n for n in info["notes"]), info["notes"])
        _, per = split_sessions(dumped(img, "--sessions").records)
        for n in (1, 2, 3):
            env.fail_diff(self, trees.diff(self.refs[n], per[str(n)], fields=FIELDS),
                          f"session {n} next to a huge claimed size")

    def test_tail_of_fake_descriptors(self):
        # 12,100 blocks after the last session, each "CD001" of type 1 without a valid root.
        fake = bytearray(2048)
        fake[0:7] = b"\x01CD001\x01"

        def change(f):
            f.seek(0, os.SEEK_END)
            f.write(bytes(fake) * 12100)
        img = self.variant("fakes", change)
        info = self.sessions_shown(img)
        self.assertEqual(info["layout"], "appended")
        self.assertEqual(len(info["sessions"]), 3)
        self.check_newest(img)

    def test_descriptor_pointing_back(self):
        # Session 2's descriptors copied into the gap-less tail: its root lies before it.
        start2 = self.layout[1][0]

        def change(f):
            f.seek((start2 + 16) * 2048)
            pvd = f.read(2048)
            f.seek(0, os.SEEK_END)
            end = f.tell() // 2048
            f.write(bytes(16 * 2048) + pvd + bytes(64 * 2048))
            self.assertLess(start2, end)
        img = self.variant("back", change)
        self.assertEqual(len(self.sessions_shown(img)["sessions"]), 3)
        self.check_newest(img)

    def check_newest(self, img):
        env.fail_diff(self, trees.diff(self.refs[3], dumped(img).records, fields=FIELDS),
                      "the default view next to fake descriptors")


if __name__ == "__main__":
    unittest.main()
