"""UDF images made by other people's writers (tests/data/udf, see PROVENANCE.tsv).

The images were written by tsMuxer (BD-ROM UDF 2.50, metadata partition), Mac OS X
newfs_udf (UDF 2.60 with a metadata partition, 4096-byte blocks), Nero (BD-R UDF 2.60
with a VAT; CD UDF 2.01 bridge) and Heart Solutions' UDF writer (write-once UDF 2.01 with
a VAT), and come from the public test data of util-linux (libblkid) and udfv.  No writer
on the project machines makes a metadata-partition or VAT image holding files, so these
are the only independent check of those paths.

tsmuxer-bd-2.50-metadata.iso was made on a project machine with tsMuxer's own
UDF 2.50 writer (a BD-ROM layout with a duplicated metadata mirror); 7-Zip and
libudfread read it, so every file is checked against two other readers.

Each image is compared, through discfs-dump --tree udf and a FUSE mount, with the
independent readers that can read it (test_udf.UdfChecks does the comparing):

  udfclient  names, sizes, content, permission bits (reads VAT and metadata images)
  7-Zip      names, sizes, content, mtimes (physical partitions only here)
  udfread    names, sizes, content (physical partitions only here)
  udfinfo    the file and directory counts the writer recorded in the integrity
             descriptor (udftools)

A reader that cannot read an image is a skipped subtest with its reason.

The VAT images are read a second time padded with 32 MiB of unrecorded (zero) space, as an
image file of the whole medium holds them (Padded*): the references read the exact-size image,
since udfclient, udfinfo and 7-Zip look for the VAT at the end of the file only.

Run: /usr/bin/python3 -m testlib -v test_udf_real   (from tests/py)
"""

import copy
import csv
import hashlib
import lzma
import os
import re
import shutil
import struct
import subprocess
import unittest

import test_udf
from testlib import dump, env, mount, trees, udf

DATA = os.path.join(env.PROJECT, "tests", "data", "udf")
M = env.ModuleFixture("discfs-udf-real-", binaries=("discfs-dump",))
setUpModule, tearDownModule = M.set_up, M.tear_down


def provenance():
    with open(os.path.join(DATA, "PROVENANCE.tsv"), newline="") as f:
        return {row["name"]: row for row in csv.DictReader(f, delimiter="\t")}


def unpack(name):
    """The image tests/data/udf/NAME.xz, decompressed into the temp dir (once)."""
    out = os.path.join(M.path, name)
    if not os.path.exists(out):
        with lzma.open(os.path.join(DATA, name + ".xz")) as f:
            data = f.read()
        with open(out + ".part", "wb") as f:
            f.write(data)
        os.rename(out + ".part", out)
    return out


def udfclient_tree(img, dest, block_size):
    """{path: Rec} of what udfclient's `mget` extracts (as udf.udfclient_tree, for any
    block size; umask 0 so the extracted permission bits are the recorded ones)."""
    if shutil.which("udfclient") is None:
        raise udf.ReaderUnavailable("udfclient is not installed")
    if not env.is_root():
        raise udf.ReaderUnavailable("udfclient restores owners only as root")
    os.makedirs(dest, exist_ok=True)
    work = dest + ".work"
    shutil.copyfile(img, work)

    def talk(lines):
        p = subprocess.run(["udfclient", "-b", str(block_size), work],
                           input="".join(ln + "\n" for ln in lines).encode(), cwd=dest,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                           preexec_fn=lambda: os.umask(0))
        return p.returncode, env.txt(p.stdout)
    try:
        rc, out = talk(["ls", "quit"])
        vols = re.findall(r"^d\S+\s+-?\d+\s+-?\d+\s+\d+\s+(\S.*:.*)$", out, re.M)
        if rc != 0 or not vols:
            raise udf.ReaderUnavailable(f"udfclient finds no logical volume: {out[-500:]}")
        rc, out = talk(['cd "%s"' % vols[0], "mget .", "quit"])
        if rc != 0:
            raise RuntimeError(f"udfclient failed on {img} (exit {rc}):\n{out[-3000:]}")
    finally:
        os.unlink(work)
    return {p: r._replace(nlink=None, ino=None, atime=None, ctime=None, mtime=None)
            for p, r in trees.walk(dest).items()}


def udfinfo_counts(img, block_size):
    """(files, directories) the writer recorded (udftools' udfinfo reads them from the
    logical volume integrity descriptor)."""
    if shutil.which("udfinfo") is None:
        raise unittest.SkipTest("udfinfo (udftools) is not installed")
    p = env.run(["udfinfo", "--blocksize=%d" % block_size, img], check=False)
    text = env.txt(p.stdout)
    files = re.search(r"^numfiles=(\d+)$", text, re.M)
    dirs = re.search(r"^numdirs=(\d+)$", text, re.M)
    if not files or not dirs:
        raise unittest.SkipTest(f"udfinfo reports no counts: {env.txt(p.stderr)[-300:]}")
    return int(files.group(1)), int(dirs.group(1))


class ProvenanceTest(unittest.TestCase):
    def test_every_image_is_listed_and_intact(self):
        prov = provenance()
        on_disk = sorted(n[:-3] for n in os.listdir(DATA) if n.endswith(".xz"))
        self.assertEqual(on_disk, sorted(prov), "tests/data/udf/*.xz and PROVENANCE.tsv differ")
        for name, row in prov.items():
            with self.subTest(image=name):
                for field in ("source", "licence", "writer_and_layout"):
                    self.assertTrue(row[field].strip(), f"{name}: no {field}")
                with open(unpack(name), "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                                     row["sha256_uncompressed"], f"{name} changed")


class RealImage(test_udf.UdfChecks):
    fixture = M
    name = None
    block_size = 2048
    expect = None           # {path: type} every reader agrees on (a floor, not the reference)

    @classmethod
    def make(cls):
        cls.image = unpack(cls.name)

    def readers(self):
        r = super().readers()
        work = os.path.join(M.path, "ref-" + type(self).__name__)
        r["udfclient"] = (lambda: udfclient_tree(self.image, work + "-udfclient-real",
                                                 self.block_size),
                          ("type", "size", "sha256", "mode"))
        return r

    def test_dump_paths(self):
        d = self.dumped().records
        self.assertEqual({p: r.type for p, r in d.items()}, self.expect)

    def test_dump_vs_udfinfo_counts(self):
        files, dirs = udfinfo_counts(self.image, self.block_size)
        d = self.dumped().records
        self.assertEqual(sum(1 for r in d.values() if r.type != "dir"), files,
                         "files recorded in the integrity descriptor")
        self.assertEqual(sum(1 for r in d.values() if r.type == "dir"), dirs,
                         "directories recorded in the integrity descriptor")


def le16(d, o):
    return struct.unpack_from("<H", d, o)[0]


def le32(d, o):
    return struct.unpack_from("<I", d, o)[0]


class MetadataChecks(RealImage):
    """A metadata partition (UDF 2.50+): damaged copies of the image must read through
    the metadata mirror, or fail cleanly.  part_start, meta_fe and mirror_fe are where
    the image's partition descriptor and "*UDF Metadata Partition" map put them; the
    test checks the entries are really there before it damages anything."""
    part_start = meta_fe = mirror_fe = None

    def image_bytes(self):
        with open(self.image, "rb") as f:
            data = bytearray(f.read())
        bs = self.block_size
        for blk, ftype in ((self.meta_fe, 250), (self.mirror_fe, 251)):
            o = (self.part_start + blk) * bs
            self.assertEqual((le16(data, o), data[o + 27]), (266, ftype),
                             f"the image's metadata {'mirror ' if ftype == 251 else ''}file "
                             f"entry is not where this test expects it")
        return data

    def metadata_start(self, data, fe_block):
        """Partition block where the metadata (or mirror) file's one extent starts."""
        o = (self.part_start + fe_block) * self.block_size
        l_ea, l_ad = le32(data, o + 208), le32(data, o + 212)
        self.assertEqual((data[o + 34] & 7, l_ad), (0, 8), "one short_ad expected")
        return le32(data, o + 216 + l_ea + 4)

    def damaged(self, what, data, blocks):
        """A copy of data with the descriptor tag at each image block damaged."""
        data = bytearray(data)
        for blk in blocks:
            data[blk * self.block_size + 4] ^= 0xFF      # tag checksum no longer matches
        out = os.path.join(M.path, type(self).__name__ + "-" + what + ".udf")
        with open(out, "wb") as f:
            f.write(data)
        return out

    def test_mirror_used_when_metadata_file_entry_is_damaged(self):
        img = self.damaged("meta-fe", self.image_bytes(), [self.part_start + self.meta_fe])
        self.assertEqual(dump.dump(img, tree="udf").raw, self.dumped().raw,
                         "with the metadata file's entry damaged the mirror must serve")

    def test_both_metadata_entries_damaged_is_a_clean_error(self):
        img = self.damaged("meta-both", self.image_bytes(),
                           [self.part_start + self.meta_fe, self.part_start + self.mirror_fe])
        got = dump.dump(img, tree="udf", check=False)      # raises on a sanitizer report
        # No readable UDF file system is left: "not an ISO 9660 or UDF image" (exit 4).
        self.assertEqual(got.returncode, env.EXIT_NOT_AN_IMAGE,
                         "an unreadable metadata partition must fail")
        self.assertIn("metadata", got.stderr)
        self.assertLess(len(got.stderr.strip().splitlines()), 6, got.stderr)


class MacosxMetadata(MetadataChecks, unittest.TestCase):
    """newfs_udf: UDF 2.60, 4096-byte blocks, metadata partition (file + mirror entry
    over one shared extent: flags 0, no duplicate)."""
    name = "macosx-2.60-4096-metadata.udf"
    block_size = 4096
    expect = {"/": "dir"}
    part_start, meta_fe, mirror_fe = 257, 1, 2045

    def test_root_attributes(self):
        # The root directory's file entry lives in the metadata partition: reading its
        # owner (501:501, the Mac user who formatted it; udfclient does not show the
        # root's owner) proves the mapping reached it.
        root = self.dumped().records["/"]
        self.assertEqual((root.uid, root.gid, root.mode & 0o7777), (501, 501, 0o755))


class TsmuxerBd(MetadataChecks, unittest.TestCase):
    """tsMuxer's BD-ROM ISO: UDF 2.50, metadata partition with a duplicated mirror,
    the BDMV tree of a one-clip disc (7-Zip and libudfread read it too)."""
    name = "tsmuxer-bd-2.50-metadata.iso"
    part_start, meta_fe, mirror_fe = 288, 0, 287
    expect = dict([("/", "dir")] + [
        ("/" + p, "reg" if "." in p else "dir") for p in (
            "BDMV", "BDMV/index.bdmv", "BDMV/MovieObject.bdmv", "BDMV/META", "BDMV/BDJO",
            "BDMV/JAR", "BDMV/BACKUP", "BDMV/BACKUP/index.bdmv",
            "BDMV/BACKUP/MovieObject.bdmv", "BDMV/BACKUP/BDJO", "BDMV/BACKUP/JAR",
            "BDMV/BACKUP/CLIPINF", "BDMV/BACKUP/CLIPINF/00000.clpi", "BDMV/BACKUP/PLAYLIST",
            "BDMV/BACKUP/PLAYLIST/00000.mpls", "BDMV/AUXDATA", "BDMV/CLIPINF",
            "BDMV/CLIPINF/00000.clpi", "BDMV/PLAYLIST", "BDMV/PLAYLIST/00000.mpls",
            "BDMV/STREAM", "BDMV/STREAM/00000.m2ts", "CERTIFICATE", "CERTIFICATE/BACKUP")])

    def root_blocks(self, data):
        """(image block of the root's file entry, of its first directory block) in the
        main metadata file, found from the file set descriptor at metadata block 0."""
        bs = self.block_size
        meta = self.part_start + self.metadata_start(data, self.meta_fe)
        self.assertEqual(le16(data, meta * bs), 256, "no file set descriptor")
        root = meta + le32(data, meta * bs + 404)
        o = root * bs
        self.assertEqual((le16(data, o), data[o + 27], data[o + 34] & 7), (266, 4, 0),
                         "the root is not a directory entry with short_ad")
        return root, meta + le32(data, o + 216 + le32(data, o + 208) + 4)

    def test_mirror_is_a_duplicate(self):
        data = self.image_bytes()
        self.assertNotEqual(self.metadata_start(data, self.meta_fe),
                            self.metadata_start(data, self.mirror_fe))

    def test_mirror_serves_a_damaged_directory_entry(self):
        data = self.image_bytes()
        root_fe, _ = self.root_blocks(data)
        img = self.damaged("root-fe", data, [root_fe])
        self.assertEqual(dump.dump(img, tree="udf").raw, self.dumped().raw)

    def test_mirror_serves_a_damaged_directory_block(self):
        # UDF 2.60 2.2.13.1: the mirror is a duplicate of the metadata file for when the
        # main copy cannot be read: a directory's identifier descriptors too.
        data = self.image_bytes()
        _, root_dir = self.root_blocks(data)
        img = self.damaged("root-fids", data, [root_dir])
        self.assertEqual(dump.dump(img, tree="udf").raw, self.dumped().raw)

    def test_stream_file_spans_many_blocks(self):
        # The clip (117 blocks) is data in the physical partition, mapped through
        # long/short allocation descriptors recorded in the metadata partition.
        d = self.dumped().records["/BDMV/STREAM/00000.m2ts"]
        self.assertEqual(d.size, 239616)
        ref, _ = self.reference("udfread")
        self.assertEqual(d.sha256, ref["/BDMV/STREAM/00000.m2ts"].sha256)


class NeroBdrVat(RealImage, unittest.TestCase):
    """Nero BD-R: UDF 2.60 with a virtual partition (VAT in the last block)."""
    name = "nero-bdr-2.60-vat.udf"
    expect = {"/": "dir", "/test.txt": "reg"}


class HeartVat(RealImage, unittest.TestCase):
    """Heart Solutions' writer: write-once UDF 2.01 with a VAT, a photo and a folder."""
    name = "heart-2.01-vat.udf"
    expect = {"/": "dir", "/directory": "dir", "/sample.jpg": "reg"}

    def test_photo_is_a_jpeg(self):
        # Content check that needs no other UDF reader: the file is a whole JPEG.
        mnt = M.sub("heart-jpeg")
        mount.require_fuse(self)
        with mount.Mount(self.image, mnt, tree="udf"):
            with open(os.path.join(mnt, "sample.jpg"), "rb") as f:
                data = f.read()
        self.assertEqual(len(data), 106069)
        self.assertEqual((data[:3], data[-2:]), (b"\xff\xd8\xff", b"\xff\xd9"))


class Padded:
    """The image followed by 32 MiB of unrecorded (zero, sparse) space: an image file of the
    whole medium, the VAT at the last recorded block and not at the end of the file.  discfs
    must show what it shows of the exact-size image.  udfclient, udfinfo and 7-Zip look for
    the VAT at the end of the file only, so every reference reads the exact-size image."""

    @classmethod
    def make(cls):
        cls.original = unpack(cls.name)
        cls.image = os.path.join(M.path, "padded-" + cls.name)
        shutil.copyfile(cls.original, cls.image)
        with open(cls.image, "r+b") as f:
            f.truncate(os.path.getsize(cls.original) + (32 << 20))

    def readers(self):
        stand_in = copy.copy(self)
        stand_in.image = self.original
        return super(Padded, stand_in).readers()

    def test_dump_vs_udfinfo_counts(self):
        files, dirs = udfinfo_counts(self.original, self.block_size)
        d = self.dumped().records
        self.assertEqual((sum(1 for r in d.values() if r.type != "dir"),
                          sum(1 for r in d.values() if r.type == "dir")), (files, dirs))

    def test_same_as_the_exact_size_image(self):
        self.assertEqual(self.dumped().raw, dump.dump(self.original, tree="udf").raw)


class PaddedNeroBdrVat(Padded, NeroBdrVat):
    """NeroBdrVat with unrecorded space after the VAT."""


class PaddedHeartVat(Padded, HeartVat):
    """HeartVat with unrecorded space after the VAT."""


class Nero6CdBridge(RealImage, unittest.TestCase):
    """Nero 6 CD: ISO 9660 + Joliet + UDF 2.01 bridge (physical partition)."""
    name = "nero6-cd-2.01-bridge.iso"
    expect = {"/": "dir", "/test.txt": "reg"}


if __name__ == "__main__":
    unittest.main()
