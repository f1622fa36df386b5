"""An ISO 9660 layout parser and a byte patcher, to corrupt images on purpose.

IsoImage parses an image in Python (volume descriptors, directory records, SUSP/Rock
Ridge entries including continuation areas) so that a test can find the byte offsets of
the fields it corrupts.  It is only used to *locate* bytes: expected values come from the
source tree an image was made from, or from independent readers.
"""

import struct

from testlib import readers

SECTOR = 2048


def both16(v):
    return struct.pack("<H", v) + struct.pack(">H", v)


def both32(v):
    return struct.pack("<I", v) + struct.pack(">I", v)


def u32le(b, off):
    return struct.unpack_from("<I", b, off)[0]


class Susp:
    """One SUSP entry: signature, absolute offset of its first byte, its bytes."""

    def __init__(self, sig, off, raw):
        self.sig, self.off, self.raw = sig, off, raw

    def __repr__(self):
        return f"Susp({self.sig!r}@{self.off}, {len(self.raw)} bytes)"


class Record:
    """One directory record as found on the image."""

    def __init__(self, data, off, parent_path, parent_extent):
        self.off = off
        self.length = data[off]
        rec = data[off:off + self.length]
        self.raw = rec
        self.ext_attr_len = rec[1]
        self.extent = u32le(rec, 2)
        self.size = u32le(rec, 10)
        self.flags = rec[25]
        self.name_len = rec[32]
        self.name = rec[33:33 + self.name_len]
        self.su_off = off + 33 + self.name_len + (1 if self.name_len % 2 == 0 else 0)
        self.parent_path = parent_path
        self.parent_extent = parent_extent
        self.susp = []          # entries in the record and in its continuation areas
        self.ce_areas = []      # (block, offset, length) followed
        self.rr_name = None     # bytes, from NM entries
        self.path = None

    @property
    def is_dir(self):
        return bool(self.flags & 2)

    @property
    def is_dot(self):
        return self.name_len == 1 and self.name in (b"\x00", b"\x01")

    @property
    def iso_name(self):
        return self.name.decode("latin-1")

    def entries(self, sig):
        return [e for e in self.susp if e.sig == sig]

    joliet = False

    def shown_name(self):
        if self.joliet:
            return readers.iso_name_shown(self.name.decode("utf-16-be", "surrogatepass"))
        if self.rr_name is not None:
            return self.rr_name.decode("utf-8", "surrogateescape")
        return readers.iso_name_shown(self.iso_name)

    def __repr__(self):
        return (f"Record({self.path!r} off={self.off} len={self.length} extent={self.extent} "
                f"size={self.size} flags={self.flags:#x})")


class IsoImage:
    """A parsed image: primary volume descriptor and the primary directory tree.

    records: {path: [Record, ...]} (several for multi-extent files), paths from
    Rock Ridge NM names when present, else ISO names as discfs shows them.
    dirs: {path: [every Record of that directory in disc order, '.' and '..' included]}
    dir_extent: {path: (extent, size)}."""

    def __init__(self, path_or_bytes, joliet=False):
        self.joliet = joliet
        if isinstance(path_or_bytes, (bytes, bytearray)):
            self.data = bytes(path_or_bytes)
        else:
            with open(path_or_bytes, "rb") as f:
                self.data = f.read()
        d = self.data
        pvd = d[16 * SECTOR:17 * SECTOR]
        if pvd[1:6] != b"CD001" or pvd[0] != 1:
            raise ValueError("no primary volume descriptor at sector 16")
        self.volume_blocks = u32le(pvd, 80)
        self.root_extent = u32le(pvd, 156 + 2)
        self.root_size = u32le(pvd, 156 + 10)
        self.descriptors = []
        n = 16
        while (n + 1) * SECTOR <= len(d):
            vd = d[n * SECTOR:(n + 1) * SECTOR]
            if vd[1:6] != b"CD001":
                break
            self.descriptors.append((n, vd[0]))
            if vd[0] == 255:
                break
            n += 1
        if joliet:
            svd = next((n for n, t in self.descriptors if t == 2 and
                        d[n * SECTOR + 88:n * SECTOR + 91] in (b"%/@", b"%/C", b"%/E")), None)
            if svd is None:
                raise ValueError("no Joliet supplementary volume descriptor")
            self.root_extent = u32le(d, svd * SECTOR + 156 + 2)
            self.root_size = u32le(d, svd * SECTOR + 156 + 10)
        self.records = {}
        self.dirs = {}
        self.dir_extent = {"/": (self.root_extent, self.root_size)}
        self.su_skip = 0
        self.has_rr = False
        root_dot = Record(d, self.root_extent * SECTOR, None, self.root_extent)
        self._parse_susp(root_dot, skip=0)
        for e in root_dot.susp:
            if e.sig == "SP":
                self.has_rr = True
                self.su_skip = e.raw[6]
        self._walk("/", self.root_extent, self.root_size, depth=0)

    # -- SUSP ---------------------------------------------------------------

    def _parse_area(self, rec, start, end, queue):
        d = self.data
        pos = start
        while pos + 4 <= end:
            sig = d[pos:pos + 2].decode("latin-1")
            ln = d[pos + 2]
            if ln < 4 or pos + ln > end:
                break
            raw = d[pos:pos + ln]
            rec.susp.append(Susp(sig, pos, raw))
            if sig == "CE" and ln >= 28:
                queue.append((u32le(raw, 4), u32le(raw, 12), u32le(raw, 20)))
            if sig == "ST":
                break
            pos += ln

    def _parse_susp(self, rec, skip):
        queue = []
        self._parse_area(rec, rec.su_off + skip, rec.off + rec.length, queue)
        seen = set()
        while queue and len(seen) < 16:
            blk, off, ln = queue.pop(0)
            if (blk, off) in seen:
                break
            seen.add((blk, off))
            start = blk * SECTOR + off
            if start + ln > len(self.data):
                break
            rec.ce_areas.append((blk, off, ln))
            self._parse_area(rec, start, start + ln, queue)
        name = b""
        have = False
        for e in rec.susp:
            if e.sig == "NM" and len(e.raw) >= 5:
                have = True
                name += e.raw[5:]
        if have:
            rec.rr_name = name

    # -- directories ----------------------------------------------------------

    def _walk(self, path, extent, size, depth):
        if depth > 20:
            raise ValueError("directory tree too deep (loop?) while parsing " + path)
        d = self.data
        recs = []
        begin = extent * SECTOR
        end = begin + size
        pos = begin
        while pos < end:
            ln = d[pos]
            if ln == 0:
                pos = (pos // SECTOR + 1) * SECTOR
                continue
            r = Record(d, pos, path, extent)
            if self.joliet:
                r.joliet = True
            else:
                is_root_dot = (path == "/" and r.name == b"\x00")
                self._parse_susp(r, skip=0 if is_root_dot else self.su_skip)
            recs.append(r)
            pos += ln
        self.dirs[path] = recs
        for r in recs:
            if r.is_dot:
                continue
            if r.entries("RE"):
                continue          # relocated directory: reached through its CL entry
            child = (path.rstrip("/") + "/" + r.shown_name())
            r.path = child
            self.records.setdefault(child, []).append(r)
        for r in recs:
            if r.is_dot or r.path is None:
                continue
            if r.is_dir and self.records[r.path][0] is r:
                self.dir_extent[r.path] = (r.extent, r.size)
                self._walk(r.path, r.extent, r.size, depth + 1)

    # -- queries -------------------------------------------------------------

    def has_joliet(self):
        """A supplementary volume descriptor with a UCS-2 escape sequence."""
        for n, t in self.descriptors:
            vd = self.data[n * SECTOR:(n + 1) * SECTOR]
            if t == 2 and vd[88:91] in (b"%/@", b"%/C", b"%/E"):
                return True
        return False

    def record(self, path):
        recs = self.records[path]
        assert len(recs) == 1, f"{path} has {len(recs)} records"
        return recs[0]

    def children(self, dir_path):
        """Non-dot records of a directory, in disc order."""
        return [r for r in self.dirs[dir_path] if not r.is_dot]

    def dot(self, dir_path):
        return self.dirs[dir_path][0]

    def file_span(self, path):
        """(first byte, end byte) of a file's data on the image."""
        recs = self.records[path]
        start = min(r.extent * SECTOR for r in recs)
        end = max(r.extent * SECTOR + r.size for r in recs)
        return start, end

    def dir_span(self, path):
        extent, size = self.dir_extent[path]
        return extent * SECTOR, extent * SECTOR + size


class Patch:
    """A byte image being corrupted: a mutable copy plus a log of what changed."""

    def __init__(self, data):
        self.buf = bytearray(data)
        self.log = []

    def put(self, off, b, why=""):
        if off < 0 or off + len(b) > len(self.buf):
            raise ValueError(f"patch at {off} (+{len(b)}) outside the image")
        self.buf[off:off + len(b)] = b
        self.log.append(f"{why or 'bytes'} @ {off}: {bytes(b).hex()}")

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.buf)
        return path


# --------------------------------------------------------------------------
# zisofs (the per-file header written by mkzftree / libisofs)
# --------------------------------------------------------------------------

ZISOFS_MAGIC = bytes.fromhex("37e45396c9dbd607")


class ZisofsHeader:
    def __init__(self, data, start):
        if data[start:start + 8] != ZISOFS_MAGIC:
            raise ValueError("no zisofs header at %d" % start)
        self.start = start
        self.usize = u32le(data, start + 8)
        self.header_words = data[start + 12]
        self.log2_block = data[start + 13]
        bs = 1 << self.log2_block
        self.nblocks = (self.usize + bs - 1) // bs
        self.ptr_off = start + self.header_words * 4
        self.pointers = [u32le(data, self.ptr_off + 4 * i) for i in range(self.nblocks + 1)]

    def pointer_offset(self, i):
        return self.ptr_off + 4 * i
