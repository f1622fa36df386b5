"""Long Rock Ridge symlink targets on a FUSE mount and on the stage, against xorriso,
isoinfo and pycdlib.

A target longer than one SL entry is recorded over several SL entries (the entry's CONTINUE
flag, components continued from one entry into the next) and continuation areas (CE). The
images are written at test time by three writers, one source tree of long links:

  xorriso     records every target whole: xorriso, isoinfo and the source agree;
  pycdlib     records every target whole (one link an image: pycdlib cannot write several
              long links into one folder);
  genisoimage 1.1.11 records the length of a long target's SL entry (and of its
              continuation area) modulo 256, so readers show a cut target: xorriso and
              isoinfo agree on where (the test checks that they do) and discfs must show
              the same. Before discfs read such links as an empty target of size 0.

The mount is read with readlink(1) and `stat -c %s`; the stage (`discfs stage`) shows base
symlinks through the same reader, so it is read the same way.

Run: /usr/bin/python3 -m testlib -v test_rr_links   (from tests/py)
"""

import os
import re
import subprocess
import unittest

from testlib import env, images, mount, readers, stage

M = env.ModuleFixture("discfs-rrlinks-", binaries=("discfs",),
                      tools=("xorriso", "genisoimage", "isoinfo", "readlink", "stat"),
                      pycdlib=True)


def setUpModule():
    stage.set_up_module(M)


def tearDownModule():
    stage.tear_down_module(M)


# name -> target: 40 components; 255-byte components; about 1000 bytes; absolute with "..".
TARGETS = {
    "comp40": "/".join("comp%03d" % i for i in range(40)),
    "c255": "/".join(["y" * 255] * 4),
    "k1000": "/".join("d%02d" % i + "z" * 40 for i in range(23)),
    "abs_up": "/" + "/".join("p%02d" % i + "q" * 20 for i in range(12)) + "/../../r",
}
# genisoimage's SL entries for 255-byte components are beyond what xorriso reads (it refuses
# the whole image: "Incomplete link destination"), so that link has an image of its own.
GENISOIMAGE_TARGETS = ("comp40", "k1000", "abs_up")


def make_source(root, names):
    os.makedirs(root)
    for name in names:
        os.symlink(TARGETS[name], os.path.join(root, name))
    return root


def xorriso_targets(img):
    """name -> target as `xorriso -indev IMG -lsl /` shows it."""
    out = env.txt(readers.xorriso(["-indev", img, "-lsl", "/"]).stdout)
    return {m.group(1): m.group(2)
            for m in re.finditer(r"^l\S+ .* '([^']*)' -> '([^']*)'$", out, re.M)}


def isoinfo_targets(img):
    """name -> target as `isoinfo -R -l -i IMG` shows it."""
    out = subprocess.run(["isoinfo", "-R", "-l", "-i", img], capture_output=True, text=True,
                         timeout=env.HANG_GUARD, check=True).stdout
    return {m.group(1): m.group(2)
            for m in re.finditer(r"^l\S+ .*\]\s+(\S+) -> (.*)$", out, re.M)}


def pycdlib_target(img, name):
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.open(img)
    try:
        return iso.get_record(rr_path="/" + name).rock_ridge.symlink_path().decode()
    finally:
        iso.close()


def tool(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=env.HANG_GUARD,
                          check=True).stdout.rstrip("\n")


class LongSymlinkTargets(unittest.TestCase):

    def setUp(self):
        mount.require_fuse(self)

    def path(self, *parts):
        return os.path.join(M.path, self.id().rsplit(".", 1)[-1], *parts)

    def check_mount(self, img, want, args=None):
        """readlink and `stat -c %s` of every name in want on a mount of img."""
        mnt = self.path("mnt")
        if args is None:
            m = mount.Mount(img, mnt)
        else:
            m = stage.Stage(img, mnt, store=self.path("store"))
        with m:
            for name, target in want.items():
                p = os.path.join(mnt, name)
                with self.subTest(link=name, mount="stage" if args else "mount"):
                    self.assertEqual(tool("readlink", p), target)
                    self.assertEqual(int(tool("stat", "-c", "%s", p)), len(target.encode()))

    def test_xorriso(self):
        src = make_source(self.path("src"), TARGETS)
        img = images.make_xorriso_native(self.path("x.iso"), src, joliet=False)
        self.assertEqual(xorriso_targets(img), TARGETS)
        self.assertEqual(isoinfo_targets(img), TARGETS)
        self.check_mount(img, TARGETS)

    def test_pycdlib(self):
        for name, target in TARGETS.items():
            src = make_source(self.path("src-" + name), [name])
            img = images.make_pycdlib_image(self.path(name + ".iso"), src, joliet=None)
            self.assertEqual(pycdlib_target(img, name), target)
            self.assertEqual(xorriso_targets(img), {name: target})
            self.check_mount(img, {name: target})

    def test_genisoimage(self):
        src = make_source(self.path("src"), GENISOIMAGE_TARGETS)
        img = images.make_genisoimage(self.path("g.iso"), src, ["-R"])
        want = xorriso_targets(img)
        self.assertEqual(sorted(want), sorted(GENISOIMAGE_TARGETS))
        self.assertEqual(isoinfo_targets(img), want, "xorriso and isoinfo disagree")
        for name, shown in want.items():
            # More than one SL entry's worth, and never more than the source.
            self.assertTrue(TARGETS[name].startswith(shown) and 90 < len(shown), (name, shown))
        self.assertTrue(any(want[n] != TARGETS[n] for n in want), "no target was cut")
        self.check_mount(img, want)

    def test_genisoimage_255_byte_components(self):
        # xorriso refuses this image ("Incomplete link destination"); isoinfo is the reference.
        src = make_source(self.path("src"), ["c255"])
        img = images.make_genisoimage(self.path("g.iso"), src, ["-R"])
        want = isoinfo_targets(img)
        self.assertTrue(TARGETS["c255"].startswith(want["c255"]) and len(want["c255"]) > 300,
                        want)
        self.check_mount(img, want)

    def test_genisoimage_on_the_stage(self):
        src = make_source(self.path("src"), GENISOIMAGE_TARGETS)
        img = images.make_genisoimage(self.path("g.iso"), src, ["-R"])
        want = xorriso_targets(img)
        self.assertEqual(isoinfo_targets(img), want, "xorriso and isoinfo disagree")
        self.check_mount(img, want, args="stage")


if __name__ == "__main__":
    unittest.main()
