"""Helpers for the hostile-input and upstream-image tests (test_badinput, test_upstream).

Everything here is independent of discfs:

- IsoImage parses an ISO 9660 image in Python (volume descriptors, directory
  records, SUSP/Rock Ridge entries including continuation areas) so that tests
  can find the byte offsets of the fields they corrupt.  It is only used to
  *locate* bytes; expected values come from the source tree an image was made
  from or from independent readers (xorriso, 7-Zip, pycdlib).
- run_dump() runs discfs-dump under a hang guard and parses its JSON lines
  leniently (a damaged image must still be described, so nothing here raises
  on what the dump prints; the caller decides).
- DaemonMount runs `discfs mount -f` under a hang guard.  Unlike
  discfs_testlib.Mount it notices a mount that is live but whose root cannot
  even be stat'ed (it watches /proc/self/mountinfo, not st_dev), and it
  reports a refusal (exit code + stderr) instead of raising.
- probe_mount() walks a mount in a child process (`python3 hostile.py probe
  DIR`) so that a hung FUSE request fails the test instead of blocking it:
  raw readdir names (including "." and ".."), lstat, readlink and the sha256
  of every regular file or the errno of reading it.
"""

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import discfs_testlib as L  # noqa: E402

# Every discfs / discfs-dump / mount-walking command gets this hang guard.
# A command still running after it is reported as hung (a failure), never as slow.
TIMEOUT = 60
SECTOR = 2048
PYTHON = "/usr/bin/python3"


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def txt(b):
    return L._txt(b)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def both16(v):
    return struct.pack("<H", v) + struct.pack(">H", v)


def both32(v):
    return struct.pack("<I", v) + struct.pack(">I", v)


def u32le(b, off):
    return struct.unpack_from("<I", b, off)[0]


def daemon_env():
    """Environment for discfs mount daemons.

    Leak detection is switched off for the daemons of the per-case mounts:
    LeakSanitizer reports at daemon exit the directory handles of RELEASEDIR
    requests the kernel drops at unmount (a race, so it would make every case
    flaky).  That defect has its own test (test_badinput.LeakAtUnmount).
    AddressSanitizer and UBSan reports are still caught in every case."""
    env = dict(os.environ)
    opts = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "detect_leaks=0"
    return env


def sanitizer_report(text):
    return L.sanitizer_report(text)


def abbreviate(text):
    """Shorten runs of one character (the 200-byte names of hostile images) in messages."""
    return re.sub(r"(.)\1{31,}", lambda m: m.group(1) * 8 + f"<...{len(m.group(0))} x "
                  f"{m.group(1)!r}>", text)


def run_guarded(cmd, timeout=TIMEOUT, env=None, input_bytes=None):
    """Run cmd with captured output.  Returns CompletedProcess; a command that does
    not finish within timeout is killed and AssertionError('... hung ...') raised."""
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, env=env, input=input_bytes)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"hung: {' '.join(map(str, cmd))} did not finish within "
                             f"{timeout}s (hang guard)") from e


def mounted(path):
    return L.is_mountpoint_in_mountinfo(path)


# --------------------------------------------------------------------------
# ISO 9660 parsing (to locate the bytes a test corrupts)
# --------------------------------------------------------------------------

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
            return L.iso_name_shown(self.name.decode("utf-16-be", "surrogatepass"))
        if self.rr_name is not None:
            return self.rr_name.decode("utf-8", "surrogateescape")
        return L.iso_name_shown(self.iso_name)

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


# --------------------------------------------------------------------------
# discfs-dump
# --------------------------------------------------------------------------

_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:.]+\] \[\w+\] ")


class Dump:
    """What discfs-dump printed: exit code, records, and anything odd."""

    def __init__(self, cmd, proc):
        self.cmd = cmd
        self.returncode = proc.returncode
        self.stdout = txt(proc.stdout)
        self.stderr = txt(proc.stderr)
        self.records = {}       # path -> dict (error lines of a directory merged in)
        self.order = []
        self.log_lines = []     # spdlog lines that ended up on stdout
        self.bad_lines = []     # neither JSON nor a log line
        self.duplicates = []    # paths printed twice (other than dir + its listing error)
        for line in self.stdout.splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                (self.log_lines if _LOG_LINE.match(line) else self.bad_lines).append(line)
                continue
            p = obj.get("path")
            if not isinstance(p, str):
                self.bad_lines.append(line)
                continue
            if p in self.records:
                prev = self.records[p]
                if (prev.get("type") == "dir" and set(obj) <= {"path", "type", "error"}
                        and "error" in obj):
                    prev.setdefault("error", obj["error"])   # "listing this directory failed"
                    continue
                self.duplicates.append(p)
                continue
            self.records[p] = obj
            self.order.append(p)

    def sanitizer(self):
        return sanitizer_report(self.stderr) or sanitizer_report(self.stdout)

    def describe(self):
        return (f"{' '.join(self.cmd)} -> exit {self.returncode}\n"
                f"stderr: {self.stderr[-3000:]}\nstdout (tail): {self.stdout[-1500:]}")


def run_dump(image, tree=None, data=True):
    cmd = [L.discfs_dump_bin()]
    if tree:
        cmd += ["--tree", tree]
    if not data:
        cmd.append("--no-data")
    cmd.append(image)
    return Dump(cmd, run_guarded(cmd))


def dump_to_recs(dump):
    """{path: discfs_testlib.Rec} from a Dump (sizes of directories dropped)."""
    out = {}
    for p, o in dump.records.items():
        rdev = o.get("rdev")
        out[p] = L.Rec(type=o.get("type"), mode=o.get("mode"), uid=o.get("uid"),
                       gid=o.get("gid"), nlink=o.get("nlink"),
                       size=o.get("size") if o.get("type") != "dir" else None,
                       mtime=o.get("mtime"), target=o.get("target"),
                       rdev=tuple(rdev) if rdev is not None else None,
                       sha256=o.get("sha256"), ino=o.get("ino"),
                       atime=o.get("atime"), ctime=o.get("ctime"), error=o.get("error"))
    return out


def path_problems(paths, types=None):
    """Problems with the shape of a set of absolute paths (as a dump prints them):
    components that are empty, '.', '..', contain NUL, or a parent that is not
    a listed directory (a name with '/' in it shows up that way)."""
    probs = []
    for p in paths:
        if p == "/":
            continue
        if not p.startswith("/"):
            probs.append(f"{p!r}: not absolute")
            continue
        comps = p[1:].split("/")
        for c in comps:
            if c in ("", ".", ".."):
                probs.append(f"{p!r}: path component {c!r}")
            if "\x00" in c:
                probs.append(f"{p!r}: NUL byte in a name")
            if len(os.fsencode(c)) > 255:
                probs.append(f"{p!r}: a name longer than 255 bytes")
        parent = p.rsplit("/", 1)[0] or "/"
        if parent not in paths:
            probs.append(f"{p!r}: its parent {parent!r} is not listed (a '/' inside a name?)")
        elif types is not None and types.get(parent) != "dir":
            probs.append(f"{p!r}: its parent {parent!r} is not a directory")
    return probs


# --------------------------------------------------------------------------
# A discfs mount daemon under a hang guard
# --------------------------------------------------------------------------

class DaemonMount:
    """`discfs mount -f [ARGS] IMAGE MNT` for the life of a with-block.

    After entry, either .live is True (the mount shows in /proc/self/mountinfo)
    or .refused holds the daemon's exit code (it exited without mounting).
    Exit unmounts (fusermount3 -u, then -uz), waits for the daemon (killing it
    after the hang guard) and leaves .returncode, .stderr and .problems."""

    def __init__(self, image, mnt, args=(), env=None, form="foreground"):
        self.image, self.mnt = image, mnt
        self.args = list(args)
        self.env = daemon_env() if env is None else env
        self.form = form
        self.proc = None
        self.live = False
        self.refused = None
        self.returncode = None
        self.stderr = ""
        self.problems = []
        self._log = None

    def command(self):
        if self.form == "fuse3":           # mount.fuse3 style: discfs SOURCE MOUNTPOINT
            return [L.discfs_bin(), self.image, self.mnt] + self.args
        return [L.discfs_bin(), "mount", "-f"] + self.args + [self.image, self.mnt]

    def stderr_now(self):
        if not self._log:
            return self.stderr
        with open(self._log, "rb") as f:
            return txt(f.read())

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        fd, self._log = tempfile.mkstemp(prefix="discfs-daemon-", suffix=".log")
        try:
            with os.fdopen(fd, "wb") as logf:
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                             stdout=logf, stderr=logf, env=self.env)
        except BaseException:
            os.unlink(self._log)
            self._log = None
            raise
        deadline = time.monotonic() + TIMEOUT
        delay = 0.002
        while True:
            rc = self.proc.poll()
            if mounted(self.mnt):
                self.live = True
                break
            if rc is not None:
                self.refused = rc
                break
            if time.monotonic() > deadline:
                self._finish()
                raise AssertionError(f"hung: {' '.join(self.command())} neither mounted nor "
                                     f"exited within {TIMEOUT}s\n{self.stderr[-3000:]}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        if self.refused is not None:
            self._finish()
        return self

    def _finish(self):
        if self.proc is None:
            return
        if mounted(self.mnt):
            p = subprocess.run(["fusermount3", "-u", self.mnt], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            if p.returncode != 0:
                self.problems.append("fusermount3 -u failed: " + txt(p.stderr).strip())
                subprocess.run(["fusermount3", "-uz", self.mnt], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            self.returncode = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait()
            self.problems.append(f"hung: the daemon did not exit within {TIMEOUT}s of the "
                                 f"unmount; killed")
        self.proc = None
        self.stderr = self.stderr_now()
        try:
            os.unlink(self._log)
        except OSError:
            pass
        self._log = None
        rep = sanitizer_report(self.stderr)
        if rep:
            self.problems.append(f"sanitizer report from the daemon: {rep}\n"
                                 f"{self.stderr[-6000:]}")
        if self.live and self.returncode != 0:
            self.problems.append(f"the daemon exited {self.returncode} after the unmount\n"
                                 f"{self.stderr[-3000:]}")

    def __exit__(self, exc_type, exc, tb):
        self._finish()
        return False


# --------------------------------------------------------------------------
# Walking a mount (in a child process, under the hang guard)
# --------------------------------------------------------------------------

def probe_mount(mnt, data=True, max_depth=40, timeout=TIMEOUT):
    """Walk mnt in a child process; returns the dict _probe() builds."""
    cmd = [PYTHON, os.path.abspath(__file__), "probe", mnt, str(max_depth),
           "1" if data else "0"]
    p = run_guarded(cmd, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"the mount walker failed (exit {p.returncode}): "
                             f"{txt(p.stderr)[-3000:]}")
    return json.loads(p.stdout)


def probe_to_recs(probe):
    """{path: Rec} of what a probe saw (entries whose lstat failed are left out)."""
    out = {}
    for p, e in probe["entries"].items():
        if "lstat_error" in e:
            continue
        rdev = e.get("rdev")
        out[p] = L.Rec(type=e["type"], mode=e["mode"], uid=e["uid"], gid=e["gid"],
                       nlink=e["nlink"], size=e["size"] if e["type"] != "dir" else None,
                       mtime=e["mtime"], target=e.get("target"),
                       rdev=tuple(rdev) if rdev else None, sha256=e.get("sha256"),
                       ino=e["ino"], error=e.get("read_error"))
    return out


def explore_with_tools(mnt, probe, timeout=TIMEOUT):
    """find, ls -lR and cat of every regular file the probe saw, each under the
    hang guard.  Returns {"find": CompletedProcess, "ls": ..., "cat": {path: (rc,
    sha256 of stdout, stderr)}}."""
    out = {"find": run_guarded(["find", mnt], timeout=timeout),
           "ls": run_guarded(["ls", "-lR", mnt], timeout=timeout),
           "cat": {}}
    for p, e in sorted(probe["entries"].items()):
        if e.get("type") != "reg":
            continue
        full = os.path.join(mnt, p.lstrip("/"))
        c = run_guarded(["cat", "--", full], timeout=timeout)
        out["cat"][p] = (c.returncode, sha256(c.stdout), txt(c.stderr))
    return out


def tool_loop_reports(tools):
    """Lines in which find or ls -lR say the tree loops (a directory shown inside
    itself): find's "File system loop detected", ls's "not listing already-listed
    directory"."""
    out = []
    for key, marker in (("find", "File system loop detected"),
                        ("ls", "not listing already-listed directory")):
        p = tools.get(key)
        if p is None:
            continue
        out += [f"{key}: {ln.strip()}" for ln in txt(p.stderr).splitlines() if marker in ln]
    return out


def ls_dir(mnt, rel, timeout=TIMEOUT):
    """`ls -a DIR` of a directory in the mount: (rc, stdout, stderr)."""
    c = run_guarded(["ls", "-a", "--", os.path.join(mnt, rel.lstrip("/"))], timeout=timeout)
    return c.returncode, txt(c.stdout), txt(c.stderr)


# -- the child side ----------------------------------------------------------

class _Dirent64(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


def _raw_readdir(path):
    """Every name readdir returns (bytes, '.' and '..' included), or raise OSError."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir64.restype = ctypes.POINTER(_Dirent64)
    libc.readdir64.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    h = libc.opendir(path)
    if not h:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    names = []
    try:
        while True:
            ctypes.set_errno(0)
            ent = libc.readdir64(h)
            if not ent:
                e = ctypes.get_errno()
                if e:
                    raise OSError(e, os.strerror(e), path)
                break
            addr = ctypes.addressof(ent.contents) + _Dirent64.d_name.offset
            names.append(ctypes.string_at(addr))
    finally:
        libc.closedir(h)
    return names


def _errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def _probe(root, max_depth=40, data=True):
    out = {"entries": {}, "listing_errors": {}, "problems": [], "dots": {}}
    root_b = os.fsencode(root)
    try:
        st = os.lstat(root_b)
    except OSError as e:
        out["root_error"] = _errname(e)
        return out

    def rec_of(p, st):
        t = L.type_of(st.st_mode)
        r = {"type": t, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
             "nlink": st.st_nlink, "size": st.st_size, "mtime": st.st_mtime_ns // 10**9,
             "ino": st.st_ino}
        if t == "lnk":
            try:
                r["target"] = os.fsdecode(os.readlink(p))
            except OSError as e:
                r["readlink_error"] = _errname(e)
        elif t in ("chr", "blk"):
            r["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
        elif t == "reg" and data:
            h = hashlib.sha256()
            try:
                with open(p, "rb", buffering=0) as f:
                    while True:
                        b = f.read(1 << 20)
                        if not b:
                            break
                        h.update(b)
                r["sha256"] = h.hexdigest()
            except OSError as e:
                r["read_error"] = _errname(e)
        return r

    out["entries"]["/"] = rec_of(root_b, st)

    def visit(dir_b, rel, depth, ancestors):
        try:
            names = _raw_readdir(dir_b)
        except OSError as e:
            out["listing_errors"][rel or "/"] = _errname(e)
            return
        out["dots"][rel or "/"] = [names.count(b"."), names.count(b"..")]
        seen = set()
        for n in names:
            if n in (b".", b".."):
                continue
            shown = (rel or "") + "/" + os.fsdecode(n)
            if n in seen:
                out["problems"].append(f"{shown!r} listed twice")
                continue
            seen.add(n)
            if b"/" in n or b"\0" in n or not n:
                out["problems"].append(f"bad name {n!r} in {rel or '/'!r}")
                continue
            if len(n) > 255:
                out["problems"].append(f"{shown!r}: a name of {len(n)} bytes (over NAME_MAX, "
                                       f"so it cannot be looked up)")
            p = dir_b + b"/" + n
            try:
                st = os.lstat(p)
            except OSError as e:
                out["entries"][shown] = {"lstat_error": _errname(e)}
                continue
            out["entries"][shown] = rec_of(p, st)
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    out["problems"].append(f"{shown!r} is the same directory as its ancestor "
                                           f"{ancestors[key]!r} (a loop)")
                    continue
                if depth + 1 > max_depth:
                    out["problems"].append(f"{shown!r}: deeper than {max_depth} levels "
                                           f"(an endless tree?)")
                    continue
                visit(p, shown, depth + 1, {**ancestors, key: shown})

    visit(root_b, "", 0, {(st.st_dev, st.st_ino): "/"})
    return out


# --------------------------------------------------------------------------
# Decompressing the upstream images
# --------------------------------------------------------------------------

def read_manifest(path):
    """[(file, source, licence, sha256)] from MANIFEST.tsv (comment lines skipped)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            rows.append(tuple(cols[:4]))
    return rows


def xz_decompress(src, dest):
    with open(dest, "wb") as out:
        p = subprocess.run(["xz", "-dc", src], stdout=out, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError(f"xz -dc {src} failed: {txt(p.stderr)}")
    h = hashlib.sha256()
    with open(dest, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


# --------------------------------------------------------------------------
# Other independent readers
# --------------------------------------------------------------------------

def sevenzip_listing(img):
    """{path: Rec(type, size, mtime)} from `7z l -slt` (TZ=UTC, so times are UTC)."""
    exe = shutil.which("7z") or shutil.which("7za")
    if not exe:
        raise unittest_skip("7z is not installed")
    env = dict(os.environ, TZ="UTC", LC_ALL="C")
    p = run_guarded([exe, "l", "-slt", img], env=env)
    if p.returncode != 0:
        raise RuntimeError(f"7z l failed on {img}: {txt(p.stdout)[-2000:]}")
    text = txt(p.stdout)
    body = text.split("----------\n", 1)[1] if "----------\n" in text else ""
    out = {"/": L.Rec(type="dir")}
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
        path = "/" + kv["Path"]
        is_dir = kv.get("Folder") == "+"
        mtime = None
        if kv.get("Modified"):
            m = re.match(r"(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)", kv["Modified"])
            if m:
                mtime = L.utc(*map(int, m.groups()))
        out[path] = L.Rec(type="dir" if is_dir else "reg",
                          size=None if is_dir else int(kv.get("Size") or 0), mtime=mtime)
    return out


def sevenzip_tree(img, dest):
    """{path: Rec(type, size, sha256, mtime)} of what 7-Zip lists and extracts (it reads
    the Joliet tree when there is one, else the ISO 9660 one)."""
    listing = sevenzip_listing(img)
    exe = shutil.which("7z") or shutil.which("7za")
    if not os.path.isdir(dest):
        p = run_guarded([exe, "x", "-y", "-o" + dest, img],
                        env=dict(os.environ, TZ="UTC", LC_ALL="C"))
        if p.returncode != 0:
            raise RuntimeError(f"7z x failed on {img}: {txt(p.stdout)[-2000:]}")
    ext = L.walk(dest)
    if set(ext) != set(listing):
        raise RuntimeError(f"7-Zip's listing and extraction of {img} disagree: "
                           f"{sorted(set(ext) ^ set(listing))[:8]}")
    return {p: L.Rec(type=r.type, size=r.size, sha256=ext[p].sha256, mtime=r.mtime)
            for p, r in listing.items()}


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


def unittest_skip(msg):
    import unittest
    return unittest.SkipTest(msg)


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
    p = run_guarded(["xorriso", "-indev", img, "-find", "/", "-exec", "lsdl"])
    out = {}
    for line in txt(p.stdout).splitlines():
        m = _LSDL.match(line)
        if not m:
            continue
        kind, perms, nlink, uid, gid, path, _target = m.groups()
        path = path.replace("'\"'\"'", "'")
        if not (uid.isdigit() and gid.isdigit()):
            continue
        out[path] = (kind, _perm_bits(perms), int(nlink), int(uid), int(gid))
    return out


# --------------------------------------------------------------------------

def _main(argv):
    if len(argv) >= 2 and argv[0] == "probe":
        root = argv[1]
        depth = int(argv[2]) if len(argv) > 2 else 40
        data = (argv[3] != "0") if len(argv) > 3 else True
        sys.setrecursionlimit(max(10000, 4 * depth))
        json.dump(_probe(root, depth, data), sys.stdout)
        return 0
    sys.stderr.write("usage: hostile.py probe DIR [MAX_DEPTH] [DATA]\n")
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
