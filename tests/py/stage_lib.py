"""Shared helpers for the staging-mount suites (test_stage.py, test_stage_crash.py).

Everything here drives the real binaries (`discfs stage/commit/status/discard`,
`discfs mount`, discfs-dump) and the independent reader xorriso; nothing
produces expected output with discfs's own code.

Typical use:

    env = StageEnv()                      # private XDG_STATE_HOME / XDG_RUNTIME_DIR
    with Stage(target, mnt, store=store):  # `discfs stage -f`, unmounted at exit
        ... change files under mnt ...
        res = commit(mnt)                  # dict: session, start_lba, blocks, ...
    rows = toc(target)                     # [(start_lba, blocks), ...] from xorriso
    rc, out = check_md5(target)            # xorriso -check_md5 + -check_md5_r
"""

import ctypes
import errno
import json
import os
import signal
import stat
import subprocess
import time

import discfs_testlib as L

# The stage mount answers with 1 s entry/attr timeouts: after a commit or a discard the
# kernel may show old attributes for up to that long.
ATTR_TIMEOUT = 1.1

EXIT_BUSY = 7
EXIT_COMMIT_FAILED = 8


def set_private_dirs(tmp):
    """Point XDG_STATE_HOME (default stores) and XDG_RUNTIME_DIR (mount registry) of this
    process and its children into tmp, so that no test writes below $HOME or /run."""
    for name in ("XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
        d = os.path.join(tmp, name.lower())
        os.makedirs(d, exist_ok=True)
        os.environ[name] = d


def use_private_dirs(test, tmp):
    """set_private_dirs(tmp) for one test: the old values come back at its cleanup."""
    saved = {k: os.environ.get(k) for k in ("XDG_STATE_HOME", "XDG_RUNTIME_DIR")}

    def restore():
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    test.addCleanup(restore)
    set_private_dirs(tmp)


def discfs(*args, check=True, timeout=L.HANG_GUARD, input=None):
    """Run `discfs ARGS...`; fails on a sanitizer report. check: exit 0 wanted."""
    cmd = [L.discfs_bin()] + [str(a) for a in args]
    p = L.run(cmd, check=False, timeout=timeout, input=input)
    err = L._txt(p.stderr)
    rep = L.sanitizer_report(err)
    if rep:
        raise AssertionError(f"sanitizer report from {' '.join(cmd)}: {rep}\n{err[-6000:]}")
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {' '.join(cmd)}\nstdout: "
                             f"{L._txt(p.stdout)[-2000:]}\nstderr: {err[-4000:]}")
    p.out = L._txt(p.stdout)
    p.err = err
    return p


def _where(mnt, store):
    if store is not None:
        return ["--store", store]
    return [mnt]


def commit(mnt=None, *opts, store=None, check=True, timeout=L.HANG_GUARD):
    """`discfs commit --json OPTS (MNT | --store STORE)`. Returns the result dict (the
    "done" event's result), or with check=False the process with .events (parsed lines)
    and .result (dict or None)."""
    p = discfs("commit", "--json", *opts, *_where(mnt, store), check=False, timeout=timeout)
    events = []
    for line in p.out.splitlines():
        line = line.strip()
        if line:
            try:
                events.append(json.loads(line))
            except ValueError as e:
                raise AssertionError(f"commit --json printed a line that is not JSON: "
                                     f"{line[:300]!r}") from e
    p.events = events
    done = [e for e in events if e.get("event") == "done"]
    p.result = done[-1]["result"] if done else None
    if check:
        if p.returncode != 0 or p.result is None:
            raise AssertionError(f"commit failed (exit {p.returncode}): {p.err[-3000:]}\n"
                                 f"{p.out[-2000:]}")
        return p.result
    return p


def status(mnt=None, store=None):
    """`discfs status --json` as a dict."""
    p = discfs("status", "--json", *_where(mnt, store))
    return json.loads(p.out.strip().splitlines()[-1])


def staged_count(st):
    return st["added"] + st["changed"] + st["deleted"] + st["renamed"]


def discard(mnt=None, *paths, store=None, check=True):
    return discfs("discard", *_where(mnt, store), *paths, check=check)


class Stage(L.Mount):
    """`discfs stage -f [--store S] [EXTRA...] TARGET MNT` for the life of a with-block.

    Same life cycle as discfs_testlib.Mount: live when MNT's st_dev changes; at exit
    fusermount3 -u, the daemon must exit 0 and print no sanitizer report."""

    def __init__(self, target, mountpoint, store=None, extra=(), ready_guard=120):
        args = ["stage", "-f"]
        if store:
            args += ["--store", store]
        args += [str(a) for a in extra] + [target, mountpoint]
        super().__init__(target, mountpoint, args=args, ready_guard=ready_guard)
        self.store = store

    @property
    def pid(self):
        return self.proc.pid if self.proc else None


def daemons_on(mountpoint):
    """PIDs of discfs processes whose command line names `mountpoint` (which callers make
    unique, inside their temporary directory): daemons a test started without -f."""
    mp = os.path.realpath(mountpoint)
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv or os.path.basename(argv[0].decode(errors="replace")) != "discfs":
            continue
        words = [a.decode(errors="replace") for a in argv]
        if any(w and os.path.realpath(w) == mp for w in words[1:] if w.startswith("/")):
            out.append(int(d))
    return out


def unmount_and_reap(mountpoint, timeout=30):
    """fusermount3 -u (then -uz) MOUNTPOINT and kill -9 whatever discfs daemon on it is left
    after `timeout`. Returns a list of problems (empty when it went cleanly)."""
    problems = []
    if L.is_mountpoint_in_mountinfo(mountpoint):
        p = subprocess.run(["fusermount3", "-u", mountpoint], capture_output=True, text=True)
        if p.returncode != 0:
            problems.append("fusermount3 -u failed: " + p.stderr.strip())
            subprocess.run(["fusermount3", "-uz", mountpoint], capture_output=True)
    deadline = time.monotonic() + timeout
    while daemons_on(mountpoint) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in daemons_on(mountpoint):
        problems.append(f"daemon {pid} still running after unmount: killed")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return problems


def wait_live(mountpoint, dev0, guard=60):
    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        try:
            if os.stat(mountpoint).st_dev != dev0:
                return True
        except OSError:
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------
# xorriso: the independent reader of what a commit wrote
# --------------------------------------------------------------------------

def xorriso(*args, timeout=L.HANG_GUARD):
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


def toc(img):
    """[(start_lba, blocks), ...] of every session, as xorriso -toc lists them."""
    r = xorriso("-indev", xdev(img), "-toc")
    rows = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("ISO session")]
    return [(int(x.split(",")[1]), int(x.split(",")[2].strip().rstrip("s"))) for x in rows]


def check_md5(img):
    """(exit code, output) of `xorriso -md5 on -indev IMG -check_md5 FAILURE -- -check_md5_r
    FAILURE / --`: 0 when the session MD5 and every recorded file MD5 match."""
    r = xorriso("-md5", "on", "-indev", xdev(img), "-check_md5", "FAILURE", "--",
                "-check_md5_r", "FAILURE", "/", "--")
    return r.returncode, r.stdout + r.stderr


def pvd_volume_id(img):
    r = xorriso("-indev", xdev(img), "-pvd_info")
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("Volume Id"):
            return line.split(":", 1)[1].strip()
    return None


def extract(img, dest):
    """{path: Rec} of what xorriso -osirrox extracts from IMG's newest session (hard links
    kept, device files restored). Sets .linkgroups on nothing: use L.link_groups."""
    L.xorriso_extract(xdev(img), dest, devices=True)
    return L.walk(dest)


def files_with_md5(img):
    """Paths of regular files that carry a recorded MD5 (xorriso -find -has_md5)."""
    r = xorriso("-md5", "on", "-indev", xdev(img), "-find", "/", "-type", "f", "-has_md5",
                "-exec", "report_lba", "--")
    # report_lba prints: "File data lba: ... , '/path'"
    out = set()
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith("File data lba:") and "'" in line:
            out.add(line[line.index("'") + 1:line.rindex("'")])
    return out


# --------------------------------------------------------------------------
# Syscalls Python does not wrap
# --------------------------------------------------------------------------

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    """renameat2(2); raises OSError like os.rename."""
    fn = _libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(old), _AT_FDCWD, os.fsencode(new), flags)
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


# --------------------------------------------------------------------------
# Trees
# --------------------------------------------------------------------------

def file_tree(root, data=True):
    """L.walk(root): {path: Rec} of a real directory (the mirror, a mount, an extraction)."""
    return L.walk(root, data=data)


# Times written "now" by the suite differ between the mirror and the stage by however long
# the two operations are apart (seconds under ASan); set times (touch -d, cp -a) are far
# from now, so a tolerance still catches a time that was not kept.
MTIME_TOLERANCE = 20


def tree_problems(expected, actual, kind="fs", mtime_tol=MTIME_TOLERANCE, skip=()):
    """Differences between `expected` (the mirror: L.walk of a plain directory) and
    `actual` ({path: Rec} of a mount, a dump or an extraction), as text lines.

    kind: "fs" (a FUSE mount or dump: everything recorded is compared), "extract" (an
    xorriso extraction: the root's and symlinks' own attributes are the extractor's).
    Compared: the set of paths, type, mode, uid, gid, size, symlink target, device
    numbers, contents (sha256), the link count of non-directories, mtime (within
    mtime_tol seconds) and which entries are hard links of each other."""
    exp = {p: r for p, r in expected.items() if p not in skip}
    act = {p: r for p, r in actual.items() if p not in skip}

    def keep(path, rec, field):
        if rec.type == "dir" and field in ("nlink", "size"):
            return False
        if kind == "extract":
            if path == "/" and field in ("mode", "uid", "gid", "mtime", "nlink"):
                return False
            if rec.type == "lnk" and field in ("mode", "uid", "gid", "mtime"):
                return False
        if path == "/" and field == "mtime":
            return False
        return field != "mtime"

    lines = L.diff_trees(exp, act, fields=L.COMPARE_ALL, field_filter=keep, max_lines=10**6)
    for p in sorted(set(exp) & set(act)):
        e, a = exp[p], act[p]
        if e.type != a.type or not keep(p, e, "type") or p == "/":
            continue
        if kind == "extract" and e.type == "lnk":
            continue
        if e.mtime is not None and (a.mtime is None or abs(e.mtime - a.mtime) > mtime_tol):
            lines.append(f"{p!r}: mtime expected {e.mtime} got {a.mtime}")
    ge = L.link_groups(exp)
    ga = L.link_groups(act)
    if ge != ga:
        lines.append(f"hard link groups differ: expected {ge} got {ga}")
    if len(lines) > 80:
        lines = lines[:80] + [f"... and {len(lines) - 80} more"]
    return lines


def dump_tree(img, *extra):
    """{path: Rec} of discfs-dump IMG (with EXTRA options such as --session N)."""
    return L.dump(img, extra=list(extra)).records


def errno_of(fn, *a, **kw):
    """The errno fn(*a) fails with, or 0."""
    try:
        fn(*a, **kw)
    except OSError as e:
        return e.errno
    return 0


__all__ = [n for n in dir() if not n.startswith("_")] + ["errno", "stat"]
