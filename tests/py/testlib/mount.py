"""FUSE mounts: whether they can work here, and the one wrapper for every daemon a test runs.

Mount starts `discfs mount -f ...` (or any discfs command that mounts and stays in the
foreground: `stage -f`, the mount.fuse3 form), waits until the mount is live while
watching the daemon, and at the end always unmounts, waits for the daemon and fails on a
sanitizer report in its output.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from testlib import env, sanitizers, trees

# Waiting for a daemon to mount, or to exit after the unmount: a hang guard, never an
# assertion on speed.
READY_GUARD = 60
EXIT_GUARD = 60


# --------------------------------------------------------------------------
# Can FUSE mount here?
# --------------------------------------------------------------------------

def fuse_unavailable_reason():
    """None when this process can try FUSE mounts, else why not."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent: FUSE mount tests cannot run"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse cannot be opened ({e.strerror}): FUSE mount tests cannot run"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (install fuse3): FUSE mount tests cannot run"
    return None


def as_user(uid, gid, cmd):
    """cmd run as uid:gid (setpriv, without supplementary groups)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"] + list(cmd)


# What a daemon run as another user does itself: libfuse opens /dev/fuse, then runs the
# setuid fusermount3 to mount.
_USER_PROBE = r"""
import os, shutil, sys
try:
    os.close(os.open("/dev/fuse", os.O_RDWR))
except OSError as e:
    st = os.stat("/dev/fuse")
    print("cannot open /dev/fuse (%s; it is mode %04o, owner %d:%d)"
          % (e.strerror, st.st_mode & 0o7777, st.st_uid, st.st_gid))
    sys.exit(0)
fm = shutil.which("fusermount3") or "/usr/bin/fusermount3"
if not os.access(fm, os.X_OK):
    print("cannot run %s" % fm)
"""


def user_fuse_unavailable_reason(uid, gid):
    """None when a daemon run as uid:gid can mount, else why not.  Asked of a child process
    running as that user: root's own access says nothing about another user's."""
    reason = fuse_unavailable_reason()
    if reason:
        return reason
    if shutil.which("setpriv") is None:
        return f"setpriv is missing (util-linux): cannot run the daemon as uid {uid}"
    p = env.run(as_user(uid, gid, [sys.executable, "-c", _USER_PROBE]), check=False, timeout=60)
    why = env.txt(p.stdout).strip()
    if p.returncode != 0 or why:
        why = why or "cannot run python: " + env.txt(p.stderr).strip()[-200:]
        return (f"uid {uid} {why}: a daemon run as that user cannot mount (scripts/test.sh "
                f"makes /dev/fuse 0666 as Debian's udev rule does)")
    return None


def require_fuse(test, user=None):
    """Skips `test` (with the reason) where FUSE mounts cannot work or discfs is missing;
    user=(uid, gid): a daemon run as that user must be able to mount."""
    reason = fuse_unavailable_reason() if user is None else user_fuse_unavailable_reason(*user)
    if reason:
        test.skipTest(reason)
    env.require_binary(env.discfs_bin(), "discfs")


def is_live(mountpoint, dev0):
    """True once a mount on mountpoint answers: its st_dev is no longer dev0, or it is in
    mountinfo but its root cannot be stat'ed (e.g. EIO)."""
    try:
        return os.stat(mountpoint).st_dev != dev0
    except OSError:
        return env.is_mounted(mountpoint)


def wait_live(mountpoint, dev0, guard=READY_GUARD):
    """Waits until is_live; False when the guard ran out first."""
    deadline = time.monotonic() + guard
    while time.monotonic() < deadline:
        if is_live(mountpoint, dev0):
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------
# The wrapper
# --------------------------------------------------------------------------

class DaemonDied(AssertionError):
    """The daemon exited before its mount was live (.returncode, .stderr), or while
    mounted."""

    def __init__(self, message, returncode=None, stderr=""):
        super().__init__(message)
        self.returncode, self.stderr = returncode, stderr


class Mount:
    """IMAGE on MOUNTPOINT by `discfs mount -f ...` for the life of a with-block.

    options, tree: -o and --tree; args: the whole discfs command line instead (e.g.
    ["stage", "-f", ...]); env: the daemon's environment; user=(uid, gid): run the daemon
    as that user (check require_fuse(test, user) first).

    Entry waits until the mount is live (is_live) while polling the daemon.  A daemon that
    exits first raises DaemonDied, or with report=True is a refusal: .refused holds its
    exit code, .stderr its output, and the with-block runs with .live False.  Exit
    unmounts (fusermount3 -u, then -uz), waits for the daemon and collects problems: a
    sanitizer report, a daemon that died while mounted or exited non-zero, a failed
    unmount.  They raise AssertionError, or with report=True are left in .problems."""

    def __init__(self, image, mountpoint, options=(), tree=None, args=None,
                 ready_guard=READY_GUARD, env=None, user=None, report=False):
        self.image, self.mountpoint = image, mountpoint
        self.options, self.tree, self.args = list(options), tree, args
        self.ready_guard, self.env, self.user, self.report = ready_guard, env, user, report
        self.proc = None
        self.live = False
        self.refused = None
        self.returncode = None
        self.stderr = ""
        self.problems = []
        self._log = None
        self._done = False          # the daemon was waited for (refused, killed, stopped)

    def command(self):
        if self.args is not None:
            cmd = [env.discfs_bin()] + [str(a) for a in self.args]
        else:
            cmd = [env.discfs_bin(), "mount", "-f"]
            if self.tree:
                cmd += ["--tree", self.tree]
            if self.options:
                cmd += ["-o", ",".join(self.options)]
            cmd += [self.image, self.mountpoint]
        return as_user(*self.user, cmd) if self.user else cmd

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stderr_text(self):
        """What the daemon printed so far (stdout and stderr)."""
        if not self._log:
            return self.stderr
        with open(self._log, "rb") as f:
            return env.txt(f.read())

    def __enter__(self):
        os.makedirs(self.mountpoint, exist_ok=True)
        dev0 = os.stat(self.mountpoint).st_dev
        fd, self._log = tempfile.mkstemp(prefix="discfs-daemon-", suffix=".log")
        with os.fdopen(fd, "wb") as logf:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, env=self.env)
        deadline = time.monotonic() + self.ready_guard
        delay = 0.002
        while not is_live(self.mountpoint, dev0):
            if self.proc.poll() is not None:
                self._refused()
                return self
            if time.monotonic() > deadline:
                self.problems = self._stop()
                raise AssertionError(f"hung: {' '.join(self.command())} neither mounted nor "
                                     f"exited within {self.ready_guard}s (hang guard)\n"
                                     f"{self.stderr[-4000:]}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        self.live = True
        return self

    def _refused(self):
        rc = self.proc.wait()
        self._done = True
        self.refused = self.returncode = rc
        self._read_log()
        if env.is_mounted(self.mountpoint):
            self.problems.append(f"the daemon exited {rc} but left {self.mountpoint} mounted")
            subprocess.run(["fusermount3", "-uz", self.mountpoint], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        rep = sanitizers.report(self.stderr)
        if rep:
            self.problems.append(f"sanitizer report from the daemon: {rep}\n{self.stderr[-6000:]}")
        if not self.report:
            raise DaemonDied(f"discfs exited with {rc} before the mount was live: "
                             f"{' '.join(self.command())}\n--- stderr ---\n{self.stderr[-6000:]}",
                             rc, self.stderr)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        """Raise DaemonDied if the daemon has gone away."""
        if self.proc is not None and self.proc.poll() is not None:
            raise DaemonDied(f"discfs daemon died (exit {self.proc.returncode}) during the test"
                             f"\n--- stderr ---\n{self.stderr_text()[-6000:]}",
                             self.proc.returncode, self.stderr_text())

    def walk(self, sub="", data=True):
        """trees.walk of the mount (or of sub below it); the daemon must still live after."""
        got = trees.walk(os.path.join(self.mountpoint, sub) if sub else self.mountpoint,
                         data=data)
        self.check_alive()
        return got

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def kill9(self):
        """kill -9 the daemon and unmount what it leaves behind (as a user would, with -uz
        when something still holds the dead mount); the exit then checks nothing more."""
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.returncode = self.proc.wait(timeout=EXIT_GUARD)
        self._done = True
        self._read_log()
        unmount_dead(self.mountpoint)

    def _read_log(self):
        if self._log:
            self.stderr = self.stderr_text()
            try:
                os.unlink(self._log)
            except OSError:
                pass
            self._log = None

    def _stop(self):
        problems = []
        if self.proc is None or self._done:
            self._read_log()
            return problems
        died_early = self.proc.poll() is not None
        if env.is_mounted(self.mountpoint):
            p = subprocess.run(["fusermount3", "-u", self.mountpoint], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            if p.returncode != 0:
                problems.append("fusermount3 -u failed: " + env.txt(p.stderr).strip())
                subprocess.run(["fusermount3", "-uz", self.mountpoint],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            rc = self.proc.wait(timeout=EXIT_GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            problems.append(f"hung: the daemon did not exit within {EXIT_GUARD}s of the "
                            f"unmount; killed")
        self._done = True
        self.returncode = rc
        self._read_log()
        rep = sanitizers.report(self.stderr)
        if rep:
            problems.append(f"sanitizer report from the daemon: {rep}\n{self.stderr[-6000:]}")
        if died_early:
            problems.append(f"the daemon died (exit {rc}) while mounted\n{self.stderr[-6000:]}")
        elif rc != 0:
            problems.append(f"the daemon exited {rc} after the unmount\n{self.stderr[-3000:]}")
        return problems

    def __exit__(self, exc_type, exc, tb):
        self.problems += self._stop()
        if self.report or not self.problems:
            return False
        if exc_type is None:
            raise AssertionError("; ".join(self.problems))
        # Keep the original failure, but make sure the daemon's trouble is visible.
        sys.stderr.write("\n[discfs mount trouble] " + "; ".join(self.problems) + "\n")
        return False


# --------------------------------------------------------------------------
# Daemons a test started without -f, and dead mounts
# --------------------------------------------------------------------------

def unmount_dead(mountpoint):
    """Unmounts a mount whose daemon is gone; raises if it stays mounted."""
    for args in (["-u"], ["-uz"]):
        if not env.is_mounted(mountpoint):
            break
        subprocess.run(["fusermount3", *args, mountpoint], capture_output=True)
    if env.is_mounted(mountpoint):
        raise AssertionError(f"{mountpoint} is still mounted after fusermount3 -u and -uz")


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
    if env.is_mounted(mountpoint):
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
