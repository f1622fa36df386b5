"""History of images whose first session is at LBA 0, grown by discfs.

Images written in one go (genisoimage -R -J; a distribution-style `xorriso -as mkisofs`
image with El Torito and an isohybrid MBR) have their first session at LBA 0.  libisoburn
grows them by rewriting LBA 0..31 with the newest descriptors, which destroys the first
session's own descriptors and (with genisoimage) its path tables and root directory; xorriso
then lists one session.  Each image here is grown three times through a stage mount (change
files with ordinary file operations, `discfs commit`).  Before each commit the newest state
is saved as xorriso extracts it; afterwards

  - `discfs info` (text and --json) lists 4 sessions, and `commit` reported 2, 3, 4;
  - discfs-dump --session N, `discfs mount --session N` and folder N of a --sessions mount
    each match the saved extraction of state N;
  - xorriso (-osirrox extraction, -check_md5), isoinfo and 7-Zip read the newest state.

Also: a commit stopped after the copy of the first session is in force (commit_driver
--fail-after-copy) leaves the image showing its first session unchanged, and the stage made
before it commits on it as on its base; records that point forward, loop or lie past the
end are ignored (hostile images built by patching a grown one).

Run: /usr/bin/python3 -m testlib -v test_history   (from tests/py)
"""

import json
import os
import shutil
import struct
import subprocess
import unittest

from testlib import dump, env, mount, readers, sanitizers, sources, stage, trees

M = env.ModuleFixture("discfs-history-", binaries=("discfs-dump",),
                      tools=("xorriso", "genisoimage"))
FIELDS = ("type", "mode", "uid", "gid", "nlink", "size", "mtime", "target", "sha256")
ISOHDPFX = "/usr/lib/ISOLINUX/isohdpfx.bin"
ISOLINUX_BIN = "/usr/lib/ISOLINUX/isolinux.bin"
APP_USE = 883       # ECMA-119 8.4.32: the PVD's Application Use field
MAGIC = b"DISCFS-HISTORY"


def setUpModule():
    stage.set_up_module(M)


def tearDownModule():
    stage.tear_down_module(M)


# ---------------------------------------------------------------------------
# Independent views
# ---------------------------------------------------------------------------

def xorriso_view(img, dest):
    """The newest state of img as xorriso extracts it, as reference records."""
    readers.xorriso_extract(img, dest, devices=False)
    return readers.extraction_reference(trees.walk(dest))


def discfs_info(img, *extra):
    return stage.discfs("info", *extra, img)


def source_tree(root):
    sources.write(root, "README", b"first session, written in one go\n")
    sources.write(root, "docs/a.txt", b"doc a\n")
    sources.write(root, "docs/b.txt", b"doc b, deleted in the second state\n")
    sources.write(root, "docs/sub/c.txt", b"doc c\n", mtime=sources.T1980)
    sources.write(root, "data/big.bin", sources.rand_bytes(21, 300001))
    sources.write(root, "data/rewrite.txt", b"version one\n")
    for i in range(40):  # enough names that the tree reaches past LBA 16..31
        sources.write(root, f"many/file-with-a-long-name-{i:03}.txt", b"%d\n" % i)
    os.symlink("docs/a.txt", os.path.join(root, "link"))


def genisoimage_image(work):
    src = os.path.join(work, "src")
    source_tree(src)
    img = os.path.join(work, "g.iso")
    env.run(["genisoimage", "-quiet", "-R", "-J", "-o", img, src])
    return img


def distro_image(work):
    """A small distribution-style image: El Torito with isolinux and an isohybrid MBR."""
    env.require_tools("xorriso")
    for f in (ISOHDPFX, ISOLINUX_BIN):
        if not os.path.exists(f):
            raise unittest.SkipTest(f"{f} is missing (Debian package isolinux)")
    src = os.path.join(work, "src")
    source_tree(src)
    os.makedirs(os.path.join(src, "isolinux"))
    shutil.copy(ISOLINUX_BIN, os.path.join(src, "isolinux", "isolinux.bin"))
    img = os.path.join(work, "d.iso")
    readers.xorriso(["-as", "mkisofs", "-R", "-J", "-V", "DISTRO", "-o", img,
                     "-isohybrid-mbr", ISOHDPFX, "-b", "isolinux/isolinux.bin",
                     "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4",
                     "-boot-info-table", src])
    return img


def change(mnt, round_no):
    """What a user does between commits, through the stage mount."""
    if round_no == 1:
        os.unlink(os.path.join(mnt, "docs/b.txt"))
        stage.write_file(os.path.join(mnt, "data/rewrite.txt"), b"version two, longer\n")
        os.makedirs(os.path.join(mnt, "new/dir"))
        stage.write_file(os.path.join(mnt, "new/dir/n.txt"), b"new in state 2\n")
    elif round_no == 2:
        os.rename(os.path.join(mnt, "docs"), os.path.join(mnt, "documents"))
        stage.write_file(os.path.join(mnt, "data/rewrite.txt"), b"v3\n")
        os.chmod(os.path.join(mnt, "README"), 0o600)
    else:
        shutil.rmtree(os.path.join(mnt, "many"))
        stage.write_file(os.path.join(mnt, "data/big2.bin"), sources.rand_bytes(22, 70001))


def grow(test, img, work):
    """Three rounds of stage, change, commit. Returns ({state: reference}, [commit results])."""
    refs = {}
    results = []
    mnt = os.path.join(work, "mnt")
    store = os.path.join(work, "store")
    for n in (1, 2, 3):
        refs[n] = xorriso_view(img, os.path.join(work, f"x{n}"))
        with stage.Stage(img, mnt, store=store):
            change(mnt, n)
            results.append(stage.commit(mnt))
    refs[4] = xorriso_view(img, os.path.join(work, "x4"))
    return refs, results


def split_sessions(records):
    out = {}
    for p, r in records.items():
        if p == "/":
            continue
        head, _, rest = p[1:].partition("/")
        out.setdefault(head, {})["/" + rest] = r
    return out


class GrownHistory:
    """Shared checks; subclasses make the image."""
    name = None

    @classmethod
    def make(cls, work):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        reason = mount.fuse_unavailable_reason()
        if reason:
            raise unittest.SkipTest(reason)
        work = M.sub(cls.name)
        cls.img = cls.make(work)
        cls.original = os.path.join(work, "original.iso")
        shutil.copy(cls.img, cls.original)
        cls.refs, cls.results = grow(None, cls.img, work)

    # Files whose bytes libisofs writes anew in every session, so also in the copy that
    # session 1 is read through: the El Torito catalog, and a boot image whose boot info
    # table holds LBAs. State 1 shows them as the copy wrote them (same size).
    rewritten_in_copy = ()

    def check(self, n, got, what):
        ref = self.refs[n]
        if n == 1 and self.rewritten_in_copy:
            for p in self.rewritten_in_copy:
                self.assertIn(p, got, what)
                self.assertEqual((got[p].type, got[p].size), (ref[p].type, ref[p].size),
                                 f"{p} {what}")
            ref = {p: r for p, r in ref.items() if p not in self.rewritten_in_copy}
            got = {p: r for p, r in got.items() if p not in self.rewritten_in_copy}
        env.fail_diff(self, trees.diff(ref, got, fields=FIELDS),
                      f"state {n} {what} differs from xorriso's extraction of that state")

    def test_states_differ(self):
        # Guards the test itself: the four states really differ.
        self.assertIn("/docs/b.txt", self.refs[1])
        self.assertNotIn("/docs/b.txt", self.refs[2])
        self.assertIn("/documents/a.txt", self.refs[3])
        self.assertNotIn("/many", self.refs[4])
        self.assertIn("/data/big2.bin", self.refs[4])

    def test_xorriso_alone_sees_one_session(self):
        # What discfs does differently from xorriso: xorriso keeps no history here.
        self.assertEqual(len(readers.toc_rows(self.img)), 1)

    def test_commit_numbers_match_info(self):
        self.assertEqual([r["session"] for r in self.results], [2, 3, 4])
        info = json.loads(discfs_info(self.img, "--json").out)
        self.assertEqual(info["layout"], "history")
        sessions = info["sessions"]
        self.assertEqual([s["number"] for s in sessions], [1, 2, 3, 4])
        self.assertEqual(sessions[0]["start_lba"], 0)
        with open(self.original, "rb") as f:
            f.seek(16 * 2048 + 80)
            original_blocks = struct.unpack("<I", f.read(4))[0]
        self.assertEqual(sessions[0]["blocks"], original_blocks,
                         "session 1 is the LBA-0 session with its own length")
        for r, s in zip(self.results, sessions[1:]):
            self.assertEqual(r["start_lba"], s["start_lba"])
        text = discfs_info(self.img).out
        rows = [ln.split() for ln in text.splitlines()
                if ln.strip() and ln.split()[0].isdigit() and len(ln.split()) == 3]
        self.assertEqual([int(r[0]) for r in rows], [1, 2, 3, 4], text)

    def test_each_session_dumped(self):
        for n in (1, 2, 3, 4):
            with self.subTest(session=n):
                d = dump.dump(self.img, extra=["--session", str(n)])
                self.check(n, d.records, "(discfs-dump --session)")

    def test_sessions_view(self):
        d = dump.dump(self.img, extra=["--sessions"])
        per = split_sessions(d.records)
        self.assertEqual(sorted(per), ["1", "2", "3", "4"])
        for n in (1, 2, 3, 4):
            with self.subTest(session=n):
                self.check(n, per[str(n)], "(discfs-dump --sessions, /N)")

    def test_mounted_sessions(self):
        mnt = M.sub(self.name, "ro-mnt")
        with mount.Mount(self.img, mnt, args=["mount", "-f", "--sessions", self.img, mnt]):
            self.assertEqual(sorted(os.listdir(mnt)), ["1", "2", "3", "4"])
            for n in (1, 2, 3, 4):
                with self.subTest(session=n):
                    self.check(n, trees.walk(os.path.join(mnt, str(n))),
                               "(ls/cat of the --sessions mount)")
        with mount.Mount(self.img, mnt, options=["ro", "session=1"]):
            self.check(1, trees.walk(mnt), "(mount -o session=1)")

    def test_newest_read_by_others(self):
        self.check(4, dump.dump(self.img).records, "(discfs-dump, default)")
        rc, out = readers.check_md5(self.img)
        self.assertEqual(rc, 0, out)
        # isoinfo reads the newest Rock Ridge tree from LBA 16.
        p = env.run(["isoinfo", "-R", "-f", "-i", self.img], check=False)
        names = set(env.txt(p.stdout).split())
        self.assertIn("/data/big2.bin", names)
        self.assertNotIn("/many", names)
        # 7-Zip (Joliet) lists the newest state.
        try:
            listing = readers.sevenzip_listing(self.img)
        except readers.ReaderUnavailable as e:
            self.skipTest(str(e))
        self.assertIn("/data/big2.bin", listing)
        self.assertIn("/documents/a.txt", listing)
        self.assertNotIn("/docs", listing)


class Genisoimage(GrownHistory, unittest.TestCase):
    name = "genisoimage"

    @classmethod
    def make(cls, work):
        return genisoimage_image(work)

    def test_first_tree_was_overwritten(self):
        # Guards the test: genisoimage put the first tree within LBA 16..31, which
        # libisoburn's copy of the newest descriptors overwrote.
        with open(self.original, "rb") as f:
            f.seek(16 * 2048 + 156 + 2)
            root = struct.unpack("<I", f.read(4))[0]
        self.assertLess(root, 32)


class Distribution(GrownHistory, unittest.TestCase):
    name = "distro"
    rewritten_in_copy = ("/isolinux/boot.cat", "/isolinux/isolinux.bin")

    @classmethod
    def make(cls, work):
        return distro_image(work)

    def test_boot_kept(self):
        r = readers.xorriso_run("-indev", self.img, "-report_el_torito", "plain")
        self.assertIn("isolinux", r.stdout + r.stderr)


# ---------------------------------------------------------------------------
# A commit stopped between the copy and the new session
# ---------------------------------------------------------------------------

class StoppedAfterCopy(unittest.TestCase):
    def test_stopped_after_copy(self):
        env.require_binary(env.commit_driver_bin(), "commit_driver")
        mount.require_fuse(self)
        work = M.sub("stopped")
        img = genisoimage_image(work)
        ref1 = xorriso_view(img, os.path.join(work, "x1"))
        mnt = os.path.join(work, "mnt")
        store = os.path.join(work, "store")
        with stage.Stage(img, mnt, store=store):
            stage.write_file(os.path.join(mnt, "added.txt"), b"staged before the stop\n")
            # Another commit engine run, stopped once the copy is in force.
            spec = os.path.join(work, "spec")
            with open(spec, "w") as f:
                f.write("D\t/\t755\t0\t0\t1700000000\t-\t0\n")
            r = subprocess.run([env.commit_driver_bin(), "commit", img, spec,
                                "--fail-after-copy"], capture_output=True, text=True,
                               timeout=env.HANG_GUARD)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("after the copy", r.stdout)
            # The image shows its first session, unchanged, as its only session.
            info = json.loads(discfs_info(img, "--json").out)
            self.assertEqual(len(info["sessions"]), 1, info)
            env.fail_diff(self, trees.diff(ref1, dump.dump(img).records, fields=FIELDS),
                          "the image after the copy")
            # The stage still takes the image as its base: nothing lost.
            res = stage.commit(mnt)
        self.assertEqual(res["session"], 2)
        info = json.loads(discfs_info(img, "--json").out)
        self.assertEqual([s["number"] for s in info["sessions"]], [1, 2])
        env.fail_diff(self, trees.diff(ref1, dump.dump(img, extra=["--session", "1"]).records,
                                       fields=FIELDS), "session 1 after the stop")
        d2 = dump.dump(img, extra=["--session", "2"]).records
        self.assertEqual(d2["/added.txt"].sha256, trees.sha256(b"staged before the stop\n"))


# ---------------------------------------------------------------------------
# Hostile records
# ---------------------------------------------------------------------------

def pvd_starts(img):
    """LBAs of every primary volume descriptor carrying a discfs record: {lba: app_use}."""
    out = {}
    with open(img, "rb") as f:
        data = f.read()
    for lba in range(16, len(data) // 2048):
        b = data[lba * 2048:(lba + 1) * 2048]
        if b[:6] == b"\x01CD001" and b[APP_USE:APP_USE + len(MAGIC)] == MAGIC:
            out[lba] = b[APP_USE:APP_USE + 64]
    return out


def patch_u64(img, lba, offset, value):
    with open(img, "r+b") as f:
        f.seek(lba * 2048 + APP_USE + offset)
        f.write(struct.pack("<Q", value))


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env.require_binary(env.commit_driver_bin(), "commit_driver")
        work = M.sub("hostile")
        cls.img = genisoimage_image(work)
        spec = os.path.join(work, "spec")
        with open(spec, "w") as f:
            f.write("D\t/\t755\t0\t0\t1700000000\t-\t0\n")
        for _ in range(3):
            r = subprocess.run([env.commit_driver_bin(), "commit", cls.img, spec],
                               capture_output=True, text=True, timeout=env.HANG_GUARD)
            if r.returncode != 0:
                raise RuntimeError(f"precondition: commit_driver failed: {r.stdout}")
        cls.work = work

    def variant(self, name):
        p = os.path.join(self.work, name + ".iso")
        shutil.copy(self.img, p)
        return p

    def sessions_of(self, img):
        p = stage.discfs("info", "--json", img, check=False)
        self.assertEqual(p.returncode, 0, p.err)
        return json.loads(p.out)

    def test_intact(self):
        info = self.sessions_of(self.img)
        self.assertEqual(len(info["sessions"]), 4)

    def test_previous_pointing_forward_or_looping(self):
        records = pvd_starts(self.img)
        own = sorted(lba for lba in records if lba != 16)  # each session's own PVD
        newest, middle = own[-1], own[-2]
        for what, value in (("forward", newest - 16 + 32), ("itself", middle - 16),
                            ("past the end", 1 << 40), ("to no session", 32)):
            with self.subTest(what=what):
                img = self.variant("prev-" + what.replace(" ", "-"))
                patch_u64(img, middle, 24, value)  # previous of the middle session
                info = self.sessions_of(img)
                # Only what is intact is listed; never a hang or a crash.
                self.assertLessEqual(len(info["sessions"]), 4)
                self.assertTrue(any("history" in n for n in info.get("notes", [])) or
                                len(info["sessions"]) < 4, info)
                d = dump.dump(img, extra=["--sessions"], check=False)
                self.assertEqual(d.returncode, 0, d.describe())

    def test_start_past_the_end(self):
        img = self.variant("start-past-end")
        for lba in (16,):
            patch_u64(img, lba, 16, 1 << 40)
        info = self.sessions_of(img)
        self.assertEqual(len(info["sessions"]), 1, info)  # as xorriso: one session at 0
        self.assertEqual(info["layout"], "single")


if __name__ == "__main__":
    unittest.main()
