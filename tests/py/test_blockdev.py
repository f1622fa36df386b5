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
Run: /usr/bin/python3 -m testlib -v test_blockdev   (from tests/py)
"""

import json
import os
import shutil
import stat
import subprocess
import unittest

from testlib import dump, env, images, mount, readers, sanitizers, sources, trees

M = env.ModuleFixture("discfs-blockdev-", binaries=("discfs-dump",), tools=("xorriso",))
setUpModule = M.set_up
_loops = []          # devices this module attached, detached in tearDownModule


def tearDownModule():
    for dev in reversed(_loops):
        subprocess.run([losetup() or "losetup", "-d", dev], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    _loops.clear()
    M.tear_down()


def losetup():
    return shutil.which("losetup") or shutil.which("losetup", path="/usr/sbin:/sbin")


def attach(img):
    """Attach img read-only to a free loop device; SkipTest where that is not allowed."""
    if not env.is_root():
        raise unittest.SkipTest("not root: loop devices cannot be set up")
    if not losetup():
        raise unittest.SkipTest("losetup is missing (util-linux mount package)")
    p = env.run([losetup(), "-r", "-f", "--show", img], check=False, timeout=60)
    dev = env.txt(p.stdout).strip()
    if p.returncode != 0 or not dev.startswith("/dev/"):
        raise unittest.SkipTest("loop devices are not available here: losetup -r -f --show "
                                f"failed: {env.txt(p.stderr).strip() or 'exit %d' % p.returncode}")
    _loops.append(dev)
    # udev may take a moment to create the node in some containers.
    if not os.path.exists(dev) or not stat.S_ISBLK(os.stat(dev).st_mode):
        raise unittest.SkipTest(f"{dev} was attached but is not a block device here")
    return dev


def loop_for(name, make_image):
    def make():
        img = make_image()
        return img, attach(img)
    return M.cached(("loop", name), make)


def rock_ridge_image():
    def make():
        src = os.path.join(M.path, "src")
        sources.build_tree(src, big_random=False, deep=True)
        return images.make_xorriso_native(os.path.join(M.path, "rr.iso"), src)
    return M.cached("rr", make)


def multi_image():
    def make():
        work = M.sub("multi")
        img = os.path.join(work, "multi.iso")
        images.make_multisession(img, work)
        return img
    return M.cached("multi", make)


def raw_dump(src, *extra):
    """discfs-dump's records, with the source's path in error texts replaced by SOURCE."""
    d = dump.dump(src, extra=list(extra))
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
    env.fail_diff(test, lines[:60], what)


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
        mnt = M.sub(f"mnt-{self.name}-{len(os.listdir(M.path))}")
        with mount.Mount(src, mnt, args=["mount", "-f"] + list(extra) + [src, mnt]) as m:
            got = m.walk()
            st = os.statvfs(mnt)
        return got, (st.f_blocks * st.f_frsize)

    def test_mount_same_as_file(self):
        mount.require_fuse(self)
        for extra in self.views:
            with self.subTest(view=" ".join(extra) or "default"):
                a, size_a = self.mount_walk(self.img, extra)
                b, size_b = self.mount_walk(self.dev, extra)
                lines = [f"only in the file's mount: {p!r}" for p in sorted(set(a) - set(b))]
                lines += [f"only in the device's mount: {p!r}" for p in sorted(set(b) - set(a))]
                lines += [f"{p!r}: file {a[p]} device {b[p]}"
                          for p in sorted(set(a) & set(b)) if a[p] != b[p]]
                env.fail_diff(self, lines[:60],
                              f"mount {' '.join(extra)} of {self.dev} against the image file")
                if self.intact:
                    errs = [p for p, r in a.items() if r.error]
                    self.assertFalse(errs, f"read errors in an intact image: {errs[:10]}")
                self.assertEqual(size_a, size_b, "statfs size of device and file mounts")

    def test_info_sessions_same_as_file(self):
        env.require_binary(env.discfs_bin(), "discfs")
        out = {}
        for src in (self.img, self.dev):
            p = env.run([env.discfs_bin(), "info", "--json", src], check=False, timeout=120)
            self.assertIsNone(sanitizers.report(env.txt(p.stderr)))
            self.assertEqual(p.returncode, 0, f"discfs info --json {src}: {env.txt(p.stderr)}")
            out[src] = json.loads(env.txt(p.stdout))
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
            self.assertEqual(rows, readers.toc(self.img),
                             "session starts and sizes against xorriso -toc")


class RockRidgeOnLoop(BlockDeviceCase, unittest.TestCase):
    name = "rr"
    make_image = staticmethod(rock_ridge_image)
    views = ([], ["--session", "1"], ["--sessions"])

    def test_dump_same_as_reference(self):
        # The file's own view is right (test_reader checks it deeply); here the device's
        # content must also equal what xorriso extracts.
        dest = os.path.join(M.path, "x-rr")
        readers.xorriso_extract(self.img, dest)
        ref = readers.extraction_reference(trees.walk(dest))
        d = dump.dump(self.dev)
        env.fail_diff(self, trees.diff(ref, d.records,
                                       fields=("type", "mode", "uid", "gid", "size", "mtime",
                                               "target", "sha256")),
                      f"discfs-dump {self.dev} against xorriso's extraction")


class MultisessionOnLoop(BlockDeviceCase, unittest.TestCase):
    name = "multi"
    make_image = staticmethod(multi_image)
    views = ([], ["--session", "2"], ["--session", "1"], ["--sessions"])

    def test_three_sessions(self):
        self.assertEqual(len(readers.toc(self.img)), 3)
        d = raw_dump(self.dev, "--sessions")
        tops = sorted({p.split("/")[1] for p in d if p != "/"})
        self.assertEqual(tops, ["1", "2", "3"])

    def test_session_2_of_device_against_xorriso(self):
        start = readers.toc(self.img)[1][0]
        dest = os.path.join(M.path, "x-multi-2")
        env.run(["xorriso", "-osirrox", "on:auto_chmod_on", "-for_backup", "-load", "sbsector",
                 str(start), "-indev", self.img, "-extract", "/", dest])
        ref = readers.extraction_reference(trees.walk(dest))
        d = dump.dump(self.dev, extra=["--session", "2"])
        env.fail_diff(self, trees.diff(ref, d.records, fields=("type", "size", "sha256", "target",
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
        start, size = readers.toc(src)[-1]
        img = os.path.join(M.path, "cut.iso")
        with open(src, "rb") as a, open(img, "wb") as b:
            b.write(a.read((start + size - 8) * 2048))
        return img
    return M.cached("cut", make)


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
        p = env.run(cmd, check=False, timeout=120)
        err = env.txt(p.stderr)
        self.assertIsNone(sanitizers.report(err))
        self.assertEqual(p.returncode, env.EXIT_CANNOT_OPEN,
                         f"{what}: exit {p.returncode}: {err!r}")
        lines = [x for x in err.splitlines() if x.strip()]
        self.assertEqual(len(lines), 1, f"{what}: one line expected: {lines!r}")
        self.assertIn("/dev/discfs-no-such-device", lines[0], f"{what}: must name the path")

    def test_dump(self):
        self.check_refused([env.discfs_dump_bin(), "/dev/discfs-no-such-device"], "discfs-dump")

    def test_mount(self):
        env.require_binary(env.discfs_bin(), "discfs")
        mnt = M.sub("mnt-missing")
        self.check_refused([env.discfs_bin(), "mount", "-f", "/dev/discfs-no-such-device", mnt],
                           "discfs mount")
        self.assertFalse(env.is_mounted(mnt))
        self.check_refused([env.discfs_bin(), "mount", "-f", "--session", "2",
                            "/dev/discfs-no-such-device", mnt], "discfs mount --session 2")

    def test_info(self):
        env.require_binary(env.discfs_bin(), "discfs")
        self.check_refused([env.discfs_bin(), "info", "--json", "/dev/discfs-no-such-device"],
                           "discfs info --json")


if __name__ == "__main__":
    unittest.main()
