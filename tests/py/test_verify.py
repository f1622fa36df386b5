"""`discfs verify` against independent writers and readers.

Images are grown by xorriso (`-dev ... -md5 on`, two sessions) and by discfs itself
(`discfs stage` + `discfs commit` onto an xorriso image), or written by genisoimage (no MD5
tags).  Where a file's data lies comes from xorriso (`-find ... -exec report_lba`, with
`-load sbsector N` for an older session), so a flipped byte is put where an independent
reader says the file is; xorriso's own `-check_md5` must agree that the damaged image is
damaged.  Published checksums come from sha256sum and md5sum.  `--against` compares with
the directory the image was made from, changed afterwards with ordinary file operations.

Run: /usr/bin/python3 -m testlib -v test_verify   (from tests/py)
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from testlib import env, readers, sanitizers, sources
from testlib import stage as stagelib

EXIT_MISMATCH = env.EXIT_MISMATCH

M = env.ModuleFixture("discfs-verify-", tools=("xorriso", "genisoimage", "sha256sum",
                                               "md5sum"))


def setUpModule():
    stagelib.set_up_module(M)


def tearDownModule():
    stagelib.tear_down_module(M)


def verify(*args):
    """`discfs verify ARGS --json`: (exit code, result object, stderr)."""
    cmd = [env.discfs_bin(), "verify", *[str(a) for a in args], "--json"]
    p = env.run(cmd, check=False, timeout=env.HANG_GUARD)
    err = env.txt(p.stderr)
    sanitizers.check(" ".join(cmd), err)
    lines = [json.loads(x) for x in env.txt(p.stdout).splitlines() if x.strip()]
    results = [x for x in lines if x.get("event") == "result"]
    return p.returncode, (results[-1] if results else None), err


def lba_of(img, path, session_start=None):
    """The first data block of `path` in the newest session, or in the session whose
    descriptors start at `session_start` + 16, as xorriso reports it."""
    args = ["-abort_on", "NEVER"]
    if session_start is not None:
        args += ["-load", "sbsector", str(session_start)]
    args += ["-indev", img, "-find", path, "-exec", "report_lba", "--"]
    r = readers.xorriso_run(*args)
    for line in (r.stdout + r.stderr).splitlines():
        m = re.match(r"File data lba:\s*\d+\s*,\s*(\d+)\s*,", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"xorriso reports no data block of {path} in {img}: {r.stderr[-800:]}")


def flip(img, offset):
    with open(img, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def make_tree(root, tag):
    os.makedirs(os.path.join(root, "sub"), exist_ok=True)
    for i in range(3):
        sources.write(root, f"f{i}", sources.rand_bytes(f"{tag}{i}", 150_000 + i))
    sources.write(root, "sub/small", b"small file\n", mode=0o600)
    os.symlink("f0", os.path.join(root, "link"))
    sources.set_dir_times(root)


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.join(M.path, self.id().rsplit(".", 1)[-1])
        os.makedirs(self.tmp)

    def p(self, *parts):
        return os.path.join(self.tmp, *parts)

    def xorriso_two_sessions(self):
        """An image grown by xorriso -dev to two sessions, MD5 tags on; session 2 adds a
        file and rewrites nothing else. Returns (img, tree of session 2)."""
        s1, s2, img = self.p("s1"), self.p("s2"), self.p("x.iso")
        make_tree(s1, "a")
        readers.xorriso(["-md5", "on", "-dev", img, "-map", s1, "/", "-commit"])
        shutil.copytree(s1, s2, symlinks=True)
        sources.write(s2, "new", sources.rand_bytes("new", 100_000))
        sources.set_dir_times(s2)
        readers.xorriso(["-md5", "on", "-dev", img, "-map", self.p("s2", "new"), "/new",
                         "-commit"])
        return img, s2

    def expect_session_states(self, res, states):
        self.assertEqual([s["md5"] for s in res["sessions"]], states, res["sessions"])


class Md5Tags(Base):
    def test_clean_xorriso_image_matches(self):
        img, _ = self.xorriso_two_sessions()
        rows = readers.toc_rows(img)
        self.assertEqual(len(rows), 2)
        rc, res, err = verify(img)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["result"], "match")
        self.assertEqual([s["start_lba"] for s in res["sessions"]], [r[1] for r in rows])
        self.expect_session_states(res, ["ok", "ok"])
        # Every file of both trees with an MD5 xorriso sees was read and checked.
        with_md5 = readers.files_with_md5(img)
        self.assertEqual(len(with_md5), 5)  # f0 f1 f2 sub/small new
        self.assertEqual(res["files"]["failed"], [])
        self.assertEqual(res["files"]["checked"], 4 + 5)  # session 1 had no "new"

    def damaged(self, session):
        img, _ = self.xorriso_two_sessions()
        rows = readers.toc_rows(img)
        if session == 1:
            lba = lba_of(img, "/f1", session_start=rows[0][1])
            path = "/f1"
        else:
            lba = lba_of(img, "/new")
            path = "/new"
        self.assertGreaterEqual(lba, rows[session - 1][1])
        self.assertLess(lba, rows[session - 1][1] + rows[session - 1][2])
        flip(img, lba * 2048 + 1000)
        xrc, xout = readers.check_md5(img)
        if session == 2:  # xorriso checks the newest session
            self.assertNotEqual(xrc, 0, "xorriso -check_md5 did not see the flipped byte")
        return img, path

    def test_flipped_byte_in_session_1_is_named(self):
        img, path = self.damaged(1)
        rc, res, err = verify(img)
        self.assertEqual(rc, EXIT_MISMATCH, err)
        self.assertEqual(res["result"], "mismatch")
        self.expect_session_states(res, ["mismatch", "ok"])
        self.assertIn("file data", res["sessions"][0]["detail"])
        # Session 2 keeps f1's extent of session 1: both trees name the damaged file.
        failed = {(f["session"], f["path"]) for f in res["files"]["failed"]}
        self.assertEqual(failed, {(1, path), (2, path)})

    def test_flipped_byte_in_session_2_is_named(self):
        img, path = self.damaged(2)
        rc, res, err = verify(img)
        self.assertEqual(rc, EXIT_MISMATCH, err)
        self.expect_session_states(res, ["ok", "mismatch"])
        self.assertEqual([(f["session"], f["path"]) for f in res["files"]["failed"]],
                         [(2, path)])

    def test_damaged_volume_descriptor_is_named(self):
        img, _ = self.xorriso_two_sessions()
        start = readers.toc_rows(img)[0][1]
        # Session 1's primary volume descriptor: its system identifier, which no reader uses.
        flip(img, (start + 16) * 2048 + 9)
        rc, res, err = verify(img)
        self.assertEqual(rc, EXIT_MISMATCH, err)
        self.expect_session_states(res, ["mismatch", "ok"])
        self.assertIn("volume descriptors", res["sessions"][0]["detail"])

    def test_session_without_tags_is_unchecked_not_failed(self):
        src, img = self.p("src"), self.p("g.iso")
        make_tree(src, "g")
        env.run(["genisoimage", "-quiet", "-R", "-o", img, src])
        rc, res, err = verify(img)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["result"], "match")
        self.expect_session_states(res, ["no-tags"])
        self.assertEqual(res["files"]["checked"], 0)
        p = env.run([env.discfs_bin(), "verify", img], check=False)
        self.assertEqual(p.returncode, 0)
        self.assertIn("no MD5 tags, unchecked", env.txt(p.stdout))

    def test_not_an_image(self):
        junk = self.p("junk")
        with open(junk, "wb") as f:
            f.write(b"\0" * 100_000)
        rc, res, err = verify(junk)
        self.assertEqual(rc, env.EXIT_NOT_AN_IMAGE, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        rc, _, err = verify(self.p("missing.iso"))
        self.assertEqual(rc, env.EXIT_CANNOT_OPEN, err)


class DiscfsGrown(Base):
    """An image grown by discfs stage + commit onto an xorriso image."""

    def setUp(self):
        super().setUp()
        from testlib import mount
        reason = mount.fuse_unavailable_reason()
        if reason:
            self.skipTest(reason)
        # The control socket's path must fit a sockaddr_un: a short private directory.
        short = tempfile.mkdtemp(prefix="dv-")
        self.addCleanup(shutil.rmtree, short, True)
        stagelib.use_private_dirs(self, short)

    def test_flipped_bytes_in_discfs_sessions(self):
        src, img, mnt = self.p("src"), self.p("d.iso"), self.p("mnt")
        make_tree(src, "d")
        readers.xorriso(["-md5", "on", "-dev", img, "-map", src, "/", "-commit"])
        os.makedirs(mnt)
        with stagelib.Stage(img, mnt):
            stagelib.write_file(os.path.join(mnt, "added"), sources.rand_bytes("add", 80_000))
            stagelib.commit(mnt)
        rows = readers.toc_rows(img)
        self.assertEqual(len(rows), 2)
        rc, res, err = verify(img)
        self.assertEqual(rc, 0, err)
        self.expect_session_states(res, ["ok", "ok"])
        self.assertEqual(res["files"]["failed"], [])
        self.assertGreater(res["files"]["checked"], 8)

        one = self.p("one.iso")
        shutil.copy(img, one)
        flip(one, lba_of(one, "/f2", session_start=rows[0][1]) * 2048 + 7)
        rc, res, err = verify(one)
        self.assertEqual(rc, EXIT_MISMATCH, err)
        self.expect_session_states(res, ["mismatch", "ok"])
        self.assertIn((1, "/f2"), {(f["session"], f["path"]) for f in res["files"]["failed"]})

        two = self.p("two.iso")
        shutil.copy(img, two)
        lba = lba_of(two, "/added")
        self.assertGreaterEqual(lba, rows[1][1])
        flip(two, lba * 2048 + 7)
        self.assertNotEqual(readers.check_md5(two)[0], 0)
        rc, res, err = verify(two)
        self.assertEqual(rc, EXIT_MISMATCH, err)
        self.expect_session_states(res, ["ok", "mismatch"])
        self.assertEqual([(f["session"], f["path"]) for f in res["files"]["failed"]],
                         [(2, "/added")])


    def test_genisoimage_image_grown_by_discfs(self):
        # One session at LBA 0 without tags; discfs's session after it has tags, and so has
        # the copy of session 1's descriptors and tree that discfs keeps.
        src, img, mnt = self.p("src"), self.p("g.iso"), self.p("mnt")
        make_tree(src, "h")
        env.run(["genisoimage", "-quiet", "-R", "-o", img, src])
        os.makedirs(mnt)
        with stagelib.Stage(img, mnt):
            stagelib.write_file(os.path.join(mnt, "added"), sources.rand_bytes("h2", 60_000))
            stagelib.commit(mnt)
        rc, res, err = verify(img)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(res["sessions"]), 2)
        one, two = res["sessions"]
        self.assertEqual((one["start_lba"], one["md5"]), (0, "ok"))
        self.assertNotEqual(one["range_start"], 0, "session 1's data has no tags to match")
        self.assertEqual((two["md5"], two["range_start"]), ("ok", two["start_lba"]))
        self.assertEqual(res["files"]["checked"], 1)  # the one file discfs wrote
        lba = lba_of(img, "/added")
        self.assertGreaterEqual(lba, two["start_lba"])
        flip(img, lba * 2048 + 3)
        rc, res, err = verify(img)
        self.assertEqual(rc, EXIT_MISMATCH, err)
        self.expect_session_states(res, ["ok", "mismatch"])
        self.assertEqual([(f["session"], f["path"]) for f in res["files"]["failed"]],
                         [(2, "/added")])


class Published(Base):
    def test_sha256_and_md5(self):
        img, _ = self.xorriso_two_sessions()
        sha = env.txt(env.run(["sha256sum", img]).stdout).split()[0]
        md5 = env.txt(env.run(["md5sum", img]).stdout).split()[0]
        rc, res, err = verify(img, "--sha256", sha)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["checksum"]["actual"], sha)
        self.assertEqual(res["checksum"]["bytes"], os.path.getsize(img))
        rc, res, err = verify(img, "--sha256", sha.upper())
        self.assertEqual(rc, 0, err)
        wrong = sha[:-1] + ("0" if sha[-1] != "0" else "1")
        rc, res, err = verify(img, "--sha256", wrong)
        self.assertEqual(rc, EXIT_MISMATCH, err)
        self.assertFalse(res["checksum"]["match"])
        self.assertEqual(res["checksum"]["actual"], sha)
        rc, res, err = verify(img, "--md5", md5)
        self.assertEqual(rc, 0, err)
        rc, res, err = verify(img, "--md5", hashlib.md5(b"other").hexdigest())
        self.assertEqual(rc, EXIT_MISMATCH, err)

    def test_udf_image_has_no_tags_but_a_checksum(self):
        from testlib import images
        if not shutil.which("mkudffs"):
            self.skipTest("mkudffs (udftools) is missing")
        img = images.make_mkudffs(self.p("u.udf"), "hd", "0x0201", blocks=4096)
        sha = env.txt(env.run(["sha256sum", img]).stdout).split()[0]
        rc, res, err = verify(img, "--sha256", sha)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["sessions"], [])
        self.assertIn("UDF", " ".join(res["notes"]))
        rc, res, err = verify(img, "--sha256", "0" * 64)
        self.assertEqual(rc, EXIT_MISMATCH, err)

    def test_bad_checksum_arguments(self):
        img, _ = self.xorriso_two_sessions()
        for args in (["--sha256", "abc"], ["--md5", "z" * 32],
                     ["--sha256", "0" * 64, "--md5", "0" * 32]):
            p = env.run([env.discfs_bin(), "verify", img, *args], check=False)
            self.assertEqual(p.returncode, env.EXIT_USAGE, args)


class Device(Base):
    """A block device (a loop device over a "stick" holding an image and more data after it):
    the published checksum covers the image's size, not the device's."""

    def setUp(self):
        super().setUp()
        losetup = shutil.which("losetup") or shutil.which("losetup", path="/usr/sbin:/sbin")
        if not env.is_root() or not losetup:
            self.skipTest("loop devices need root and losetup")
        self.losetup = losetup

    def attach(self, path):
        p = env.run([self.losetup, "-r", "-f", "--show", path], check=False, timeout=60)
        dev = env.txt(p.stdout).strip()
        if p.returncode != 0 or not dev.startswith("/dev/") or not os.path.exists(dev):
            self.skipTest(f"loop devices are not available here: {env.txt(p.stderr).strip()}")
        self.addCleanup(subprocess.run, [self.losetup, "-d", dev], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        return dev

    def test_checksum_of_the_image_part_of_a_device(self):
        src, img, stick = self.p("src"), self.p("i.iso"), self.p("stick")
        make_tree(src, "dev")
        env.run(["xorriso", "-as", "mkisofs", "-R", "--md5", "-o", img, src],
                stderr=subprocess.DEVNULL)
        sha = env.txt(env.run(["sha256sum", img]).stdout).split()[0]
        shutil.copy(img, stick)
        with open(stick, "ab") as f:
            f.write(sources.rand_bytes("tail", 1 << 20))
        dev = self.attach(stick)
        rc, res, err = verify(dev, "--sha256", sha)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["checksum"]["bytes"], os.path.getsize(img))
        self.expect_session_states(res, ["ok"])
        # The file itself is the whole stick: its checksum is another.
        rc, res, err = verify(stick, "--sha256", sha)
        self.assertEqual(rc, EXIT_MISMATCH, err)


class Against(Base):
    def test_same_tree_matches(self):
        img, s2 = self.xorriso_two_sessions()
        rc, res, err = verify(img, "--against", s2)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["against"]["differences"], [])

    def test_every_difference_is_listed(self):
        img, s2 = self.xorriso_two_sessions()
        # Changed content (same size and mtime), a missing file, an extra one, a mode, an
        # mtime, a link target.
        with open(os.path.join(s2, "f1"), "rb") as f:
            data = bytearray(f.read())
        data[5000] ^= 1
        sources.write(s2, "f1", bytes(data))
        os.remove(os.path.join(s2, "f2"))
        sources.write(s2, "sub/only_here", b"x")
        os.chmod(os.path.join(s2, "f0"), 0o640)
        os.utime(os.path.join(s2, "new"), (sources.T1980, sources.T1980))
        link = os.path.join(s2, "link")
        link_mtime = os.lstat(link).st_mtime_ns
        os.remove(link)
        os.symlink("f9", link)
        os.utime(link, ns=(link_mtime, link_mtime), follow_symlinks=False)
        os.utime(os.path.join(s2, "sub"), (sources.T_DIR, sources.T_DIR))
        rc, res, err = verify(img, "--against", s2)
        self.assertEqual(rc, EXIT_MISMATCH, err)
        diffs = {(d["kind"], d["path"], (d["what"] or "").split(":")[0])
                 for d in res["against"]["differences"]}
        self.assertEqual(diffs, {
            ("changed", "f1", "content"),
            ("extra", "f2", ""),
            ("missing", "sub/only_here", ""),
            ("changed", "f0", "mode"),
            ("changed", "new", "mtime"),
            ("changed", "link", "link target"),
        })
        self.assertIn("differs from byte 5000",
                      [d["what"] for d in res["against"]["differences"] if d["path"] == "f1"][0])
        p = env.run([env.discfs_bin(), "verify", img, "--against", s2], check=False)
        self.assertEqual(p.returncode, EXIT_MISMATCH)
        self.assertIn("missing: sub/only_here", env.txt(p.stdout))


if __name__ == "__main__":
    unittest.main()
