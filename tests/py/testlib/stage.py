"""The staging verbs (`discfs stage/commit/status/discard`) as the stage suites use them.

Everything here drives the real binaries; what a commit wrote is read back with the
independent readers (readers.toc, check_md5, extract_tree), never with discfs's code.

    use_private_dirs(test, tmp)         # private XDG_STATE_HOME / XDG_RUNTIME_DIR
    with Stage(target, mnt, store=store):  # `discfs stage -f`, unmounted at exit
        ... change files under mnt ...
        res = commit(mnt)                  # dict: session, start_lba, blocks, ...
"""

import ctypes
import json
import os

from testlib import dump, env, mount, sanitizers, trees

# The stage mount answers with 1 s entry/attr timeouts: without the daemon telling the
# kernel, it would show old entries for up to that long after a commit or a discard.
ATTR_TIMEOUT = 1.1

# Times written "now" by the suite differ between the mirror and the stage by however long
# the two operations are apart (seconds under ASan); set times (touch -d, cp -a) are far
# from now, so a tolerance still catches a time that was not kept.
MTIME_TOLERANCE = 20


def set_private_dirs(tmp):
    """Point XDG_STATE_HOME (default stores) and XDG_RUNTIME_DIR (mount registry) of this
    process and its children into tmp, so that no test writes below $HOME or /run."""
    for name in ("XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
        d = os.path.join(tmp, name.lower())
        os.makedirs(d, exist_ok=True)
        os.environ[name] = d


def set_up_module(fixture):
    """A stage test module's setUpModule: the module fixture, and private state and runtime
    folders inside it (set_private_dirs)."""
    fixture.set_up()
    set_private_dirs(fixture.path)


def tear_down_module(fixture):
    """A stage test module's tearDownModule: unmounts (and reaps the daemons of) whatever its
    tests left mounted below the fixture, then removes it."""
    if fixture.tmp is not None:
        for mnt in env.mounts_below(fixture.path):
            mount.unmount_and_reap(mnt)
    fixture.tear_down()


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


def discfs(*args, check=True, timeout=env.HANG_GUARD, input=None):
    """Run `discfs ARGS...`; fails on a sanitizer report. check: exit 0 wanted.  The result
    has .out and .err as text."""
    cmd = [env.discfs_bin()] + [str(a) for a in args]
    p = env.run(cmd, check=False, timeout=timeout, input=input)
    err = env.txt(p.stderr)
    sanitizers.check(" ".join(cmd), err)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {' '.join(cmd)}\nstdout: "
                             f"{env.txt(p.stdout)[-2000:]}\nstderr: {err[-4000:]}")
    p.out = env.txt(p.stdout)
    p.err = err
    return p


def _where(mnt, store):
    return ["--store", store] if store is not None else [mnt]


def commit(mnt=None, *opts, store=None, check=True, timeout=env.HANG_GUARD):
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
    """`discfs discard (MNT | --store STORE) PATHS...`; without paths, `discard --all`."""
    return discfs("discard", *_where(mnt, store), *(paths or ["--all"]), check=check)


class Stage(mount.Mount):
    """`discfs stage -f [--store S] [EXTRA...] TARGET MNT` for the life of a with-block,
    with mount.Mount's life cycle (live when MNT's st_dev changes; at exit fusermount3 -u,
    the daemon must exit 0 and print no sanitizer report)."""

    def __init__(self, target, mountpoint, store=None, extra=(), ready_guard=120):
        args = ["stage", "-f"]
        if store:
            args += ["--store", store]
        args += [str(a) for a in extra] + [target, mountpoint]
        super().__init__(target, mountpoint, args=args, ready_guard=ready_guard)
        self.store = store


def write_file(path, data, mtime=None, mode=None, fsync=False):
    """Write path (through a mount, or in a mirror) with data (fsync'd when asked); then
    utime (atime and mtime both mtime) and chmod when given."""
    with open(path, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    if mode is not None:
        os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


# --------------------------------------------------------------------------
# Comparing a stage, a mirror, a dump, an extraction
# --------------------------------------------------------------------------

def tree_problems(expected, actual, kind="fs", mtime_tol=MTIME_TOLERANCE, skip=()):
    """trees.diff of `expected` (the mirror: trees.walk of a plain directory) and `actual`
    (a mount, a dump or an extraction) as the stage suites compare them.

    kind: "fs" (a FUSE mount or dump: everything recorded is compared), "extract" (an
    xorriso extraction: the root's and symlinks' own attributes are the extractor's).
    Compared: the set of paths, type, mode, uid, gid, size, symlink target, device
    numbers, contents (sha256), the link count of non-directories, mtime (within
    mtime_tol seconds, not the root's) and which entries are hard links of each other."""
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
        return not (path == "/" and field == "mtime")

    return trees.diff(exp, act, keep=keep, mtime_tolerance=mtime_tol, links=True,
                      max_lines=80)


def dump_tree(img, *extra):
    """{path: Rec} of discfs-dump IMG (with EXTRA options such as --session N)."""
    return dump.dump(img, extra=list(extra)).records


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
