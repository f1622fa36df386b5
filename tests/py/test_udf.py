"""UDF reading: discfs-dump and FUSE mounts against independent UDF readers.

Images are written at test time by writers that are not discfs (pycdlib UDF
2.60, genisoimage -udf (UDF 1.02 bridge), mkudffs of several revisions and
media types filled by udfclient) and read back by independent readers
(udf_images.READERS says what each is trusted for):

  pycdlib    names, types, sizes, content, symlink targets, mtimes, permissions
  udfread    names, dir/reg, sizes, content (libudfread, tests/tools/udfread_dump.c)
  7-Zip      names, dir/file, sizes, content, mtimes (`7z -tudf`)
  udfclient  names, sizes, content, permissions, uid/gid (`mget` extraction)
  kernel     the lot (mount -t udf) -- skipped where the kernel has no udf driver

Each flavour compares discfs-dump --tree udf (and a `discfs mount --tree udf`
walk) with every reader that can read it; a reader that cannot is a skipped
subtest with its reason.  Where readers disagree the test names the
authoritative one in a comment.

Run: /usr/bin/python3 -m discfs_testlib -v test_udf   (from tests/py)
"""

import hashlib
import os
import sys
import unittest

import discfs_testlib as L
import udf_images as U

_tmp = None
_cache = {}


def setUpModule():
    global _tmp
    L.require_binary(L.discfs_dump_bin(), "discfs-dump")
    L.require_pycdlib()
    L.require_tools("genisoimage", "mkudffs")
    _tmp = L.TempDir(prefix="discfs-udf-")


def tearDownModule():
    if _tmp is not None:
        _tmp.cleanup()


def cached(key, make):
    return L.memo(_cache, key, make)



def source(kind):
    """full: everything; plain: no symlinks/hard links/non-ASCII names (for udfclient)."""
    def make():
        root = os.path.join(_tmp.path, "src-" + kind)
        if kind == "full":
            return U.build_source(root)
        return U.build_source(root, unicode=False, links=False)
    return cached(("src", kind), make)


def fuse_or_skip(test):
    why = L.fuse_unavailable_reason()
    if why:
        test.skipTest(why)
    L.require_binary(L.discfs_bin(), "discfs")


def walk_order_problems(raw):
    paths = list(raw)
    if not paths or paths[0] != "/":
        return ["the first record must be the root"]
    probs, seen, closed, stack = [], {"/"}, set(), ["/"]
    for p in paths[1:]:
        parent = p.rsplit("/", 1)[0] or "/"
        if parent not in seen:
            probs.append(f"{p!r} printed before its directory")
        while stack and stack[-1] != parent:
            closed.add(stack.pop())
        if parent in closed:
            probs.append(f"{p!r} printed after leaving {parent!r}")
        if raw[p].get("type") == "dir":
            stack.append(p)
        seen.add(p)
    return probs


class UdfChecks:
    """Shared checks.  A flavour sets cls.image in make() and may override
    readers() (name -> (callable returning {path: Rec}, fields))."""

    tree_arg = "udf"
    auto_tree = "udf"           # what --tree auto must show (a tree name for dump)
    symlinks = ()               # paths that are symlinks (libudfread shows them as files)
    hard_link_groups = ()

    @classmethod
    def setUpClass(cls):
        cls.make()
        cls._refs = {}

    @classmethod
    def dumped(cls):
        if "_dump" not in cls.__dict__:
            cls._dump = L.dump(cls.image, tree=cls.tree_arg)
        return cls._dump

    # -- references ---------------------------------------------------------------

    def readers(self):
        work = os.path.join(_tmp.path, "ref-" + type(self).__name__)
        return {
            "pycdlib": (lambda: U.pycdlib_udf_tree(self.image),
                        ("type", "size", "sha256", "target", "mtime", "mode", "uid", "gid")),
            "udfread": (lambda: {p: r for p, r in U.udfread_tree(self.image, _tmp.path).items()
                                 if p not in self.symlinks},
                        ("type", "size", "sha256")),
            "7-Zip": (lambda: {p: r for p, r in U.sevenzip_tree(self.image, work + "-7z").items()
                               if p not in self.symlinks},
                      ("type", "size", "sha256", "mtime")),
            "udfclient": (lambda: U.udfclient_tree(self.image, work + "-udfclient")[0],
                          ("type", "size", "sha256", "mode", "uid", "gid")),
            "kernel": (lambda: U.kernel_tree(self.image, work + "-kernel"),
                       ("type", "mode", "uid", "gid", "size", "mtime", "target", "sha256")),
        }

    def reference(self, name):
        key = (type(self).__name__, name)
        if key not in _cache:
            make, fields = self.readers()[name]
            try:
                _cache[key] = (make(), fields, None)
            except unittest.SkipTest as e:
                _cache[key] = (None, fields, str(e))
        ref, fields, why = _cache[key]
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
        lines = L.diff_trees(ref, actual, fields=fields, subset=subset_ok)
        if lines:
            self.fail(f"{what} differs from {name}:\n  " + "\n  ".join(lines))

    # -- discfs-dump ----------------------------------------------------------------

    def test_dump_walk_order(self):
        probs = walk_order_problems(self.dumped().raw)
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
        probs = L.inode_problems(d, self.hard_link_groups)
        self.assertFalse(probs, "\n".join(probs[:20]))

    def test_dump_auto_tree(self):
        auto = L.dump(self.image, tree="auto", data=False)
        want = L.dump(self.image, tree=self.auto_tree, data=False)
        self.assertEqual(list(auto.raw), list(want.raw),
                         f"--tree auto must show the {self.auto_tree} tree")

    def test_dump_no_data(self):
        nd = L.dump(self.image, tree=self.tree_arg, data=False)
        self.assertEqual(list(nd.raw), list(self.dumped().raw))
        self.assertFalse([p for p, o in nd.raw.items() if "sha256" in o])

    # -- the FUSE mount ---------------------------------------------------------------

    def mounted_walk(self, how):
        key = (type(self).__name__, "mount", how)
        if key not in _cache:
            mnt = _tmp.sub("mnt-%s-%s" % (type(self).__name__, how))
            if how == "tree":
                m = L.Mount(self.image, mnt, tree="udf")
            elif how == "option":
                m = L.Mount(self.image, mnt, options=["tree=udf"])
            else:
                m = L.Mount(self.image, mnt, tree="auto")
            with m:
                got = L.walk(mnt)
                links = {p: os.readlink(os.path.join(mnt, p.lstrip("/")))
                         for p, r in got.items() if r.type == "lnk"}
            _cache[key] = (got, links)
        return _cache[key]

    def test_mount_same_as_dump(self):
        fuse_or_skip(self)
        got, links = self.mounted_walk("tree")
        d = self.dumped().records
        lines = L.diff_trees(d, got, fields=("type", "mode", "uid", "gid", "size", "mtime",
                                             "target", "sha256"))
        if lines:
            self.fail("the mount differs from discfs-dump:\n  " + "\n  ".join(lines))
        for p, t in links.items():
            self.assertEqual(t, d[p].target, f"readlink {p}")

    def test_mount_vs_readers(self):
        fuse_or_skip(self)
        got, _ = self.mounted_walk("tree")
        tried = []
        for name in ("pycdlib", "udfread", "7-Zip", "udfclient"):
            with self.subTest(reader=name):
                self.compare(name, got, "the mounted tree")
                tried.append(name)

    def test_mount_option_form(self):
        fuse_or_skip(self)
        a, _ = self.mounted_walk("tree")
        b, _ = self.mounted_walk("option")
        self.assertEqual(sorted(a), sorted(b), "-o tree=udf must show what --tree udf shows")

    def test_mount_hard_links_share_inode(self):
        if not self.hard_link_groups:
            self.skipTest("no hard links in this image")
        fuse_or_skip(self)
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
        cls.image = os.path.join(_tmp.path, "pycdlib260.iso")
        U.make_pycdlib_udf(cls.image, source("full").root)

    def test_names_and_content_from_source(self):
        # pycdlib records its own times/permissions; names, content and targets
        # are the source's.
        src = source("full")
        d = self.dumped().records
        lines = L.diff_trees(src.tree, d, fields=("type", "size", "sha256", "target"))
        if lines:
            self.fail("against the source tree:\n  " + "\n  ".join(lines))

    def test_auto_prefers_udf_over_plain_iso9660(self):
        auto = L.dump(self.image, tree="auto", data=False).records
        self.assertIn("/" + U.UNICODE_NAME, auto, "--tree auto must show the UDF names")


class GenisoimageUdf102(UdfChecks, unittest.TestCase):
    """genisoimage -udf -R -J: UDF 1.02 bridge next to Rock Ridge and Joliet."""
    auto_tree = "rockridge"      # Rock Ridge first, then UDF

    @classmethod
    def make(cls):
        cls.image = os.path.join(_tmp.path, "genudf.iso")
        U.make_genisoimage_udf(cls.image, source("full").root)
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
        lines = L.diff_trees(want, d, fields=("type", "size", "sha256"), subset=True)
        if lines:
            self.fail("against the source tree:\n  " + "\n  ".join(lines))


class WindowsStyleHybrid(UdfChecks, unittest.TestCase):
    """ISO 9660 holds a README stub, UDF the real tree (like Windows install discs)."""
    symlinks = ("/links/rel", "/links/up")
    hard_link_groups = (("/links/hard", "/links/target.txt"),)

    @classmethod
    def make(cls):
        cls.image = os.path.join(_tmp.path, "winhybrid.iso")
        cls.stub = U.make_pycdlib_udf(cls.image, source("full").root, iso_stub_only=True)

    def test_iso9660_tree_is_the_stub(self):
        d = L.dump(self.image, tree="iso9660").records
        self.assertEqual(sorted(d), ["/", "/README.TXT"])
        self.assertEqual(d["/README.TXT"].sha256, hashlib.sha256(self.stub).hexdigest())

    def test_auto_shows_udf(self):
        auto = L.dump(self.image, tree="auto").records
        self.assertIn("/sizes/size_1048583.bin", auto)
        self.assertNotIn("/README.TXT", auto)

    def test_mount_auto_shows_udf(self):
        fuse_or_skip(self)
        got, _ = self.mounted_walk("auto")
        self.compare("pycdlib", got, "discfs mount --tree auto")


class UdfclientFlavour(UdfChecks):
    """mkudffs MEDIA REV, filled by udfclient (a UDF-only image)."""
    media = rev = None

    @classmethod
    def make(cls):
        if not L.is_root():
            raise unittest.SkipTest("udfclient images need root (owners)")
        L.require_tools("udfclient")
        cls.image = os.path.join(_tmp.path, "udfclient-%s-%s.udf" % (cls.media, cls.rev))
        U.make_udfclient(cls.image, cls.media, cls.rev, source("plain").root)

    def test_content_from_source(self):
        src = source("plain")
        d = self.dumped().records
        # udfclient keeps names, content, permission bits (not setuid) and owners.
        want = {p: r for p, r in src.tree.items() if p != "/"}   # mkudffs makes the root
        d = {p: r for p, r in d.items() if p != "/"}
        lines = L.diff_trees(want, d, fields=("type", "size", "sha256", "uid", "gid"))
        if lines:
            self.fail("against the source tree:\n  " + "\n  ".join(lines))

    def test_mount_auto_is_udf(self):
        fuse_or_skip(self)
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
        cls.image = os.path.join(_tmp.path, "empty-%s-%s.udf" % (cls.media, cls.rev))
        U.make_mkudffs(cls.image, cls.media, cls.rev)

    def test_root_only(self):
        d = self.dumped().records
        self.assertEqual(sorted(d), ["/"], "an empty file system shows its root only")


for _m, _r in (("bdr", "0x0250"), ("bdr", "0x0260"), ("cdr", "0x0150")):
    _n = "EmptyMkudffs_%s_%s" % (_m, _r[2:])
    globals()[_n] = type(_n, (EmptyMkudffs, unittest.TestCase), {"media": _m, "rev": _r})


class BigFile(unittest.TestCase):
    """A sparse 4500 MiB file in genisoimage -udf -allow-limited-size (UDF keeps
    the whole size; the ISO 9660 record cannot)."""

    @classmethod
    def setUpClass(cls):
        cls.src = os.path.join(_tmp.path, "src-big")
        os.makedirs(cls.src)
        cls.big = os.path.join(cls.src, "big.bin")
        cls.marks = L.make_sparse_big_file(cls.big)
        with open(os.path.join(cls.src, "after.txt"), "wb") as f:
            f.write(b"after the big file\n")
        cls.size = os.path.getsize(cls.big)
        cls.image = U.make_genisoimage_big(os.path.join(_tmp.path, "big-udf.iso"), cls.src)

    def test_size(self):
        d = L.dump(self.image, tree="udf", data=False).records
        self.assertEqual(d["/big.bin"].size, self.size)
        self.assertEqual(d["/after.txt"].size, len(b"after the big file\n"))

    def test_marks_through_mount(self):
        fuse_or_skip(self)
        mnt = _tmp.sub("mnt-big")
        with L.Mount(self.image, mnt, tree="udf"):
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
    sys.exit(L.main(sys.argv[1:] + ["__main__"]))
