"""Independent UDF readers, and a UDF layout parser to locate the bytes a test corrupts.

Nothing here asks discfs anything (the writers are in images.py).  Images are read
back by pycdlib (its UDF side), libudfread (tests/tools/udfread_dump.c),
7-Zip (`7z -tudf`), udfclient (`mget` extraction) and, where the kernel has a
udf driver, `mount -t udf`.  Every reader is asked only what it reports
reliably (see READERS below); a reader that cannot open an image flavour says
so (ReaderUnavailable) and the test skips that comparison with the reason.

READERS (what each one is trusted for):
  pycdlib     names, types (dir/reg/symlink), sizes, content, symlink targets
              (decoded from the path components it returns), mtimes, UDF
              permissions, uid/gid, link counts -- for images pycdlib can open
              (they need an ISO 9660 volume descriptor set: pycdlib and
              genisoimage images, not mkudffs ones).
  udfread     names, dir/reg, sizes, content.  Knows no symlinks (shows them as
              files holding the path components), cannot read sparable,
              metadata-partition or VAT images.
  7-Zip       names, dir/file, sizes, content, mtimes.  Refuses some flavours
              ("Unsupported feature": sparable, UDF 2.50+ and pycdlib's 2.60).
  udfclient   names, sizes, content, permission bits, uid/gid (through its
              `mget` extraction, run as root).  Reads sparable partitions.
              Follows symlinks when writing, so it never writes one.
  kernel      everything stat shows; needs a kernel with the udf module
              (absent on the project machines: skipped with the reason).
"""

import calendar
import hashlib
import json
import os
import re
import shutil
import subprocess

from testlib import env, readers, trees

SECTOR = 2048
ReaderUnavailable = readers.ReaderUnavailable


def udfclient_session(img, cwd, commands, timeout=120):
    """Run udfclient non-interactively: commands on stdin, inside the image's one
    logical volume (udfclient shows volumes as directories of its own root)."""
    def talk(lines):
        text = "".join(line + "\n" for line in lines)
        try:
            p = subprocess.run(["udfclient", "-W", "-b", "2048", img], input=text.encode(),
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"udfclient hung on {img}") from e
        return p.returncode, env.txt(p.stdout)
    rc, out = talk(["ls", "quit"])
    vols = re.findall(r"^d\S+\s+-?\d+\s+-?\d+\s+\d+\s+(\S.*:.*)$", out, re.M)
    if rc != 0 or not vols:
        raise RuntimeError(f"udfclient finds no logical volume in {img}:\n{out[-2000:]}")
    rc, out = talk(['cd "%s"' % vols[0]] + list(commands) + ["sync", "quit"])
    if rc != 0:
        raise RuntimeError(f"udfclient failed on {img} (exit {rc}):\n{out[-3000:]}")
    return out


# --------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------

def udfread_dump_bin(workdir):
    """tests/tools/udfread_dump: the built one (UDFREAD_DUMP, or next to
    discfs-dump), else compiled here with gcc -ludfread -lcrypto."""
    cand = [os.environ.get("UDFREAD_DUMP"),
            os.path.join(os.path.dirname(env.discfs_dump_bin()), "udfread_dump")]
    for c in cand:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    out = os.path.join(workdir, "udfread_dump")
    if not os.path.exists(out):
        if shutil.which("gcc") is None or not os.path.exists("/usr/include/udfread/udfread.h"):
            raise ReaderUnavailable("libudfread reader unavailable: needs gcc and "
                                    "libudfread-dev (and libssl-dev)")
        srcf = os.path.join(env.PROJECT, "tests", "tools", "udfread_dump.c")
        p = env.run(["gcc", "-std=c11", "-O1", "-o", out, srcf, "-ludfread", "-lcrypto"],
                    check=False)
        if p.returncode != 0:
            raise ReaderUnavailable("cannot compile udfread_dump: " + env.txt(p.stderr)[-500:])
    return out


def udfread_tree(img, workdir):
    """{path: Rec(type, size, sha256)} as libudfread reads img."""
    p = env.run([udfread_dump_bin(workdir), img], check=False)
    if p.returncode == 3:
        raise ReaderUnavailable("libudfread cannot open this image: " +
                                env.txt(p.stderr).strip().replace("\n", " / ")[-300:])
    if p.returncode != 0:
        raise RuntimeError(f"udfread_dump failed ({p.returncode}): {env.txt(p.stderr)[-1000:]}")
    out = {}
    for line in env.txt(p.stdout).splitlines():
        o = json.loads(line)
        t = o["type"]
        out[o["path"]] = trees.Rec(type=t if t in ("dir", "reg") else None,
                                   size=o.get("size") if t != "dir" else None,
                                   sha256=o.get("sha256"), error=o.get("error"))
    return out


def sevenzip_tree(img, dest):
    """{path: Rec(type, size, sha256, mtime)} from `7z l -slt -tudf` and `7z x -tudf`."""
    return readers.sevenzip_tree(img, dest, udf=True)


def udfclient_tree(img, dest):
    """{path: Rec(type, mode, uid, gid, size, sha256)} of what udfclient's `mget`
    extracts (run as root, so owners are restored; times are not)."""
    if shutil.which("udfclient") is None:
        raise ReaderUnavailable("udfclient is not installed")
    if not env.is_root():
        raise ReaderUnavailable("udfclient restores owners only as root")
    os.makedirs(dest, exist_ok=True)
    work = dest + ".work"
    shutil.copyfile(img, work)          # udfclient -W may touch the image; read a copy
    out = udfclient_session(work, dest, ["mget ."])
    os.unlink(work)
    ext = trees.walk(dest)
    return {p: r._replace(nlink=None, ino=None, atime=None, ctime=None, mtime=None)
            for p, r in ext.items()}, out


def kernel_tree(img, mnt):
    """What the kernel's udf driver shows (mount -o ro,loop -t udf), or skip."""
    if not env.is_root():
        raise ReaderUnavailable("kernel udf mount needs root")
    with open("/proc/filesystems") as f:
        has = any(line.split()[-1] == "udf" for line in f if line.strip())
    if not has and shutil.which("modprobe"):
        subprocess.run(["modprobe", "udf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.makedirs(mnt, exist_ok=True)
    p = subprocess.run(["mount", "-o", "ro,loop", "-t", "udf", img, mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise ReaderUnavailable("the kernel cannot mount UDF here (" +
                                env.txt(p.stderr).strip().splitlines()[0][:200] + ")")
    try:
        return trees.walk(mnt)
    finally:
        subprocess.run(["umount", mnt])


# -- pycdlib's UDF side ---------------------------------------------------------

def udf_time(ts):
    """pycdlib UDFTimestamp -> seconds since the epoch (UTC), None if unset."""
    if ts is None or not (1 <= ts.month <= 12 and 1 <= ts.day <= 31):
        return None
    t = calendar.timegm((ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, 0, 0, 0))
    tz = ts.tz if -1440 <= ts.tz <= 1440 else 0
    return t - tz * 60


def udf_perms_to_mode(perms, icb_flags):
    """ECMA-167 4/14.9.5 permissions + ICB tag flags (setuid 0x40, setgid 0x80,
    sticky 0x100) -> POSIX permission bits."""
    mode = (((perms >> 10) & 7) << 6) | (((perms >> 5) & 7) << 3) | (perms & 7)
    if icb_flags & 0x40:
        mode |= 0o4000
    if icb_flags & 0x80:
        mode |= 0o2000
    if icb_flags & 0x100:
        mode |= 0o1000
    return mode


def decode_dstring_name(b):
    """OSTA compressed unicode (compression id 8 or 16) -> str."""
    if not b:
        return ""
    if b[0] == 8:
        return b[1:].decode("latin-1")
    if b[0] == 16:
        return b[1:].decode("utf-16-be")
    raise ValueError(f"compression id {b[0]}")


def decode_path_components(data):
    """ECMA-167 4/14.16 path components (a UDF symlink's content) -> target string."""
    parts = []
    absolute = False
    pos = 0
    while pos + 4 <= len(data):
        ctype, ln = data[pos], data[pos + 1]
        ident = data[pos + 4:pos + 4 + ln]
        pos += 4 + ln
        if ctype in (1, 2):
            absolute = True
            parts = []
        elif ctype == 3:
            parts.append("..")
        elif ctype == 4:
            parts.append(".")
        elif ctype == 5:
            parts.append(decode_dstring_name(ident))
    return ("/" if absolute else "") + "/".join(parts)


def pycdlib_udf_tree(img, data=True):
    """{path: Rec} of img's UDF tree as pycdlib reads it."""
    import pycdlib
    iso = pycdlib.PyCdlib()
    try:
        iso.open(img)
    except Exception as e:
        raise ReaderUnavailable(f"pycdlib cannot open this image: {e}")
    try:
        if not iso.has_udf():
            raise ReaderUnavailable("pycdlib finds no UDF in this image")
        out = {}

        def digest(path):
            h = hashlib.sha256()

            class W:
                def write(self, b):
                    h.update(b)
            iso.get_file_from_iso_fp(W(), udf_path=path)
            return h.hexdigest()

        def content(fe):
            """Raw data of a non-file entry (a symlink's path components)."""
            from pycdlib import inode as pinode
            if fe.inode is None:
                raise RuntimeError("pycdlib has no data for this symlink")
            with pinode.InodeOpenData(fe.inode, SECTOR) as (fp, ln):
                return fp.read(ln)

        def rec(fe, path):
            t = "dir" if fe.is_dir() else "lnk" if fe.is_symlink() else "reg"
            r = trees.Rec(type=t, mode=udf_perms_to_mode(fe.perms, fe.icb_tag.flags),
                          uid=None if fe.uid == 0xFFFFFFFF else fe.uid,
                          gid=None if fe.gid == 0xFFFFFFFF else fe.gid,
                          nlink=fe.file_link_count, mtime=udf_time(fe.mod_time),
                          atime=udf_time(fe.access_time))
            if t == "reg":
                r = r._replace(size=fe.get_data_length())
                if data:
                    r = r._replace(sha256=digest(path) if fe.get_data_length() else
                                   hashlib.sha256(b"").hexdigest())
            elif t == "lnk":
                target = decode_path_components(content(fe))
                r = r._replace(target=target, size=len(target.encode()))
            return r

        def walk(path):
            for c in iso.list_children(udf_path=path):
                if c is None or c.is_dot() or c.is_dotdot():
                    continue
                fi = c.file_ident
                name = fi.fi.decode(fi.encoding or "latin-1")
                p = path.rstrip("/") + "/" + name
                out[p] = rec(c, p)
                if c.is_dir():
                    walk(p)

        out["/"] = rec(iso.get_record(udf_path="/"), "/")
        walk("/")
        return out
    finally:
        iso.close()


# --------------------------------------------------------------------------
# A minimal UDF layout parser (to locate bytes; test_udf_badinput)
# --------------------------------------------------------------------------

def u16(b, o):
    return int.from_bytes(b[o:o + 2], "little")


def u32(b, o):
    return int.from_bytes(b[o:o + 4], "little")


def u64(b, o):
    return int.from_bytes(b[o:o + 8], "little")


def crc_itu(data):
    """CRC-ITU-T (poly 0x1021, init 0) as ECMA-167 7.2.6 uses for descriptor CRCs."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def tag_checksum(tag16):
    return sum(tag16[i] for i in range(16) if i != 4) & 0xFF


def seal_tag(buf, off, body_len=None):
    """Recompute the CRC (over body_len bytes after the tag, default: the recorded
    CRC length) and the checksum of the descriptor tag at off, in place."""
    if body_len is None:
        body_len = u16(buf, off + 10)
    crc = crc_itu(bytes(buf[off + 16:off + 16 + body_len]))
    buf[off + 8:off + 10] = crc.to_bytes(2, "little")
    buf[off + 10:off + 12] = body_len.to_bytes(2, "little")
    buf[off + 4] = tag_checksum(buf[off:off + 16])


class Entry:
    """A file entry found through the directory tree."""

    def __init__(self, path, fe_off, tag, is_dir, alloc_type, ads, ad_off, size, fid_off):
        self.path, self.fe_off, self.tag, self.is_dir = path, fe_off, tag, is_dir
        self.alloc_type = alloc_type      # 0 short_ad, 1 long_ad, 3 inline
        self.ads = ads                    # [(length, lba-in-partition)]
        self.ad_off = ad_off              # absolute offset of the first allocation descriptor
        self.size = size
        self.fid_off = fid_off            # absolute offset of the FID naming it (None: root)

    def spans(self, part_start):
        """[(first byte, end byte)] of the recorded extents on the image."""
        return [((part_start + lba) * SECTOR, (part_start + lba) * SECTOR + (ln & 0x3FFFFFFF))
                for ln, lba in self.ads]


class UdfLayout:
    """Anchor -> main VDS -> partition + FSD -> root -> every FE and FID.

    Handles what mkudffs (hd/dvdram, type 1 partition map) and udfclient write:
    one partition, FE/EFE with short_ad, long_ad or inline data."""

    def __init__(self, data):
        self.data = d = data
        self.anchor = 256 * SECTOR
        if u16(d, self.anchor) != 2:
            raise ValueError("no anchor volume descriptor pointer at sector 256")
        vds_len, vds_loc = u32(d, self.anchor + 16), u32(d, self.anchor + 20)
        self.vds = (vds_loc, vds_len)
        self.part_start = None
        self.fsd_lba = None
        for n in range(vds_loc, vds_loc + vds_len // SECTOR):
            o = n * SECTOR
            t = u16(d, o)
            if t == 5:                                  # partition descriptor
                self.part_start = u32(d, o + 188)
                self.part_len = u32(d, o + 192)
                self.pd_off = o
            elif t == 6:                                # logical volume descriptor
                self.lvd_off = o
                self.fsd_lba = u32(d, o + 248 + 4)      # long_ad in LV contents use
            elif t == 8:
                break
        if self.part_start is None or self.fsd_lba is None:
            raise ValueError("no partition or logical volume descriptor")
        self.fsd_off = (self.part_start + self.fsd_lba) * SECTOR
        if u16(d, self.fsd_off) != 256:
            raise ValueError("no file set descriptor")
        root_lba = u32(d, self.fsd_off + 400 + 4)
        self.entries = {}
        self._visit("/", root_lba, None, 0)

    def abs_off(self, lba):
        return (self.part_start + lba) * SECTOR

    def _visit(self, path, lba, fid_off, depth):
        if depth > 30:
            raise ValueError("too deep")
        d = self.data
        o = self.abs_off(lba)
        tag = u16(d, o)
        if tag == 261:
            l_ea, l_ad, base = u32(d, o + 168), u32(d, o + 172), 176
        elif tag == 266:
            l_ea, l_ad, base = u32(d, o + 208), u32(d, o + 212), 216
        else:
            raise ValueError(f"{path}: tag {tag} at block {lba}")
        ftype = d[o + 16 + 11]
        flags = u16(d, o + 16 + 18)
        size = u64(d, o + 56)
        at = flags & 7
        ad_off = o + base + l_ea
        ads = []
        if at == 0:
            for i in range(0, l_ad, 8):
                ads.append((u32(d, ad_off + i), u32(d, ad_off + i + 4)))
        elif at == 1:
            for i in range(0, l_ad, 16):
                ads.append((u32(d, ad_off + i), u32(d, ad_off + i + 4)))
        e = Entry(path, o, tag, ftype == 4, at, [a for a in ads if a[0] & 0x3FFFFFFF],
                  ad_off, size, fid_off)
        self.entries[path] = e
        if not e.is_dir:
            return
        # directory content
        if at == 3:
            chunks = [(ad_off, ad_off + l_ad)]
        else:
            chunks = [(s, e2) for s, e2 in e.spans(self.part_start)]
        buf_off = []
        for s, e2 in chunks:
            buf_off.extend(range(s, e2))
        # walk FIDs in the (contiguous in practice) chunks
        for s, end in chunks:
            pos = s
            while pos + 38 <= end:
                if u16(d, pos) != 257:
                    break
                chars = d[pos + 18]
                l_fi = d[pos + 19]
                icb_lba = u32(d, pos + 20 + 4)
                l_iu = u16(d, pos + 36)
                name_b = d[pos + 38 + l_iu:pos + 38 + l_iu + l_fi]
                total = (38 + l_iu + l_fi + 3) & ~3
                if not chars & 0x08 and not chars & 0x04:     # not parent, not deleted
                    name = decode_dstring_name(name_b)
                    self._visit(path.rstrip("/") + "/" + name, icb_lba, pos, depth + 1)
                pos += total
