"""The commit engine (burner::commit, burner::probe_target) through tests/tools/commit_driver.

Every check reads the result with xorriso (toc, -check_md5, -check_md5_r, -osirrox
extraction); the expected trees come from the files the test wrote itself.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from testlib import env, images, readers, sanitizers, trees

T0 = 1700000000


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def head64k(path):
    with open(path, "rb") as f:
        return f.read(65536)


def shape(rec):
    """What the commit engine's tests compare of one extracted entry."""
    if rec.type == "lnk":
        return ("l", rec.target)
    if rec.type == "dir":
        return ("d", oct(rec.mode))
    if rec.type == "reg":
        return ("f", oct(rec.mode), rec.sha256, rec.mtime)
    return ("s", rec.type, rec.mode)


def extract(img, dest):
    """{path: shape} of what `xorriso -osirrox on -extract / DEST` writes."""
    r = readers.xorriso_run("-osirrox", "on", "-indev", img, "-extract", "/", dest)
    if r.returncode != 0:
        raise AssertionError("xorriso extract failed: " + r.stderr[-2000:])
    return {p: shape(rec) for p, rec in trees.walk(dest).items() if p != "/"}


class Spec:
    """A staged tree as the driver reads it (see commit_driver.cc)."""

    def __init__(self):
        self.lines = ["D\t/\t755\t0\t0\t%d\t-\t0" % T0]

    def dir(self, path, base="-", whole=False, perm="755"):
        self.lines.append("D\t%s\t%s\t0\t0\t%d\t%s\t%d" % (path, perm, T0, base, int(whole)))

    def local(self, path, local, perm="644", mtime=T0):
        self.lines.append("F\t%s\t%s\t0\t0\t%d\tL\t%s" % (path, perm, mtime, local))

    def base(self, path, base, perm="644", mtime=T0):
        self.lines.append("F\t%s\t%s\t0\t0\t%d\tB\t%s" % (path, perm, mtime, base))

    def symlink(self, path, target):
        self.lines.append("L\t%s\t777\t0\t0\t%d\t%s\t-" % (path, T0, target))

    def write(self, path):
        with open(path, "w") as f:
            f.write("\n".join(self.lines) + "\n")


class CommitEngineTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        env.require_binary(env.commit_driver_bin(), "commit_driver")
        env.require_tools("xorriso")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="discfs-commit-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.n = 0

    def file(self, data):
        self.n += 1
        p = os.path.join(self.tmp, "data%d" % self.n)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def run_driver(self, *args, ok=True):
        r = subprocess.run([env.commit_driver_bin(), *args], capture_output=True, text=True,
                           timeout=env.HANG_GUARD)
        self.assertIsNone(sanitizers.report(r.stderr), r.stderr[-3000:])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if ok:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr[-3000:])
        else:
            self.assertNotEqual(r.returncode, 0, r.stdout)
        return res

    def commit(self, img, spec, *opts, ok=True):
        self.n += 1
        sp = os.path.join(self.tmp, "spec%d" % self.n)
        spec.write(sp)
        return self.run_driver("commit", img, sp, *opts, ok=ok)

    def expect_tree(self, img, expected):
        self.n += 1
        got = extract(img, os.path.join(self.tmp, "x%d" % self.n))
        self.assertEqual(got, expected)

    def test_three_commits(self):
        img = os.path.join(self.tmp, "img.iso")
        big = os.urandom(8 << 20)
        s = Spec()
        s.dir("/a")
        s.local("/a/big", self.file(big))
        s.local("/a/one", self.file(b"one\n"), perm="600")
        s.dir("/b")
        s.local("/b/two", self.file(b"two\n"))
        s.symlink("/lnk", "a/big")
        r1 = self.commit(img, s)
        self.assertEqual((r1["session"], r1["start_lba"]), (1, 32))
        self.assertTrue(r1["verified"])
        self.assertEqual(readers.toc(img), [(32, r1["blocks"])])
        self.assertEqual(readers.check_md5(img)[0], 0)
        hb = hashlib.sha256(big).hexdigest()
        self.expect_tree(img, {
            "/a": ("d", "0o755"), "/a/big": ("f", "0o644", hb, T0),
            "/a/one": ("f", "0o600", sha(self.file(b"one\n")), T0),
            "/b": ("d", "0o755"), "/b/two": ("f", "0o644", sha(self.file(b"two\n")), T0),
            "/lnk": ("l", "a/big")})

        # Session 2: rename the whole base dir /a to /c, overwrite /b/two, add one file.
        s = Spec()
        s.dir("/c", base="/a", whole=True)
        s.dir("/b", base="/b")
        s.local("/b/two", self.file(b"TWO!\n"))
        s.local("/b/three", self.file(b"three\n"))
        s.symlink("/lnk", "c/big")
        r2 = self.commit(img, s)
        self.assertEqual(r2["session"], 2)
        self.assertLess(r2["blocks"], 200, "session 2 rewrote base data")
        self.assertEqual(readers.check_md5(img)[0], 0, readers.check_md5(img)[1])
        self.assertEqual([x[0] for x in readers.toc(img)], [32, r2["start_lba"]])
        self.expect_tree(img, {
            "/c": ("d", "0o755"), "/c/big": ("f", "0o644", hb, T0),
            "/c/one": ("f", "0o600", sha(self.file(b"one\n")), T0),
            "/b": ("d", "0o755"), "/b/two": ("f", "0o644", sha(self.file(b"TWO!\n")), T0),
            "/b/three": ("f", "0o644", sha(self.file(b"three\n")), T0),
            "/lnk": ("l", "c/big")})

        # Session 3: delete /b, move /c/big to the root, add a file into the kept /c.
        s = Spec()
        s.dir("/c", base="/c")
        s.base("/c/one", "/c/one", perm="600")
        s.local("/c/new", self.file(b"new\n"))
        s.base("/big", "/c/big")
        r3 = self.commit(img, s)
        self.assertLess(r3["blocks"], 200)
        self.assertEqual(len(readers.toc(img)), 3)
        self.assertEqual(readers.check_md5(img)[0], 0, readers.check_md5(img)[1])
        self.expect_tree(img, {
            "/c": ("d", "0o755"), "/c/one": ("f", "0o600", sha(self.file(b"one\n")), T0),
            "/c/new": ("f", "0o644", sha(self.file(b"new\n")), T0),
            "/big": ("f", "0o644", hb, T0)})
        probe = self.run_driver("probe", img)
        self.assertEqual(probe["state"], "appendable")
        self.assertEqual([x["start"] for x in probe["sessions"]], [x[0] for x in readers.toc(img)])

    def test_append_to_xorriso_image_keeps_md5(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "old"), "wb") as f:
            f.write(os.urandom(300000))
        img = os.path.join(self.tmp, "x.iso")
        r = readers.xorriso_run("-md5", "on", "-dev", img, "-map", src, "/d", "--", "-commit")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = Spec()
        s.dir("/d", base="/d", whole=True)
        s.local("/n", self.file(b"n\n"))
        self.commit(img, s)
        code, out = readers.check_md5(img)
        self.assertEqual(code, 0, out)
        self.assertIn("File contents and their MD5 checksums match", out)
        r = readers.xorriso_run("-md5", "on", "-indev", img, "-find", "/d/old", "-has_md5", "-exec",
                                "lsdl", "--")
        self.assertIn("/d/old", r.stdout)
        self.assertEqual(len(readers.toc(img)), 2)

    def test_append_to_single_session_at_lba0(self):
        env.require_tools("genisoimage")
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "f"), "wb") as f:
            f.write(b"from genisoimage\n")
        img = os.path.join(self.tmp, "g.iso")
        subprocess.run(["genisoimage", "-quiet", "-R", "-o", img, src], check=True)
        self.assertTrue(self.run_driver("probe", img)["single_session_at_zero"])
        s = Spec()
        s.base("/f", "/f")
        s.local("/g", self.file(b"g\n"))
        r = self.commit(img, s)
        # No session chain starts at LBA 32 here, so xorriso (like libisoburn) shows one
        # session from LBA 0 that now reaches the end of the new one.
        self.assertEqual(readers.toc(img), [(0, r["start_lba"] + r["blocks"])])
        self.assertEqual(readers.check_md5(img)[0], 0)
        self.expect_tree(img, {"/f": ("f", "0o644", sha(self.file(b"from genisoimage\n")), T0),
                               "/g": ("f", "0o644", sha(self.file(b"g\n")), T0)})

    def _one_session(self):
        img = os.path.join(self.tmp, "img.iso")
        s = Spec()
        s.local("/f", self.file(b"first\n"))
        self.commit(img, s)
        return img

    def test_refusals_write_nothing(self):
        udf = os.path.join(self.tmp, "u.udf")
        if shutil.which("mkudffs"):
            with open(udf, "wb") as f:
                f.truncate(4 << 20)
            subprocess.run(["mkudffs", "--media-type=hd", udf], capture_output=True, check=True)
            before = sha(udf)
            s = Spec()
            s.local("/f", self.file(b"x"))
            res = self.commit(udf, s, ok=False)
            self.assertIn("UDF", res["error"])
            self.assertEqual(sha(udf), before)
        img = self._one_session()
        os.chmod(img, 0o444)
        before = sha(img)
        s = Spec()
        s.local("/g", self.file(b"y"))
        res = self.commit(img, s, ok=False)
        self.assertIn("read-only", res["error"])
        self.assertEqual(sha(img), before)
        os.chmod(img, 0o644)
        res = self.commit(img, s, "--capacity", "64K", ok=False)
        self.assertIn("full", res["error"])
        self.assertEqual(sha(img), before)

    def test_appended_sessions_are_not_overwritten(self):
        # Sessions written one after another without libisoburn's chain (genisoimage -C/-M):
        # LBA 16 describes session 1 only, from which libisoburn would take the next
        # writable address, over session 2.  The commit is refused; every session stays.
        env.require_tools("genisoimage")
        srcs = []
        for n in (1, 2):
            d = os.path.join(self.tmp, "src%d" % n)
            os.makedirs(d)
            with open(os.path.join(d, "f%d" % n), "wb") as f:
                f.write(b"session %d\n" % n)
            srcs.append(d)
        img = os.path.join(self.tmp, "appended.iso")
        layout = images.make_appended(img, srcs)

        def sessions_seen():
            return [sorted(readers.xorriso_run("-indev", img, "-load", "sbsector", str(start),
                                               "-find", "/", "-exec", "lsdl").stdout.splitlines())
                    for start, _ in layout]
        before, seen = sha(img), sessions_seen()
        self.assertIn("f2", "".join(seen[1]))
        probe = self.run_driver("probe", img)
        self.assertEqual(probe["state"], "not_appendable", probe)
        self.assertIn("session 2", probe["reason"])
        s = Spec()
        s.local("/g", self.file(b"g\n"))
        res = self.commit(img, s, ok=False)
        self.assertIn("session 2", res["error"])
        self.assertEqual(sha(img), before)
        self.assertEqual(sessions_seen(), seen)

    def test_dummy_and_to(self):
        img = self._one_session()
        before = sha(img)
        s = Spec()
        s.base("/f", "/f")
        s.local("/g", self.file(b"second\n"))
        self.commit(img, s, "--dummy")
        self.assertEqual(sha(img), before)
        new = os.path.join(self.tmp, "new.iso")
        r = self.commit(img, s, "--to", new)
        self.assertEqual(sha(img), before)
        self.assertEqual(readers.toc(new), [(0, r["blocks"])])
        self.assertEqual(readers.check_md5(new)[0], 0)
        self.expect_tree(new, {"/f": ("f", "0o644", sha(self.file(b"first\n")), T0),
                               "/g": ("f", "0o644", sha(self.file(b"second\n")), T0)})

    def test_failure_before_activation_keeps_previous_session(self):
        img = self._one_session()
        head = head64k(img)
        s = Spec()
        s.base("/f", "/f")
        s.local("/big", self.file(os.urandom(4 << 20)))
        res = self.commit(img, s, "--fail-before-activation", ok=False)
        self.assertIn("LBA 0..31", res["error"])
        self.assertEqual(head64k(img), head)
        self.assertEqual(len(readers.toc(img)), 1)
        self.assertEqual(readers.check_md5(img)[0], 0)
        res = self.commit(img, s, "--cancel-at", "1", ok=False)
        self.assertEqual(head64k(img), head)
        self.assertEqual(len(readers.toc(img)), 1)
        r = self.commit(img, s)
        self.assertEqual(r["session"], 2)
        self.assertEqual(len(readers.toc(img)), 2)
        self.assertEqual(readers.check_md5(img)[0], 0)


if __name__ == "__main__":
    unittest.main()
