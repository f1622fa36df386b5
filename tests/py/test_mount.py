"""Real FUSE mounts of discfs, used the way people use them.

The mounted tree is walked with the same record shape as the source tree it
was made from (or what pycdlib/xorriso read) and compared field by field;
ordinary tools (find, stat, cat, cmp, cp -a, du, ls -lR, mount) are run on it.

Skips (with the reason) when /dev/fuse or fusermount3 is missing.
Run: /usr/bin/python3 -m testlib -v test_mount   (from tests/py)
"""

import errno
import hashlib
import mmap
import os
import shutil
import subprocess
import sys
import unittest

from testlib import env, images, mount, readers, sanitizers, sources, trees, upstream

M = env.ModuleFixture("discfs-mount-", binaries=("discfs",), pycdlib=True, fuse=True,
                      tools=("xorriso", "genisoimage", "find", "stat", "cmp", "cp", "du", "ls"))
setUpModule, tearDownModule = M.set_up, M.tear_down


def source(kind="full"):
    def make():
        root = os.path.join(M.path, "src-" + kind)
        st = sources.build_tree(root, very_long_symlink=(kind != "gen"))
        return root, st, trees.walk(root)
    return M.cached(("src", kind), make)


def image(name):
    """Images built once per module, on first use."""
    def make():
        p = os.path.join(M.path, name + ".iso")
        if name == "native":
            return images.make_xorriso_native(p, source("full")[0])
        if name == "zisofs":
            return images.make_zisofs(p, source("full")[0])
        if name == "genrj":
            return images.make_genisoimage(p, source("gen")[0], ["-R", "-J"])
        if name == "genj":
            return images.make_genisoimage(p, source("gen")[0], ["-J"])
        if name == "plain":
            return images.make_genisoimage(p, source("gen")[0], [])
        raise KeyError(name)
    return M.cached(("img", name), make)


def new_mountpoint(name="mnt"):
    return M.sub("mnt-%s-%d" % (name, len(os.listdir(M.path))))


class MountedCase(unittest.TestCase):
    """One mount for the whole class; every test first checks the daemon lives."""

    image_name = None
    mount_options = ()
    tree = None

    @classmethod
    def setUpClass(cls):
        if cls.image_name is None:
            raise unittest.SkipTest("abstract")
        cls.image = image(cls.image_name) if isinstance(cls.image_name, str) else None
        cls.mnt = new_mountpoint(cls.__name__)
        cls.m = mount.Mount(cls.image, cls.mnt, options=cls.mount_options, tree=cls.tree)
        cls.m.__enter__()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "m", None) is not None:
            cls.m.__exit__(None, None, None)

    def setUp(self):
        self.m.check_alive()

    def tearDown(self):
        self.m.check_alive()

    def P(self, rel):
        return os.path.join(self.mnt, rel.lstrip("/"))

    def run_tool(self, cmd, **kw):
        p = env.run(cmd, check=False, **kw)
        self.m.check_alive()
        return p


# ---------------------------------------------------------------------------
# The main image: xorriso, Rock Ridge + Joliet, hard links recorded
# ---------------------------------------------------------------------------

class NativeImage(MountedCase):
    image_name = "native"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src, cls.st, cls.src_tree = source("full")
        cls.ref = readers.pycdlib_tree(cls.image, "rr", data=False)   # what Rock Ridge recorded

    def test_tree_matches_source(self):
        got = trees.walk(self.mnt)
        fields = ("type", "mode", "uid", "gid", "size", "mtime", "target", "rdev", "sha256")
        env.fail_diff(self, trees.diff(self.src_tree, got, fields=fields),
                      "mounted tree differs from the source tree")
        probs = [f"{p!r}: nlink {got[p].nlink}, source has {r.nlink}"
                 for p, r in self.src_tree.items()
                 if r.type != "dir" and p in got and got[p].nlink != r.nlink]
        probs += trees.dir_nlink_problems(self.ref, got)
        env.fail_diff(self, probs, "link counts")

    def test_hard_links_share_inode(self):
        got = trees.walk(self.mnt, data=False)
        self.assertEqual(trees.link_groups(got), sorted(sorted(g) for g in self.st.hardlink_groups),
                         "paths sharing st_ino must be exactly the source's hard links")
        for g in self.st.hardlink_groups:
            self.assertEqual({got[p].nlink for p in g}, {len(g)}, g)
        env.fail_diff(self, trees.inode_problems(got, self.st.hardlink_groups), "inode numbers")

    def test_find_lists_every_entry(self):
        fmt = "%P\\t%y\\t%l\\t%m\\t%U\\t%G\\n"
        a = self.run_tool(["find", self.mnt, "-printf", fmt])
        b = env.run(["find", self.src, "-printf", fmt])
        self.assertEqual(a.returncode, 0, a.stderr.decode(errors="replace"))
        self.assertEqual(a.stderr, b"", "find must not warn (e.g. 'File system loop detected')")
        self.assertEqual(sorted(a.stdout.decode().splitlines()),
                         sorted(b.stdout.decode().splitlines()))

    def test_stat_command(self):
        fmt = "%F|%a|%u|%g|%s|%Y|%h|%t|%T"
        dfmt = "%F|%a|%u|%g|%Y"
        probs = []
        for p, r in sorted(self.src_tree.items()):
            f = dfmt if r.type == "dir" else fmt
            a = self.run_tool(["stat", "-c", f, self.P(p) if p != "/" else self.mnt])
            b = env.run(["stat", "-c", f, os.path.join(self.src, p.lstrip("/"))])
            if a.returncode != 0 or a.stdout != b.stdout:
                shown = a.stdout.decode().strip() or a.stderr.decode().strip()
                probs.append(f"{p!r}: mount {shown} source {b.stdout.decode().strip()}")
        env.fail_diff(self, probs, "stat(1) output")

    def test_cat(self):
        for rel in ("README", "empty", "name with spaces.txt", sources.UNICODE_NAME,
                    "sizes/random_1MiB.bin", "links/relative", self.st.deep_file):
            a = self.run_tool(["cat", self.P(rel)])
            self.assertEqual(a.returncode, 0, f"cat {rel}: {a.stderr!r}")
            with open(os.path.join(self.src, rel.lstrip("/")), "rb") as f:
                self.assertEqual(a.stdout, f.read(), f"cat {rel}")

    def test_cmp_every_regular_file(self):
        bad = []
        for p, r in sorted(self.src_tree.items()):
            if r.type != "reg":
                continue
            c = self.run_tool(["cmp", self.P(p), os.path.join(self.src, p.lstrip("/"))])
            if c.returncode != 0:
                bad.append(f"{p}: {(c.stdout + c.stderr).decode(errors='replace').strip()}")
        env.fail_diff(self, bad, "cmp")

    def test_cp_a_copy_equals_source(self):
        dest = M.sub("cp-a-native", make=False)
        os.makedirs(dest)
        c = self.run_tool(["cp", "-a", self.mnt + "/.", dest])
        self.assertEqual(c.returncode, 0, f"cp -a failed: {c.stderr.decode(errors='replace')}")
        got = trees.walk(dest)
        env.fail_diff(self, trees.diff(self.src_tree, got), "cp -a copy differs from the source")
        self.assertEqual(trees.link_groups(got), sorted(sorted(g) for g in self.st.hardlink_groups),
                         "cp -a must recreate the hard links")
        shutil.rmtree(dest)

    def test_du(self):
        a = self.run_tool(["du", "-ab", self.mnt])
        self.assertEqual(a.returncode, 0, a.stderr)
        listed = {}
        for line in a.stdout.decode().splitlines():
            size, path = line.split("\t", 1)
            rel = "/" + os.path.relpath(path, self.mnt) if path != self.mnt else "/"
            listed[rel] = int(size)
        in_group = {p for g in self.st.hardlink_groups for p in g}
        probs = []
        for p, r in self.src_tree.items():
            if r.type in ("dir",) or p in in_group:
                continue
            if listed.get(p) != r.size:
                probs.append(f"{p!r}: du -ab says {listed.get(p)}, size is {r.size}")
        for g in self.st.hardlink_groups:
            shown = [p for p in g if p in listed]
            if len(shown) != 1:
                probs.append(f"du must count hard links {g} once, listed {shown}")
        env.fail_diff(self, probs, "du -ab")
        # Disk usage: an image's files occupy at least their size.
        usage = int(self.run_tool(["du", "-sB1", self.mnt]).stdout.split()[0])
        seen, total = set(), 0
        for p, r in self.src_tree.items():
            if r.type == "reg" and r.ino not in seen:
                seen.add(r.ino)
                total += r.size
        self.assertGreaterEqual(usage, total, "du -s reports less than the files hold (st_blocks)")

    @staticmethod
    def parse_ls(text, root):
        out, cur = {}, None
        for line in text.splitlines():
            if not line:
                continue
            if line.endswith(":") and line.startswith(root):
                d = line[:-1]
                cur = "" if d == root else "/" + os.path.relpath(d, root)
                continue
            if line.startswith("total "):
                continue
            parts = line.split(None, 4)
            perms, nlink, uid, gid, rest = parts
            if perms[0] in "cb":
                maj, mino, t, name = rest.split(None, 3)
                size = maj + " " + mino
            else:
                size, t, name = rest.split(None, 2)
            target = None
            if perms[0] == "l":
                name, target = name.split(" -> ", 1)
            key = cur + "/" + name
            if perms[0] == "d":
                out[key] = (perms, uid, gid, t)
            else:
                out[key] = (perms, nlink, uid, gid, size, t, target)
        return out

    def test_ls_lR(self):
        args = ["ls", "-lRn", "--time-style=+%s", "--quoting-style=literal"]
        a = self.run_tool(args + [self.mnt])
        b = env.run(args + [self.src])
        self.assertEqual(a.returncode, 0, a.stderr)
        got = self.parse_ls(a.stdout.decode(), self.mnt)
        want = self.parse_ls(b.stdout.decode(), self.src)
        probs = [f"{k!r}: mount {got.get(k)} source {v}" for k, v in sorted(want.items())
                 if got.get(k) != v]
        probs += [f"{k!r}: only in the mount" for k in sorted(set(got) - set(want))]
        env.fail_diff(self, probs, "ls -lR")

    def test_reads_at_any_offset(self):
        rel = "sizes/random_1MiB.bin"
        with open(os.path.join(self.src, rel), "rb") as f:
            data = f.read()
        fd = os.open(self.P(rel), os.O_RDONLY)
        try:
            for off, n in ((0, 1), (1, 4095), (2047, 2), (4095, 8193), (65535, 131073),
                           (len(data) - 1, 10), (len(data) - 3000, 3000), (len(data), 10),
                           (len(data) + 4096, 10), (123457, 1)):
                self.assertEqual(os.pread(fd, n, off), data[off:off + n], f"pread({n}, {off})")
            with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mm:
                self.assertEqual(hashlib.sha256(mm).hexdigest(),
                                 hashlib.sha256(data).hexdigest(), "mmap")
        finally:
            os.close(fd)
        # Many small reads in sequence.
        with open(self.P("sizes/size_4095.bin"), "rb", buffering=0) as f:
            chunks = iter(lambda: f.read(7), b"")
            got = b"".join(chunks)
        with open(os.path.join(self.src, "sizes/size_4095.bin"), "rb") as f:
            self.assertEqual(got, f.read())

    def test_parallel_reads(self):
        """Several readers at once (file managers, cp -r) all get the right bytes."""
        import concurrent.futures
        files = [p for p, r in self.src_tree.items() if r.type == "reg" and r.size]

        def digest(rel):
            h = hashlib.sha256()
            with open(self.P(rel), "rb") as f:
                while True:
                    b = f.read(3001)
                    if not b:
                        break
                    h.update(b)
            return rel, h.hexdigest()

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(digest, files * 3))
        bad = sorted({rel for rel, d in results if d != self.src_tree[rel].sha256})
        self.assertFalse(bad, f"wrong content under concurrent reads: {bad[:8]}")

    def test_symlinks_resolve(self):
        with open(self.P("links/relative"), "rb") as f, \
                open(os.path.join(self.src, "README"), "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertEqual(sorted(os.listdir(self.P("links/to_dir"))),
                         sorted(os.listdir(os.path.join(self.src, "a/b"))))
        self.assertEqual(os.readlink(self.P("links/long_target")),
                         self.st.symlinks["/links/long_target"])
        with self.assertRaises(FileNotFoundError):
            os.stat(self.P("links/dangling"))

    def test_errors_for_missing_and_wrong_type(self):
        with self.assertRaises(FileNotFoundError):
            os.stat(self.P("no/such/file"))
        with self.assertRaises(FileNotFoundError):
            os.stat(self.P("README-not-there"))
        with self.assertRaises(NotADirectoryError):
            os.listdir(self.P("README"))
        with self.assertRaises(IsADirectoryError):
            open(self.P("a"), "rb").read()

    def test_writes_fail_with_erofs(self):
        existing = self.P("README")
        ops = {
            "open O_WRONLY": lambda: os.open(existing, os.O_WRONLY),
            "open O_RDWR": lambda: os.open(existing, os.O_RDWR),
            "open O_CREAT": lambda: os.open(self.P("new_file"), os.O_WRONLY | os.O_CREAT, 0o644),
            "open O_TRUNC": lambda: os.open(existing, os.O_WRONLY | os.O_TRUNC),
            "mkdir": lambda: os.mkdir(self.P("new_dir")),
            "rmdir": lambda: os.rmdir(self.P("a/b/c/d/e")),
            "unlink": lambda: os.unlink(existing),
            "rename": lambda: os.rename(existing, self.P("README2")),
            "symlink": lambda: os.symlink("x", self.P("new_link")),
            "link": lambda: os.link(existing, self.P("new_hard")),
            "chmod": lambda: os.chmod(existing, 0o600),
            "chown": lambda: os.chown(existing, 1, 1),
            "utime": lambda: os.utime(existing, (0, 0)),
            "truncate": lambda: os.truncate(existing, 0),
            "mknod": lambda: os.mkfifo(self.P("new_fifo")),
            "setxattr": lambda: os.setxattr(existing, "user.test", b"1"),
        }
        for name, op in ops.items():
            with self.subTest(op=name):
                with self.assertRaises(OSError) as cm:
                    fd = op()
                    if isinstance(fd, int):
                        os.close(fd)
                self.assertEqual(cm.exception.errno, errno.EROFS,
                                 f"{name}: {os.strerror(cm.exception.errno)}")
        for cmd in (["touch", existing], ["touch", self.P("brand_new")], ["mkdir", self.P("x")],
                    ["rm", "-f", existing]):
            with self.subTest(cmd=cmd[0]):
                c = self.run_tool(cmd)
                self.assertNotEqual(c.returncode, 0)
                self.assertIn(b"Read-only file system", c.stderr)
        self.assertEqual(sorted(os.listdir(self.mnt)),
                         sorted(os.listdir(self.src)), "nothing may change")

    def test_statfs_reports_image_size(self):
        sv = os.statvfs(self.mnt)
        size = os.path.getsize(self.image)
        total = sv.f_blocks * sv.f_frsize
        self.assertGreater(total, 0)
        self.assertLessEqual(abs(total - size), max(64 * 1024, size // 50),
                             f"statfs size {total} vs image {size}")
        self.assertEqual(sv.f_bavail, 0, "a read-only image has no space to offer")
        self.assertGreaterEqual(sv.f_namemax, 255, "Rock Ridge names are up to 255 bytes")


# ---------------------------------------------------------------------------
# Other flavours
# ---------------------------------------------------------------------------

class ZisofsImage(MountedCase):
    """zisofs-compressed files read back as the source's bytes."""
    image_name = "zisofs"

    def test_tree_matches_source(self):
        compressed = readers.zisofs_files(self.image)
        self.assertGreaterEqual(len(compressed), 3, "precondition: compressed files in image")
        src = source("full")[2]
        got = trees.walk(self.mnt)
        fields = ("type", "mode", "uid", "gid", "size", "mtime", "target", "rdev", "sha256")
        env.fail_diff(self, trees.diff(src, got, fields=fields), "zisofs mount vs source")

    def test_read_compressed_at_offsets(self):
        rel = "sizes/text_zeros_text.bin"
        with open(os.path.join(source("full")[0], rel), "rb") as f:
            data = f.read()
        fd = os.open(self.P(rel), os.O_RDONLY)
        try:
            for off, n in ((0, 10), (32767, 2), (32768, 65536), (39990, 40020),
                           (len(data) - 5, 100), (70000, 1)):
                self.assertEqual(os.pread(fd, n, off), data[off:off + n], f"pread({n}, {off})")
        finally:
            os.close(fd)


class GenisoimageRockRidge(MountedCase):
    """genisoimage -R -J: relocated deep directories in their place."""
    image_name = "genrj"

    def test_tree_matches_independent_readers(self):
        ref, _ = readers.rock_ridge_reference(self.image, M.path, "mount-genrj")
        got = trees.walk(self.mnt)
        fields = ("type", "mode", "uid", "gid", "size", "mtime", "target", "rdev", "sha256")
        env.fail_diff(self, trees.diff(trees.without_rr_moved(ref), trees.without_rr_moved(got),
                                       fields=fields),
                      "genisoimage -R mount vs pycdlib/xorriso")
        env.fail_diff(self, trees.diff(source("gen")[2], trees.without_rr_moved(got),
                                       fields=("type", "size", "sha256", "target")),
                      "genisoimage -R mount vs source tree")
        self.assertTrue(os.path.isfile(self.P(source("gen")[1].deep_file)))


class MultisessionImage(MountedCase):
    """Three xorriso sessions: the mount shows the newest."""
    image_name = None

    @classmethod
    def setUpClass(cls):
        def make():
            work = M.sub("multi")
            img = os.path.join(work, "multi.iso")
            expect = images.make_multisession(img, work)
            return img, expect
        cls.img, cls.expect = M.cached("multi", make)
        cls.mnt = new_mountpoint("multi")
        cls.m = mount.Mount(cls.img, cls.mnt)
        cls.m.__enter__()
        cls.image = cls.img

    def test_newest_session(self):
        self.assertEqual(readers.session_count(self.img), 3, "precondition: 3 sessions")
        got = trees.walk(self.mnt)
        env.fail_diff(self, trees.diff(trees.walk(self.expect), got,
                                       fields=("type", "size", "sha256", "target")),
                      "multisession mount vs what was committed")
        with open(self.P("rewrite.txt"), "rb") as f:
            self.assertEqual(f.read(), b"v3\n")
        self.assertFalse(os.path.exists(self.P("to_delete.txt")))
        self.assertFalse(os.path.exists(self.P("dir_gone")))


class BigFile(MountedCase):
    """A 4500 MiB file in several extents reads right across the extent seams."""
    image_name = None

    @classmethod
    def setUpClass(cls):
        src = M.sub("src-big", make=False)
        cls.big, cls.marks = sources.big_file_tree(src, "small_after.txt",
                                                   b"after the big file\n")
        cls.image = images.make_big_level3(os.path.join(M.path, "big.iso"), src)
        if readers.pycdlib_extent_count(cls.image, "/BIG.BIN;1") < 2:
            raise RuntimeError("precondition: BIG.BIN should have several extents")
        cls.mnt = new_mountpoint("big")
        cls.m = mount.Mount(cls.image, cls.mnt)
        cls.m.__enter__()

    def test_size(self):
        self.assertEqual(os.stat(self.P("big.bin")).st_size, os.path.getsize(self.big))

    def test_reads_across_extents(self):
        size = os.path.getsize(self.big)
        sfd = os.open(self.big, os.O_RDONLY)
        mfd = os.open(self.P("big.bin"), os.O_RDONLY)
        try:
            spots = []
            for off, data in self.marks.items():
                spots += [(max(0, off - 3000), 6000 + len(data)), (off, len(data))]
            spots += [(0xFFFFF800 - 1, 2), (0xFFFFF800 - 131072, 262144), ((1 << 32) - 1, 2),
                      (size - 1, 1), (size - 100000, 200000), (size, 1)]
            for off, n in spots:
                self.assertEqual(os.pread(mfd, n, off), os.pread(sfd, n, off),
                                 f"pread({n}, {off:#x})")
        finally:
            os.close(sfd)
            os.close(mfd)
        with open(self.P("small_after.txt"), "rb") as f:
            self.assertEqual(f.read(), b"after the big file\n")

    def test_cmp_whole_file(self):
        c = env.run(["cmp", self.P("big.bin"), self.big], check=False, timeout=600)
        self.m.check_alive()
        self.assertEqual(c.returncode, 0, (c.stdout + c.stderr).decode(errors="replace"))


# ---------------------------------------------------------------------------
# Options and command-line forms
# ---------------------------------------------------------------------------

class Options(unittest.TestCase):

    def test_uid_gid_options(self):
        mnt = new_mountpoint("uidgid")
        with mount.Mount(image("genj"), mnt, options=["uid=4321", "gid=8765"]):
            got = trees.walk(mnt, data=False)
        wrong = [(p, r.uid, r.gid) for p, r in got.items() if (r.uid, r.gid) != (4321, 8765)]
        self.assertFalse(wrong, f"uid=4321,gid=8765 not applied to: {wrong[:8]}")

    def test_umask_option(self):
        mnt = new_mountpoint("umask")
        with mount.Mount(image("genj"), mnt, options=["umask=027"]):
            got = trees.walk(mnt, data=False)
            # the owner can still read everything
            with open(os.path.join(mnt, "README"), "rb") as f:
                f.read()
        wrong = [(p, oct(r.mode)) for p, r in got.items() if r.mode & 0o027]
        self.assertFalse(wrong, f"umask=027 leaves bits set: {wrong[:8]}")
        dirs = [(p, oct(r.mode)) for p, r in got.items()
                if r.type == "dir" and r.mode & 0o500 != 0o500]
        self.assertFalse(dirs, f"directories must stay readable and searchable: {dirs[:8]}")

    def test_options_on_plain_iso(self):
        mnt = new_mountpoint("plainopts")
        with mount.Mount(image("plain"), mnt, options=["uid=1234", "gid=5678", "umask=077"]):
            got = trees.walk(mnt, data=False)
        wrong = [(p, r.uid, r.gid, oct(r.mode)) for p, r in got.items()
                 if (r.uid, r.gid) != (1234, 5678) or r.mode & 0o077]
        self.assertFalse(wrong, f"options not applied: {wrong[:8]}")

    def _check_joliet_view(self, mnt):
        ref = readers.pycdlib_tree(image("native"), "joliet")
        got = trees.walk(mnt)
        env.fail_diff(self, trees.diff(ref, got, fields=("type", "size", "sha256", "mtime")),
                      "Joliet view vs pycdlib's Joliet tree")

    def test_tree_joliet(self):
        mnt = new_mountpoint("joliet")
        with mount.Mount(image("native"), mnt, tree="joliet") as m:
            self._check_joliet_view(mnt)
            m.check_alive()

    def test_tree_joliet_as_o_option(self):
        mnt = new_mountpoint("joliet-o")
        with mount.Mount(image("native"), mnt, options=["tree=joliet"]):
            self._check_joliet_view(mnt)

    def test_tree_iso9660(self):
        mnt = new_mountpoint("iso9660")
        ref = readers.pycdlib_tree(image("native"), "iso", data=False)
        with mount.Mount(image("native"), mnt, tree="iso9660"):
            got = trees.walk(mnt, data=False)
        env.fail_diff(self, trees.diff(ref, got, fields=("type",)), "ISO 9660 view names")

    def test_inode_numbers_stable_across_mounts(self):
        runs = []
        for n in range(2):
            mnt = new_mountpoint("stable%d" % n)
            with mount.Mount(image("native"), mnt):
                runs.append({p: r.ino for p, r in trees.walk(mnt, data=False).items()})
        changed = [p for p in runs[0] if runs[0][p] != runs[1].get(p)]
        self.assertFalse(changed, f"st_ino changed between mounts for {changed[:8]}")

    # --- the mount.fuse3 forms -------------------------------------------

    def _wait_unmounted(self, mnt):
        if env.is_mounted(mnt):
            p = subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.PIPE)
            if p.returncode != 0:
                subprocess.run(["fusermount3", "-uz", mnt])
                self.fail(f"fusermount3 -u {mnt} failed: {p.stderr!r}")
        self.assertFalse(env.is_mounted(mnt))

    def _daemonizing_mount(self, cmd, mnt, run_env=None):
        """Run a command that mounts and returns; the mount must be live on return."""
        dev0 = os.stat(mnt).st_dev
        self.addCleanup(lambda: env.is_mounted(mnt) and subprocess.run(
            ["fusermount3", "-uz", mnt]))
        p = env.run(cmd, check=False, timeout=60, env=run_env)
        err = p.stderr.decode(errors="replace")
        rep = sanitizers.report(err)
        self.assertIsNone(rep, err)
        return p, err, dev0

    def test_mount_fuse3_argument_order(self):
        mnt = new_mountpoint("fuse3form")
        p, err, dev0 = self._daemonizing_mount(
            [env.discfs_bin(), image("genj"), mnt, "-o", "ro,uid=4321"], mnt)
        self.assertEqual(p.returncode, 0, f"discfs IMG MNT -o ro,uid=4321 failed: {err}")
        self.assertNotEqual(os.stat(mnt).st_dev, dev0, "the mount must be live when discfs returns")
        try:
            self.assertEqual(os.stat(os.path.join(mnt, "README")).st_uid, 4321)
            with open(os.path.join(mnt, "README"), "rb") as f:
                self.assertEqual(f.read(), b"discfs test tree\nsecond line\n")
        finally:
            self._wait_unmounted(mnt)

    def test_mount_daemonizes_without_f(self):
        mnt = new_mountpoint("daemon")
        p, err, dev0 = self._daemonizing_mount([env.discfs_bin(), "mount", image("native"), mnt],
                                               mnt)
        self.assertEqual(p.returncode, 0, err)
        self.assertNotEqual(os.stat(mnt).st_dev, dev0, "the mount must be live when discfs returns")
        try:
            self.assertTrue(os.path.isfile(os.path.join(mnt, "README")))
        finally:
            self._wait_unmounted(mnt)

    def _mount_helper_env(self):
        bindir = M.sub("pathbin")
        link = os.path.join(bindir, "discfs")
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(env.discfs_bin()), link)
        path_env = dict(os.environ)
        path_env["PATH"] = bindir + os.pathsep + path_env.get("PATH", "/usr/bin:/bin")
        return path_env

    def test_mount_t_fuse_discfs(self):
        helper = shutil.which("mount.fuse3") or ("/sbin/mount.fuse3"
                                                 if os.path.exists("/sbin/mount.fuse3") else None)
        if not helper or not shutil.which("mount"):
            self.skipTest("mount(8) or /sbin/mount.fuse3 missing")
        # "rw" as mount(8) passes it by default: the mount is read-only all the same.
        for opts in ("ro", "rw"):
            with self.subTest(options=opts):
                mnt = new_mountpoint("mount-t")
                p, err, dev0 = self._daemonizing_mount(
                    ["mount", "-t", "fuse.discfs", image("native"), mnt, "-o", opts], mnt,
                    run_env=self._mount_helper_env())
                self._skip_unless_installed(p, err)
                self.assertEqual(p.returncode, 0, f"mount -t fuse.discfs -o {opts} failed: {err}")
                try:
                    self._check_safe_mount(mnt, dev0)
                finally:
                    self._wait_unmounted(mnt)

    def test_fstab_line(self):
        """The man page's fstab line, through `mount -T FSTAB MOUNTPOINT` (root only: the line
        has no `user`)."""
        if not shutil.which("mount") or not os.path.exists("/sbin/mount.fuse3"):
            self.skipTest("mount(8) or /sbin/mount.fuse3 missing")
        if not env.is_root():
            self.skipTest("mounting an fstab line without 'user' needs root")
        mnt = new_mountpoint("fstab-T")
        fstab = os.path.join(M.sub("fstab"), "fstab")
        with open(fstab, "w") as f:
            f.write("# an fstab of discfs's tests\n"
                    f"{image('native')}  {mnt}  fuse.discfs  ro,allow_other,nofail  0  0\n")
        p, err, dev0 = self._daemonizing_mount(["mount", "-T", fstab, mnt], mnt,
                                               run_env=self._mount_helper_env())
        self._skip_unless_installed(p, err)
        self.assertEqual(p.returncode, 0, f"mount -T {fstab} {mnt} failed: {err}")
        try:
            self._check_safe_mount(mnt, dev0)
        finally:
            self._wait_unmounted(mnt)

    def _skip_unless_installed(self, p, err):
        """mount(8) runs mount.fuse3 with a clean PATH (it is setuid), so only an installed
        discfs is found. With DISCFS_INSTALLED set (scripts/test.sh, after installing the
        package) the test must run."""
        if p.returncode != 0 and "discfs: not found" in err and \
                not os.path.exists("/sbin/mount.fuse.discfs") and \
                not os.environ.get("DISCFS_INSTALLED"):
            self.skipTest("mount(8) runs mount.fuse3 with a clean PATH (it is setuid), so a "
                          "discfs on a temporary PATH cannot be found; install the package "
                          "(packaging/build-deb.sh) and run with DISCFS_INSTALLED=1 "
                          "(test_mount_fuse3_helper covers the helper itself)")

    def _check_safe_mount(self, mnt, dev0):
        """The defaults of `discfs mount`: live, read-only, nosuid, nodev."""
        self.assertNotEqual(os.stat(mnt).st_dev, dev0)
        with open(os.path.join(mnt, "README"), "rb") as f:
            self.assertEqual(f.read(), b"discfs test tree\nsecond line\n")
        self.assertLessEqual({"ro", "nosuid", "nodev"}, env.mount_flags(mnt))
        with self.assertRaises(OSError) as cm:
            open(os.path.join(mnt, "new-file"), "w").close()
        self.assertEqual(cm.exception.errno, errno.EROFS)

    def test_fstab_form_is_nosuid_nodev(self):
        """What mount(8) runs for `mount -t fuse.discfs` and the man page's fstab line
        (`allow_other`): mount.fuse3 appends "dev,suid" (mount(8)'s defaults) unless told
        otherwise, and a setuid-root program in an image would run as root for any user.
        The mount must be nosuid,nodev like `discfs mount`; `-o suid,dev` opts out."""
        helper = shutil.which("mount.fuse3") or ("/sbin/mount.fuse3"
                                                 if os.path.exists("/sbin/mount.fuse3") else None)
        if not helper:
            self.skipTest("mount.fuse3 missing")
        for opts, want, unwanted in (("allow_other", {"nosuid", "nodev"}, set()),
                                     ("rw,noauto,user,allow_other", {"nosuid", "nodev"}, set()),
                                     ("suid", {"nodev"}, {"nosuid"}),
                                     ("suid,dev", set(), {"nosuid", "nodev"}),
                                     ("nosuid", {"nosuid", "nodev"}, set())):
            with self.subTest(options=opts):
                mnt = new_mountpoint("fstab")
                p, err, dev0 = self._daemonizing_mount(
                    [helper, image("native"), mnt, "-t", "fuse.discfs", "-o", opts], mnt,
                    run_env=self._mount_helper_env())
                self.assertEqual(p.returncode, 0, f"mount.fuse3 -o {opts} failed: {err}")
                try:
                    flags = env.mount_flags(mnt)
                    self.assertLessEqual(want, flags, f"-o {opts}: mount options {flags}")
                    self.assertFalse(unwanted & flags, f"-o {opts}: mount options {flags}")
                finally:
                    self._wait_unmounted(mnt)

    def test_discfs_mount_is_nosuid_nodev(self):
        mnt = new_mountpoint("nosuid")
        for opts, want, unwanted in ((None, {"nosuid", "nodev"}, set()),
                                     ("suid,dev", set(), {"nosuid", "nodev"})):
            with self.subTest(options=opts):
                cmd = [env.discfs_bin(), "mount", image("native"), mnt]
                p, err, dev0 = self._daemonizing_mount(cmd + (["-o", opts] if opts else []), mnt)
                self.assertEqual(p.returncode, 0, err)
                try:
                    flags = env.mount_flags(mnt)
                    self.assertLessEqual(want, flags, f"-o {opts}: mount options {flags}")
                    self.assertFalse(unwanted & flags, f"-o {opts}: mount options {flags}")
                finally:
                    self._wait_unmounted(mnt)

    def test_mount_fuse3_helper(self):
        """What mount(8) and /etc/fstab (type fuse.discfs) run: mount.fuse3 finding discfs on
        PATH."""
        helper = shutil.which("mount.fuse3") or ("/sbin/mount.fuse3"
                                                 if os.path.exists("/sbin/mount.fuse3") else None)
        if not helper:
            self.skipTest("mount.fuse3 missing")
        mnt = new_mountpoint("helper")
        p, err, dev0 = self._daemonizing_mount(
            [helper, image("native"), mnt, "-t", "fuse.discfs", "-o", "rw,nosuid,nodev"], mnt,
            run_env=self._mount_helper_env())
        self.assertEqual(p.returncode, 0, f"mount.fuse3 ... -t fuse.discfs failed: {err}")
        try:
            self.assertNotEqual(os.stat(mnt).st_dev, dev0)
            with open(os.path.join(mnt, "README"), "rb") as f:
                self.assertEqual(f.read(), b"discfs test tree\nsecond line\n")
        finally:
            self._wait_unmounted(mnt)

    def test_mount_t_fuse_program_hash_source(self):
        """The classic fstab form `/path/to/discfs#IMAGE MNT fuse ...` through mount(8)."""
        if not shutil.which("mount") or not os.path.exists("/sbin/mount.fuse3"):
            self.skipTest("mount(8) or /sbin/mount.fuse3 missing")
        mnt = new_mountpoint("hashform")
        p, err, dev0 = self._daemonizing_mount(
            ["mount", "-t", "fuse", os.path.abspath(env.discfs_bin()) + "#" + image("native"), mnt,
             "-o", "ro"], mnt)
        self.assertEqual(p.returncode, 0, f"mount -t fuse 'discfs#IMG' failed: {err}")
        try:
            self.assertNotEqual(os.stat(mnt).st_dev, dev0)
            self.assertTrue(os.path.isfile(os.path.join(mnt, "README")))
        finally:
            self._wait_unmounted(mnt)


class RefusesNonImages(unittest.TestCase):
    """Something that is not an image is refused at once, with one line, and nothing mounts."""

    @classmethod
    def setUpClass(cls):
        d = M.sub("bad")
        cls.bad = {}
        p = os.path.join(d, "random.bin")
        with open(p, "wb") as f:
            f.write(sources.rand_bytes(99, 1 << 20))
        cls.bad["random 1 MiB"] = (p, env.EXIT_NOT_AN_IMAGE)
        p = os.path.join(d, "notes.txt")
        with open(p, "w") as f:
            f.write("just some text\nnot an image\n" * 10)
        cls.bad["text file"] = (p, env.EXIT_NOT_AN_IMAGE)
        p = os.path.join(d, "empty.iso")
        open(p, "wb").close()
        cls.bad["empty file"] = (p, env.EXIT_NOT_AN_IMAGE)
        # A directory is no image file or block device: it cannot be read as one (3).
        p = M.sub("bad", "a_directory")
        cls.bad["directory"] = (p, env.EXIT_CANNOT_OPEN)
        cls.bad["missing file"] = (os.path.join(d, "does-not-exist.iso"), env.EXIT_CANNOT_OPEN)

    def check_refused(self, cmd, code, mnt):
        dev0 = os.stat(mnt).st_dev
        p = env.run(cmd, check=False, timeout=60)
        try:
            err = p.stderr.decode(errors="replace")
            self.assertIsNone(sanitizers.report(err), err)
            self.assertEqual(p.returncode, code, f"{cmd}: exit {p.returncode}, stderr {err!r}")
            lines = [l for l in err.strip().splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, f"want a one-line message, got {err!r}")
            self.assertEqual(os.stat(mnt).st_dev, dev0, "something got mounted")
            self.assertFalse(env.is_mounted(mnt), "something got mounted")
        finally:
            if env.is_mounted(mnt):
                subprocess.run(["fusermount3", "-uz", mnt])

    def test_refused(self):
        for what, (path, code) in self.bad.items():
            mnt = new_mountpoint("refuse")
            for form, cmd in (("mount -f", [env.discfs_bin(), "mount", "-f", path, mnt]),
                              ("mount (daemon)", [env.discfs_bin(), "mount", path, mnt]),
                              ("fuse3 form", [env.discfs_bin(), path, mnt, "-o", "ro"])):
                with self.subTest(source=what, form=form):
                    self.check_refused(cmd, code, mnt)


# ---------------------------------------------------------------------------
# Other projects' images: a mount never crashes or hangs
# ---------------------------------------------------------------------------

WALK_SCRIPT = r"""
import os, sys, errno
root = sys.argv[1]
errs = []
n = 0
def note(p, e):
    errs.append("%s: %s" % (os.path.relpath(p, root), errno.errorcode.get(e.errno, e.errno)))
for d, dirs, files in os.walk(root, onerror=lambda e: note(e.filename, e)):
    for name in dirs + files:
        p = os.path.join(d, name)
        n += 1
        try:
            st = os.lstat(p)
            if os.path.islink(p):
                os.readlink(p)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    while f.read(1 << 20):
                        pass
        except OSError as e:
            note(p, e)
print(n)
for e in errs:
    print(e)
"""


class UpstreamImagesMount(unittest.TestCase):
    """Every image from shared/testdata mounts (or is refused with the exit code
    upstream.REFUSED gives) and walks cleanly."""

    @classmethod
    def setUpClass(cls):
        upstream.require_data()
        cls.images = upstream.Images(M.sub("upstream"))

    def test_mount_and_walk_every_image(self):
        for name in upstream.names():
            with self.subTest(image=name):
                self.mount_and_walk(name)

    def mount_and_walk(self, name):
        mnt = new_mountpoint("up")
        with mount.Mount(self.images.path(name), mnt, ready_guard=30, report=True) as m:
            if m.live:
                # A mount whose root cannot be read is useless: such an image must be
                # refused at mount time, as discfs-dump does.
                try:
                    os.stat(mnt)
                    os.listdir(mnt)
                except OSError as e:
                    self.fail(f"{name}: mounted, but its root gives {e!r}; the image "
                              f"should have been refused")
                w = env.run([sys.executable, "-c", WALK_SCRIPT, mnt], check=False, timeout=120)
                m.check_alive()
        for pr in m.problems:
            self.fail(f"{name}: {pr}")
        self.assertEqual(m.refused if m.refused is not None else env.EXIT_OK,
                         upstream.exit_code(name), f"{name}: {m.stderr[-2000:]}")
        if m.live:
            self.assertEqual(w.returncode, 0, w.stderr.decode(errors="replace"))
            out = w.stdout.decode(errors="replace").splitlines()
            bad = [line for line in out[1:] if not line.endswith(": EIO")]
            self.assertFalse(bad, f"{name}: errors other than EIO: {bad[:8]}")


if __name__ == "__main__":
    unittest.main()
