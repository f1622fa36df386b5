"""UDF reading: discfs-dump and FUSE mounts against independent UDF readers.

Images are written at test time by writers that are not discfs (pycdlib UDF
2.60, genisoimage -udf (UDF 1.02 bridge), mkudffs of several revisions and
media types filled by udfclient) and read back by independent readers
(testlib/udf.py, READERS, says what each is trusted for):

  pycdlib    names, types, sizes, content, symlink targets, mtimes, permissions
  udfread    names, dir/reg, sizes, content (libudfread, tests/tools/udfread_dump.c)
  7-Zip      names, dir/file, sizes, content, mtimes (`7z -tudf`)
  udfclient  names, sizes, content, permissions, uid/gid (`mget` extraction)
  kernel     the lot (mount -t udf) -- skipped where the kernel has no udf driver

Each flavour compares discfs-dump --tree udf (and a `discfs mount --tree udf`
walk) with every reader that can read it; a reader that cannot is a skipped
subtest with its reason.  Where readers disagree the test names the
authoritative one in a comment.

Run: /usr/bin/python3 -m testlib -v test_udf   (from tests/py)
"""

import hashlib
import os
import subprocess
import unittest

from testlib import dump, env, images, mount, sources, trees, udf

M = env.ModuleFixture("discfs-udf-", binaries=("discfs-dump",), pycdlib=True,
                      tools=("genisoimage", "mkudffs"))
setUpModule, tearDownModule = M.set_up, M.tear_down


def source(kind):
    """full: everything; plain: no symlinks/hard links/non-ASCII names (for udfclient)."""
    def make():
        root = os.path.join(M.path, "src-" + kind)
        if kind == "full":
            return sources.build_udf_tree(root)
        return sources.build_udf_tree(root, unicode=False, links=False)
    return M.cached(("src", kind), make)


class UdfChecks:
    """Shared checks.  A flavour sets cls.image in make() and may override
    readers() (name -> (callable returning {path: Rec}, fields)); fixture is the module
    fixture holding its work files and shared results."""

    fixture = M
    tree_arg = "udf"
    auto_tree = "udf"           # what --tree auto must show (a tree name for dump)
    symlinks = ()               # paths that are symlinks (libudfread shows them as files)
    hard_link_groups = ()

    @classmethod
    def setUpClass(cls):
        cls.make()

    @classmethod
    def dumped(cls):
        if "_dump" not in cls.__dict__:
            cls._dump = dump.dump(cls.image, tree=cls.tree_arg)
        return cls._dump

    # -- references ---------------------------------------------------------------

    def readers(self):
        work = os.path.join(self.fixture.path, "ref-" + type(self).__name__)
        return {
            "pycdlib": (lambda: udf.pycdlib_udf_tree(self.image),
                        ("type", "size", "sha256", "target", "mtime", "mode", "uid", "gid")),
            "udfread": (lambda: {p: r for p, r in
                                 udf.udfread_tree(self.image, self.fixture.path).items()
                                 if p not in self.symlinks},
                        ("type", "size", "sha256")),
            "7-Zip": (lambda: {p: r for p, r in udf.sevenzip_tree(self.image, work + "-7z").items()
                               if p not in self.symlinks},
                      ("type", "size", "sha256", "mtime")),
            "udfclient": (lambda: udf.udfclient_tree(self.image, work + "-udfclient")[0],
                          ("type", "size", "sha256", "mode", "uid", "gid")),
            "kernel": (lambda: udf.kernel_tree(self.image, work + "-kernel"),
                       ("type", "mode", "uid", "gid", "size", "mtime", "target", "sha256")),
        }

    def reference(self, name):
        def make():
            read, fields = self.readers()[name]
            try:
                return read(), fields, None
            except unittest.SkipTest as e:
                return None, fields, str(e)
        ref, fields, why = self.fixture.cached((type(self).__name__, name), make)
        if why:
            self.skipTest(f"{name}: {why}")
        return ref, fields

    def compare(self, name, actual, what, subset_ok=False):
        ref, fields = self.reference(name)
        # Symlinks: readers that know no symlinks left them out (udfclient's `mget`
        # writes a symlink as a regular file).
        if name in ("udfread", "7-Zip", "udfclient"):
            ref = {p: r for p, r in ref.items() if p not in self.symlinks}
            actual = {p: r for p, r in actual.items() if p not in self.symlinks}
        if name == "udfclient":
            # udfclient reads and writes 8-bit names only (others come out
            # mangled as '_#XXXX'), and "/" is the extraction directory itself:
            # compare the ASCII paths below the root.
            ref = {p: r for p, r in ref.items() if p != "/" and p.isascii() and "#" not in p}
            actual = {p: r for p, r in actual.items() if p != "/" and p.isascii()}
        lines = trees.diff(ref, actual, fields=fields, subset=subset_ok)
        if lines:
            self.fail(f"{what} differs from {name}:\n  " + "\n  ".join(lines))

    # -- discfs-dump ----------------------------------------------------------------

    def test_dump_walk_order(self):
        probs = dump.walk_order_problems(self.dumped().raw)
        self.assertFalse(probs, "\n".join(probs[:20]))

    def test_dump_no_errors(self):
        errs = {p: r.error for p, r in self.dumped().records.items() if r.error}
        self.assertFalse(errs, f"entries with errors: {dict(list(errs.items())[:10])}")

    def test_dump_vs_pycdlib(self):
        self.compare("pycdlib", self.dumped().records, "discfs-dump --tree udf")

    def test_dump_vs_udfread(self):
        self.compare("udfread", self.dumped().records, "discfs-dump --tree udf")

    def test_dump_vs_7zip(self):
        self.compare("7-Zip", self.dumped().records, "discfs-dump --tree udf")

    def test_dump_vs_udfclient(self):
        self.compare("udfclient", self.dumped().records, "discfs-dump --tree udf")

    def test_dump_vs_kernel(self):
        self.compare("kernel", self.dumped().records, "discfs-dump --tree udf")

    def test_dump_inode_numbers(self):
        d = self.dumped().records
        self.assertFalse([p for p, r in d.items() if r.ino is None], "records without ino")
        probs = trees.inode_problems(d, self.hard_link_groups)
        self.assertFalse(probs, "\n".join(probs[:20]))

    def test_dump_auto_tree(self):
        auto = dump.dump(self.image, tree="auto", data=False)
        want = dump.dump(self.image, tree=self.auto_tree, data=False)
        self.assertEqual(list(auto.raw), list(want.raw),
                         f"--tree auto must show the {self.auto_tree} tree")

    def test_dump_no_data(self):
        nd = dump.dump(self.image, tree=self.tree_arg, data=False)
        self.assertEqual(list(nd.raw), list(self.dumped().raw))
        self.assertFalse([p for p, o in nd.raw.items() if "sha256" in o])

    # -- the FUSE mount ---------------------------------------------------------------

    def mounted_walk(self, how):
        def make():
            mnt = self.fixture.sub("mnt-%s-%s" % (type(self).__name__, how))
            if how == "tree":
                m = mount.Mount(self.image, mnt, tree="udf")
            elif how == "option":
                m = mount.Mount(self.image, mnt, options=["tree=udf"])
            else:
                m = mount.Mount(self.image, mnt, tree="auto")
            with m:
                got = m.walk()
                links = {p: os.readlink(os.path.join(mnt, p.lstrip("/")))
                         for p, r in got.items() if r.type == "lnk"}
            return got, links
        return self.fixture.cached((type(self).__name__, "mount", how), make)

    def test_mount_same_as_dump(self):
        mount.require_fuse(self)
        got, links = self.mounted_walk("tree")
        d = self.dumped().records
        lines = trees.diff(d, got, fields=("type", "mode", "uid", "gid", "size", "mtime",
                                           "target", "sha256"))
        if lines:
            self.fail("the mount differs from discfs-dump:\n  " + "\n  ".join(lines))
        for p, t in links.items():
            self.assertEqual(t, d[p].target, f"readlink {p}")

    def test_mount_vs_readers(self):
        mount.require_fuse(self)
        got, _ = self.mounted_walk("tree")
        tried = []
        for name in ("pycdlib", "udfread", "7-Zip", "udfclient"):
            with self.subTest(reader=name):
                self.compare(name, got, "the mounted tree")
                tried.append(name)

    def test_mount_option_form(self):
        mount.require_fuse(self)
        a, _ = self.mounted_walk("tree")
        b, _ = self.mounted_walk("option")
        self.assertEqual(sorted(a), sorted(b), "-o tree=udf must show what --tree udf shows")

    def test_mount_hard_links_share_inode(self):
        if not self.hard_link_groups:
            self.skipTest("no hard links in this image")
        mount.require_fuse(self)
        got, _ = self.mounted_walk("tree")
        # st_nlink is the file entry's File Link Count, as pycdlib reads it (the kernel's
        # udf driver shows that count too).  pycdlib 1.x records 1 for the FE its
        # add_hard_link shares, so the group size is not the reference.
        ref, _ = self.reference("pycdlib")
        for g in self.hard_link_groups:
            self.assertEqual(len({got[p].ino for p in g}), 1, f"st_ino of hard links {g}")
            self.assertEqual({got[p].nlink for p in g}, {ref[g[0]].nlink}, f"st_nlink of {g}")


# ---------------------------------------------------------------------------
# Flavours
# ---------------------------------------------------------------------------

class PycdlibUdf260(UdfChecks, unittest.TestCase):
    """pycdlib UDF 2.60 (ISO 9660 tree alongside): symlinks, a hard link, big names."""
    symlinks = ("/links/rel", "/links/up")
    hard_link_groups = (("/links/hard", "/links/target.txt"),)

    @classmethod
    def make(cls):
        cls.image = os.path.join(M.path, "pycdlib260.iso")
        images.make_pycdlib_udf(cls.image, source("full").root)

    def test_names_and_content_from_source(self):
        # pycdlib records its own times/permissions; names, content and targets
        # are the source's.
        src = source("full")
        d = self.dumped().records
        lines = trees.diff(src.tree, d, fields=("type", "size", "sha256", "target"))
        if lines:
            self.fail("against the source tree:\n  " + "\n  ".join(lines))

    def test_auto_prefers_udf_over_plain_iso9660(self):
        auto = dump.dump(self.image, tree="auto", data=False).records
        self.assertIn("/" + sources.UNICODE_NAME, auto, "--tree auto must show the UDF names")


class GenisoimageUdf102(UdfChecks, unittest.TestCase):
    """genisoimage -udf -R -J: UDF 1.02 bridge next to Rock Ridge and Joliet."""
    auto_tree = "rockridge"      # Rock Ridge first, then UDF

    @classmethod
    def make(cls):
        cls.image = os.path.join(M.path, "genudf.iso")
        images.make_genisoimage_udf(cls.image, source("full").root)
        # genisoimage -udf writes symlinks as empty files (7-Zip and pycdlib agree).

    def readers(self):
        r = super().readers()
        # 7-Zip's mtimes for dates past 2038 are one day late (1999 is right):
        # pycdlib decodes the timestamp fields as recorded and is the reference
        # for mtime; 7-Zip stays the reference for names, sizes and content.
        make7, _ = r["7-Zip"]
        r["7-Zip"] = (make7, ("type", "size", "sha256"))
        return r

    def test_content_from_source(self):
        src = source("full")
        d = self.dumped().records
        want = {p: r for p, r in src.tree.items()
                if r.type == "reg" and len(os.path.basename(p)) < 100}
        lines = trees.diff(want, d, fields=("type", "size", "sha256"), subset=True)
        if lines:
            self.fail("against the source tree:\n  " + "\n  ".join(lines))


class WindowsStyleHybrid(UdfChecks, unittest.TestCase):
    """ISO 9660 holds a README stub, UDF the real tree (like Windows install discs)."""
    symlinks = ("/links/rel", "/links/up")
    hard_link_groups = (("/links/hard", "/links/target.txt"),)

    @classmethod
    def make(cls):
        cls.image = os.path.join(M.path, "winhybrid.iso")
        cls.stub = images.make_pycdlib_udf(cls.image, source("full").root, iso_stub_only=True)

    def test_iso9660_tree_is_the_stub(self):
        d = dump.dump(self.image, tree="iso9660").records
        self.assertEqual(sorted(d), ["/", "/README.TXT"])
        self.assertEqual(d["/README.TXT"].sha256, hashlib.sha256(self.stub).hexdigest())

    def test_auto_shows_udf(self):
        auto = dump.dump(self.image, tree="auto").records
        self.assertIn("/sizes/size_1048583.bin", auto)
        self.assertNotIn("/README.TXT", auto)

    def test_mount_auto_shows_udf(self):
        mount.require_fuse(self)
        got, _ = self.mounted_walk("auto")
        self.compare("pycdlib", got, "discfs mount --tree auto")


class UdfclientFlavour(UdfChecks):
    """mkudffs MEDIA REV, filled by udfclient (a UDF-only image)."""
    media = rev = None

    @classmethod
    def make(cls):
        if not env.is_root():
            raise unittest.SkipTest("udfclient images need root (owners)")
        env.require_tools("udfclient")
        cls.image = os.path.join(M.path, "udfclient-%s-%s.udf" % (cls.media, cls.rev))
        images.make_udfclient(cls.image, cls.media, cls.rev, source("plain").root)

    def test_content_from_source(self):
        src = source("plain")
        d = self.dumped().records
        # udfclient keeps names, content, permission bits (not setuid) and owners.
        want = {p: r for p, r in src.tree.items() if p != "/"}   # mkudffs makes the root
        d = {p: r for p, r in d.items() if p != "/"}
        lines = trees.diff(want, d, fields=("type", "size", "sha256", "uid", "gid"))
        if lines:
            self.fail("against the source tree:\n  " + "\n  ".join(lines))

    def test_mount_auto_is_udf(self):
        mount.require_fuse(self)
        a, _ = self.mounted_walk("auto")
        b, _ = self.mounted_walk("tree")
        self.assertEqual(sorted(a), sorted(b), "a UDF-only image: auto mounts UDF")


def _flavour(media, rev):
    name = "Mkudffs_%s_%s" % (media, rev[2:])
    cls = type(name, (UdfclientFlavour, unittest.TestCase),
               {"media": media, "rev": rev,
                "__doc__": f"mkudffs --media-type={media} --udfrev={rev} + udfclient"})
    globals()[name] = cls


# One flavour per layout discfs reads differently (each costs ~15 s: udfclient is
# slow to write and to extract).  hd 0x0150 wrote the same structures as hd 0x0102
# (file entries, long_ad and inline data, one type 1 partition map) and dvdram 0x0201
# the same as hd 0x0201 (extended file entries), so they are not repeated.
for _m, _r in (("hd", "0x0102"),           # file entries
               ("hd", "0x0201"),           # extended file entries
               ("dvdrw", "0x0201"),        # sparable partition
               ("cdrw", "0x0150")):        # sparable partition, UDF 1.50
    _flavour(_m, _r)


class EmptyMkudffs(UdfChecks):
    """mkudffs 2.50/2.60 (BD-R: metadata partition and VAT): an empty root.
    udfclient cannot write to these, 7-Zip and libudfread cannot read them."""
    media = rev = None

    @classmethod
    def make(cls):
        cls.image = os.path.join(M.path, "empty-%s-%s.udf" % (cls.media, cls.rev))
        images.make_mkudffs(cls.image, cls.media, cls.rev)

    def test_root_only(self):
        d = self.dumped().records
        self.assertEqual(sorted(d), ["/"], "an empty file system shows its root only")


for _m, _r in (("bdr", "0x0250"), ("bdr", "0x0260"), ("cdr", "0x0150")):
    _n = "EmptyMkudffs_%s_%s" % (_m, _r[2:])
    globals()[_n] = type(_n, (EmptyMkudffs, unittest.TestCase), {"media": _m, "rev": _r})


class Latin1Names(unittest.TestCase):
    """CS0 in 8-bit compression (id 8) is Latin-1: each byte is the code point U+0000..U+00FF,
    as the kernel's udf driver, 7-Zip and udfinfo show it.  udfclient records a local name's
    bytes as they are (8-bit CS0 when it can), so a UTF-8 "caf\u00e9.txt" (c a f C3 A9) shows
    as "caf\u00c3\u00a9.txt" and a Latin-1 "na\\xefve" as "na\u00efve"; mkudffs --u8 records
    Latin-1 identifiers the same way (udfinfo shows label=Log\u00e9), shown by `discfs info`."""

    NAMES = {b"caf\xc3\xa9.txt": ("caf\u00c3\u00a9.txt", b"one\n"),
             b"na\xefve": ("na\u00efve", b"two\n")}

    def test_names_on_a_mount_as_7zip_shows_them(self):
        mount.require_fuse(self)
        env.require_tools("udfclient", "mkudffs", "7z")
        work = M.sub("latin1")
        src = os.path.join(work, "src")
        os.makedirs(os.path.join(src, "latin"))
        for raw, (_, data) in self.NAMES.items():
            with open(os.path.join(os.fsencode(src), b"latin", raw), "wb") as f:
                f.write(data)
        img = images.make_mkudffs(os.path.join(work, "latin1.udf"), "hd", "0x0201", blocks=8192)
        udf.udfclient_session(img, src, ["mput latin"])
        with open(img, "rb") as f:
            disc = f.read()
        for raw in self.NAMES:
            self.assertEqual(disc.count(b"\x08" + raw), 1, f"{raw!r} is not 8-bit CS0 on disc")
        want = {"/latin/" + shown: data for shown, data in self.NAMES.values()}
        ref = udf.sevenzip_tree(img, os.path.join(work, "7z"))
        self.assertLessEqual(set(want), set(ref), "7-Zip shows other names")
        mnt = os.path.join(work, "mnt")
        with mount.Mount(img, mnt, tree="udf"):
            shown = os.listdir(os.path.join(mnt, "latin"))
            self.assertEqual(sorted(shown), sorted(n for n, _ in self.NAMES.values()))
            for path, data in want.items():
                p = subprocess.run(["cat", mnt + path], capture_output=True, timeout=60)
                self.assertEqual((p.returncode, p.stdout), (0, data), path)

    def test_volume_identifiers_in_info(self):
        env.require_binary(env.discfs_bin(), "discfs")
        img = os.path.join(M.sub("latin1-vid"), "vid.udf")
        env.run(["mkudffs", "--u8", "--media-type=hd", "--udfrev=0x0201", "--blocksize=2048",
                 b"--vid=Vol\xe9", b"--lvid=Log\xe9", img, "8192"])
        with open(img, "rb") as f:
            disc = f.read()
        self.assertGreater(disc.count(b"\x08Vol\xe9"), 0, "the volume id is not 8-bit CS0")
        out = env.txt(env.run([env.discfs_bin(), "info", img]).stdout)
        # `info` shows the logical volume identifier (udfinfo's label) as the volume id.
        self.assertRegex(out, r"(?m)^volume id: +Log\u00e9$")


class BigFile(unittest.TestCase):
    """A sparse 4500 MiB file in genisoimage -udf -allow-limited-size (UDF keeps
    the whole size; the ISO 9660 record cannot)."""

    @classmethod
    def setUpClass(cls):
        cls.src = os.path.join(M.path, "src-big")
        cls.big, cls.marks = sources.big_file_tree(cls.src, "after.txt", b"after the big file\n")
        cls.size = os.path.getsize(cls.big)
        cls.image = images.make_genisoimage_big(os.path.join(M.path, "big-udf.iso"), cls.src)

    def test_size(self):
        d = dump.dump(self.image, tree="udf", data=False).records
        self.assertEqual(d["/big.bin"].size, self.size)
        self.assertEqual(d["/after.txt"].size, len(b"after the big file\n"))

    def test_marks_through_mount(self):
        mount.require_fuse(self)
        mnt = M.sub("mnt-big")
        with mount.Mount(self.image, mnt, tree="udf"):
            p = os.path.join(mnt, "big.bin")
            self.assertEqual(os.path.getsize(p), self.size)
            fd = os.open(p, os.O_RDONLY)
            try:
                for off, data in sorted(self.marks.items()):
                    self.assertEqual(os.pread(fd, len(data), off), data, f"bytes at {off}")
                    if off:
                        self.assertEqual(os.pread(fd, 1, off - 1), b"\0", f"byte {off - 1}")
            finally:
                os.close(fd)
            with open(os.path.join(mnt, "after.txt"), "rb") as f:
                self.assertEqual(f.read(), b"after the big file\n")


if __name__ == "__main__":
    unittest.main()
