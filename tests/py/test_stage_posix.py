"""POSIX points of the stage mount that file-system test suites (pjdfstest) and new users
found (issue 10): what the stage accepts must be what a commit can write, the rules of
set-ID bits, a kept --capacity, no trash folder, and the errors and link counts Unix tools
expect.  Every check is made with ordinary system calls and tools on a real mount, and what
a commit wrote is read back with xorriso -osirrox.
"""

import errno
import json
import os
import shutil
import subprocess
import unittest

from testlib import env, images, mount, readers, stage

M = env.ModuleFixture("discfs-stage-posix-", tools=("xorriso",))
MiB = 1 << 20
NOBODY = 65534


def setUpModule():
    stage.set_up_module(M)


def tearDownModule():
    stage.tear_down_module(M)


class PosixCase(unittest.TestCase):

    def setUp(self):
        mount.require_fuse(self)
        self.dir = M.sub(self.id().rsplit(".", 1)[-1])

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def new_dir(self, name):
        p = self.path(name)
        os.makedirs(p, exist_ok=True)
        return p


# --------------------------------------------------------------------------
# 7. symlinks a session cannot record are refused when they are made

class LongSymlinks(PosixCase):

    def test_symlink_past_libisofs_limits_is_refused_at_once(self):
        mnt, img = self.new_dir("mnt"), self.path("links.iso")
        longest = "/".join(["c" * 255] * 4)  # 1,023 bytes, components of 255: recordable
        with stage.Stage(img, mnt, store=self.path("store")):
            for what, target in (("a target of 1,025 bytes", "t" * 1025),
                                 ("a component of 256 bytes", "d/" + "n" * 256 + "/e")):
                e = env.errno_of(os.symlink, target, os.path.join(mnt, "bad"))
                self.assertEqual(e, errno.ENAMETOOLONG, f"symlink with {what}")
                self.assertFalse(os.path.lexists(os.path.join(mnt, "bad")), what)
            os.symlink(longest, os.path.join(mnt, "longest"))
            os.symlink("../" + "x" * 255, os.path.join(mnt, "long_component"))
            stage.commit(mnt)  # before the fix: "Rock Ridge path too long", nothing written
        ext = readers.extract_tree(img, self.path("extract"))
        self.assertEqual(ext["/longest"].target, longest)
        self.assertEqual(ext["/long_component"].target, "../" + "x" * 255)


# --------------------------------------------------------------------------
# 8. a write or O_TRUNC by a process without CAP_FSETID clears set-ID bits (pjdfstest chmod/12)

# Run as nobody: opens each file as told, writes a byte unless only truncating, and reports
# the mode fstat gives at once.
_WRITER = r"""
import json, os, sys
out = {}
for name, flags in json.loads(sys.argv[2]):
    fd = os.open(os.path.join(sys.argv[1], name), flags)
    if not flags & os.O_TRUNC:
        os.write(fd, b"x")
    out[name] = os.fstat(fd).st_mode & 0o7777
    os.close(fd)
print(json.dumps(out))
"""


class SetIdBits(PosixCase):

    def test_writes_by_another_user_clear_set_id_bits(self):
        mount.require_fuse(self, user=(NOBODY, NOBODY))
        mnt = self.new_dir("mnt")
        # nobody must reach the mount point through the test's folders
        p = mnt
        while p != os.path.dirname(M.path):
            os.chmod(p, os.stat(p).st_mode | 0o711)
            p = os.path.dirname(p)
        cases = {  # name: (mode, open flags, mode afterwards)
            "suid_wronly": (0o4777, os.O_WRONLY, 0o777),  # direct_io handle
            "sgid_rdwr": (0o2777, os.O_RDWR, 0o777),  # cached handle (the kernel's part)
            "both_wronly": (0o6777, os.O_WRONLY, 0o777),
            "suid_trunc": (0o4777, os.O_WRONLY | os.O_TRUNC, 0o777),
            "both_rdwr_trunc": (0o6777, os.O_RDWR | os.O_TRUNC, 0o777),
        }
        with stage.Stage(self.path("setid.iso"), mnt, store=self.path("store"),
                         extra=["-o", "allow_other"]):
            for name, (mode, _, _) in cases.items():
                stage.write_file(os.path.join(mnt, name), b"data", mode=mode)
            # root (CAP_FSETID) keeps them
            stage.write_file(os.path.join(mnt, "root_keeps"), b"data", mode=0o6777)
            with open(os.path.join(mnt, "root_keeps"), "r+b") as f:
                f.write(b"y")
            self.assertEqual(os.stat(os.path.join(mnt, "root_keeps")).st_mode & 0o7777, 0o6777)
            arg = json.dumps([[n, c[1]] for n, c in cases.items()])
            r = env.run(mount.as_user(NOBODY, NOBODY, [env.PYTHON, "-c", _WRITER, mnt, arg]),
                        check=False)
            self.assertEqual(r.returncode, 0, env.txt(r.stderr))
            seen = json.loads(env.txt(r.stdout))
            for name, (mode, _, want) in cases.items():
                self.assertEqual(oct(seen[name]), oct(want), f"{name}: fstat after the write")
                self.assertEqual(oct(os.stat(os.path.join(mnt, name)).st_mode & 0o7777),
                                 oct(want), f"{name}: stat after close")
            stage.commit(mnt)
        ext = readers.extract_tree(self.path("setid.iso"), self.path("extract"))
        self.assertEqual(oct(ext["/suid_wronly"].mode & 0o7777), oct(0o777), "committed mode")


# --------------------------------------------------------------------------
# 9. --capacity is kept with the store

class CapacityKept(PosixCase):

    def assert_limit(self, mnt, size, what):
        sv = os.statvfs(mnt)
        self.assertEqual(sv.f_blocks * sv.f_frsize, size, f"statfs size ({what})")
        p = subprocess.run(["dd", "if=/dev/zero", "of=" + os.path.join(mnt, "big"), "bs=1M",
                            "count=%d" % (size // MiB + 4)], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0, f"a write past {size} bytes went through ({what})")
        self.assertIn("No space left on device", p.stderr, what)
        os.unlink(os.path.join(mnt, "big"))

    def test_kept_with_store(self):
        # kept across an unmount and a kill -9; a new --capacity replaces it
        mnt, img, store = self.new_dir("mnt"), self.path("cap.iso"), self.path("store")
        with stage.Stage(img, mnt, store=store, extra=["--capacity", "8M"]):
            self.assert_limit(mnt, 8 * MiB, "as given")
        with stage.Stage(img, mnt, store=store):
            self.assert_limit(mnt, 8 * MiB, "restaged without --capacity")
        st = mount.Mount(img, mnt, args=["stage", "-f", "--store", store, img, mnt])
        with st:
            st.kill9()
        with stage.Stage(img, mnt, store=store):
            self.assert_limit(mnt, 8 * MiB, "after kill -9 of the daemon")
        self.assertIsNotNone(stage.status(store=store)["free_bytes_after_commit"],
                             "status without a daemon knows the limit")
        with stage.Stage(img, mnt, store=store, extra=["--capacity", "16M"]):
            self.assert_limit(mnt, 16 * MiB, "a new --capacity")
        with stage.Stage(img, mnt, store=store):
            self.assert_limit(mnt, 16 * MiB, "the new one is kept")


# --------------------------------------------------------------------------
# 11. no trash folder on the stage

class NoTrash(PosixCase):

    def test_gio_trash_puts_nothing_on_the_disc(self):
        if not shutil.which("gio"):
            self.skipTest("gio missing (libglib2.0-bin)")
        mnt, img = self.new_dir("mnt"), self.path("trash.iso")
        with stage.Stage(img, mnt, store=self.path("store")):
            stage.write_file(os.path.join(mnt, "keep"), b"kept")
            stage.write_file(os.path.join(mnt, "doomed"), b"secret")
            r = env.run(["gio", "trash", os.path.join(mnt, "doomed")], check=False)
            # GIO finds no trash and says so; a file manager then offers to delete for good
            self.assertNotEqual(r.returncode, 0, "gio trash found a trash on the stage")
            self.assertIn("trash", env.txt(r.stderr).lower())
            self.assertEqual(sorted(n for n in os.listdir(mnt) if n.startswith(".Trash")), [])
            for name in (".Trash", ".Trash-0", ".Trash-1000"):
                self.assertEqual(env.errno_of(os.mkdir, os.path.join(mnt, name)), errno.EPERM,
                                 f"mkdir {name} at the top of the stage")
            os.mkdir(os.path.join(mnt, "folder"))
            self.assertEqual(env.errno_of(os.rename, os.path.join(mnt, "folder"),
                                          os.path.join(mnt, ".Trash-0")), errno.EPERM)
            os.mkdir(os.path.join(mnt, "folder", ".Trash-0"))  # only the top is a trash's place
            os.mkdir(os.path.join(mnt, ".Trashcan"))
            os.unlink(os.path.join(mnt, "doomed"))  # what "Delete permanently" does
            stage.commit(mnt)
        ext = readers.extract_tree(img, self.path("extract"))
        self.assertEqual(sorted(ext), ["/", "/.Trashcan", "/folder", "/folder/.Trash-0", "/keep"])


# --------------------------------------------------------------------------
# 17. names too long, files too big, link counts of folders

class SmallPoints(PosixCase):

    def test_long_name_on_the_read_only_mount(self):
        src = self.new_dir("src")
        stage.write_file(os.path.join(src, "f"), b"x")
        img = images.make_xorriso_native(self.path("ro.iso"), src)
        mnt = self.new_dir("mnt")
        with mount.Mount(img, mnt):
            self.assertEqual(env.errno_of(os.stat, os.path.join(mnt, "n" * 256)),
                             errno.ENAMETOOLONG)
            self.assertEqual(env.errno_of(os.stat, os.path.join(mnt, "n" * 255)), errno.ENOENT)

    def test_too_big_for_a_session_is_efbig(self):
        mnt = self.new_dir("mnt")
        with stage.Stage(self.path("big.iso"), mnt, store=self.path("store")):
            f = os.path.join(mnt, "f")
            stage.write_file(f, b"x")
            nine_tib = 9 << 40  # ISO 9660's 32-bit block addresses end at 8 TiB
            self.assertEqual(env.errno_of(os.truncate, f, nine_tib), errno.EFBIG, "truncate")
            fd = os.open(f, os.O_RDWR)
            try:
                self.assertEqual(env.errno_of(os.ftruncate, fd, nine_tib), errno.EFBIG)
                self.assertEqual(env.errno_of(os.pwrite, fd, b"y", nine_tib), errno.EFBIG)
            finally:
                os.close(fd)
            self.assertEqual(os.stat(f).st_size, 1)

    def test_folder_link_counts(self):
        src = self.new_dir("src")
        for d in ("base/a", "base/b/c", "base/d", "empty"):
            os.makedirs(os.path.join(src, d))
        stage.write_file(os.path.join(src, "base", "file"), b"x")
        img = images.make_xorriso_native(self.path("dirs.iso"), src)
        mnt = self.new_dir("mnt")

        def nlink(*p):
            return os.stat(os.path.join(mnt, *p)).st_nlink

        with stage.Stage(img, mnt, store=self.path("store")):
            # base folders, counted before anything lists them
            self.assertEqual(nlink("base"), 5)
            self.assertEqual(nlink("base", "b"), 3)
            self.assertEqual(nlink("empty"), 2)
            self.assertEqual(nlink(), 4)
            os.listdir(os.path.join(mnt, "base"))
            self.assertEqual(nlink("base"), 5, "after listing")
            os.mkdir(os.path.join(mnt, "base", "e"))
            self.assertEqual(nlink("base"), 6, "after mkdir")
            os.rename(os.path.join(mnt, "base", "a"), os.path.join(mnt, "empty", "a"))
            self.assertEqual((nlink("base"), nlink("empty")), (5, 3), "after a folder moved")
            os.rmdir(os.path.join(mnt, "base", "d"))
            self.assertEqual(nlink("base"), 4, "after rmdir")
            stage.write_file(os.path.join(mnt, "base", "g"), b"y")
            self.assertEqual(nlink("base"), 4, "files do not count")
        # the read-only mount shows what the image records: libisofs writes 1 ("not
        # counted", which find(1) understands), genisoimage the count
        gimg = images.make_genisoimage(self.path("g.iso"), src, ["-R"])
        with mount.Mount(gimg, mnt):
            self.assertEqual((nlink("base"), nlink("base", "b"), nlink("empty")), (5, 3, 2))
        with mount.Mount(img, mnt):
            self.assertEqual(nlink("base"), 1)


if __name__ == "__main__":
    unittest.main()
