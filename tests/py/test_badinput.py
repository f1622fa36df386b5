"""Hostile, damaged and non-image input: discfs-dump and a real FUSE mount.

Images are made at test time with xorriso from a small source tree and then
corrupted byte by byte; the bytes to patch are found by parsing the image in
Python (isolayout.IsoImage), never by asking discfs.  What a case expects comes
from the source tree and from where the damage is:

- nothing crashes, hangs (every command runs under a 60 s hang guard) or
  prints a sanitizer report ("ERROR: AddressSanitizer", "runtime error:");
- the damaged entry is still listed and reads as EIO (`cat` fails with
  "Input/output error"; discfs-dump puts an "error" on it), and the daemon's
  log names it;
- every undamaged entry is listed with the source's type, size, content and
  symlink target;
- names never escape: no component "", ".", "..", with "/" or NUL, none over
  255 bytes, every listed name can be looked up, "." and ".." once each;
- a directory loop never makes the tree endless;
- what is not an image is refused at once with exit 4 (3 when it cannot be
  read: a missing path, a directory, a device or FIFO) and a one-line message, and
  nothing is mounted.

The cases (HostileImages, one _dump and one _mount test each; CASES below):
truncations (inside the PVD, right after it, inside the root directory,
inside the last directory, inside file data, at a sector boundary, one byte
short of the last file), random bytes behind a valid PVD signature, a random
root record, directories that contain themselves / the root / their
grandparent, a directory extent past the end and a directory of 4 GiB, file
extents past the end and at LBA 0xFFFFFFFF, a 4 GiB file size, directory
record lengths 0/1/255/across the sector end and an overlong name length,
a CE area holding a CE that points at itself, a CE past the end, a CE loop in
the root's ER area, Rock Ridge NM names "/", ".", "..", "x/y", "n<NUL>m",
"../etc" and a directory named "..", Joliet names "..", "c/" and "e<NUL>",
zisofs files with bad block pointers (past the end, decreasing, shifted), a
bad block size in the file header and in ZF, a ZF size of 4 GiB, and the
multi-extent flag on the last record of a directory and before a record of
another name.  NotAnImage: empty file, random bytes of 8 sizes, zeros, an
xz-compressed image, a missing path, a directory, /dev/null and a FIFO, each
through discfs-dump, `discfs mount -f`, `discfs mount` and `discfs SRC MNT`.

Run: /usr/bin/python3 -m testlib -v test_badinput   (from tests/py)
"""

import os
import random
import subprocess
import unittest

from testlib import dump, env, hostile, images, isolayout, mount, readers, sanitizers, sources
from testlib import trees

SECTOR = isolayout.SECTOR
LONG_NAME = "long_" + "n" * 170 + ".txt"          # NM continues in a CE area
# name in the source -> hostile NM of the same length
NAMES = {
    "s": b"/",
    "e": b".",
    "bb": b"..",
    "ccc": b"x/y",
    "ddd": b"n\x00m",
    "escape": b"../etc",
}
MANY = 80

M = env.ModuleFixture("discfs-badinput-", binaries=("discfs-dump", "discfs"),
                      tools=("xorriso", "xz", "find", "ls", "cat"))
setUpModule, tearDownModule = M.set_up, M.tear_down
_ctx = None


# ---------------------------------------------------------------------------
# Source trees and base images
# ---------------------------------------------------------------------------

def build_plain_source(root):
    r = random.Random(1234)
    sources.write(root, "hello.txt", b"hello, world\n")
    sources.write(root, "data.bin", r.randbytes(5000))
    sources.write(root, "empty", b"")
    sources.write(root, "docs/readme.txt", b"read me first\n" * 60)
    sources.write(root, "docs/notes.md", r.randbytes(3000))
    sources.write(root, "docs/big.bin", r.randbytes(70000))
    sources.write(root, "docs/" + LONG_NAME, b"a file whose name continues in a CE area\n")
    sources.write(root, "docs/zz_last.txt", b"the last record of /docs\n")
    sources.write(root, "loopdir/inner.txt", b"inside loopdir\n")
    sources.write(root, "loopdir/sub/deep.txt", b"inside loopdir/sub\n")
    sources.write(root, "loopdir/sub/back/x.txt", b"inside loopdir/sub/back\n")
    for name in NAMES:
        sources.write(root, "names/" + name, ("content of %s\n" % name).encode())
    sources.write(root, "names/keep.txt", b"an innocent neighbour\n")
    sources.write(root, "names/dd/inside.txt", b"inside a directory renamed to ..\n")
    for i in range(MANY):
        sources.write(root, "many/file_%03d_with_a_longer_name.dat" % i, b"many %03d\n" % i)
    os.symlink("hello.txt", os.path.join(root, "link_rel"))
    os.symlink("/".join("comp%03d" % i for i in range(40)), os.path.join(root, "long_link"))
    sources.set_dir_times(root)


def build_zisofs_source(root):
    def text(seed, n):
        r = random.Random(seed)
        words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta"]
        out = bytearray()
        while len(out) < n:
            out += b" ".join(r.choice(words) for _ in range(12)) + b"\n"
        return bytes(out[:n])
    for i, name in enumerate(("z_ptr_past_end", "z_ptr_decreasing", "z_ptr_shifted",
                              "z_hdr_block_log2", "z_zf_block_log2", "z_zf_huge_size",
                              "z_intact_a", "z_intact_b")):
        sources.write(root, "z/%s.txt" % name, text(i, 200000 + 7 * i))
    sources.write(root, "plain.txt", b"small, stored plainly\n")
    sources.set_dir_times(root)


class Context:
    """Base images, their layout and the source tree they were made from."""

    def __init__(self):
        base = M.sub("base")
        self.src = os.path.join(base, "src")
        build_plain_source(self.src)
        self.tree = trees.walk(self.src)
        self.rr_iso = os.path.join(base, "rr.iso")
        # Rock Ridge, no Joliet: one directory tree to corrupt.
        env.run(["xorriso", "-as", "mkisofs", "-R", "-V", "HOSTILE", "-o", self.rr_iso, self.src])
        with open(self.rr_iso, "rb") as f:
            self.rr = f.read()
        self.rr_layout = isolayout.IsoImage(self.rr)
        missing = set(self.tree) - set(self.rr_layout.records) - {"/"}
        if missing:
            raise RuntimeError(f"precondition: the parser does not see {sorted(missing)[:5]}")
        self.zsrc = os.path.join(base, "zsrc")
        build_zisofs_source(self.zsrc)
        self.ztree = trees.walk(self.zsrc)
        self.z_iso = images.make_zisofs(os.path.join(base, "z.iso"), self.zsrc)
        with open(self.z_iso, "rb") as f:
            self.z = f.read()
        self.z_layout = isolayout.IsoImage(self.z)
        self.compressed = readers.zisofs_files(self.z_iso)
        want = {p for p in self.ztree if p.startswith("/z/")} - {"/z"}
        if not want <= self.compressed:
            raise RuntimeError(f"precondition: zisofs-compressed files expected, got "
                               f"{sorted(self.compressed)}")
        self.jsrc = os.path.join(base, "jsrc")
        for n in ("ab", "cd", "ef", "keep"):
            sources.write(self.jsrc, "jdir/" + n, ("joliet %s\n" % n).encode())
        sources.set_dir_times(self.jsrc)
        self.jtree = trees.walk(self.jsrc)
        self.j_iso = os.path.join(base, "joliet.iso")
        # Joliet only (no Rock Ridge): discfs shows the Joliet tree.
        env.run(["xorriso", "-as", "mkisofs", "-J", "-V", "HOSTILE_J", "-o", self.j_iso,
                 self.jsrc])
        with open(self.j_iso, "rb") as f:
            self.j = f.read()
        self.j_layout = isolayout.IsoImage(self.j, joliet=True)
        self.cases = os.path.join(M.path, "cases")
        os.makedirs(self.cases, exist_ok=True)


def ctx():
    global _ctx
    if _ctx is None:
        _ctx = Context()
    return _ctx


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

CASES = hostile.Cases()
case = CASES.case


def _save(name, data):
    path = os.path.join(ctx().cases, name + ".iso")
    if isinstance(data, isolayout.Patch):
        return data.write(path)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _files_with_data(layout, tree):
    return {p: layout.file_span(p) for p, r in tree.items()
            if r.type == "reg" and p in layout.records}


def _truncated(name, cut, note):
    c = ctx()
    lay, tree = c.rr_layout, c.tree
    img = _save(name, c.rr[:cut])
    root_start, root_end = lay.dir_span("/")
    if cut < root_end:
        # The root directory itself is gone or cut: refusing is right; if discfs opens it
        # anyway, the root must at least be usable (everything below it is fragile).
        # (discfs reports a root past the end of the file as no readable image: exit 4)
        return img, hostile.Expect(tree, refuse=env.EXIT_NOT_AN_IMAGE, may_open=cut >= root_start,
                                   note=note)
    eio_files, eio_dirs, fragile = set(), set(), {}
    for p, (s, e) in _files_with_data(lay, tree).items():
        if tree[p].size and e > cut:
            eio_files.add(p)
    for p in lay.dir_extent:
        s, e = lay.dir_span(p)
        if p == "/":
            continue
        if s >= cut:
            eio_dirs.add(p)
        elif e > cut:
            fragile[p] = {q for q in tree if q.startswith(p + "/")}
    replaceable = set()
    for p, recs in lay.records.items():
        for r in recs:
            if any(b * SECTOR + o + n > cut for b, o, n in r.ce_areas):
                replaceable.add(p)
    return img, hostile.Expect(tree, eio_files=eio_files, eio_dirs=eio_dirs, fragile=fragile,
                               fragile_listing=set(fragile), replaceable=replaceable, note=note)


@case
def truncated_inside_pvd():
    return _truncated("truncated_inside_pvd", 16 * SECTOR + 1000,
                      "cut 1000 bytes into the primary volume descriptor")


@case
def truncated_after_pvd():
    return _truncated("truncated_after_pvd", 17 * SECTOR + 1,
                      "cut one byte into the descriptor after the PVD")


@case
def truncated_inside_root_directory():
    s, _ = ctx().rr_layout.dir_span("/")
    return _truncated("truncated_inside_root_directory", s + 700,
                      "cut 700 bytes into the root directory")


@case
def truncated_inside_last_directory():
    lay = ctx().rr_layout
    last = max((p for p in lay.dir_extent if p != "/"), key=lambda p: lay.dir_span(p)[0])
    s, e = lay.dir_span(last)
    return _truncated("truncated_inside_last_directory", s + (e - s) // 2 + 11,
                      f"cut in the middle of the directory {last}")


@case
def truncated_inside_file_data():
    s, e = ctx().rr_layout.file_span("/docs/big.bin")
    return _truncated("truncated_inside_file_data", s + (e - s) // 2 + 3,
                      "cut in the middle of /docs/big.bin's data")


@case
def truncated_at_sector_boundary_in_file_area():
    lay, tree = ctx().rr_layout, ctx().tree
    spans = sorted(e for p, (s, e) in _files_with_data(lay, tree).items() if tree[p].size)
    cut = (spans[len(spans) // 2] + SECTOR - 1) // SECTOR * SECTOR
    return _truncated("truncated_at_sector_boundary_in_file_area", cut,
                      "cut at a sector boundary right after a file's data")


@case
def truncated_one_byte_short_of_last_file():
    lay, tree = ctx().rr_layout, ctx().tree
    end = max(e for p, (s, e) in _files_with_data(lay, tree).items() if tree[p].size)
    return _truncated("truncated_one_byte_short_of_last_file", end - 1,
                      "cut one byte before the end of the last file's data")


@case
def random_bytes_with_cd001_signature():
    r = random.Random(99)
    buf = bytearray(r.randbytes(40 * SECTOR))
    buf[16 * SECTOR:16 * SECTOR + 7] = b"\x01CD001\x01"
    buf[17 * SECTOR:17 * SECTOR + 7] = b"\xffCD001\x01"
    return _save("random_bytes_with_cd001_signature", bytes(buf)), \
        hostile.Expect({}, refuse=env.EXIT_UNSUPPORTED, may_open=True,
                       note="random bytes with a PVD signature at sector 16 and a terminator "
                            "(its logical block size is not 2048: unsupported)")


def _pvd_random_root(seed):
    """A real image whose root directory record in the PVD is random."""
    c = ctx()
    p = isolayout.Patch(c.rr)
    r = random.Random(seed)
    p.put(16 * SECTOR + 156, bytes([34]) + r.randbytes(33), "random root record")
    return p


@case
def pvd_random_root_record():
    return _save("pvd_random_root_record", _pvd_random_root(5)), \
        hostile.Expect({}, refuse=env.EXIT_NOT_AN_IMAGE, may_open=True,
                       note="the PVD's root directory record is random bytes")


# -- directory loops -------------------------------------------------------------

def _point_dir(name, rec_path, target_dir, note, expect_kw):
    c = ctx()
    lay = c.rr_layout
    rec = lay.record(rec_path)
    ext, size = lay.dir_extent[target_dir]
    p = isolayout.Patch(c.rr)
    p.put(rec.off + 2, isolayout.both32(ext), "extent")
    p.put(rec.off + 10, isolayout.both32(size), "data length")
    return _save(name, p), hostile.Expect(c.tree, **expect_kw, note=note)


@case
def dir_contains_itself():
    return _point_dir("dir_contains_itself", "/loopdir/sub", "/loopdir",
                      "/loopdir/sub's record points at /loopdir's own extent",
                      dict(loops={"/loopdir/sub"}))


@case
def dir_contains_root():
    return _point_dir("dir_contains_root", "/loopdir/sub", "/",
                      "/loopdir/sub's record points at the root directory",
                      dict(loops={"/loopdir/sub"}))


@case
def dir_contains_grandparent():
    return _point_dir("dir_contains_grandparent", "/loopdir/sub/back", "/loopdir",
                      "/loopdir/sub/back's record points at /loopdir (a loop of two)",
                      dict(loops={"/loopdir/sub/back"}))


@case
def dir_extent_past_end():
    c = ctx()
    rec = c.rr_layout.record("/docs")
    p = isolayout.Patch(c.rr)
    p.put(rec.off + 2, isolayout.both32(c.rr_layout.volume_blocks + 5000), "extent")
    return _save("dir_extent_past_end", p), hostile.Expect(
        c.tree, eio_dirs={"/docs"}, note="/docs's extent lies past the end of the image")


@case
def dir_huge_data_length():
    c = ctx()
    lay = c.rr_layout
    p = isolayout.Patch(c.rr)
    p.put(lay.record("/docs").off + 10, isolayout.both32(0xFFFFFFFF), "data length")
    p.put(lay.dot("/docs").off + 10, isolayout.both32(0xFFFFFFFF), "data length of '.'")
    return _save("dir_huge_data_length", p), hostile.Expect(
        c.tree, eio_dirs={"/docs"},
        note="/docs (its record and its '.' record) claims 4 GiB - 1 bytes")


# -- file extents and sizes --------------------------------------------------------

@case
def file_extent_past_end():
    c = ctx()
    rec = c.rr_layout.record("/docs/readme.txt")
    p = isolayout.Patch(c.rr)
    p.put(rec.off + 2, isolayout.both32(c.rr_layout.volume_blocks + 1000), "extent")
    return _save("file_extent_past_end", p), hostile.Expect(
        c.tree, eio_files={"/docs/readme.txt"},
        note="/docs/readme.txt's extent lies 1000 blocks past the end")


@case
def file_extent_max_lba():
    c = ctx()
    rec = c.rr_layout.record("/docs/notes.md")
    p = isolayout.Patch(c.rr)
    p.put(rec.off + 2, isolayout.both32(0xFFFFFFFF), "extent")
    return _save("file_extent_max_lba", p), hostile.Expect(
        c.tree, eio_files={"/docs/notes.md"}, note="/docs/notes.md's extent is LBA 0xFFFFFFFF")


@case
def file_huge_data_length():
    c = ctx()
    rec = c.rr_layout.record("/data.bin")
    p = isolayout.Patch(c.rr)
    p.put(rec.off + 10, isolayout.both32(0xFFFFFFFF), "data length")
    return _save("file_huge_data_length", p), hostile.Expect(
        c.tree, eio_files={"/data.bin"}, note="/data.bin claims 4 GiB - 1 bytes")


# -- directory record length fields ----------------------------------------------

def _many_sector0():
    lay = ctx().rr_layout
    s, _ = lay.dir_span("/many")
    recs = [r for r in lay.children("/many") if r.off < s + SECTOR]
    if len(recs) < 8 or len(lay.children("/many")) == len(recs):
        raise RuntimeError("precondition: /many spans several sectors with >= 8 records in "
                           "the first")
    return recs


def _reclen_case(name, which, patch_fn, note, extras=0):
    c = ctx()
    recs = _many_sector0()
    k = {"middle": len(recs) // 2, "last": len(recs) - 1}[which]
    rec = recs[k]
    p = isolayout.Patch(c.rr)
    patch_fn(p, rec)
    # Records from the damaged one to the end of its sector may be lost; everything before
    # it and every other sector of /many must be intact.
    lost = {r.path for r in recs[k:]}
    return _save(name, p), hostile.Expect(c.tree, fragile={"/many": lost},
                                          extras={"/many": extras} if extras else None,
                                          note=note + f" (record {k} of /many's first sector, "
                                          f"{rec.path})")


@case
def record_length_0():
    return _reclen_case("record_length_0", "middle",
                        lambda p, r: p.put(r.off, b"\x00", "length 0"),
                        "a directory record length of 0 in the middle of a sector")


@case
def record_length_1():
    return _reclen_case("record_length_1", "middle",
                        lambda p, r: p.put(r.off, b"\x01", "length 1"),
                        "a directory record length of 1")


@case
def record_length_255():
    return _reclen_case("record_length_255", "middle",
                        lambda p, r: p.put(r.off, b"\xff", "length 255"),
                        "a directory record length of 255 (longer than the record)", extras=3)


@case
def record_length_crosses_sector():
    def patch(p, r):
        left = SECTOR - (r.off % SECTOR)
        p.put(r.off, bytes([min(255, left + 40)]), "length across the sector end")
    return _reclen_case("record_length_crosses_sector", "last", patch,
                        "the last record of a sector claims a length that crosses into "
                        "the next sector")


@case
def record_name_length_overlong():
    return _reclen_case("record_name_length_overlong", "middle",
                        lambda p, r: p.put(r.off + 32, b"\xff", "name length 255"),
                        "a record's name length (255) runs past the record")


# -- Rock Ridge CE loops and hostile NM names ---------------------------------------

@case
def ce_points_to_itself():
    c = ctx()
    lay = c.rr_layout
    path = "/docs/" + LONG_NAME
    rec = lay.record(path)
    ce = rec.entries("CE")[0]
    blk, off, ln = rec.ce_areas[0]
    area_end = blk * SECTOR + off + ln
    if (area_end + 28) // SECTOR != blk or any(c.rr[area_end:area_end + 28]):
        raise RuntimeError("precondition: room after the CE area for another CE entry")
    p = isolayout.Patch(c.rr)
    # Append a CE entry to the continuation area that points at the area itself, and
    # make the area (as the record's CE describes it) include that entry.
    loop = b"CE\x1c\x01" + isolayout.both32(blk) + isolayout.both32(off) + isolayout.both32(ln + 28)
    p.put(area_end, loop, "CE pointing at its own area")
    p.put(ce.off + 20, isolayout.both32(ln + 28), "CE length")
    return _save("ce_points_to_itself", p), hostile.Expect(
        c.tree, replaceable={path},
        note=f"{path}: its continuation area holds a CE entry that points at that area")


@case
def ce_past_end():
    c = ctx()
    path = "/docs/" + LONG_NAME
    rec = c.rr_layout.record(path)
    ce = rec.entries("CE")[0]
    p = isolayout.Patch(c.rr)
    p.put(ce.off + 4, isolayout.both32(c.rr_layout.volume_blocks + 77), "CE block")
    return _save("ce_past_end", p), hostile.Expect(
        c.tree, replaceable={path}, note=f"{path}: its CE entry points past the end")


@case
def ce_loop_in_root_continuation_area():
    c = ctx()
    lay = c.rr_layout
    dot = lay.dot("/")
    ces = dot.entries("CE")
    if not ces:
        raise RuntimeError("precondition: the root '.' record has a CE entry (for ER)")
    p = isolayout.Patch(c.rr)
    ce = ces[0]
    # The CE now points at the root '.' record's own System Use area: following it finds
    # the same CE again.
    su = dot.su_off
    p.put(ce.off + 4, isolayout.both32(su // SECTOR), "CE block")
    p.put(ce.off + 12, isolayout.both32(su % SECTOR), "CE offset")
    p.put(ce.off + 20, isolayout.both32(dot.off + dot.length - su), "CE length")
    return _save("ce_loop_in_root_continuation_area", p), hostile.Expect(
        c.tree,
        note="the root '.' record's CE (it holds only the ER entry) points back at the "
             "record's own System Use area; SP is intact, so Rock Ridge names must stay")


def _nm_case(name, src_name, bad_name, is_dir=False):
    c = ctx()
    path = "/names/" + src_name
    rec = c.rr_layout.record(path)
    nms = rec.entries("NM")
    if len(nms) != 1 or nms[0].raw[5:] != src_name.encode():
        raise RuntimeError(f"precondition: one NM entry holding {src_name!r} in {path}")
    assert len(bad_name) == len(src_name)
    p = isolayout.Patch(c.rr)
    p.put(nms[0].off + 5, bad_name, "NM name")
    return _save(name, p), hostile.Expect(
        c.tree, replaceable={path},
        note=f"{path}: Rock Ridge NM name patched to {bad_name!r}")


@case
def nm_slash():
    return _nm_case("nm_slash", "s", NAMES["s"])


@case
def nm_dot():
    return _nm_case("nm_dot", "e", NAMES["e"])


@case
def nm_dotdot():
    return _nm_case("nm_dotdot", "bb", NAMES["bb"])


@case
def nm_slash_inside():
    return _nm_case("nm_slash_inside", "ccc", NAMES["ccc"])


@case
def nm_nul_inside():
    return _nm_case("nm_nul_inside", "ddd", NAMES["ddd"])


@case
def nm_dotdot_slash_escape():
    return _nm_case("nm_dotdot_slash_escape", "escape", NAMES["escape"])


@case
def nm_directory_named_dotdot():
    img, exp = _nm_case("nm_directory_named_dotdot", "dd", b"..")
    # The directory's content may show under its replacement name (or not at all).
    exp.replaceable |= {"/names/dd/inside.txt"}
    return img, exp


def _joliet_case(name, src_name, bad_name):
    c = ctx()
    path = "/jdir/" + src_name
    rec = c.j_layout.record(path)
    want = src_name.encode("utf-16-be")
    if rec.name != want:
        raise RuntimeError(f"precondition: the Joliet name of {path} is {src_name!r} "
                           f"(xorriso writes no ';1'), not {rec.name!r}")
    bad = bad_name.encode("utf-16-be")
    assert len(bad) == len(want)
    p = isolayout.Patch(c.j)
    p.put(rec.off + 33, bad, "Joliet name")
    return _save(name, p), hostile.Expect(
        c.jtree, replaceable={path},
        note=f"Joliet-only image: the Joliet name of {path} patched to {bad_name!r}")


@case
def joliet_name_dotdot():
    return _joliet_case("joliet_name_dotdot", "ab", "..")


@case
def joliet_name_with_slash():
    return _joliet_case("joliet_name_with_slash", "cd", "c/")


@case
def joliet_name_with_nul():
    return _joliet_case("joliet_name_with_nul", "ef", "e\x00")


# -- zisofs --------------------------------------------------------------------------

def _zisofs_case(name, file_base, patch_fn, note):
    c = ctx()
    path = "/z/%s.txt" % file_base
    s, _ = c.z_layout.file_span(path)
    hdr = isolayout.ZisofsHeader(c.z, s)
    if hdr.nblocks < 4:
        raise RuntimeError(f"precondition: {path} has >= 4 zisofs blocks")
    p = isolayout.Patch(c.z)
    patch_fn(p, hdr, c.z_layout.record(path))
    return _save(name, p), hostile.Expect(c.ztree, eio_files={path}, note=note)


@case
def zisofs_pointer_past_end():
    return _zisofs_case(
        "zisofs_pointer_past_end", "z_ptr_past_end",
        lambda p, h, r: p.put(h.pointer_offset(2), struct_le(0xFFFFFFF0), "block pointer 2"),
        "block pointer 2 of a zisofs file points 4 GiB past its start")


@case
def zisofs_pointer_decreasing():
    return _zisofs_case(
        "zisofs_pointer_decreasing", "z_ptr_decreasing",
        lambda p, h, r: p.put(h.pointer_offset(2), struct_le(h.pointers[1] - 100),
                              "block pointer 2"),
        "block pointer 2 is smaller than block pointer 1")


@case
def zisofs_pointer_shifted():
    return _zisofs_case(
        "zisofs_pointer_shifted", "z_ptr_shifted",
        lambda p, h, r: p.put(h.pointer_offset(1), struct_le(h.pointers[1] + 1),
                              "block pointer 1"),
        "block pointer 1 moved by one byte: blocks 0 and 1 are no zlib streams")


@case
def zisofs_header_block_size():
    return _zisofs_case(
        "zisofs_header_block_size", "z_hdr_block_log2",
        lambda p, h, r: p.put(h.start + 13, b"\x1f", "log2 block size 31"),
        "the zisofs file header claims 2^31-byte blocks")


def _zf(rec):
    zfs = rec.entries("ZF")
    if len(zfs) != 1:
        raise RuntimeError("precondition: one ZF entry")
    return zfs[0]


@case
def zisofs_zf_block_size():
    return _zisofs_case(
        "zisofs_zf_block_size", "z_zf_block_log2",
        lambda p, h, r: p.put(_zf(r).off + 7, b"\x1f", "ZF log2 block size 31"),
        "the Rock Ridge ZF entry claims 2^31-byte blocks")


@case
def zisofs_zf_huge_size():
    return _zisofs_case(
        "zisofs_zf_huge_size", "z_zf_huge_size",
        lambda p, h, r: p.put(_zf(r).off + 8, isolayout.both32(0xFFFFFFFF), "ZF uncompressed size"),
        "the ZF entry claims 4 GiB - 1 uncompressed bytes (the file header says ~200 KB)")


def struct_le(v):
    return (v & 0xFFFFFFFF).to_bytes(4, "little")


# -- multi-extent flags -----------------------------------------------------------

@case
def multi_extent_flag_on_last_record():
    c = ctx()
    last = c.rr_layout.children("/docs")[-1]
    if last.path != "/docs/zz_last.txt":
        raise RuntimeError(f"precondition: /docs/zz_last.txt is /docs's last record, not "
                           f"{last.path}")
    p = isolayout.Patch(c.rr)
    p.put(last.off + 25, bytes([last.flags | 0x80]), "multi-extent flag")
    return _save("multi_extent_flag_on_last_record", p), hostile.Expect(
        c.tree, maybe_eio={last.path},
        note="/docs's last record has the multi-extent flag, and no record follows")


@case
def multi_extent_flag_before_other_name():
    c = ctx()
    kids = c.rr_layout.children("/docs")
    i = next(n for n, r in enumerate(kids) if r.path == "/docs/notes.md")
    nxt = kids[i + 1]
    if nxt.iso_name == kids[i].iso_name or nxt.is_dir:
        raise RuntimeError("precondition: a file with another name follows /docs/notes.md")
    p = isolayout.Patch(c.rr)
    p.put(kids[i].off + 25, bytes([kids[i].flags | 0x80]), "multi-extent flag")
    return _save("multi_extent_flag_before_other_name", p), hostile.Expect(
        c.tree, maybe_eio={"/docs/notes.md"},
        note=f"/docs/notes.md has the multi-extent flag, but the next record is another "
             f"file ({nxt.path}), which must stay itself")


# ---------------------------------------------------------------------------
# Generated tests: test_<case>_dump and test_<case>_mount
# ---------------------------------------------------------------------------

class HostileImages(unittest.TestCase):
    """One dump test and one mount test per hostile image (see CASES)."""


CASES.add_tests(HostileImages, M)


# ---------------------------------------------------------------------------
# Not an image at all
# ---------------------------------------------------------------------------

class NotAnImage(unittest.TestCase):
    """Sources that are not ISO 9660 images: refused at once, one line, nothing mounted."""

    RANDOM_SIZES = (1, 100, 2047, 2048, 16 * SECTOR, 17 * SECTOR, 65536, 1 << 20)

    def refused_everywhere(self, source, code, what):
        # discfs-dump
        d = dump.run(source)
        rep = d.sanitizer()
        self.assertIsNone(rep, f"{what}: sanitizer report from discfs-dump: {rep}")
        self.assertEqual(d.returncode, code, f"{what}: discfs-dump exit code\n{d.describe()}")
        self.assertFalse(d.records, f"{what}: discfs-dump printed records for a non-image")
        if mount.fuse_unavailable_reason():
            return
        # Every form of mount: foreground, daemonizing, mount.fuse3 style.
        for form in ("mount -f", "mount", "fuse3"):
            with self.subTest(source=what, form=form):
                mnt = M.sub("mnt-refuse")
                if form == "mount -f":
                    with mount.Mount(source, mnt, env=sanitizers.without_leak_check(),
                                     report=True) as m:
                        pass
                    rc, err = m.refused, m.stderr
                    self.assertFalse(m.live, f"{what}: discfs mounted a non-image")
                    for pr in m.problems:
                        self.fail(f"{what}: {pr}")
                else:
                    cmd = ([env.discfs_bin(), "mount", source, mnt] if form == "mount"
                           else [env.discfs_bin(), source, mnt])
                    p = env.run(cmd, check=False, timeout=hostile.TIMEOUT,
                                env=sanitizers.without_leak_check())
                    rc, err = p.returncode, env.txt(p.stderr) + env.txt(p.stdout)
                    if env.is_mounted(mnt):
                        subprocess.run(["fusermount3", "-uz", mnt])
                        self.fail(f"{what}: `{' '.join(cmd)}` mounted a non-image")
                rep = sanitizers.report(err)
                self.assertIsNone(rep, f"{what}: sanitizer report: {rep}")
                self.assertEqual(rc, code, f"{what}: exit code of `discfs {form}`; output: {err!r}")
                lines = [ln for ln in err.splitlines() if ln.strip()]
                self.assertEqual(len(lines), 1, f"{what}: the refusal must be one line: {lines}")
                self.assertTrue(lines[0].startswith("discfs"), f"{what}: {lines[0]!r}")
                self.assertIn(os.path.basename(source.rstrip("/")), lines[0],
                              f"{what}: the message must name the source")
                self.assertFalse(env.is_mounted(mnt), f"{what}: something is mounted on {mnt}")

    def test_empty_file(self):
        p = os.path.join(M.sub("nonimg"), "empty.iso")
        open(p, "wb").close()
        self.refused_everywhere(p, env.EXIT_NOT_AN_IMAGE, "an empty file")

    def test_random_bytes(self):
        for n in self.RANDOM_SIZES:
            with self.subTest(size=n):
                p = os.path.join(M.sub("nonimg"), "random_%d.iso" % n)
                with open(p, "wb") as f:
                    f.write(random.Random(n).randbytes(n))
                self.refused_everywhere(p, env.EXIT_NOT_AN_IMAGE, f"{n} random bytes")

    def test_zeros(self):
        p = os.path.join(M.sub("nonimg"), "zeros.iso")
        with open(p, "wb") as f:
            f.truncate(64 * SECTOR)
        self.refused_everywhere(p, env.EXIT_NOT_AN_IMAGE, "64 sectors of zeros")

    def test_xz_compressed_image(self):
        c = ctx()
        p = os.path.join(M.sub("nonimg"), "image.iso.xz")
        with open(p, "wb") as f:
            subprocess.run(["xz", "-c", c.rr_iso], stdout=f, check=True, timeout=hostile.TIMEOUT)
        self.refused_everywhere(p, env.EXIT_NOT_AN_IMAGE, "an xz-compressed image")

    def test_nonexistent_source(self):
        p = os.path.join(M.sub("nonimg"), "does-not-exist.iso")
        self.refused_everywhere(p, env.EXIT_CANNOT_OPEN, "a source that does not exist")

    def test_directory_as_source(self):
        p = M.sub("nonimg", "a-directory")
        # A directory is no image file or block device: it cannot be read as one (3).
        self.refused_everywhere(p, env.EXIT_CANNOT_OPEN, "a directory")

    def test_character_device_as_source(self):
        # Not a bad command line (exit 2): the source is there, but no image file or block
        # device, so it cannot be read as an image (3).
        self.refused_everywhere("/dev/null", env.EXIT_CANNOT_OPEN,
                                "a character device (/dev/null)")

    def test_fifo_as_source(self):
        # Nobody ever writes to this FIFO: opening it for reading must not wait for a
        # writer (that is a hang), the source must be refused at once.
        p = os.path.join(M.sub("nonimg"), "a-fifo")
        if not os.path.exists(p):
            os.mkfifo(p)
        self.refused_everywhere(p, env.EXIT_CANNOT_OPEN, "a FIFO")


# ---------------------------------------------------------------------------
# Other defects that are not about one image
# ---------------------------------------------------------------------------

class LeakAtUnmount(unittest.TestCase):
    """The daemon must exit cleanly (no LeakSanitizer report, exit 0) after a walk and an
    unmount, even when the kernel drops RELEASEDIR requests at unmount."""

    ROUNDS = 8

    def test_no_leak_report_after_walk_and_unmount(self):
        mount.require_fuse(self)
        c = ctx()
        leak_env = dict(os.environ)
        leak_env.pop("ASAN_OPTIONS", None)     # leak detection on (the ASan default)
        reports = []
        for i in range(self.ROUNDS):
            mnt = M.sub("mnt-leak")
            with mount.Mount(c.rr_iso, mnt, env=leak_env, report=True) as m:
                self.assertTrue(m.live, f"mount failed: {m.stderr}")
                env.run(["find", mnt, "-type", "f", "-exec", "cat", "{}", "+"], check=False,
                        timeout=hostile.TIMEOUT)
                env.run(["ls", "-lR", mnt], check=False, timeout=hostile.TIMEOUT)
            if m.problems:
                reports.append(f"round {i + 1}: " + "; ".join(pr[:1500] for pr in m.problems))
        self.assertFalse(reports, f"{len(reports)} of {self.ROUNDS} mount/walk/unmount rounds "
                                  f"ended badly:\n" + "\n".join(reports[:2]))


class DumpOutput(unittest.TestCase):
    """discfs-dump's stdout is one JSON object per line, one line per path
    (tests/INTERFACES.md), also when the image is damaged."""

    def test_stdout_is_json_lines_on_damaged_images(self):
        for name in ("record_length_1", "dir_extent_past_end", "ce_points_to_itself"):
            with self.subTest(image=name):
                img, _ = CASES.build(name)
                d = dump.run(img)
                self.assertFalse(d.log_lines + d.bad_lines,
                                 f"{name}: discfs-dump mixes log lines into its JSON output: "
                                 f"{(d.log_lines + d.bad_lines)[:3]}")

    def test_a_failed_directory_is_printed_once(self):
        img, _ = CASES.build("dir_extent_past_end")
        d = dump.run(img)
        lines = [ln for ln in d.stdout.splitlines() if ln.startswith('{"path":"/docs"')]
        self.assertEqual(len(lines), 1, f"/docs is printed {len(lines)} times: {lines}")


if __name__ == "__main__":
    unittest.main()
