"""`discfs burn`, `blank` and `drives` on libburn stdio: pseudo-drives.

No optical drive is needed: an image file or a block device given as DRIVE is
written as a libburn stdio: pseudo-drive, which libisoburn treats as an
overwritable medium (sessions emulated, as on DVD+RW and BD-RE).  The
emulated writer in tests/drive covers real SG_IO drives.

Every expected value comes from an independent writer or reader:

- images are made by genisoimage (a later session with -C MSC1,NWA -M TARGET,
  the addresses `discfs drives` reports, which must agree with what
  `xorriso -toc` calls "Media nwa");
- what was burned is read back with `xorriso -osirrox` (the files and their
  contents) and compared byte for byte with the image file (cmp);
- `blank` leaves a target that xorriso sees as blank;
- refusals (closed/read-only medium, too little room, an image made for the
  wrong address, --format on what cannot be formatted) exit 10 and leave the
  target byte for byte as it was.

Run: /usr/bin/python3 -m testlib -v test_burn   (from tests/py)
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import unittest

from testlib import env, readers, sanitizers, trees

M = env.ModuleFixture("discfs-burn-", tools=("xorriso", "genisoimage"))
LOOPS = []


def setUpModule():
    M.set_up()


def tearDownModule():
    for dev in LOOPS:
        subprocess.run([losetup() or "losetup", "-d", dev], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    M.tear_down()


def losetup():
    return shutil.which("losetup") or shutil.which("losetup", path="/usr/sbin:/sbin")


def attach(img, read_only):
    if not env.is_root():
        raise unittest.SkipTest("loop devices need root")
    if not losetup():
        raise unittest.SkipTest("losetup is missing (util-linux mount package)")
    p = env.run([losetup()] + (["-r"] if read_only else []) + ["-f", "--show", img],
                check=False, timeout=60)
    if p.returncode != 0:
        raise unittest.SkipTest("loop devices are not available here: " + env.txt(p.stderr))
    dev = env.txt(p.stdout).strip()
    LOOPS.append(dev)
    return dev


def discfs(*args, check=None):
    """(exit code, stdout, stderr) of `discfs ARGS` (stdin not a terminal)."""
    p = env.run([env.discfs_bin(), *args], check=False, timeout=300, stdin=subprocess.DEVNULL)
    out, err = env.txt(p.stdout), env.txt(p.stderr)
    report = sanitizers.report(err)
    if report:
        raise AssertionError(f"sanitizer report from discfs {args}: {report}")
    if check is not None and p.returncode != check:
        raise AssertionError(f"discfs {' '.join(args)} exited {p.returncode}, not {check}:\n"
                             f"{out}\n{err}")
    return p.returncode, out, err


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_tree(root, files):
    """files: {relative path: bytes}."""
    for rel, data in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return root


def genisoimage(out, src, extra=()):
    env.run(["genisoimage", "-quiet", "-R", "-V", "DISCFS_BURN", *extra, "-o", out, src],
            timeout=120)
    return out


def extracted(target, dest):
    """{relative path: sha256} of the regular files xorriso extracts from target's newest
    session."""
    readers.xorriso(["-osirrox", "on:auto_chmod_on", "-indev", readers.xdev(target),
                     "-extract", "/", dest])
    out = {}
    for top, _, names in os.walk(dest):
        for n in names:
            p = os.path.join(top, n)
            out[os.path.relpath(p, dest)] = sha(p)
    return out


def digests(files):
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


def xorriso_nwa(target):
    r = readers.xorriso_run("-indev", readers.xdev(target), "-toc")
    m = re.search(r"^Media nwa\s*:\s*(\d+)s", r.stdout + r.stderr, re.M)
    return int(m.group(1)) if m else None


def xorriso_status(target):
    r = readers.xorriso_run("-indev", readers.xdev(target), "-toc")
    m = re.search(r"^Media status\s*:\s*(.*)$", r.stdout + r.stderr, re.M)
    return m.group(1).strip() if m else ""


def drive_json(target):
    _, out, _ = discfs("drives", "--json", target, check=0)
    (d,) = json.loads(out)["drives"]
    return d


FILES1 = {"a.txt": b"first session\n" * 100, "dir/b.bin": os.urandom(300 * 1024)}
FILES2 = {"c.txt": b"second session\n" * 50, "dir/d.bin": os.urandom(200 * 1024)}


class BurnToFile(unittest.TestCase):
    def setUp(self):
        self.work = M.tmp.sub(self.id().rsplit(".", 1)[-1])
        self.s1 = genisoimage(os.path.join(self.work, "s1.iso"),
                              make_tree(M.tmp.sub(self.work, "src1"), FILES1))

    def test_first_session_is_the_image(self):
        """burn to a missing file: the target is the image, byte for byte, and xorriso reads
        its files; --verify reads it back."""
        target = os.path.join(self.work, "disc.img")
        _, out, _ = discfs("burn", "--verify", self.s1, target, check=0)
        self.assertIn("verified", out)
        with open(self.s1, "rb") as a, open(target, "rb") as b:
            self.assertEqual(a.read(), b.read()[:os.path.getsize(self.s1)])
        self.assertEqual(extracted(target, M.tmp.sub(self.work, "x")), digests(FILES1))

    def test_multi_twice_appends_a_session(self):
        """--multi, then a second image made by genisoimage -C MSC1,NWA -M TARGET at the
        address `discfs drives` reports (xorriso's Media nwa): xorriso reads both sessions'
        files through the newest one."""
        target = os.path.join(self.work, "disc.img")
        discfs("burn", "--multi", self.s1, target, check=0)
        d = drive_json(target)
        self.assertEqual(d["medium"]["state"], "appendable")
        nwa, msc1 = d["medium"]["next_writable"], d["medium"]["last_session"]
        self.assertEqual(nwa, xorriso_nwa(target))
        self.assertGreaterEqual(nwa * 2048, os.path.getsize(self.s1))
        s2 = genisoimage(os.path.join(self.work, "s2.iso"),
                         make_tree(M.tmp.sub(self.work, "src2"), FILES2),
                         ("-C", f"{msc1},{nwa}", "-M", target))
        _, out, _ = discfs("burn", "--multi", "--verify", s2, target, check=0)
        self.assertIn(f"at LBA {nwa}", out)
        both = dict(digests(FILES1))
        both.update(digests(FILES2))
        self.assertEqual(extracted(target, M.tmp.sub(self.work, "x")), both)
        # The session itself went to the next writable address, unchanged.
        with open(s2, "rb") as a, open(target, "rb") as b:
            b.seek(nwa * 2048)
            self.assertEqual(a.read(), b.read(os.path.getsize(s2)))

    def test_image_for_the_wrong_address_is_refused(self):
        """A second image made for LBA 0 would point into the first session: exit 10, the
        target is unchanged, and the sentence says how to make it."""
        target = os.path.join(self.work, "disc.img")
        discfs("burn", "--multi", self.s1, target, check=0)
        before = sha(target)
        s2 = genisoimage(os.path.join(self.work, "s2.iso"),
                         make_tree(M.tmp.sub(self.work, "src2"), FILES2))
        _, _, err = discfs("burn", "--multi", s2, target, check=10)
        self.assertIn("-C ", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertEqual(sha(target), before)

    def test_dummy_writes_nothing(self):
        """--dummy goes through the burn with nothing written: an existing target keeps its
        bytes (libburn creates a missing one, empty)."""
        target = os.path.join(self.work, "disc.img")
        with open(target, "wb") as f:
            f.truncate(64 * 1024)
        _, out, _ = discfs("burn", "--dummy", self.s1, target, check=0)
        self.assertIn("simulated", out)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), bytes(64 * 1024))

    def test_other_data_is_refused(self):
        """A target holding data that is no ISO 9660 image cannot take a session: exit 10,
        naming `discfs blank`; it is unchanged."""
        target = os.path.join(self.work, "disc.img")
        with open(target, "wb") as f:
            f.write(b"\x5a" * (64 * 1024))
        _, _, err = discfs("burn", self.s1, target, check=10)
        self.assertIn("not an ISO 9660 image", err)
        self.assertIn("discfs blank", err)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"\x5a" * (64 * 1024))

    def test_json_progress_and_result(self):
        target = os.path.join(self.work, "disc.img")
        _, out, _ = discfs("burn", "--json", self.s1, target, check=0)
        events = [json.loads(line) for line in out.splitlines()]
        self.assertIn({"event": "phase", "phase": "writing"}, events)
        result = events[-1]
        self.assertEqual(result["event"], "result")
        self.assertEqual(result["start_lba"], 0)
        self.assertEqual(result["blocks"], os.path.getsize(self.s1) // 2048)

    def test_missing_image_and_bad_speed(self):
        target = os.path.join(self.work, "disc.img")
        code, _, err = discfs("burn", os.path.join(self.work, "nope.iso"), target)
        self.assertEqual(code, 3, err)
        self.assertFalse(os.path.exists(target))
        code, _, err = discfs("burn", "--speed", "fast", self.s1, target)
        self.assertEqual(code, 2, err)
        self.assertFalse(os.path.exists(target))


class Blank(unittest.TestCase):
    def setUp(self):
        self.work = M.tmp.sub(self.id().rsplit(".", 1)[-1])
        self.s1 = genisoimage(os.path.join(self.work, "s1.iso"),
                              make_tree(M.tmp.sub(self.work, "src1"), FILES1))
        self.target = os.path.join(self.work, "disc.img")
        shutil.copyfile(self.s1, self.target)

    def test_blank_asks_then_blanks(self):
        """Without a terminal and without --yes nothing is destroyed (exit 2); with --yes the
        image looks blank to xorriso and to `discfs drives`, and a new first session can be
        burned."""
        before = sha(self.target)
        _, _, err = discfs("blank", self.target, check=2)
        self.assertIn("--yes", err)
        self.assertEqual(sha(self.target), before)
        discfs("blank", "--yes", self.target, check=0)
        self.assertIn("is blank", xorriso_status(self.target))
        self.assertEqual(drive_json(self.target)["medium"]["state"], "blank")
        _, out, _ = discfs("blank", "--yes", self.target, check=0)
        self.assertIn("already blank", out)
        discfs("burn", self.s1, self.target, check=0)
        self.assertEqual(extracted(self.target, M.tmp.sub(self.work, "x")), digests(FILES1))

    def test_format_is_refused_on_a_file(self):
        before = sha(self.target)
        _, _, err = discfs("blank", "--format", "--yes", self.target, check=10)
        self.assertIn("cannot be formatted", err)
        self.assertEqual(sha(self.target), before)


class Refusals(unittest.TestCase):
    def setUp(self):
        self.work = M.tmp.sub(self.id().rsplit(".", 1)[-1])
        self.s1 = genisoimage(os.path.join(self.work, "s1.iso"),
                              make_tree(M.tmp.sub(self.work, "src1"), FILES1))

    def test_too_small(self):
        """A 256 KiB block device cannot take a larger image: exit 10 naming both sizes in
        MB; nothing is written."""
        small = os.path.join(self.work, "small.img")
        with open(small, "wb") as f:
            f.truncate(256 * 1024)
        dev = attach(small, read_only=False)
        _, _, err = discfs("burn", self.s1, dev, check=10)
        self.assertRegex(err, r"needs [\d.]+ MB but .* has only 0\.3 MB free")
        with open(small, "rb") as f:
            self.assertEqual(f.read(), bytes(256 * 1024))

    def test_read_only_medium(self):
        """A read-only device is a closed medium: burn and blank exit 10, it is unchanged."""
        ro = os.path.join(self.work, "ro.img")
        shutil.copyfile(self.s1, ro)
        dev = attach(ro, read_only=True)
        d = drive_json(dev)
        self.assertTrue(d["medium"]["read_only"], d)
        self.assertEqual(d["medium"]["state"], "closed")
        _, _, err = discfs("burn", self.s1, dev, check=10)
        self.assertIn("read-only", err)
        _, _, err = discfs("blank", "--yes", dev, check=10)
        self.assertIn("read-only", err)
        self.assertEqual(sha(ro), sha(self.s1))


class Drives(unittest.TestCase):
    def test_listing_without_drives_and_missing_drive(self):
        """`drives` lists what /sys/class/block has (none here is fine) and exits 0; a
        missing DRIVE is listed with its problem, not an error."""
        code, out, err = discfs("drives", "--json")
        self.assertEqual(code, 0, err)
        listed = [d["path"] for d in json.loads(out)["drives"]]
        self.assertEqual(listed, sorted(
            (f"/dev/{n}" for n in os.listdir("/sys/class/block")
             if re.fullmatch(r"sr\d+", n)), key=lambda p: (len(p), p)))
        d = drive_json(os.path.join(M.tmp.path, "missing.img"))
        self.assertIsNone(d["medium"])
        self.assertIn("no such file", d["problem"])

    def test_image_file_as_a_drive(self):
        """An image file is an overwritable, appendable medium with xorriso's sessions."""
        work = M.tmp.sub("drives-image")
        s1 = genisoimage(os.path.join(work, "s1.iso"), make_tree(M.tmp.sub(work, "src"), FILES1))
        d = drive_json(s1)
        m = d["medium"]
        self.assertEqual(m["state"], "appendable")
        self.assertTrue(m["overwritable"])
        self.assertEqual([(s["start_lba"], s["blocks"]) for s in m["sessions"]], readers.toc(s1))
        self.assertEqual(m["next_writable"], xorriso_nwa(s1))
        _, text, _ = discfs("drives", s1, check=0)
        self.assertIn("appendable", text)


if __name__ == "__main__":
    unittest.main()
