"""Disc images from other projects' test suites (libcdio, libarchive) against
independent readers, through discfs-dump and through a real FUSE mount.

The images live xz-compressed in the shared test data (MANIFEST.tsv names
their origin and the sha256 of each decompressed image).  They are
decompressed into a temporary directory and checked against the manifest.

Well-formed images: what discfs-dump prints and what the mount shows must
equal what independent readers extract -- paths, types, sizes, contents,
symlink targets, and modes/owners/mtimes where Rock Ridge records them.
Which reader is authoritative is decided per image (see IMAGES below):

  rr       Rock Ridge.  Metadata (mode, uid, gid, mtime, symlink targets,
           device numbers) from pycdlib, sizes and content from an
           `xorriso -osirrox on -extract / DIR` extraction (which also decodes
           zisofs); the two must agree on paths and types
           (readers.rock_ridge_reference).  Symlink targets come from
           libarchive (the library under bsdtar, loaded with ctypes from the
           system's libarchive.so): SL records with empty components or
           with ROOT components in the middle (old mkisofs writes ".///file"
           that way) are joined differently by every reader -- pycdlib 1.12
           makes "/file" of la-iso_rockridge's ".///file", xorriso makes
           "./file" of la-iso_rockridge_new's -- and libarchive's own tests
           pin the targets these images were made from (".///file",
           "/tmp//.." and "/tmp//../"), as Linux isofs reads them too.
           Without libarchive a target is compared only where pycdlib and
           the xorriso extraction agree on it.
           When pycdlib cannot read the image at all the extraction is the
           reference and `xorriso -find / -exec lsdl` adds what an extraction
           cannot carry: the owners and modes of symlinks.
  joliet   Joliet only.  pycdlib's Joliet tree (names, sizes, content,
           recording dates), cross-checked with the xorriso extraction
           (paths, sizes, content) and 7-Zip's listing (paths, sizes, dates).
  iso      Plain ISO 9660.  pycdlib's ISO 9660 tree with names shown as
           discfs promises (";1" and a trailing "." dropped, case kept),
           cross-checked with the xorriso extraction (and 7-Zip where it reads
           the ISO 9660 tree: 7-Zip opens a UDF bridge in preference, and
           `7z l -slt` says which format it read).
  iso-xorriso
           Plain ISO 9660 that pycdlib refuses (a directory record date with
           month 165): the xorriso extraction for paths, sizes and content,
           7-Zip for the dates.  The root's recording date is filler bytes
           (0xA5), so nobody is authoritative for the root's mtime.
  udf      UDF only (no ISO 9660 volume descriptors).  The UDF readers below.

UDF.  Whether an image holds UDF is read from its volume recognition sequence
(an NSR02/NSR03 descriptor from sector 16 on), not from discfs.  The UDF
tree is read by every independent UDF reader that can open the image, and at
least two of them must open it and agree on paths and on the fields they
share (else the test skips, naming who could not):
           pycdlib's UDF side (types, sizes, content, mtimes, permissions,
           owners where recorded; it needs an ISO 9660 PVD), 7-Zip
           (`7z l -slt -tudf` and `7z x -tudf`: sizes, content, mtimes) and
           libudfread (tests/tools/udfread_dump: sizes, content).
What `--tree auto` (the dump and the mount) must show follows the product
rule: Rock Ridge, else UDF, else Joliet, else ISO 9660.  So an ISO 9660 or
Joliet image with a UDF bridge shows its UDF tree by default, and its own
kind's tree through `--tree iso9660|joliet`; an image with Rock Ridge and UDF
shows Rock Ridge by default and the UDF tree through `--tree udf`.

Malformed and fuzzed images (and images of kinds not listed in IMAGES) must
never crash, hang or make a sanitizer report, whether dumped or mounted;
discfs refuses those that upstream.REFUSED names, with the exit code given there,
and opens the others.  If it mounts one, the mount point itself must work and
every name must be sane.

Run: /usr/bin/python3 -m testlib -v test_upstream   (from tests/py)
"""

import os
import re
import unittest

from testlib import dump, env, hostile, isolayout, mount, readers, sanitizers, trees, udf
from testlib import probe as probe_
from testlib import upstream

# Per image: how it is judged (see the module docstring) and why.
IMAGES = {
    "cdio-bad-dir.iso": ("malformed", "libcdio: a directory record points at LBA 23, where "
                                      "no directory starts; xorriso and pycdlib refuse it"),
    "cdio-cdimage-u2.iso": ("iso", "plain ISO 9660 (README.TXT) + UDF bridge "
                                   "(README_UDF.txt): auto shows UDF"),
    "cdio-copying-rr.iso": ("rr", "Rock Ridge with device nodes"),
    "cdio-copying.iso": ("iso", "plain ISO 9660 level 1"),
    "cdio-deep-directory.iso": ("rr", "deep directories, Rock Ridge"),
    "cdio-joliet.iso": ("joliet", "Joliet without Rock Ridge"),
    "cdio-malformed.iso": ("malformed", "libcdio: damaged PVD (block size 12336)"),
    "cdio-malformed2.iso": ("malformed", "libcdio: damaged directory records"),
    "cdio-multi_extent_8k.iso": ("rr", "a file in several 8 KiB extents"),
    "cdio-multi_extent_8k_emul_toc_padded.iso": ("rr", "multi-extent, emulated TOC, padded"),
    "cdio-multi_extent_8k_joliet.iso": ("joliet", "multi-extent file, Joliet only"),
    "cdio-test-udf1.iso": ("rr", "ISO 9660 (Rock Ridge + Joliet) + UDF bridge: auto shows "
                                 "Rock Ridge"),
    "cdio-udf102.iso": ("udf", "UDF 1.02 without ISO 9660 descriptors, a non-ASCII name"),
    "la-fuzz_1.iso": ("rr", "the seed image libarchive's fuzz test mutates; itself "
                            "well-formed (Rock Ridge + Joliet; pycdlib and xorriso agree)"),
    "la-iso.iso": ("iso", "an empty plain ISO 9660 image"),
    "la-iso_2.iso": ("iso-xorriso", "plain ISO 9660, root date is 0xA5 filler"),
    "la-iso_3.iso": ("iso-xorriso", "plain ISO 9660, root date is 0xA5 filler"),
    "la-iso_joliet.iso": ("rr", "Rock Ridge + Joliet"),
    "la-iso_joliet_by_nero.iso": ("joliet", "Joliet written by Nero"),
    "la-iso_joliet_long.iso": ("rr", "long Joliet names; pycdlib refuses the image "
                                     "(inconsistent Rock Ridge versions)"),
    "la-iso_joliet_rockridge.iso": ("rr", "Rock Ridge + Joliet"),
    "la-iso_joliet_utf16be_overflow.iso": ("malformed", "Joliet names that overflow"),
    "la-iso_multi_extent.iso": ("rr", "multi-extent file, Rock Ridge + Joliet"),
    "la-iso_rockridge.iso": ("rr", "Rock Ridge, symlinks with empty SL components"),
    "la-iso_rockridge_ce.iso": ("rr", "Rock Ridge continuation areas; pycdlib refuses the "
                                      "image (inconsistent Rock Ridge versions)"),
    "la-iso_rockridge_ce_loop.iso": ("malformed", "a CE loop (xorriso hangs on it)"),
    "la-iso_rockridge_new.iso": ("rr", "Rock Ridge 1.12 (TF with more fields)"),
    "la-iso_rockridge_rr_moved.iso": ("rr", "deep directories relocated to rr_moved"),
    "la-iso_rockridge_zf_overflow.iso": ("malformed", "a ZF entry that overflows"),
    "la-iso_xorriso.iso": ("rr", "written by xorriso"),
    "la-iso_zisofs.iso": ("rr", "zisofs-compressed files (pycdlib cannot parse ZF: the "
                                "extraction is the reference)"),
    "la-iso_zisofs_overflow.iso": ("malformed", "a zisofs header that overflows"),
}

RR_FIELDS = ("type", "size", "sha256", "target", "rdev", "mode", "uid", "gid", "mtime")
PLAIN_FIELDS = ("type", "size", "sha256", "mtime")

M = env.ModuleFixture("discfs-upstream-", binaries=("discfs-dump", "discfs"),
                      tools=("xz", "xorriso"))
tearDownModule = M.tear_down
_images = None
_refs = {}


def setUpModule():
    global _images
    upstream.require_data()
    M.set_up()
    _images = upstream.Images(M.sub("images"))


def image(xz_name):
    """Decompress one image (once) and check it against the manifest."""
    return _images.path(xz_name[:-3])


# ---------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------

def _extract(img, name):
    dest = os.path.join(M.path, "x-" + name)
    if not os.path.isdir(dest):
        readers.xorriso_extract(img, dest)
    return trees.walk(dest)


def _agree(a, b, what_a, what_b, img, fields=("type",)):
    """Raise if two readers disagree on paths or on fields (then neither is a reference)."""
    a, b = trees.without_rr_moved(a), trees.without_rr_moved(b)
    if set(a) != set(b):
        raise RuntimeError(f"{what_a} and {what_b} disagree on the paths of {img}: only "
                           f"{what_a}: {sorted(set(a) - set(b))[:8]}, only {what_b}: "
                           f"{sorted(set(b) - set(a))[:8]}")
    for p in a:
        for f in fields:
            va, vb = getattr(a[p], f), getattr(b[p], f)
            if va is not None and vb is not None and va != vb:
                raise RuntimeError(f"{what_a} ({va!r}) and {what_b} ({vb!r}) disagree on the "
                                   f"{f} of {p} in {img}")


def rr_reference(img, name):
    try:
        ref, ext = readers.rock_ridge_reference(img, M.path, name)
        pyc = True
    except Exception as e:                   # pycdlib refuses the whole image
        if "Rock Ridge" not in str(e) and "SUSP" not in str(e):
            raise
        ext = _extract(img, name)
        ref = readers.extraction_reference(ext)
        pyc = False
    if not pyc or any(r.type == "lnk" and r.uid is None for r in ref.values()):
        # What an extraction cannot carry over: symlink owners and modes, link counts.
        lsdl = readers.xorriso_lsdl(img)
        for p, r in list(ref.items()):
            if p in lsdl and r.type != "dir":
                kind, perm, nlink, uid, gid = lsdl[p]
                if r.type == "lnk":
                    ref[p] = r._replace(mode=perm, uid=uid, gid=gid)
    targets = readers.libarchive_symlinks(img)
    for p, r in list(ref.items()):
        if r.type != "lnk":
            continue
        if targets is not None and p in targets:
            t = targets[p]
        elif pyc and p in ext and ext[p].target != r.target:
            # No libarchive, and pycdlib and xorriso read the SL record differently:
            # nobody to trust, so the target is not compared.
            ref[p] = r._replace(target=None, size=None)
            continue
        elif p in ext:
            t = ext[p].target
        else:
            continue
        ref[p] = r._replace(target=t, size=len(os.fsencode(t)))
        # Link counts are not compared (directories' st_nlink is not part of this test).
        ref[p] = ref[p]._replace(nlink=None, ino=None, atime=None, ctime=None)
    return trees.without_rr_moved(ref), RR_FIELDS


def joliet_reference(img, name):
    ref = readers.pycdlib_tree(img, "joliet")
    ext = _extract(img, name)
    _agree(ref, ext, "pycdlib (Joliet)", "xorriso", img, ("type", "size", "sha256"))
    if readers.sevenzip_format(img) == "Iso":
        sz = readers.sevenzip_listing(img)
        _agree(ref, sz, "pycdlib (Joliet)", "7-Zip", img, ("type", "size", "mtime"))
    return ref, PLAIN_FIELDS


def iso_reference(img, name):
    ref = readers.pycdlib_tree(img, "iso")
    ext = _extract(img, name)
    _agree(ref, ext, "pycdlib (ISO 9660)", "xorriso", img, ("type", "size", "sha256"))
    if readers.sevenzip_format(img) == "Iso":
        _agree(ref, readers.sevenzip_listing(img), "pycdlib (ISO 9660)", "7-Zip", img,
               ("type", "size", "mtime"))
    return ref, PLAIN_FIELDS


def iso_xorriso_reference(img, name):
    ext = _extract(img, name)
    if readers.sevenzip_format(img) != "Iso":
        raise AssertionError(f"{img}: 7-Zip reads it as {readers.sevenzip_format(img)}, not as ISO "
                             f"9660: no reference for the dates")
    sz = readers.sevenzip_listing(img)
    _agree(ext, sz, "xorriso", "7-Zip", img, ("type", "size"))
    ref = {}
    for p, r in ext.items():
        ref[p] = trees.Rec(type=r.type, size=r.size, sha256=r.sha256,
                           mtime=sz[p].mtime if p != "/" else None)
    return ref, PLAIN_FIELDS


def has_udf(img):
    """True when img's volume recognition sequence (sectors 16 on, ECMA-167 2/8.3)
    names an NSR02 or NSR03 descriptor: the image holds a UDF file system."""
    with open(img, "rb") as f:
        for sector in range(16, 16 + 64):
            f.seek(sector * 2048)
            d = f.read(7)
            if len(d) < 7 or d[1:6] not in (b"CD001", b"BEA01", b"NSR02", b"NSR03",
                                            b"TEA01", b"BOOT2", b"CDW02"):
                return False
            if d[1:6] in (b"NSR02", b"NSR03"):
                return True
    return False


# The independent UDF readers: name, how to read, the fields each reports reliably
# (testlib/udf.py, READERS, has the reasons).  pycdlib leaves unset owners (-1) out.
UDF_READERS = (
    ("pycdlib", lambda img, work: udf.pycdlib_udf_tree(img),
     ("type", "size", "sha256", "mtime", "mode", "uid", "gid", "target")),
    ("7-Zip", lambda img, work: udf.sevenzip_tree(img, os.path.join(work, "7z-udf")),
     ("type", "size", "sha256", "mtime")),
    ("libudfread", lambda img, work: udf.udfread_tree(img, work),
     ("type", "size", "sha256")),
)


def udf_reference(img, name):
    """The UDF tree as every independent reader that opens img reads it; at least two
    must open it, and they must agree on paths and on the fields they share."""
    work = M.sub("udf-" + name)
    got, missing = [], []
    for who, read, fields in UDF_READERS:
        try:
            got.append((who, read(img, work), fields))
        except unittest.SkipTest as e:          # udf.ReaderUnavailable: cannot open it
            missing.append(f"{who}: {e}")
    if len(got) < 2:
        raise unittest.SkipTest(f"{name}: fewer than two independent UDF readers open it "
                                f"({'; '.join(missing)})")
    for i, (wa, a, fa) in enumerate(got):
        for wb, b, fb in got[i + 1:]:
            _agree(a, b, wa, wb, img, tuple(f for f in fa if f in fb))
    fields = tuple(f for f in RR_FIELDS if any(f in fs for _, _, fs in got))
    ref = {}
    for p in got[0][1]:
        vals = {}
        for f in fields:
            for _, tree, fs in got:
                v = getattr(tree[p], f) if f in fs else None
                if v is not None:
                    vals[f] = v
                    break
        ref[p] = trees.Rec(**vals)
    return ref, fields


# What --tree calls each kind of tree.
TREE_ARG = {"rr": "rockridge", "joliet": "joliet", "iso": "iso9660", "iso-xorriso": "iso9660",
            "udf": "udf"}


def auto_view(xz_name):
    """The tree `--tree auto` must show: Rock Ridge, else UDF, else Joliet, else ISO 9660."""
    kind = IMAGES[xz_name[:-3]][0]
    if kind in ("rr", "udf"):
        return kind
    return "udf" if has_udf(image(xz_name)) else kind


def reference(xz_name, view=None):
    """(reference tree, fields) of one view of an image (default: its own kind's tree)."""
    kind = IMAGES[xz_name[:-3]][0]
    view = view or kind
    key = (xz_name, view)
    if key not in _refs:
        img = image(xz_name)
        name = xz_name[:-7]
        if view == "rr":
            _refs[key] = rr_reference(img, name)
        elif view == "joliet":
            _refs[key] = joliet_reference(img, name)
        elif view == "iso":
            _refs[key] = iso_reference(img, name)
        elif view == "iso-xorriso":
            _refs[key] = iso_xorriso_reference(img, name)
        elif view == "udf":
            _refs[key] = udf_reference(img, name)
        else:
            raise AssertionError(f"no reference for kind {view}")
    return _refs[key]


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

def max_depth(tree):
    return max((p.count("/") for p in tree if p != "/"), default=0)


# Deeper than this, a tree of a malformed image is taken for endless (discfs-dump
# itself stops descending at 1000 levels).
ENDLESS = 500


def dump_safety(test, d, what, code, depth_limit=ENDLESS):
    """discfs-dump ended with exit `code`, without a sanitizer report, printing only JSON
    objects (and log lines), sane paths each once, and no endless tree."""
    rep = d.sanitizer()
    test.assertIsNone(rep, f"{what}: sanitizer report from discfs-dump: {rep}\n{d.describe()}")
    test.assertEqual(d.returncode, code, f"{what}: discfs-dump exit code\n{d.describe()}")
    test.assertFalse(d.bad_lines, f"{what}: discfs-dump printed lines that are neither JSON "
                                  f"nor log lines: {d.bad_lines[:3]}")
    if d.returncode == 0:
        probs = hostile.dump_name_problems(d)
        if probs:
            test.fail(hostile.abbreviate(f"{what}: discfs-dump prints bad paths:\n  " +
                                         "\n  ".join(probs[:20])))
        depth = max(p.count("/") for p in d.raw)
        test.assertLessEqual(depth, depth_limit, f"{what}: discfs-dump shows paths {depth} "
                                                 f"levels deep (an endless tree?)")


def mount_safety(test, m, probe, tools, what):
    if "root_error" in probe:
        test.fail(f"{what}: `discfs mount` went live, but the mount point itself gives "
                  f"{probe['root_error']} (stat fails): a mount that cannot be used must be "
                  f"refused instead\n--- daemon log ---\n{m.stderr[-2000:]}")
    probs = hostile.name_problems(probe)
    for p, (rc, _, err) in sorted(tools["cat"].items()):
        if rc != 0 and "Input/output error" not in err:
            probs.append(f"{p!r}: cat fails, but not with EIO: {err.strip()!r}")
    for p, err in sorted(probe["listing_errors"].items()):
        if err != "EIO":
            probs.append(f"{p!r}: listing fails with {err}, not EIO")
    probs += probe_.tool_loop_reports(tools)
    if probs:
        test.fail(hostile.abbreviate(f"{what}: the mount:\n  " + "\n  ".join(probs[:30])))


def diff(test, ref, got, fields, what):
    lines = trees.diff(trees.without_rr_moved(ref), trees.without_rr_moved(got), fields=fields)
    if lines:
        test.fail(f"{what} differs from the independent readers:\n  " + "\n  ".join(lines))


# ---------------------------------------------------------------------------
# Generated tests
# ---------------------------------------------------------------------------

class UpstreamImages(unittest.TestCase):
    """test_<image>_dump and test_<image>_mount for every image of MANIFEST.tsv."""

    def run_dump(self, xz_name):
        name = xz_name[:-3]
        kind, why = IMAGES.get(name, ("malformed", "not described in IMAGES"))
        img = image(xz_name)
        d = dump.run(img)
        dump_safety(self, d, f"{name} ({why})", upstream.exit_code(name))
        if kind == "malformed":
            return
        view = auto_view(xz_name)
        ref, fields = reference(xz_name, view)
        got = d.records
        errs = {p: r.error for p, r in got.items() if r.error}
        with self.subTest(check="no entry reports an error"):
            self.assertFalse(errs, f"{name}: entries with errors: {dict(list(errs.items())[:8])}")
        with self.subTest(check=f"tree (auto: {view})"):
            diff(self, ref, got, fields, f"{name}: discfs-dump, --tree auto showing {view} "
                                         f"({why})")
        # The image's other trees, each against its own readers.
        others = [kind] if view != kind else []
        if kind != "udf" and view != "udf" and has_udf(img):
            others.append("udf")
        for other in others:
            with self.subTest(check=f"--tree {TREE_ARG[other]}"):
                self.tree_view(xz_name, other)
        if kind == "rr":
            with self.subTest(check="--tree joliet"):
                self.joliet_view(img, name)
        if kind == "udf":
            with self.subTest(check="--tree iso9660 is refused"):
                r = dump.run(img, tree="iso9660", data=False)
                self.assertIsNone(r.sanitizer(), r.describe())
                self.assertNotEqual(r.returncode, env.EXIT_OK, f"{name} has no ISO 9660 tree: "
                                                               f"--tree iso9660 must be refused\n"
                                                               f"{r.describe()}")
                self.assertEqual(len(r.stderr.strip().splitlines()), 1,
                                 f"one line saying why:\n{r.stderr}")

    def tree_view(self, xz_name, view):
        """`discfs-dump --tree T` against the readers of that tree."""
        name = xz_name[:-3]
        img = image(xz_name)
        ref, fields = reference(xz_name, view)
        d = dump.run(img, tree=TREE_ARG[view])
        dump_safety(self, d, f"{name} --tree {TREE_ARG[view]}", env.EXIT_OK)
        got = d.records
        errs = {p: r.error for p, r in got.items() if r.error}
        self.assertFalse(errs, f"{name} --tree {TREE_ARG[view]}: entries with errors: "
                               f"{dict(list(errs.items())[:8])}")
        diff(self, ref, got, fields, f"{name}: discfs-dump --tree {TREE_ARG[view]}")

    def joliet_view(self, img, name):
        """`discfs-dump --tree joliet` of a Rock Ridge + Joliet image against pycdlib's
        Joliet tree, or (where pycdlib refuses the image) 7-Zip's, which reads Joliet
        (unless a UDF bridge is there, which it prefers)."""
        if not isolayout.IsoImage(img).has_joliet():
            return
        try:
            ref, who = readers.pycdlib_tree(img, "joliet"), "pycdlib's Joliet tree"
        except Exception:
            if readers.sevenzip_format(img) != "Iso":
                self.skipTest("pycdlib refuses the image and 7-Zip reads its UDF tree: no "
                              "Joliet reference")
            ref, who = readers.sevenzip_tree(img, os.path.join(M.path, "7z-" + name)), "7-Zip"
        d = dump.run(img, tree="joliet")
        dump_safety(self, d, f"{name} --tree joliet", env.EXIT_OK)
        diff(self, ref, d.records, ("type", "size", "sha256"),
             f"{name}: discfs-dump --tree joliet (reference: {who})")

    def run_mount(self, xz_name):
        mount.require_fuse(self)
        name = xz_name[:-3]
        kind, why = IMAGES.get(name, ("malformed", "not described in IMAGES"))
        img = image(xz_name)
        mnt = M.sub("mnt-" + name)
        if kind == "malformed":
            ref = fields = None
            limit = ENDLESS
        else:
            view = auto_view(xz_name)
            ref, fields = reference(xz_name, view)
            limit = max_depth(ref) + 2
        with mount.Mount(img, mnt, env=sanitizers.without_leak_check(), report=True) as m:
            if m.live:
                probe = probe_.probe_mount(mnt, max_depth=limit)
                tools = (probe_.explore_with_tools(mnt, probe) if "root_error" not in probe
                         else {"cat": {}})
        for pr in m.problems:
            self.fail(f"{name}: {pr}")
        code = upstream.exit_code(name)
        if m.refused is not None:
            self.assertEqual(m.refused, code, f"{name}: exit code of the refused mount\n"
                                              f"{m.stderr[-3000:]}")
            return
        if code != env.EXIT_OK:
            self.fail(f"{name}: mounted, but must be refused with exit {code}")
        mount_safety(self, m, probe, tools, f"{name} ({why})")
        if kind == "malformed":
            return
        got = probe_.probe_to_recs(probe)
        with self.subTest(check=f"tree (auto: {view})"):
            diff(self, ref, got, fields, f"{name}: the mount, showing {view} ({why})")
        with self.subTest(check="cat"):
            bad = []
            for p, (rc, sha, err) in sorted(tools["cat"].items()):
                r = ref.get(p)
                if r is None or r.type != "reg":
                    continue
                if rc != 0:
                    bad.append(f"{p!r}: cat fails: {err.strip()}")
                elif sha != r.sha256:
                    bad.append(f"{p!r}: cat prints other bytes than the reference")
            if bad:
                self.fail(f"{name}: cat of the mounted files:\n  " + "\n  ".join(bad))


def _test_name(xz_name):
    return re.sub(r"[^0-9a-zA-Z]+", "_", xz_name[:-7])


def _generate():
    for row in upstream.manifest():
        xz_name = row[0]

        def t_dump(self, xz_name=xz_name):
            self.run_dump(xz_name)

        def t_mount(self, xz_name=xz_name):
            self.run_mount(xz_name)

        kind, why = IMAGES.get(xz_name[:-3], ("malformed", "not described in IMAGES"))
        t_dump.__doc__ = f"discfs-dump of {xz_name[:-3]} [{kind}: {why}]"
        t_mount.__doc__ = f"mount of {xz_name[:-3]} [{kind}: {why}]"
        setattr(UpstreamImages, f"test_{_test_name(xz_name)}_dump", t_dump)
        setattr(UpstreamImages, f"test_{_test_name(xz_name)}_mount", t_mount)


_generate()


class Manifest(unittest.TestCase):
    def test_every_image_decompresses_to_its_manifest_checksum(self):
        bad = []
        for row in upstream.manifest():
            try:
                image(row[0])
            except AssertionError as e:
                bad.append(str(e))
        self.assertFalse(bad, "\n".join(bad))

    def test_every_image_is_classified(self):
        names = {r[0][:-3] for r in upstream.manifest()}
        self.assertFalse(sorted(names - set(IMAGES)),
                         "images in MANIFEST.tsv without a reference decision in IMAGES "
                         "(they are treated as malformed: crash checks only)")


class DocumentedExitCodes(unittest.TestCase):
    """Exit codes man/discfs.1 documents for upstream images."""

    def test_tree_a_udf_only_image_lacks_is_exit_5(self):
        """man/discfs.1: "Asking for a tree the image does not have is an error (exit status
        5)", as --tree udf of an image without UDF answers; so does --tree iso9660, joliet or
        rockridge of a UDF-only image (it answered 4, "not an ISO 9660 image", before)."""
        img = image("cdio-udf102.iso.xz")
        for tree in ("iso9660", "joliet", "rockridge"):
            r = dump.run(img, tree=tree, data=False)
            self.assertEqual(r.returncode, env.EXIT_UNSUPPORTED, r.describe())


if __name__ == "__main__":
    unittest.main()
