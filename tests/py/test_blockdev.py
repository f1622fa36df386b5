"""Block devices as sources: a read-only loop device over an image must show
exactly what the image file shows.

As root, `losetup -r -f --show IMG` attaches a Rock Ridge image and a
three-session grown image.  discfs-dump of the loop device is compared
record for record (every field, inode numbers and times included) with
discfs-dump of the file, for the default view, --session 2 and --sessions; a
FUSE mount of the device is walked and compared with a mount of the file;
`discfs info --json` gives the same session table for both, and that table
starts where `xorriso -toc` says.  A device path that does not exist is
refused with exit 3 and one line.  Loop devices are always detached.

Skips (with the reason) when not root, when losetup or loop devices are not
available, and (FUSE parts) when /dev/fuse is missing.
Run: /usr/bin/python3 -m discfs_testlib -v test_blockdev   (from tests/py)
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import unittest

import discfs_testlib as L

_tmp = None
_loops = []          # devices this module attached, detached in tearDownModule
_cache = {}


def setUpModule():
    global _tmp
    L.require_binary(L.discfs_dump_bin(), "discfs-dump")
    L.require_tools("xorriso")
    _tmp = L.TempDir(prefix="discfs-blockdev-")


def tearDownModule():
    for dev in reversed(_loops):
        subprocess.run([losetup() or "losetup", "-d", dev], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    _loops.clear()
    if _tmp is not None:
        _tmp.cleanup()


def cached(key, make):
    return L.memo(_cache, key, make)


fail_diff = L.fail_diff


def losetup():
    return shutil.which("losetup") or shutil.which("losetup", path="/usr/sbin:/sbin")


def attach(img):
    """Attach img read-only to a free loop device; SkipTest where that is not allowed."""
    if not L.is_root():
        raise unittest.SkipTest("not root: loop devices cannot be set up")
    if not losetup():
        raise unittest.SkipTest("losetup is missing (util-linux mount package)")
    p = L.run([losetup(), "-r", "-f", "--show", img], check=False, timeout=60)
    dev = L._txt(p.stdout).strip()
    if p.returncode != 0 or not dev.startswith("/dev/"):
        raise unittest.SkipTest("loop devices are not available here: losetup -r -f --show "
                                f"failed: {L._txt(p.stderr).strip() or 'exit %d' % p.returncode}")
    _loops.append(dev)
    # udev may take a moment to create the node in some containers.
    if not os.path.exists(dev) or not stat.S_ISBLK(os.stat(dev).st_mode):
        raise unittest.SkipTest(f"{dev} was attached but is not a block device here")
    return dev


def loop_for(name, make_image):
    def make():
        img = make_image()
        return img, attach(img)
    return cached(("loop", name), make)


def rock_ridge_image():
    def make():
        src = os.path.join(_tmp.path, "src")
        L.build_tree(src, big_random=False, deep=True)
        return L.make_xorriso_native(os.path.join(_tmp.path, "rr.iso"), src)
    return cached("rr", make)


def multi_image():
    def make():
        work = _tmp.sub("multi")
        img = os.path.join(work, "multi.iso")
        L.make_multisession(img, work)
        return img
    return cached("multi", make)


TOC_LINE = re.compile(r"^ISO session\s*:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)s\s*,")


def toc_rows(img):
    """[(start LBA, blocks)] of every session, as `xorriso -indev IMG -toc` lists them."""
    p = L.run(["xorriso", "-indev", img, "-toc"])
    out = L._txt(p.stdout) + L._txt(p.stderr)
    return [(int(m.group(2)), int(m.group(3)))
            for m in (TOC_LINE.match(x.strip()) for x in out.splitlines()) if m]


def toc_starts(img):
    return [start for start, _ in toc_rows(img)]


def raw_dump(src, *extra):
    """discfs-dump's records, with the source's path in error texts replaced by SOURCE."""
    d = L.dump(src, extra=list(extra))
    for r in d.raw.values():
        if "error" in r:
            r["error"] = r["error"].replace(src, "SOURCE")
    return d.raw


def compare_raw(test, a, b, what):
    """Two discfs-dump outputs must be identical (order and every field)."""
    lines = []
    if list(a) != list(b):
        only_a = [p for p in a if p not in b]
        only_b = [p for p in b if p not in a]
        lines.append(f"paths differ: only file {only_a[:8]}, only device {only_b[:8]}"
                     if only_a or only_b else "same paths in a different order")
    for p in a:
        if p in b and a[p] != b[p]:
            keys = sorted(k for k in set(a[p]) | set(b[p]) if a[p].get(k) != b[p].get(k))
            lines.append(f"{p!r}: " + ", ".join(f"{k} file={a[p].get(k)!r} "
                                                f"device={b[p].get(k)!r}" for k in keys))
    fail_diff(test, lines[:60], what)


class BlockDeviceCase:
    """Subclasses: name, make_image, views (lists of extra discfs-dump arguments)."""

    name = None
    views = ([],)
    intact = True        # False: reads may fail (alike on both); xorriso -toc is no reference

    @classmethod
    def setUpClass(cls):
        if cls.name is None:
            raise unittest.SkipTest("abstract")
        cls.img, cls.dev = loop_for(cls.name, cls.make_image)

    def test_device_size(self):
        with open(self.dev, "rb") as f:
            f.seek(0, os.SEEK_END)
            self.assertGreaterEqual(f.tell(), os.path.getsize(self.img))

    def test_dump_same_as_file(self):
        for extra in self.views:
            with self.subTest(view=" ".join(extra) or "default"):
                a = raw_dump(self.img, *extra)
                b = raw_dump(self.dev, *extra)
                self.assertTrue(a)
                compare_raw(self, a, b, f"discfs-dump {' '.join(extra)} of {self.dev} "
                                        f"against the image file")

    def mount_walk(self, src, extra):
        mnt = _tmp.sub(f"mnt-{self.name}-{len(os.listdir(_tmp.path))}")
        with L.Mount(src, mnt, args=["mount", "-f"] + list(extra) + [src, mnt]) as m:
            got = L.walk(mnt)
            m.check_alive()
            st = os.statvfs(mnt)
        return got, (st.f_blocks * st.f_frsize)

    def test_mount_same_as_file(self):
        reason = L.fuse_unavailable_reason()
        if reason:
            self.skipTest(reason)
        L.require_binary(L.discfs_bin(), "discfs")
        for extra in self.views:
            with self.subTest(view=" ".join(extra) or "default"):
                a, size_a = self.mount_walk(self.img, extra)
                b, size_b = self.mount_walk(self.dev, extra)
                lines = [f"only in the file's mount: {p!r}" for p in sorted(set(a) - set(b))]
                lines += [f"only in the device's mount: {p!r}" for p in sorted(set(b) - set(a))]
                lines += [f"{p!r}: file {a[p]} device {b[p]}"
                          for p in sorted(set(a) & set(b)) if a[p] != b[p]]
                fail_diff(self, lines[:60],
                          f"mount {' '.join(extra)} of {self.dev} against the image file")
                if self.intact:
                    errs = [p for p, r in a.items() if r.error]
                    self.assertFalse(errs, f"read errors in an intact image: {errs[:10]}")
                self.assertEqual(size_a, size_b, "statfs size of device and file mounts")

    def test_info_sessions_same_as_file(self):
        L.require_binary(L.discfs_bin(), "discfs")
        out = {}
        for src in (self.img, self.dev):
            p = L.run([L.discfs_bin(), "info", "--json", src], check=False, timeout=120)
            self.assertIsNone(L.sanitizer_report(L._txt(p.stderr)))
            if p.returncode == 2 and src == self.img:
                self.skipTest("discfs info --json is not there yet: " +
                              L._txt(p.stderr).strip()[:200])
            self.assertEqual(p.returncode, 0, f"discfs info --json {src}: {L._txt(p.stderr)}")
            out[src] = json.loads(L._txt(p.stdout))
        a, b = out[self.img], out[self.dev]
        self.assertIn("sessions", a, f"no session table in discfs info --json: {sorted(a)}")
        self.assertEqual(a["sessions"], b.get("sessions"),
                         "session table of the device differs from the file's")
        # Everything else but the source's name is the same too.
        sa = json.loads(json.dumps(a).replace(json.dumps(self.img)[1:-1], "SOURCE"))
        sb = json.loads(json.dumps(b).replace(json.dumps(self.dev)[1:-1], "SOURCE"))
        for key in sorted(set(sa) | set(sb)):
            if key != "source":
                self.assertEqual(sa.get(key), sb.get(key), f"discfs info --json: {key!r} of "
                                                           f"the device differs from the file's")
        rows = [(s.get("start_lba"), s.get("blocks")) for s in a["sessions"]
                if isinstance(s, dict)]
        if self.intact and all(x is not None for r in rows for x in r):
            self.assertEqual(rows, toc_rows(self.img),
                             "session starts and sizes against xorriso -toc")


class RockRidgeOnLoop(BlockDeviceCase, unittest.TestCase):
    name = "rr"
    make_image = staticmethod(rock_ridge_image)
    views = ([], ["--session", "1"], ["--sessions"])

    def test_dump_same_as_reference(self):
        # The file's own view is right (test_reader checks it deeply); here the device's
        # content must also equal what xorriso extracts.
        dest = os.path.join(_tmp.path, "x-rr")
        L.xorriso_extract(self.img, dest)
        ref = L.extraction_reference(L.walk(dest))
        d = L.dump(self.dev)
        fail_diff(self, L.diff_trees(ref, d.records,
                                     fields=("type", "mode", "uid", "gid", "size", "mtime",
                                             "target", "sha256")),
                  f"discfs-dump {self.dev} against xorriso's extraction")


class MultisessionOnLoop(BlockDeviceCase, unittest.TestCase):
    name = "multi"
    make_image = staticmethod(multi_image)
    views = ([], ["--session", "2"], ["--session", "1"], ["--sessions"])

    def test_three_sessions(self):
        self.assertEqual(len(toc_starts(self.img)), 3)
        d = raw_dump(self.dev, "--sessions")
        tops = sorted({p.split("/")[1] for p in d if p != "/"})
        self.assertEqual(tops, ["1", "2", "3"])

    def test_session_2_of_device_against_xorriso(self):
        start = toc_starts(self.img)[1]
        dest = os.path.join(_tmp.path, "x-multi-2")
        L.run(["xorriso", "-osirrox", "on:auto_chmod_on", "-for_backup", "-load", "sbsector",
               str(start), "-indev", self.img, "-extract", "/", dest])
        ref = L.extraction_reference(L.walk(dest))
        d = L.dump(self.dev, extra=["--session", "2"])
        fail_diff(self, L.diff_trees(ref, d.records, fields=("type", "size", "sha256", "target",
                                                             "mtime")),
                  f"discfs-dump --session 2 {self.dev} against xorriso")


def grub_rescue():
    p = "/usr/lib/grub-rescue/grub-rescue-cdrom.iso"
    if not os.path.isfile(p):
        raise unittest.SkipTest(f"{p} is absent (install grub-rescue-pc)")
    return p


def cut_multi_image():
    """The three-session image cut inside session 3's file data: the end of the source
    decides what reads and what reports an error."""
    def make():
        src = multi_image()
        p = L.run(["xorriso", "-indev", src, "-toc"])
        rows = [TOC_LINE.match(x.strip()) for x in L._txt(p.stdout).splitlines()]
        rows = [(int(m.group(2)), int(m.group(3))) for m in rows if m]
        start, size = rows[-1]
        img = os.path.join(_tmp.path, "cut.iso")
        with open(src, "rb") as a, open(img, "wb") as b:
            b.write(a.read((start + size - 8) * 2048))
        return img
    return cached("cut", make)


class BootOnLoop(BlockDeviceCase, unittest.TestCase):
    """Boot image sizes run to the next claimed block or the end of the source: the end of a
    block device must be found as for a file (st_size of a device node is 0)."""
    name = "grub"
    make_image = staticmethod(grub_rescue)
    views = (["--boot"], ["--boot", "--sessions"])

    def test_boot_files_present(self):
        d = raw_dump(self.dev, "--boot")
        self.assertTrue([p for p in d if p.startswith("/.boot/")], "no boot image listed")


class CutImageOnLoop(BlockDeviceCase, unittest.TestCase):
    name = "cut"
    intact = False
    make_image = staticmethod(cut_multi_image)
    views = ([], ["--sessions"], ["--session", "3"])


class MissingDevice(unittest.TestCase):

    def check_refused(self, cmd, what):
        p = L.run(cmd, check=False, timeout=120)
        err = L._txt(p.stderr)
        self.assertIsNone(L.sanitizer_report(err))
        self.assertEqual(p.returncode, 3, f"{what}: exit {p.returncode}: {err!r}")
        lines = [x for x in err.splitlines() if x.strip()]
        self.assertEqual(len(lines), 1, f"{what}: one line expected: {lines!r}")
        self.assertIn("/dev/discfs-no-such-device", lines[0], f"{what}: must name the path")

    def test_dump(self):
        self.check_refused([L.discfs_dump_bin(), "/dev/discfs-no-such-device"], "discfs-dump")

    def test_mount(self):
        L.require_binary(L.discfs_bin(), "discfs")
        mnt = _tmp.sub("mnt-missing")
        self.check_refused([L.discfs_bin(), "mount", "-f", "/dev/discfs-no-such-device", mnt],
                           "discfs mount")
        self.assertFalse(L.is_mountpoint_in_mountinfo(mnt))
        self.check_refused([L.discfs_bin(), "mount", "-f", "--session", "2",
                            "/dev/discfs-no-such-device", mnt], "discfs mount --session 2")

    def test_info(self):
        L.require_binary(L.discfs_bin(), "discfs")
        self.check_refused([L.discfs_bin(), "info", "--json", "/dev/discfs-no-such-device"],
                           "discfs info --json")


if __name__ == "__main__":
    sys.exit(L.main(sys.argv[1:] + ["__main__"]))
