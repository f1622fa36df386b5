"""UDF image files of sequential media with unrecorded space after the recorded part.

`mkudffs -m cdr` or `-m bdr` on a file larger than what it writes (the size of the medium
it is formatting, made with truncate) puts the VAT at the last *recorded* block, not at
the end of the file: on a disc the drive reports where that is, in a file it is followed
by zeros.  discfs finds the last block that is not zeros (skipping a sparse tail without
reading it, reading a written tail back in chunks up to a bound) and reads the VAT there.

References: udfclient reads these images only when they end at the VAT, so it lists the
image cut to its recorded size (the blocks up to the last non-zero one, found here by
Python); the empty file system mkudffs made must show its root alone, the same as the
exact-size image.  No installed writer fills such an image: udfclient writes nothing to a
cdr/bdr image file ("discs full": it takes the file's end as the end of the medium, and
refuses an oversized one for want of a VAT at its end), and wrudf needs a CD-RW drive; the
filled case is tests/data/udf's VAT images written by Nero and Heart Solutions, padded
(test_udf_real.Padded*).

Sessions appended one after another (genisoimage -udf -C/-M into one file, with and
without a gap): the newest is shown, compared with udfclient, which shows the newest too.

Hostile: the VAT block replaced by garbage, a garbage block far after the VAT, more
written zeros after the VAT than the search reads, an all-zero file: one clear line, no
hang, no sanitizer report.

Run: /usr/bin/python3 -m testlib -v test_udf_sequential   (from tests/py)
"""

import os
import random
import shutil
import subprocess
import unittest

from testlib import dump, env, mount, sanitizers, trees, udf

SECTOR = udf.SECTOR
M = env.ModuleFixture("discfs-udfseq-", binaries=("discfs-dump", "discfs"), tools=("mkudffs",))
setUpModule, tearDownModule = M.set_up, M.tear_down
SIZE = 32 << 20


def mkudffs_oversized(img, media, size=SIZE):
    """mkudffs --media-type=MEDIA on a sparse file of SIZE bytes (no block count: mkudffs
    formats the whole file as the medium and records only the start)."""
    if os.path.exists(img):
        os.unlink(img)
    with open(img, "wb") as f:
        f.truncate(size)
    p = env.run(["mkudffs", "--media-type=" + media, "--blocksize=2048",
                 "--vid=DISCFS_" + media.upper(), "--lvid=DISCFS_LV", img], check=False)
    if p.returncode != 0:
        raise unittest.SkipTest(f"mkudffs --media-type={media} cannot make this image: "
                                f"{env.txt(p.stderr).strip()[-300:]}")
    if os.path.getsize(img) != size:
        raise RuntimeError(f"precondition: mkudffs changed the size of {img}")
    return img


def last_nonzero_block(img):
    with open(img, "rb") as f:
        data = f.read()
    stripped = data.rstrip(b"\0")
    return (len(stripped) - 1) // SECTOR if stripped else None


def cut_copy(img, dest):
    """IMG cut after its last non-zero block: the image a drive's recorded area is."""
    last = last_nonzero_block(img)
    shutil.copyfile(img, dest)
    with open(dest, "r+b") as f:
        f.truncate((last + 1) * SECTOR)
    return dest


def write_block(img, block, data):
    with open(img, "r+b") as f:
        f.seek(block * SECTOR)
        f.write(data)


def refusal(test, img):
    """discfs-dump --tree udf IMG must fail with one line (no hang, no sanitizer report),
    and `discfs mount` must refuse with it too; returns the line."""
    d = dump.run(img, tree="udf")
    sanitizers.check(f"discfs-dump {img}", d.stderr, d.stdout)
    test.assertNotEqual(d.returncode, 0, f"discfs-dump read {img}")
    lines = [ln for ln in d.stderr.splitlines() if ln.strip()]
    test.assertEqual(len(lines), 1, f"one line, not: {d.stderr[-2000:]}")
    mount.require_fuse(test)
    with mount.Mount(img, M.sub("mnt-refused"), tree="udf", report=True) as m:
        test.assertFalse(m.live, f"{img} mounted")
        test.assertIn(lines[0].split(": ", 1)[-1][:40], m.stderr)
    return lines[0]


class Oversized:
    media = None
    last_block = None        # where mkudffs puts the VAT (checked, so a change shows)

    @classmethod
    def setUpClass(cls):
        cls.image = mkudffs_oversized(os.path.join(M.path, f"{cls.media}-32m.udf"), cls.media)

    def test_vat_is_at_the_last_recorded_block(self):
        # Precondition of the whole module: the file ends in unrecorded (zero) blocks.
        last = last_nonzero_block(self.image)
        self.assertEqual(last, self.last_block)
        self.assertLess(last + 1, SIZE // SECTOR)

    def test_dump_shows_the_empty_root(self):
        d = dump.dump(self.image, tree="udf")
        self.assertEqual(sorted(d.records), ["/"])
        self.assertEqual(d.records["/"].type, "dir")

    def test_same_as_udfclient_on_the_recorded_part(self):
        if not env.is_root() or shutil.which("udfclient") is None:
            self.skipTest("udfclient (as root) is needed")
        cut = cut_copy(self.image, os.path.join(M.path, f"{self.media}-cut.udf"))
        ref, out = udf.udfclient_tree(cut, M.sub(f"udfclient-{self.media}"))
        self.assertIn("presence of VAT", out, "udfclient read the VAT of the cut copy")
        got = dump.dump(self.image, tree="udf").records
        lines = trees.diff({p: r for p, r in ref.items() if p != "/"},
                           {p: r for p, r in got.items() if p != "/"},
                           fields=("type", "size", "sha256"))
        self.assertFalse(lines, "\n".join(lines))
        self.assertEqual(dump.dump(cut, tree="udf").raw, dump.dump(self.image, tree="udf").raw)

    def test_mount_shows_the_empty_root(self):
        mount.require_fuse(self)
        mnt = M.sub(f"mnt-{self.media}")
        with mount.Mount(self.image, mnt):
            self.assertEqual(os.listdir(mnt), [])
            out = subprocess.run(["ls", "-la", mnt], stdout=subprocess.PIPE, check=True).stdout
            self.assertIn(b" .\n", out)

    def test_written_zeros_are_read_back(self):
        # A copy that lost its holes (cp --sparse=never): the tail is read, in chunks.
        img = os.path.join(M.path, f"{self.media}-dense.udf")
        env.run(["cp", "--sparse=never", self.image, img])
        self.assertEqual(sorted(dump.dump(img, tree="udf").records), ["/"])

    def test_4gib_sparse_file(self):
        # A medium-sized file with the VAT near its start: the hole is skipped, not read
        # (the test's hang guard would stop a read of 4 GiB of zeros on a slow machine).
        img = os.path.join(M.path, f"{self.media}-4g.udf")
        shutil.copyfile(self.image, img)
        with open(img, "r+b") as f:
            f.truncate(4 << 30)
        self.assertEqual(sorted(dump.dump(img, tree="udf").records), ["/"])

    def test_exact_size_image_still_reads(self):
        cut = cut_copy(self.image, os.path.join(M.path, f"{self.media}-exact.udf"))
        self.assertEqual(sorted(dump.dump(cut, tree="udf").records), ["/"])

    # -- hostile ---------------------------------------------------------------------

    def test_garbage_instead_of_the_vat(self):
        img = os.path.join(M.path, f"{self.media}-garbage-vat.udf")
        shutil.copyfile(self.image, img)
        write_block(img, self.last_block, random.Random(7).randbytes(SECTOR))
        line = refusal(self, img)
        self.assertIn("virtual partition", line)
        self.assertIn(f"last recorded block {self.last_block}", line)

    def test_garbage_block_after_the_vat(self):
        img = os.path.join(M.path, f"{self.media}-garbage-tail.udf")
        shutil.copyfile(self.image, img)
        write_block(img, 15000, random.Random(8).randbytes(SECTOR))
        line = refusal(self, img)
        self.assertIn("last recorded block 15000", line)

    def test_more_written_zeros_than_the_search_reads(self):
        # 70 MiB of written zeros after the VAT (the search reads 64 MiB of them).
        img = os.path.join(M.path, f"{self.media}-long-tail.udf")
        env.run(["cp", "--sparse=never", cut_copy(self.image, img + ".cut"), img])
        with open(img, "ab") as f:
            for _ in range(70):
                f.write(b"\0" * (1 << 20))
        line = refusal(self, img)
        self.assertIn("sparse", line)


class OversizedCdr(Oversized, unittest.TestCase):
    """mkudffs -m cdr (UDF 1.50, VAT) on a 32 MiB file."""
    media = "cdr"
    last_block = 299


class OversizedBdr(Oversized, unittest.TestCase):
    """mkudffs -m bdr (UDF 2.50, VAT and metadata partition) on a 32 MiB file."""
    media = "bdr"
    last_block = 319


class AppendedSessions(unittest.TestCase):
    """Two genisoimage -udf sessions in one file (-C/-M, the second written at its start,
    right after the first or after a CD-style gap of 150 blocks): each session has its own
    volume recognition sequence and anchors (at its start + 256 and at its end), block 256
    belongs to the first.  The newest session is shown, as udfclient shows it.

    genisoimage's second UDF tree lists the first session's file under its ISO 9660 name and
    with size 0 (it merged the ISO 9660 tree, which has no UDF entry for it): what is
    recorded, and what udfclient shows too."""

    def build(self, gap):
        env.require_tools("genisoimage")
        work = M.sub(f"sessions-{gap}")
        for name, body in (("s1/one.txt", b"one\n"), ("s2/two.txt", b"second session\n")):
            os.makedirs(os.path.join(work, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(work, name), "wb") as f:
                f.write(body)
        img = os.path.join(work, "two-sessions.iso")
        env.run(["genisoimage", "-quiet", "-udf", "-V", "S1", "-o", img,
                 os.path.join(work, "s1")])
        start = os.path.getsize(img) // SECTOR + gap
        part = os.path.join(work, "s2.part")
        env.run(["genisoimage", "-quiet", "-udf", "-V", "S2", "-C", f"0,{start}", "-M", img,
                 "-o", part, os.path.join(work, "s2")])
        with open(part, "rb") as f, open(img, "r+b") as out:
            out.seek(start * SECTOR)
            out.write(f.read())
        return img

    def check(self, gap):
        img = self.build(gap)
        got = dump.dump(img, tree="udf").records
        self.assertIn("/two.txt", got, "the newest session is shown")
        self.assertEqual(got["/two.txt"].sha256, trees.sha256(b"second session\n"))
        if env.is_root() and shutil.which("udfclient"):
            ref, _ = udf.udfclient_tree(img, M.sub(f"udfclient-sessions-{gap}"))
            lines = trees.diff({p: r for p, r in ref.items() if p != "/"},
                               {p: r for p, r in got.items() if p != "/"},
                               fields=("type", "size", "sha256"))
            self.assertFalse(lines, "against udfclient:\n" + "\n".join(lines))
        mount.require_fuse(self)
        mnt = M.sub(f"mnt-sessions-{gap}")
        with mount.Mount(img, mnt, tree="udf"):
            # The first session's file under its ISO 9660 name, which genisoimage merged from.
            self.assertEqual(sorted(os.listdir(mnt)), ["ONE.TXT", "two.txt"])
            with open(os.path.join(mnt, "two.txt"), "rb") as f:
                self.assertEqual(f.read(), b"second session\n")

    def test_newest_session_right_after_the_first(self):
        self.check(0)

    def test_newest_session_after_a_gap(self):
        self.check(150)

    def test_damaged_newest_session_leaves_the_first(self):
        # Both descriptor sequences of the second session zeroed (found from the anchor in
        # the last block): the anchor at 256 still leads to the first session, with a warning.
        img = self.build(0)
        with open(img, "r+b") as f:
            f.seek(os.path.getsize(img) - SECTOR)
            anchor = f.read(SECTOR)
            self.assertEqual(anchor[0:2], b"\x02\x00", "precondition: an anchor at the end")
            for at in (16, 24):      # main, reserve extent: length, location (ECMA-167 3/10.2)
                length = int.from_bytes(anchor[at:at + 4], "little")
                where = int.from_bytes(anchor[at + 4:at + 8], "little")
                self.assertGreater(where, 256, "precondition: the second session's sequence")
                f.seek(where * SECTOR)
                f.write(b"\0" * length)
        d = dump.run(img, tree="udf")
        sanitizers.check(f"discfs-dump {img}", d.stderr, d.stdout)
        self.assertEqual(d.returncode, 0, d.stderr[-2000:])
        self.assertEqual(sorted(dump.dump(img, tree="udf").records), ["/", "/one.txt"])
        self.assertIn("incomplete", d.stderr)


class AllZeros(unittest.TestCase):
    def test_all_zero_file_is_refused(self):
        img = os.path.join(M.path, "zeros.udf")
        with open(img, "wb") as f:
            f.truncate(SIZE)
        refusal(self, img)


if __name__ == "__main__":
    unittest.main()
