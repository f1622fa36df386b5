"""Walking a mount of a hostile image in a child process, under a hang guard.

probe_mount() runs `python3 -m testlib.probe DIR` so that a hung FUSE request fails the
test instead of blocking it.  The child records raw readdir names (including "." and
".."), lstat, readlink and the sha256 of every regular file or the errno of reading it,
and what is odd about the names (listed twice, over NAME_MAX, a loop, endless depth).
"""

import ctypes
import errno
import hashlib
import json
import os
import stat
import sys

from testlib import env, trees

# Every walk and tool run on a hostile mount gets this hang guard.
TIMEOUT = 60


def probe_mount(mnt, data=True, max_depth=40, timeout=TIMEOUT):
    """Walk mnt in a child process; returns the dict _probe() builds."""
    cmd = [env.PYTHON, "-m", "testlib.probe", mnt, str(max_depth), "1" if data else "0"]
    p = env.run(cmd, check=False, timeout=timeout, cwd=env.HERE)
    if p.returncode != 0:
        raise AssertionError(f"the mount walker failed (exit {p.returncode}): "
                             f"{env.txt(p.stderr)[-3000:]}")
    return json.loads(p.stdout)


def probe_to_recs(probe):
    """{path: Rec} of what a probe saw (entries whose lstat failed are left out)."""
    out = {}
    for p, e in probe["entries"].items():
        if "lstat_error" in e:
            continue
        rdev = e.get("rdev")
        out[p] = trees.Rec(type=e["type"], mode=e["mode"], uid=e["uid"], gid=e["gid"],
                           nlink=e["nlink"], size=e["size"] if e["type"] != "dir" else None,
                           mtime=e["mtime"], target=e.get("target"),
                           rdev=tuple(rdev) if rdev else None, sha256=e.get("sha256"),
                           ino=e["ino"], error=e.get("read_error"))
    return out


def explore_with_tools(mnt, probe, timeout=TIMEOUT):
    """find, ls -lR and cat of every regular file the probe saw, each under the
    hang guard.  Returns {"find": CompletedProcess, "ls": ..., "cat": {path: (rc,
    sha256 of stdout, stderr)}}."""
    out = {"find": env.run(["find", mnt], check=False, timeout=timeout),
           "ls": env.run(["ls", "-lR", mnt], check=False, timeout=timeout),
           "cat": {}}
    for p, e in sorted(probe["entries"].items()):
        if e.get("type") != "reg":
            continue
        full = os.path.join(mnt, p.lstrip("/"))
        c = env.run(["cat", "--", full], check=False, timeout=timeout)
        out["cat"][p] = (c.returncode, trees.sha256(c.stdout), env.txt(c.stderr))
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
        out += [f"{key}: {ln.strip()}" for ln in env.txt(p.stderr).splitlines() if marker in ln]
    return out


def ls_dir(mnt, rel, timeout=TIMEOUT):
    """`ls -a DIR` of a directory in the mount: (rc, stdout, stderr)."""
    c = env.run(["ls", "-a", "--", os.path.join(mnt, rel.lstrip("/"))], check=False,
                timeout=timeout)
    return c.returncode, env.txt(c.stdout), env.txt(c.stderr)


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
        t = trees.type_of(st.st_mode)
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


def _main(argv):
    if not argv:
        sys.stderr.write("usage: python3 -m testlib.probe DIR [MAX_DEPTH] [DATA]\n")
        return 2
    depth = int(argv[1]) if len(argv) > 1 else 40
    data = (argv[2] != "0") if len(argv) > 2 else True
    sys.setrecursionlimit(max(10000, 4 * depth))
    json.dump(_probe(argv[0], depth, data), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
