"""Hostile UDF images: discfs-dump and a real FUSE mount must neither crash nor
hang nor trip a sanitizer; the damaged entry reads EIO (or the image is refused
with one clear line when the volume structures are gone); intact files match.

The base image is a UDF-only file system made by mkudffs (hd, UDF 2.01) and
filled by udfclient from a small source tree; the bytes to corrupt are found
with udf.UdfLayout (a small Python parser: anchor -> VDS -> FSD -> FEs
and FIDs), never by asking discfs.  Expectations come from the source tree and
from where the damage is, checked by hostile.CaseRunner (the rules of the ISO
9660 hostile suite).

Cases: bad tag checksum of a file entry, stale descriptor CRC of a file entry,
a directory whose allocation descriptor points at its own file entry, a FID
whose ICB points at its parent directory / at the root (loops), an indirect
entry pointing at itself, a file extent past the image end, a directory
whose FIDs are random bytes, a truncated image, the main anchor zeroed (the
backups remain: everything must read), the main sequence's logical volume
descriptor damaged (the reserve sequence is intact: everything must read) and
every anchor zeroed.

Run: /usr/bin/python3 -m testlib -v test_udf_badinput   (from tests/py)
"""

import errno
import json
import os
import random
import unittest

from testlib import dump, env, hostile, isolayout, images, mount, sources, trees, udf

SECTOR = udf.SECTOR
M = env.ModuleFixture("discfs-udfbad-", binaries=("discfs-dump", "discfs"),
                      tools=("mkudffs", "udfclient", "find", "ls", "cat"),
                      root="udfclient writes the base image with owners only as root")
setUpModule, tearDownModule = M.set_up, M.tear_down
_ctx = None


class Context:
    def __init__(self):
        base = M.sub("base")
        self.src = os.path.join(base, "src")
        r = random.Random(4321)
        sources.write(self.src, "hello.txt", b"hello, udf\n")
        sources.write(self.src, "data.bin", r.randbytes(5000))
        sources.write(self.src, "empty", b"")
        sources.write(self.src, "docs/readme.txt", b"read me first\n" * 300)
        sources.write(self.src, "docs/notes.md", r.randbytes(3000))
        sources.write(self.src, "docs/big.bin", r.randbytes(70000))
        sources.write(self.src, "docs/zz_last.txt", b"the last file of /docs\n")
        sources.write(self.src, "loopdir/inner.txt", b"inside loopdir\n")
        sources.write(self.src, "loopdir/sub/deep.txt", b"inside loopdir/sub\n")
        sources.write(self.src, "keep.txt", b"an innocent neighbour\n")
        sources.set_dir_times(self.src)
        self.tree = trees.walk(self.src)
        self.img = os.path.join(base, "base.udf")
        images.make_udfclient(self.img, "hd", "0x0201", self.src)
        with open(self.img, "rb") as f:
            self.data = f.read()
        self.lay = udf.UdfLayout(self.data)
        missing = set(self.tree) - set(self.lay.entries)
        if missing:
            raise RuntimeError(f"precondition: the layout parser misses {sorted(missing)[:5]}")
        self.cases = M.sub("cases")

    def entry(self, path):
        return self.lay.entries[path]


def ctx():
    global _ctx
    if _ctx is None:
        _ctx = Context()
    return _ctx


CASES = hostile.Cases()
case = CASES.case


def _save(name, patch):
    return patch.write(os.path.join(ctx().cases, name + ".udf"))


@case
def fe_bad_tag_checksum():
    c = ctx()
    e = c.entry("/docs/readme.txt")
    p = isolayout.Patch(c.data)
    p.put(e.fe_off + 4, bytes([c.data[e.fe_off + 4] ^ 0x5A]), "tag checksum")
    return _save("fe_bad_tag_checksum", p), hostile.Expect(
        c.tree, eio_files={"/docs/readme.txt"},
        note="/docs/readme.txt's file entry has a wrong tag checksum")


@case
def fe_stale_crc():
    c = ctx()
    e = c.entry("/data.bin")
    p = isolayout.Patch(c.data)
    # Change the recorded size (bytes 56..63 of the FE) and fix the tag checksum,
    # not the CRC: only the CRC tells the entry is damaged.
    p.put(e.fe_off + 56, (e.size + 3).to_bytes(8, "little"), "information length")
    p.buf[e.fe_off + 4] = udf.tag_checksum(p.buf[e.fe_off:e.fe_off + 16])
    return _save("fe_stale_crc", p), hostile.Expect(
        c.tree, eio_files={"/data.bin"},
        note="/data.bin's file entry body changed, descriptor CRC not updated")


@case
def dir_ad_points_at_own_fe():
    c = ctx()
    e = c.entry("/loopdir/sub")
    p = isolayout.Patch(c.data)
    fe_lba = e.fe_off // SECTOR - c.lay.part_start
    if e.alloc_type in (0, 1) and e.ads:
        p.put(e.ad_off + 4, fe_lba.to_bytes(4, "little"), "extent position")
    else:
        # Inline directory (what udfclient writes): turn it into one long_ad
        # whose extent is the directory's own file entry.
        flags = udf.u16(c.data, e.fe_off + 16 + 18)
        p.put(e.fe_off + 16 + 18, ((flags & ~7) | 1).to_bytes(2, "little"), "ICB flags")
        l_ad_off = e.fe_off + (172 if e.tag == 261 else 212)
        p.put(l_ad_off, (16).to_bytes(4, "little"), "allocation descriptors length")
        p.put(e.ad_off, e.size.to_bytes(4, "little") + fe_lba.to_bytes(4, "little") +
              bytes(8), "long_ad at its own file entry")
    udf.seal_tag(p.buf, e.fe_off, (e.ad_off + 16) - (e.fe_off + 16)
                 if e.alloc_type == 3 else None)
    return _save("dir_ad_points_at_own_fe", p), hostile.Expect(
        c.tree, eio_dirs={"/loopdir/sub"},
        note="/loopdir/sub's data extent is its own file entry (no FIDs there)")


def _fid_points_at(name, path, target):
    c = ctx()
    e, t = c.entry(path), c.entry(target)
    p = isolayout.Patch(c.data)
    t_lba = t.fe_off // SECTOR - c.lay.part_start
    p.put(e.fid_off + 20 + 4, t_lba.to_bytes(4, "little"), "FID ICB location")
    udf.seal_tag(p.buf, e.fid_off)
    parent = c.entry(path.rsplit("/", 1)[0] or "/")
    if parent.alloc_type == 3:           # the FID lives inside its directory's entry
        udf.seal_tag(p.buf, parent.fe_off)
    return _save(name, p), hostile.Expect(
        c.tree, loops={path}, note=f"the FID of {path} points at {target}'s file entry")


@case
def fid_loops_to_parent():
    return _fid_points_at("fid_loops_to_parent", "/loopdir/sub", "/loopdir")


@case
def fid_loops_to_root():
    return _fid_points_at("fid_loops_to_root", "/loopdir/sub", "/")


@case
def indirect_entry_self_loop():
    c = ctx()
    e = c.entry("/data.bin")
    p = isolayout.Patch(c.data)
    lba = e.fe_off // SECTOR - c.lay.part_start
    ie = bytearray(SECTOR)
    ie[0:2] = (259).to_bytes(2, "little")          # indirect entry
    ie[2:4] = c.data[e.fe_off + 2:e.fe_off + 4]    # descriptor version
    ie[12:16] = lba.to_bytes(4, "little")          # tag location
    ie[16:36] = c.data[e.fe_off + 16:e.fe_off + 36]  # the ICB tag of the old entry
    ie[16 + 11] = 3                                # file type: indirect entry
    ie[36:40] = SECTOR.to_bytes(4, "little")       # indirect ICB: length
    ie[40:44] = lba.to_bytes(4, "little")          # ... at itself
    udf.seal_tag(ie, 0, 36)
    p.put(e.fe_off, bytes(ie), "indirect entry pointing at itself")
    return _save("indirect_entry_self_loop", p), hostile.Expect(
        c.tree, eio_files={"/data.bin"},
        note="/data.bin's ICB is an indirect entry that points at itself")


@case
def file_extent_past_end():
    c = ctx()
    e = c.entry("/docs/notes.md")
    if e.alloc_type not in (0, 1) or not e.ads:
        raise unittest.SkipTest("precondition: /docs/notes.md has an extent")
    p = isolayout.Patch(c.data)
    p.put(e.ad_off + 4, (c.lay.part_len + 1000).to_bytes(4, "little"), "extent position")
    udf.seal_tag(p.buf, e.fe_off)
    return _save("file_extent_past_end", p), hostile.Expect(
        c.tree, eio_files={"/docs/notes.md"},
        note="/docs/notes.md's extent lies 1000 blocks past the partition end")


@case
def dir_fids_garbage():
    c = ctx()
    e = c.entry("/docs")
    p = isolayout.Patch(c.data)
    r = random.Random(77)
    if e.alloc_type in (0, 1) and e.ads:
        s, end = e.spans(c.lay.part_start)[0]
        p.put(s, r.randbytes(end - s), "random directory content")
    else:
        ln = udf.u32(c.data, e.fe_off + (172 if e.tag == 261 else 212))
        p.put(e.ad_off, r.randbytes(ln), "random inline directory content")
        udf.seal_tag(p.buf, e.fe_off)
    return _save("dir_fids_garbage", p), hostile.Expect(
        c.tree, eio_dirs={"/docs"}, note="/docs's FIDs are random bytes")


@case
def truncated_inside_file_data():
    c = ctx()
    e = c.entry("/docs/big.bin")
    s, end = e.spans(c.lay.part_start)[0]
    cut = s + (end - s) // 2 + 3
    eio_files, eio_dirs, fragile = set(), set(), {}
    for path, x in c.lay.entries.items():
        if path == "/":
            continue
        spans = x.spans(c.lay.part_start) if x.alloc_type in (0, 1) else []
        gone = x.fe_off + SECTOR > cut
        if x.is_dir:
            if gone or any(a < cut < b or a >= cut for a, b in spans):
                eio_dirs.add(path)
        elif gone or any(b > cut for a, b in spans):
            if c.tree[path].size or gone:
                eio_files.add(path)
    p = isolayout.Patch(c.data[:cut])
    return _save("truncated_inside_file_data", p), hostile.Expect(
        c.tree, eio_files=eio_files, eio_dirs=eio_dirs, fragile=fragile,
        note=f"cut in the middle of /docs/big.bin's data at byte {cut}")


def _anchors(data):
    """Sectors holding an anchor volume descriptor pointer (tag identifier 2 whose tag
    location is its own sector): mkudffs writes them at 256, N-257 and N-1."""
    n = len(data) // SECTOR
    return [s for s in range(n) if udf.u16(data, s * SECTOR) == 2 and
            udf.u32(data, s * SECTOR + 12) == s]


@case
def main_anchor_zeroed():
    c = ctx()
    backups = [s for s in _anchors(c.data) if s != 256]
    if 256 not in _anchors(c.data) or not backups:
        raise RuntimeError(f"precondition: anchors at 256 and a backup, found {_anchors(c.data)}")
    p = isolayout.Patch(c.data)
    p.put(256 * SECTOR, bytes(SECTOR), "anchor at 256")
    # The backup anchors (N-257, N-1) remain: ECMA-167 3/8.4.2.1 has readers use them,
    # and nothing else is damaged, so the whole tree must read as the source.
    return _save("main_anchor_zeroed", p), hostile.Expect(
        c.tree, note=f"the anchor at sector 256 is zeroed; backups at {backups} remain")


@case
def lvd_broken_reserve_intact():
    c = ctx()
    a = c.lay.anchor
    res_len, res_loc = udf.u32(c.data, a + 24), udf.u32(c.data, a + 28)
    reserve = [udf.u16(c.data, (res_loc + i) * SECTOR) for i in range(res_len // SECTOR)]
    if 6 not in reserve or c.lay.lvd_off // SECTOR in range(res_loc, res_loc + len(reserve)):
        raise RuntimeError(f"precondition: a logical volume descriptor in the reserve "
                           f"sequence (tags there: {reserve})")
    p = isolayout.Patch(c.data)
    # The main sequence's logical volume descriptor: garbage after its tag (the CRC
    # no longer matches) and a wrong tag checksum.
    p.put(c.lay.lvd_off + 16, random.Random(5).randbytes(400), "main LVD body")
    p.put(c.lay.lvd_off + 4, bytes([c.data[c.lay.lvd_off + 4] ^ 0x33]), "main LVD tag checksum")
    return _save("lvd_broken_reserve_intact", p), hostile.Expect(
        c.tree, note="the main sequence's logical volume descriptor is damaged; the reserve "
                     "sequence is intact")


@case
def all_anchors_zeroed():
    c = ctx()
    p = isolayout.Patch(c.data)
    anchors = _anchors(c.data)
    if len(anchors) < 2:
        raise RuntimeError(f"precondition: backup anchors expected, found {anchors}")
    for s in anchors:
        p.put(s * SECTOR, bytes(SECTOR), f"anchor at {s}")
    return _save("all_anchors_zeroed", p), hostile.Expect(
        c.tree, refuse=env.EXIT_NOT_AN_IMAGE,
        note="every anchor volume descriptor pointer is zeroed: no UDF volume is left")


class HostileUdf(unittest.TestCase):
    """One _dump and one _mount test per case."""


CASES.add_tests(HostileUdf, M)


NOBODY = 65534


class HiddenAndOwners(unittest.TestCase):
    """Two things a well-formed image may hold, put in by patching the base image:
    a FID with the hidden bit (ECMA-167 4/14.4.3: the kernel's udf driver leaves it
    out of listings and lookups, and so must discfs) and a file entry whose uid/gid
    are -1 ("not set", 4/14.9.3: shown as the mounting user), next to one whose
    owner is set (1234:5678: shown as recorded)."""

    HIDDEN, UNSET, SET = "/keep.txt", "/hello.txt", "/empty"

    @classmethod
    def setUpClass(cls):
        c = ctx()
        p = isolayout.Patch(c.data)
        e = c.entry(cls.HIDDEN)
        p.put(e.fid_off + 18, bytes([c.data[e.fid_off + 18] | 0x01]), "FID hidden bit")
        udf.seal_tag(p.buf, e.fid_off)
        root = c.entry("/")
        if root.alloc_type == 3:                 # the FID lives inside the root's entry
            udf.seal_tag(p.buf, root.fe_off)
        for path, uid, gid in ((cls.UNSET, 0xFFFFFFFF, 0xFFFFFFFF), (cls.SET, 1234, 5678)):
            f = c.entry(path)
            p.put(f.fe_off + 36, uid.to_bytes(4, "little") + gid.to_bytes(4, "little"),
                  f"uid/gid of {path}")
            udf.seal_tag(p.buf, f.fe_off)
        d = M.sub("hidden-owners")
        os.chmod(M.path, 0o711)
        os.chmod(d, 0o755)
        cls.img = p.write(os.path.join(d, "hidden_owners.udf"))
        os.chmod(cls.img, 0o644)
        cls.want = {q: r for q, r in c.tree.items() if q != cls.HIDDEN}

    def test_dump(self):
        d = dump.dump(self.img)
        lines = trees.diff(self.want, d.records, fields=("type", "size", "sha256"))
        self.assertFalse(lines, "the hidden entry must be left out, the rest read:\n" +
                         "\n".join(lines))
        self.assertEqual((d.records[self.UNSET].uid, d.records[self.UNSET].gid), (0, 0),
                         "an unset owner (-1) is dumped as 0")
        self.assertEqual((d.records[self.SET].uid, d.records[self.SET].gid), (1234, 5678))

    def test_mount_as_another_user(self):
        mount.require_fuse(self, user=(NOBODY, NOBODY))
        mnt = M.sub("mnt-hidden-owners")
        os.chown(mnt, NOBODY, NOBODY)
        names = [self.UNSET, self.SET, self.HIDDEN]
        script = ("import os,sys,json\nout={}\n"
                  "for p in sys.argv[2:]:\n"
                  "  try:\n    st=os.lstat(sys.argv[1]+p); out[p]=[st.st_uid,st.st_gid]\n"
                  "  except OSError as e:\n    out[p]=e.errno\n"
                  "out['ls']=sorted(os.listdir(sys.argv[1]))\nprint(json.dumps(out))\n")
        with mount.Mount(self.img, mnt, user=(NOBODY, NOBODY)):
            r = env.run(mount.as_user(NOBODY, NOBODY, [env.PYTHON, "-c", script, mnt] + names),
                        check=False)
        self.assertEqual(r.returncode, 0, env.txt(r.stderr))
        got = json.loads(env.txt(r.stdout))
        self.assertEqual(got[self.UNSET], [NOBODY, NOBODY],
                         "an unset owner shows as the mounting user")
        self.assertEqual(got[self.SET], [1234, 5678], "a recorded owner shows as recorded")
        self.assertEqual(got[self.HIDDEN], errno.ENOENT, "a hidden entry cannot be looked up")
        want_top = sorted(q[1:] for q in self.want if q.count("/") == 1 and q != "/")
        self.assertEqual(got["ls"], want_top, "the root listing leaves the hidden entry out")


class BaseImageIntact(unittest.TestCase):
    """The undamaged base image reads exactly as the source (precondition for the rest)."""

    def test_dump(self):
        c = ctx()
        d = dump.dump(c.img)
        lines = trees.diff(c.tree, d.records, fields=("type", "size", "sha256"))
        self.assertFalse(lines, "\n".join(lines))


class Fallbacks(unittest.TestCase):
    """The damaged volume structure is really stepped over, and said so where it is one
    of two copies of a sequence (the anchors have no log line: finding one is the norm)."""

    def test_main_anchor_zeroed_reads_everything(self):
        img, exp = CASES.build("main_anchor_zeroed")
        with open(img, "rb") as f:
            data = f.read()
        self.assertNotIn(256, _anchors(data), "precondition: no anchor at 256")
        d = dump.dump(img)
        lines = trees.diff(exp.tree, d.records, fields=("type", "size", "sha256"))
        self.assertFalse(lines, "read through the backup anchors:\n" + "\n".join(lines))

    def test_lvd_broken_says_reserve(self):
        img, exp = CASES.build("lvd_broken_reserve_intact")
        d = dump.dump(img)
        lines = trees.diff(exp.tree, d.records, fields=("type", "size", "sha256"))
        self.assertFalse(lines, "read through the reserve sequence:\n" + "\n".join(lines))
        self.assertIn("reserve", d.stderr, "one log line says the reserve copy is read\n"
                                           f"stderr: {d.stderr[-1500:]}")
        self.assertLessEqual(len(d.stderr.strip().splitlines()), 3,
                             f"a few lines, not a flood:\n{d.stderr[-1500:]}")


if __name__ == "__main__":
    unittest.main()
