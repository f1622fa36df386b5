"""The binaries under test, their exit codes, running commands, and what a module needs.

Run with the system python (/usr/bin/python3): it has python3-pycdlib.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # tests/py
PROJECT = os.path.normpath(os.path.join(HERE, "..", ".."))
PYTHON = "/usr/bin/python3"

# Exit code a test module uses when it cannot run at all (CTest SKIP_RETURN_CODE).
SKIP_RC = 77

# Guard against a hung tool or daemon.  Never used as an assertion on speed:
# a command that has not finished by then is reported as hung.
HANG_GUARD = 300

# Exit codes of discfs and discfs-dump (man/discfs.1, EXIT STATUS).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_CANNOT_OPEN = 3        # the source cannot be opened or read
EXIT_NOT_AN_IMAGE = 4       # the source is not an ISO 9660 or UDF image
EXIT_UNSUPPORTED = 5        # block size, a tree or session the image lacks, audio only
EXIT_MOUNT_FAILED = 6
EXIT_BUSY = 7
EXIT_COMMIT_FAILED = 8
EXIT_MISMATCH = 9           # verify: something does not match
EXIT_PARTIAL_RIP = 11       # rip: bad sectors remain (see the map)
EXIT_CANCELLED = 130        # commit cancelled (SIGINT) before its commit point


# --------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------

def _binary(env_name, default_rel):
    return os.environ.get(env_name) or os.path.join(PROJECT, default_rel)


def discfs_bin():
    return _binary("DISCFS_BIN", os.path.join("build", "dev", "cli", "discfs"))


def discfs_dump_bin():
    return _binary("DISCFS_DUMP", os.path.join("build", "dev", "tests", "tools", "discfs-dump"))


def commit_driver_bin():
    """tests/tools/commit_driver, built next to discfs-dump (DISCFS_COMMIT_DRIVER overrides)."""
    return os.environ.get("DISCFS_COMMIT_DRIVER") or os.path.join(
        os.path.dirname(discfs_dump_bin()), "commit_driver")


def eio_fs_bin():
    """tests/tools/eio_fs, built next to discfs-dump (DISCFS_EIO_FS overrides)."""
    return os.environ.get("DISCFS_EIO_FS") or os.path.join(
        os.path.dirname(discfs_dump_bin()), "eio_fs")


_BINARIES = {"discfs": discfs_bin, "discfs-dump": discfs_dump_bin,
             "commit_driver": commit_driver_bin, "eio_fs": eio_fs_bin}


def require_binary(path, what):
    """Raise SkipTest (with a clear message) when a binary under test is absent."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise unittest.SkipTest(f"{what} not built: {path} does not exist "
                                f"(set DISCFS_BIN/DISCFS_DUMP or build the dev preset)")


def require_tools(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise unittest.SkipTest("missing tools: " + ", ".join(missing))


def require_pycdlib():
    """Skip the calling module when pycdlib (the independent reader) is missing."""
    try:
        import pycdlib
        del pycdlib
    except ImportError:
        raise unittest.SkipTest("pycdlib missing: run with /usr/bin/python3 (python3-pycdlib)")


def is_root():
    return os.geteuid() == 0


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------

def txt(b):
    """Process output as text (undecodable bytes replaced)."""
    if b is None:
        return ""
    if isinstance(b, bytes):
        return b.decode("utf-8", "replace")
    return b


def run(cmd, check=True, timeout=HANG_GUARD, **kw):
    """subprocess.run with captured output and a hang guard; check: exit 0 wanted."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    try:
        p = subprocess.run(cmd, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"command hung (no exit after {timeout}s): {cmd!r}") from e
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed with exit {p.returncode}: {' '.join(map(str, cmd))}\n"
                           f"stdout: {txt(p.stdout)[-2000:]}\nstderr: {txt(p.stderr)[-4000:]}")
    return p


def errno_of(fn, *a, **kw):
    """The errno fn(*a) fails with, or 0."""
    try:
        fn(*a, **kw)
    except OSError as e:
        return e.errno
    return 0


def fail_diff(test, lines, what):
    """Fails `test` listing the difference lines, if there are any."""
    if lines:
        test.fail(f"{what}:\n  " + "\n  ".join(lines))


# --------------------------------------------------------------------------
# Temporary directories and what is mounted on them
# --------------------------------------------------------------------------

def mounts_below(path):
    """Mount points (from /proc/self/mountinfo) at or below path, deepest first."""
    path = os.path.realpath(path)
    out = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                mp = line.split()[4].encode().decode("unicode_escape")
                if mp == path or mp.startswith(path + "/"):
                    out.append(mp)
    except OSError:
        pass
    return sorted(out, key=len, reverse=True)


def mount_flags(path):
    """The per-mount options (field 6 of /proc/self/mountinfo: "ro", "nosuid", "nodev", ...)
    of the mount on top at path, as a set; None when nothing is mounted there."""
    path = os.path.realpath(path)
    flags = None
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            if fields[4].encode().decode("unicode_escape") == path:
                flags = set(fields[5].split(","))  # a later mount hides an earlier one
    return flags


def is_mounted(path):
    """True when something is mounted on path (it is listed in /proc/self/mountinfo)."""
    return os.path.realpath(path) in mounts_below(path)


class TempDir:
    """A temporary directory removed at cleanup (lazy-unmounting anything left on it)."""

    def __init__(self, prefix="discfs-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("DISCFS_TEST_TMP") or None)

    def sub(self, *parts, make=True):
        p = os.path.join(self.path, *parts)
        if make:
            os.makedirs(p, exist_ok=True)
        return p

    def cleanup(self):
        if not os.path.exists(self.path):
            return
        # Never recurse into a live mount: unmount anything still mounted below us.
        for mnt in mounts_below(self.path):
            subprocess.run(["fusermount3", "-uz", mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(self.path, ignore_errors=True)


class ModuleFixture:
    """What a test module sets up once: its requirements (unmet: the module skips with the
    reason), a temporary directory, and a cache of what its tests share (images,
    references).  In the module:

        M = env.ModuleFixture("discfs-x-", binaries=("discfs-dump",), tools=("xorriso",))
        setUpModule, tearDownModule = M.set_up, M.tear_down
    """

    def __init__(self, prefix, binaries=(), tools=(), pycdlib=False, fuse=False, root=None):
        """root: the reason to skip when not run as root (None: root is not needed)."""
        self.prefix, self.binaries, self.tools = prefix, binaries, tools
        self.pycdlib, self.fuse, self.root = pycdlib, fuse, root
        self.tmp = None
        self.cache = {}

    def set_up(self):
        if self.fuse:
            from testlib import mount
            reason = mount.fuse_unavailable_reason()
            if reason:
                raise unittest.SkipTest(reason)
        for name in self.binaries:
            require_binary(_BINARIES[name](), name)
        require_tools(*self.tools)
        if self.pycdlib:
            require_pycdlib()
        if self.root and not is_root():
            raise unittest.SkipTest(self.root)
        self.tmp = TempDir(prefix=self.prefix)

    def tear_down(self):
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None
        self.cache.clear()

    @property
    def path(self):
        return self.tmp.path

    def sub(self, *parts, make=True):
        return self.tmp.sub(*parts, make=make)

    def cached(self, key, make):
        """cache[key], made by make() the first time."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]
