"""Independent ISO 9660 readers: what a test compares discfs with.

xorriso (extraction, -toc, MD5 checks, lsdl), pycdlib (Rock Ridge, Joliet and plain ISO
9660 trees, read with its own parser), 7-Zip (listing and extraction, also of UDF) and
libarchive (symlink targets).  A reader that cannot read an image at all raises
ReaderUnavailable (a SkipTest carrying the reason); one that disagrees with another
where both should know raises RuntimeError, since then neither is a reference.
"""

import calendar
import collections
import hashlib
import os
import re
import shutil
import stat
import subprocess
import unittest

from testlib import env, sources, trees

# A reader still running after this is reported as hung.
TIMEOUT = 120


class ReaderUnavailable(unittest.SkipTest):
    """This reader cannot read this image (or is not installed): the reason."""


# --------------------------------------------------------------------------
# xorriso
# --------------------------------------------------------------------------

def xorriso(args, **kw):
    """xorriso ARGS, failing on the first FAILURE event (env.run: check=True raises)."""
    return env.run(["xorriso", "-abort_on", "FAILURE", "-return_with", "FAILURE", "32"] + args,
                   **kw)


def xorriso_run(*args, timeout=env.HANG_GUARD):
    """`xorriso ARGS` as text, whatever its exit code (the caller judges it)."""
    return subprocess.run(["xorriso", *[str(a) for a in args]], capture_output=True,
                          text=True, timeout=timeout)


def xdev(img):
    """How xorriso must name img: block devices with the stdio: prefix (else xorriso
    looks for an optical drive there)."""
    try:
        if stat.S_ISBLK(os.stat(img).st_mode):
            return "stdio:" + img
    except OSError:
        pass
    return img


TOC_LINE = re.compile(r"^ISO session\s*:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)s\s*,")


def toc_rows(img):
    """[(session number, start LBA, blocks)] of every session `xorriso -toc` lists."""
    r = xorriso_run("-abort_on", "NEVER", "-indev", xdev(img), "-toc")
    return [tuple(int(x) for x in m.groups())
            for m in (TOC_LINE.match(line.strip()) for line in (r.stdout + r.stderr).splitlines())
            if m]


def toc(img):
    """[(start LBA, blocks)] of every session, as `xorriso -toc` lists them."""
    return [(start, blocks) for _, start, blocks in toc_rows(img)]


def session_count(img):
    """Number of sessions xorriso sees in img."""
    return len(toc_rows(img))


def check_md5(img):
    """(exit code, output) of `xorriso -md5 on -indev IMG -check_md5 FAILURE -- -check_md5_r
    FAILURE / --`: 0 when the session MD5 and every recorded file MD5 match."""
    r = xorriso_run("-md5", "on", "-indev", xdev(img), "-check_md5", "FAILURE", "--",
                    "-check_md5_r", "FAILURE", "/", "--")
    return r.returncode, r.stdout + r.stderr


def pvd_volume_id(img):
    r = xorriso_run("-indev", xdev(img), "-pvd_info")
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("Volume Id"):
            return line.split(":", 1)[1].strip()
    return None


def files_with_md5(img):
    """Paths of regular files that carry a recorded MD5 (xorriso -find -has_md5)."""
    r = xorriso_run("-md5", "on", "-indev", xdev(img), "-find", "/", "-type", "f", "-has_md5",
                    "-exec", "report_lba", "--")
    # report_lba prints: "File data lba: ... , '/path'"
    return {line[line.index("'") + 1:line.rindex("'")]
            for line in (r.stdout + r.stderr).splitlines()
            if line.startswith("File data lba:") and "'" in line}


def xorriso_extract(img, dest, devices=True):
    """Extract the whole (Rock Ridge) tree with xorriso -osirrox, hard links kept.

    Device nodes are restored when devices is set and xorriso can (it cannot
    for mkisofs-style PN records, whose major/minor it misreads): then the
    extraction is retried without them.  Returns True if devices were restored."""
    base = ["-for_backup", "-hardlinks", "on", "-indev", xdev(img), "-extract", "/", dest]
    if devices:
        try:
            xorriso(["-osirrox", "on:device_files:auto_chmod_on"] + base)
            return True
        except RuntimeError:
            shutil.rmtree(dest, ignore_errors=True)
    xorriso(["-osirrox", "on:auto_chmod_on"] + base)
    return False


def extract_tree(img, dest):
    """{path: Rec} of what xorriso -osirrox extracts from img's newest session (hard links
    kept, device files restored where xorriso can)."""
    xorriso_extract(img, dest, devices=True)
    return trees.walk(dest)


_LSDL = re.compile(r"^([-dlcbps])([-rwxsStT]{9})\s+(\d+)\s+(\S+)\s+(\S+)\s+\d+\s+"
                   r"\w{3}\s+\d+\s+[\d:]+\s+'(.*)'(?: -> '(.*)')?$")


def _perm_bits(s):
    bits = 0
    for i, (c, on) in enumerate(zip(s, "rwxrwxrwx")):
        if c in (on, "s", "t"):
            bits |= 1 << (8 - i)
    if s[2] in "sS":
        bits |= 0o4000
    if s[5] in "sS":
        bits |= 0o2000
    if s[8] in "tT":
        bits |= 0o1000
    return bits


def xorriso_lsdl(img):
    """{path: (type letter, perm bits, nlink, uid, gid)} from xorriso's Rock Ridge view
    (`-find / -exec lsdl`).  Used where pycdlib cannot read an image, for what an
    extraction cannot carry over: link counts and the owners of symlinks."""
    p = env.run(["xorriso", "-indev", img, "-find", "/", "-exec", "lsdl"], check=False,
                timeout=TIMEOUT)
    out = {}
    for line in env.txt(p.stdout).splitlines():
        m = _LSDL.match(line)
        if not m:
            continue
        kind, perms, nlink, uid, gid, path, _target = m.groups()
        path = path.replace("'\"'\"'", "'")
        if not (uid.isdigit() and gid.isdigit()):
            continue
        out[path] = (kind, _perm_bits(perms), int(nlink), int(uid), int(gid))
    return out


def zisofs_files(img):
    """Paths of files xorriso reads through its zisofs decoder (i.e. stored compressed)."""
    p = env.run(["xorriso", "-indev", img, "-find", "/", "-type", "f", "-exec", "show_stream"])
    out = set()
    for line in env.txt(p.stdout).splitlines():
        if "zisofs-decode" in line and line.startswith("'"):
            out.add(line[1:line.index("' <")])
    return out


# --------------------------------------------------------------------------
# pycdlib
# --------------------------------------------------------------------------

def pycdlib_open(img):
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.open(img)
    return iso


def iso_name_shown(name):
    """How a plain ISO 9660 name is shown: as recorded, ';N' and a trailing '.' dropped."""
    if ";" in name:
        base, ver = name.rsplit(";", 1)
        if ver.isdigit():
            name = base
    if name.endswith("."):
        name = name[:-1]
    return name


def dr_date_to_epoch(d):
    """ISO 9660 7-byte (DirectoryRecordDate) or 17-byte (VolumeDescriptorDate) date to epoch."""
    if d is None:
        return None
    if hasattr(d, "years_since_1900"):
        y = 1900 + d.years_since_1900
        secs = d.second
    else:
        y = d.year
        secs = d.second
    if not (1 <= d.month <= 12 and 1 <= d.day_of_month <= 31 and d.hour < 24
            and d.minute < 60 and secs < 61):
        return None                  # unspecified (all zero) or malformed: unknown
    t = calendar.timegm((y, d.month, d.day_of_month, d.hour, d.minute, secs, 0, 0, 0))
    off = d.gmtoffset
    if off > 127:
        off -= 256
    # ECMA-119 9.1.5: -48..+52 quarter hours.  Writers do record nonsense
    # (genisoimage 1.1.11 writes -96 for dates in 2100); like Linux isofs,
    # treat an offset out of range as 0.
    if not -48 <= off <= 52:
        off = 0
    return t - off * 15 * 60


def pycdlib_tree(img, kind, data=True):
    """Records of one tree of img as pycdlib reads it; kind is 'rr', 'joliet' or 'iso'.

    Names: Rock Ridge NM names; Joliet names decoded from UCS-2 and plain ISO
    9660 names as recorded, both through iso_name_shown (';N' and a trailing
    '.' dropped).  Rock Ridge relocation (CL/RE) is resolved the way RRIP
    describes it.  File data is fetched with get_file_from_iso_fp; pycdlib
    1.12 gets multi-extent files wrong, so those are read extent by extent.
    Fields the tree does not record stay None (and are not compared)."""
    iso = pycdlib_open(img)
    try:
        with open(img, "rb") as raw:
            return _PycdlibWalker(iso, raw, kind, data).run()
    finally:
        iso.close()


class _PycdlibWalker:
    def __init__(self, iso, raw, kind, data):
        self.iso, self.raw, self.kind, self.data = iso, raw, kind, data
        self.key = {"rr": "rr_path", "joliet": "joliet_path", "iso": "iso_path"}[kind]
        self.out = {}

    def run(self):
        root = self.iso.get_record(**{self.key: "/"})
        dot = next(c for c in root.children if c is not None and c.is_dot())
        self.out["/"] = self.rec_for([dot], "/", "/")
        self.walk_dir(root, "", "")
        return self.out

    def name_of(self, record):
        if self.kind == "rr":
            return record.rock_ridge.name().decode("utf-8", "surrogateescape")
        if self.kind == "joliet":
            return iso_name_shown(record.file_identifier().decode("utf-16_be"))
        return iso_name_shown(record.file_identifier().decode("latin-1"))

    def walk_dir(self, dir_rec, shown_dir, lookup_dir):
        groups = collections.OrderedDict()
        for c in dir_rec.children:
            if c is None or c.is_dot() or c.is_dotdot():
                continue
            if self.kind == "rr" and c.rock_ridge is not None and c.rock_ridge.relocated_record():
                continue                      # reached through its CL entry instead
            groups.setdefault(c.file_identifier(), []).append(c)
        for ident, records in groups.items():
            first = records[0]
            name = self.name_of(first)
            shown = shown_dir + "/" + name
            if self.kind == "joliet":
                lookup = lookup_dir + "/" + ident.decode("utf-16_be")
            elif self.kind == "rr":
                lookup = lookup_dir + "/" + name
            else:
                lookup = lookup_dir + "/" + ident.decode("latin-1")
            target_dir = None
            if first.is_dir():
                target_dir = first
            elif (self.kind == "rr" and first.rock_ridge is not None
                  and first.rock_ridge.child_link_record_exists()):
                target_dir = first.rock_ridge.cl_to_moved_dr
            if target_dir is not None:
                self.out[shown] = self.rec_for([target_dir], shown, lookup, is_dir=True)
                self.walk_dir(target_dir, shown, lookup)
            else:
                self.out[shown] = self.rec_for(records, shown, lookup)

    def rec_for(self, records, shown, lookup, is_dir=None):
        record = records[0]
        if is_dir is None:
            is_dir = record.is_dir()
        r = trees.Rec(type="dir" if is_dir else "reg", mtime=dr_date_to_epoch(record.date))
        rr = record.rock_ridge if self.kind == "rr" else None
        if rr is not None:
            r = self.apply_rock_ridge(r, rr)
        if r.type == "reg":
            size = sum(x.get_data_length() for x in records)
            r = r._replace(size=size)
            if self.data:
                r = r._replace(sha256=self.digest(records, lookup))
        elif r.type in ("chr", "blk", "fifo", "sock"):
            r = r._replace(size=0)
        return r

    @staticmethod
    def apply_rock_ridge(r, rr):
        def entry(name):
            return getattr(rr.dr_entries, name) or getattr(rr.ce_entries, name)
        px, tf, pn = entry("px_record"), entry("tf_record"), entry("pn_record")
        if px is not None:
            m = px.posix_file_mode
            r = r._replace(type=trees.type_of(m), mode=stat.S_IMODE(m), uid=px.posix_user_id,
                           gid=px.posix_group_id, nlink=px.posix_file_links,
                           ino=px.posix_serial_number or None)
        if tf is not None:
            # RRIP TF flag bits: 0 creation, 1 modify, 2 access, 3 attributes.
            # pycdlib names its fields in another order (its 'access_time'
            # holds bit 1), so go by position.
            t = [getattr(tf, f) for f in tf.FIELDNAMES]
            r = r._replace(mtime=dr_date_to_epoch(t[1]) if t[1] else r.mtime,
                           atime=dr_date_to_epoch(t[2]), ctime=dr_date_to_epoch(t[3]))
        if rr.is_symlink():
            target = rr.symlink_path().decode("utf-8", "surrogateescape")
            r = r._replace(type="lnk", target=target, size=len(target.encode()))
        if pn is not None and r.type in ("chr", "blk"):
            if pn.dev_t_high:
                # mkisofs style: major in the high word, minor in the low word
                r = r._replace(rdev=(pn.dev_t_high, pn.dev_t_low))
            else:
                # libisofs style: the whole (glibc) dev_t in the low word
                r = r._replace(rdev=(os.major(pn.dev_t_low), os.minor(pn.dev_t_low)))
        return r

    def digest(self, records, lookup):
        h = hashlib.sha256()
        if len(records) == 1:
            if records[0].get_data_length() == 0:
                return h.hexdigest()

            class W:
                def write(self, b):
                    h.update(b)
            self.iso.get_file_from_iso_fp(W(), **{self.key: lookup})
            return h.hexdigest()
        # Multi-extent: every record but the last has the multi-extent flag
        # (0x80); writers lay the extents out in order.
        ordered = ([x for x in sorted(records, key=lambda x: x.extent_location())
                    if x.file_flags & 0x80] +
                   [x for x in records if not x.file_flags & 0x80])
        for x in ordered:
            self.raw.seek(x.extent_location() * 2048)
            left = x.get_data_length()
            while left:
                b = self.raw.read(min(left, 1 << 20))
                if not b:
                    raise AssertionError(f"image ends inside the extent of {lookup}")
                h.update(b)
                left -= len(b)
        return h.hexdigest()


def pycdlib_extent_count(img, iso_path):
    """How many directory records (extents) pycdlib lists for the ISO 9660 name iso_path."""
    iso = pycdlib_open(img)
    try:
        parent, name = iso_path.rsplit("/", 1)
        d = iso.get_record(iso_path=parent or "/")
        return sum(1 for c in d.children
                   if c is not None and c.file_identifier().decode("latin-1") == name)
    finally:
        iso.close()


# --------------------------------------------------------------------------
# References: what two readers agree on
# --------------------------------------------------------------------------

def rock_ridge_reference(img, workdir, name="x"):
    """What two independent readers agree a Rock Ridge image holds.

    Metadata (mode, owners, nlink, times, symlink targets, device numbers,
    PX serial numbers as ino) from pycdlib; sizes and content from an
    `xorriso -osirrox` extraction (which decodes zisofs).  Raises if the two
    readers disagree on paths or types, because then neither can be trusted
    as the reference."""
    dest = os.path.join(workdir, "extract-" + name)
    xorriso_extract(img, dest)
    ext = trees.walk(dest)
    try:
        ref = pycdlib_tree(img, "rr", data=True)
    except Exception as e:           # pycdlib 1.12 cannot parse ZF (zisofs) entries
        if "SUSP" not in str(e):
            raise
        return extraction_reference(ext), ext
    for p, r in list(ref.items()):
        if p not in ext and r.type in ("chr", "blk"):
            ext[p] = r               # xorriso could not restore it; pycdlib is the reference
    if set(ref) != set(ext):
        raise RuntimeError(f"pycdlib and xorriso disagree on the paths of {img}: "
                           f"only pycdlib {sorted(set(ref) - set(ext))[:10]}, "
                           f"only xorriso {sorted(set(ext) - set(ref))[:10]}")
    for p, r in ref.items():
        e = ext[p]
        if r.type != e.type:
            raise RuntimeError(f"pycdlib and xorriso disagree on the type of {p} in {img}")
        if r.type == "reg":
            ref[p] = r._replace(size=e.size, sha256=e.sha256)
        elif r.type == "lnk":
            # pycdlib 1.12 drops components after a mid-path ROOT flag ('.///file'
            # reads as '/file'); xorriso renders SL like Linux isofs and libarchive.
            ref[p] = r._replace(target=e.target, size=e.size)
        elif r.type in ("chr", "blk") and r.rdev != e.rdev:
            raise RuntimeError(f"pycdlib {r.rdev} and xorriso {e.rdev} disagree on {p}")
    return ref, ext


def extraction_reference(ext):
    """Reference records from an xorriso extraction alone (when pycdlib cannot
    read the image): what extraction cannot carry over is left unknown (None):
    owners and times of symlinks, directory link counts, atime/ctime."""
    groups = trees.link_groups(ext)
    ino_of = {}
    for n, g in enumerate(groups, 1):
        for p in g:
            ino_of[p] = -n
    ref = {}
    for p, r in ext.items():
        r = r._replace(atime=None, ctime=None, ino=ino_of.get(p))
        if r.type == "dir":
            r = r._replace(nlink=None)
        if r.type == "lnk":
            r = r._replace(uid=None, gid=None, mtime=None, mode=None)
        if p == "/":
            r = r._replace(mode=None, uid=None, gid=None, mtime=None)
        ref[p] = r
    return ref


# --------------------------------------------------------------------------
# 7-Zip
# --------------------------------------------------------------------------

def _sevenzip():
    exe = shutil.which("7z") or shutil.which("7za")
    if not exe:
        raise ReaderUnavailable("7z is not installed")
    return exe, dict(os.environ, TZ="UTC", LC_ALL="C.UTF-8")


_7Z_FORMATS = {}


def sevenzip_format(img):
    """The format 7-Zip opens img as when not told ("Iso", "Udf", ...): it prefers a UDF
    bridge to the ISO 9660/Joliet tree, so its default listing is a reference only for
    the tree it really read."""
    if img not in _7Z_FORMATS:
        exe, env7 = _sevenzip()
        p = env.run([exe, "l", "-slt", img], check=False, env=env7, timeout=TIMEOUT)
        m = re.search(r"^Type = (\S+)$", env.txt(p.stdout), re.M)
        _7Z_FORMATS[img] = m.group(1) if m else None
    return _7Z_FORMATS[img]


def sevenzip_listing(img, udf=False):
    """{path: Rec(type, size, mtime)} of `7z l -slt` (udf: -tudf; TZ=UTC, so times are
    UTC).  Without udf 7-Zip reads the Joliet tree when there is one, else the ISO 9660
    one (or a UDF bridge: see sevenzip_format)."""
    exe, env7 = _sevenzip()
    p = env.run([exe, "l", "-slt"] + (["-tudf"] if udf else []) + [img], check=False,
                env=env7, timeout=TIMEOUT)
    text = env.txt(p.stdout) + env.txt(p.stderr)
    if p.returncode != 0 or "Can not open the file as" in text or \
            "Cannot open the file as" in text:
        errs = [ln.strip() for ln in text.splitlines() if ln.strip() and "ERROR" in ln.upper()]
        detail = re.findall(r"^(Unsupported feature|.*[Ee]rror.*)$", text, re.M)
        raise ReaderUnavailable(f"7-Zip cannot open this image{' as UDF' if udf else ''}: "
                                f"{'; '.join((errs + detail)[-3:])}")
    body = text.split("----------\n", 1)[1] if "----------\n" in text else ""
    out = {"/": trees.Rec(type="dir")}
    for block in body.split("\n\n"):
        kv = {}
        for line in block.splitlines():
            if " = " in line:
                k, v = line.split(" = ", 1)
                kv[k] = v
            elif line.endswith(" ="):
                kv[line[:-2]] = ""
        if "Path" not in kv:
            continue
        is_dir = kv.get("Folder") == "+"
        mtime = None
        m = re.match(r"(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)", kv.get("Modified", ""))
        if m:
            mtime = sources.utc(*map(int, m.groups()))
        out["/" + kv["Path"]] = trees.Rec(type="dir" if is_dir else "reg", mtime=mtime,
                                          size=None if is_dir else int(kv.get("Size") or 0))
    return out


def sevenzip_tree(img, dest, udf=False):
    """{path: Rec(type, size, sha256, mtime)} of what 7-Zip lists and extracts into dest
    (udf: as UDF)."""
    listing = sevenzip_listing(img, udf)
    exe, env7 = _sevenzip()
    if not os.path.isdir(dest):
        p = env.run([exe, "x", "-y"] + (["-tudf"] if udf else []) + ["-o" + dest, img],
                    check=False, env=env7, timeout=TIMEOUT)
        if p.returncode != 0:
            raise RuntimeError(f"7z x failed on {img}: {env.txt(p.stdout)[-2000:]}")
    ext = trees.walk(dest)
    if set(ext) != set(listing):
        raise RuntimeError(f"7-Zip's listing and extraction of {img} disagree: "
                           f"{sorted(set(ext) ^ set(listing))[:8]}")
    return {p: r._replace(sha256=ext[p].sha256) for p, r in listing.items()}


# --------------------------------------------------------------------------
# libarchive
# --------------------------------------------------------------------------

def libarchive_symlinks(img):
    """{path: symlink target} as libarchive (the library under bsdtar) reads img, or None
    when libarchive.so is not installed.  Loaded with ctypes: no Python binding needed."""
    import ctypes.util
    name = ctypes.util.find_library("archive") or "libarchive.so.13"
    try:
        la = ctypes.CDLL(name)
    except OSError:
        return None
    la.archive_read_new.restype = ctypes.c_void_p
    la.archive_read_support_format_iso9660.argtypes = [ctypes.c_void_p]
    la.archive_read_open_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    la.archive_read_next_header.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    la.archive_entry_pathname.argtypes = [ctypes.c_void_p]
    la.archive_entry_pathname.restype = ctypes.c_char_p
    la.archive_entry_symlink.argtypes = [ctypes.c_void_p]
    la.archive_entry_symlink.restype = ctypes.c_char_p
    la.archive_error_string.argtypes = [ctypes.c_void_p]
    la.archive_error_string.restype = ctypes.c_char_p
    la.archive_read_free.argtypes = [ctypes.c_void_p]
    a = la.archive_read_new()
    out = {}
    try:
        la.archive_read_support_format_iso9660(a)
        if la.archive_read_open_filename(a, os.fsencode(img), 10240) != 0:
            raise RuntimeError(f"libarchive cannot open {img}: {la.archive_error_string(a)}")
        entry = ctypes.c_void_p()
        while True:
            r = la.archive_read_next_header(a, ctypes.byref(entry))
            if r == 1:                      # ARCHIVE_EOF
                break
            if r < -20:                     # worse than ARCHIVE_WARN
                raise RuntimeError(f"libarchive fails on {img}: {la.archive_error_string(a)}")
            p = os.fsdecode(la.archive_entry_pathname(entry) or b"")
            target = la.archive_entry_symlink(entry)
            p = "/" + p[2:] if p.startswith("./") else "/" + p.lstrip("/")
            if target is not None:
                out[p.rstrip("/") or "/"] = os.fsdecode(target)
    finally:
        la.archive_read_free(a)
    return out
