"""`discfs commit` as a user meets it around a live stage mount: writers busy during the
commit, Ctrl-C, relative paths, a target another program changed meanwhile, and what the
command prints on a terminal, on a pipe and with --json.

What was written is read back with xorriso (-toc, -osirrox), never with discfs's code.
"""

import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import fcntl
import time
import unittest

from testlib import env, images, mount, readers, sources, stage

M = env.ModuleFixture("discfs-commitproto-", tools=("xorriso",))
MiB = 1 << 20


def setUpModule():
    stage.set_up_module(M)


def tearDownModule():
    stage.tear_down_module(M)


# One writer process: creates, writes (in several writes) and closes file after file in its
# own folder until the stop file appears, then prints how many files it finished. The
# contents are derived from the name, so any file read back can be checked.
WRITER = r"""
import os, sys
root, me, stop = sys.argv[1], sys.argv[2], sys.argv[3]
d = os.path.join(root, "w" + me)
os.makedirs(d, exist_ok=True)
n = 0
while not os.path.exists(stop) and n < 100000:
    name = "f%05d" % n
    data = (name.encode() * 4096)[:20000 + 37 * n % 9000]
    with open(os.path.join(d, name), "wb") as f:
        for i in range(0, len(data), 4096):
            f.write(data[i:i + 4096])
            f.flush()
    os.chmod(os.path.join(d, name), 0o640)
    n += 1
print(n)
"""


def expected_content(name):
    n = int(name[1:])
    return (name.encode() * 4096)[:20000 + 37 * n % 9000]


def xorriso_extract(img, dest):
    readers.xorriso(["-osirrox", "on", "-indev", img, "-extract", "/", dest])


class CommitCase(unittest.TestCase):

    def setUp(self):
        mount.require_fuse(self)
        self.dir = M.sub(self.id().rsplit(".", 1)[-1])

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def base(self):
        src = self.path("src")
        os.makedirs(os.path.join(src, "d"))
        stage.write_file(os.path.join(src, "keep"), b"keep\n", sources.T2020)
        stage.write_file(os.path.join(src, "d", "inner"), b"inner\n" * 1000, sources.T2020)
        return images.make_xorriso_native(self.path("base.iso"), src)

    def commit_proc(self, mnt, *opts, **kw):
        return subprocess.Popen([env.discfs_bin(), "commit", *opts, mnt],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


class BusyWriters(CommitCase):

    def test_commit_while_writers_are_busy(self):
        """Six processes create, write, chmod and close files as fast as they can (what
        cp -r, tar or a build do) while `discfs commit` runs: the commit must not wait for
        them to stop, every writer goes on and finishes, and the committed session holds
        only whole files, as xorriso extracts them."""
        img = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        stop = self.path("stop")
        nwriters = 6
        with stage.Stage(img, mnt, store=store):
            writers = [subprocess.Popen([sys.executable, "-c", WRITER, mnt, str(i), stop],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True) for i in range(nwriters)]
            try:
                # Let every writer get going.
                for i in range(nwriters):
                    w = os.path.join(mnt, "w%d" % i)
                    for _ in range(600):
                        if os.path.isdir(w) and len(os.listdir(w)) >= 3:
                            break
                        time.sleep(0.1)
                p = stage.commit(mnt, "--wait", "20", check=False)
                self.assertEqual(p.returncode, 0,
                                 f"the commit failed while writers were busy:\n{p.err}")
                self.assertIsNotNone(p.result)
            finally:
                with open(stop, "w"):
                    pass
                outs = [w.communicate(timeout=env.HANG_GUARD) for w in writers]
            for w, (out, err) in zip(writers, outs):
                self.assertEqual(w.returncode, 0, err)
            first = p.result["session"]
            # What is left is committed too, so both sessions can be checked.
            stage.commit(mnt)
        self.assertEqual(readers.session_count(img), first + 1)
        for session_img, what in ((img, "newest session"),):
            ext = self.path("extracted")
            xorriso_extract(session_img, ext)
            total = 0
            for i in range(nwriters):
                d = os.path.join(ext, "w%d" % i)
                names = sorted(os.listdir(d))
                self.assertEqual(len(names), int(outs[i][0].strip()),
                                 f"writer {i}: files missing from the {what}")
                for name in names:
                    with open(os.path.join(d, name), "rb") as f:
                        self.assertEqual(f.read(), expected_content(name),
                                         f"w{i}/{name} is not whole in the {what}")
                total += len(names)
            self.assertGreater(total, 0)
        # The first session is whole too: each file in it is complete.
        ext1 = self.path("extracted1")
        readers.xorriso(["-osirrox", "on", "-load", "session", str(first), "-indev", img,
                         "-extract", "/", ext1])
        for i in range(nwriters):
            d = os.path.join(ext1, "w%d" % i)
            for name in os.listdir(d) if os.path.isdir(d) else ():
                with open(os.path.join(d, name), "rb") as f:
                    self.assertEqual(f.read(), expected_content(name),
                                     f"w{i}/{name} is not whole in session {first}")

    def test_times_set_before_close_do_not_hold_the_commit(self):
        """What cp -a does last: futimens and fchmod on the file still open for writing,
        then close. While a commit waits for that file, those calls must go on (the writer
        could never close otherwise): the commit succeeds and keeps the times."""
        img = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            fd = os.open(os.path.join(mnt, "copied"), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"copied\n")
                proc = self.commit_proc(mnt, "--json", "--wait", "60")
                seen = read_events(proc, lambda e: e.get("phase") == "waiting for open files")
                self.assertEqual(seen[-1].get("phase"), "waiting for open files", seen)
                time.sleep(0.5)  # let the commit close its gate
                done = []
                t = threading.Thread(target=lambda: done.append(
                    (os.utime(fd, (sources.T2020, sources.T2020)), os.fchmod(fd, 0o644))))
                t.start()
                t.join(timeout=20)
                self.assertTrue(done, "futimens/fchmod on a file open for writing waited "
                                "for the commit that waits for its close")
            finally:
                os.close(fd)
            out, err = proc.communicate(timeout=env.HANG_GUARD)
            self.assertEqual(proc.returncode, 0, err)
        ext = self.path("ext")
        xorriso_extract(img, ext)
        st = os.stat(os.path.join(ext, "copied"))
        self.assertEqual(int(st.st_mtime), int(sources.T2020))
        self.assertEqual(st.st_mode & 0o777, 0o644)

    def test_writer_that_never_closes_still_times_out(self):
        """A file kept open for writing still makes the commit give up after --wait (exit
        7, naming it) while other writers that close are served; nothing is written."""
        img = self.base()
        toc = readers.session_count(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            fh = open(os.path.join(mnt, "held_open"), "wb")
            try:
                fh.write(b"x")
                fh.flush()
                proc = self.commit_proc(mnt, "--json", "--wait", "3")
                # Another writer meanwhile: its create is held, then served after the
                # commit gave up.
                other = subprocess.Popen(["bash", "-c", 'for i in 1 2 3; do echo $i > "$1/o$i";'
                                          ' done', "-", mnt])
                out, err = proc.communicate(timeout=env.HANG_GUARD)
                self.assertEqual(other.wait(timeout=env.HANG_GUARD), 0)
            finally:
                fh.close()
            self.assertEqual(proc.returncode, env.EXIT_BUSY, err)
            self.assertIn("held_open", err)
            self.assertEqual(readers.session_count(img), toc)
            for i in (1, 2, 3):
                with open(os.path.join(mnt, "o%d" % i)) as f:
                    self.assertEqual(f.read(), "%d\n" % i)



def stage_big(mnt, mib):
    """mib MiB of new data on the stage, in 8 MiB files of random bytes."""
    os.makedirs(os.path.join(mnt, "big"), exist_ok=True)
    chunk = os.urandom(MiB)
    for i in range(mib // 8):
        with open(os.path.join(mnt, "big", "part%03d" % i), "wb") as f:
            for _ in range(8):
                f.write(chunk)


def read_events(proc, until):
    """JSON lines of proc's stdout until until(event) is true; returns them."""
    seen = []
    for line in proc.stdout:
        line = line.strip()
        if not line:
            continue
        ev = json.loads(line)
        seen.append(ev)
        if until(ev):
            break
    return seen


class Cancel(CommitCase):

    def test_ctrl_c_while_waiting_for_open_files_cancels(self):
        """Ctrl-C while the commit waits for a file open for writing: the commit is
        cancelled and says so (exit 130), nothing is written, the staged files are kept,
        and a later commit writes them."""
        img = self.base()
        toc = readers.session_count(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            stage.write_file(os.path.join(mnt, "new"), b"staged\n")
            fh = open(os.path.join(mnt, "held"), "wb")
            try:
                proc = self.commit_proc(mnt, "--json", "--wait", "120")
                seen = read_events(proc, lambda e: e.get("phase") == "waiting for open files")
                self.assertTrue(seen and seen[-1].get("phase") == "waiting for open files",
                                f"no phase event before the wait: {seen}")
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=env.HANG_GUARD)
            finally:
                fh.close()
            self.assertEqual(proc.returncode, env.EXIT_CANCELLED, err)
            self.assertIn("cancelled", err)
            self.assertIn('"event":"cancelled"', out)
            self.assertEqual(readers.session_count(img), toc, "a cancelled commit wrote")
            st = stage.status(mnt)
            self.assertGreaterEqual(st["added"], 2, st)
            res = stage.commit(mnt)
            self.assertEqual(res["session"], toc + 1)
        ext = self.path("ext")
        xorriso_extract(img, ext)
        with open(os.path.join(ext, "new"), "rb") as f:
            self.assertEqual(f.read(), b"staged\n")

    def test_ctrl_c_during_the_write_tells_the_truth(self):
        """Ctrl-C while a 200 MiB session is written: either the commit is cancelled (exit
        130, "cancelled", the target's sessions unchanged, everything still staged) or it
        had passed its commit point and the client says the session was written (exit 0,
        one more session, nothing staged). The client never says one and does the other."""
        img = self.base()
        toc = readers.session_count(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            stage_big(mnt, 200)
            proc = self.commit_proc(mnt, "--json")
            seen = read_events(proc, lambda e: e.get("event") == "progress" and e["done"] > 0)
            self.assertEqual(seen[-1].get("event"), "progress", seen)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=env.HANG_GUARD)
            events = seen + [json.loads(x) for x in out.splitlines() if x.strip()]
            time.sleep(stage.ATTR_TIMEOUT)
            st = stage.status(mnt)
            if proc.returncode == env.EXIT_CANCELLED:
                self.assertIn("cancelled", err)
                self.assertEqual(readers.session_count(img), toc,
                                 "the client said cancelled, but a session was written")
                self.assertEqual(st["added"], 1 + 200 // 8, st)  # big/ and its files
                self.assertEqual(len(os.listdir(os.path.join(mnt, "big"))), 200 // 8)
            else:
                self.assertEqual(proc.returncode, 0, err)
                self.assertIn("written", err)
                self.assertIn("done", [e.get("event") for e in events])
                self.assertEqual(readers.session_count(img), toc + 1)
                self.assertEqual(stage.staged_count(st), 0, st)

    def test_interrupt_after_the_commit_point_says_written(self):
        """An interrupt once the daemon has passed the commit point (phase "written") is
        answered with the session written: exit 0, the summary, one more session."""
        img = self.base()
        toc = readers.session_count(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            stage_big(mnt, 16)
            proc = self.commit_proc(mnt, "--json")
            seen = read_events(proc, lambda e: e.get("phase") == "written")
            self.assertEqual(seen[-1].get("phase"), "written", seen)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=env.HANG_GUARD)
            self.assertEqual(proc.returncode, 0, err)
            self.assertIn('"event":"done"', out)
            self.assertNotIn("cancelled", err)
        self.assertEqual(readers.session_count(img), toc + 1)


class Paths(CommitCase):

    def test_relative_to_is_the_callers(self):
        """`commit --to copy.iso` run in a directory writes that directory's copy.iso (not
        the daemon's working directory) and reports the absolute path."""
        img = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        work = self.path("work")
        os.makedirs(work)
        name = "copy-%d.iso" % os.getpid()
        self.addCleanup(lambda: os.path.exists("/" + name) and os.unlink("/" + name))
        with stage.Stage(img, mnt, store=store):
            stage.write_file(os.path.join(mnt, "new"), b"new\n")
            p = subprocess.run([env.discfs_bin(), "commit", "--to", name, mnt], cwd=work,
                               capture_output=True, text=True, timeout=env.HANG_GUARD)
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists("/" + name), "--to was resolved in the daemon's /")
        copy = os.path.join(work, name)
        self.assertTrue(os.path.exists(copy), p.stdout + p.stderr)
        self.assertIn(copy, p.stdout)
        ext = self.path("ext")
        xorriso_extract(copy, ext)
        with open(os.path.join(ext, "new"), "rb") as f:
            self.assertEqual(f.read(), b"new\n")


class TargetChanged(CommitCase):

    def test_target_appended_by_xorriso(self):
        """xorriso appends a session to the target while it is staged: the commit refuses
        (exit 8, saying the target changed), writes nothing, and loses nothing: xorriso's
        file stays in the newest tree and the staged file stays staged."""
        img = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        other = self.path("other.txt")
        with open(other, "w") as f:
            f.write("from xorriso\n")
        with stage.Stage(img, mnt, store=store):
            stage.write_file(os.path.join(mnt, "staged"), b"staged\n")
            readers.xorriso(["-dev", img, "-map", other, "/other.txt", "-commit"])
            toc = readers.session_count(img)
            p = stage.commit(mnt, check=False)
            self.assertEqual(p.returncode, env.EXIT_COMMIT_FAILED, p.err)
            self.assertIn("changed since it was staged", p.err)
            self.assertEqual(readers.session_count(img), toc, "a session was written anyway")
            self.assertEqual(stage.status(mnt)["added"], 1)
            with open(os.path.join(mnt, "staged"), "rb") as f:
                self.assertEqual(f.read(), b"staged\n")
        ext = self.path("ext")
        xorriso_extract(img, ext)
        self.assertTrue(os.path.exists(os.path.join(ext, "other.txt")),
                        "xorriso's file vanished from the newest tree")


def run_in_pty(argv, cols):
    """argv on a pseudo-terminal `cols` wide; returns (exit status, everything printed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    out = b""
    while True:
        try:
            r, _, _ = select.select([fd], [], [], env.HANG_GUARD)
            if not r:
                break
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


class HeldAcrossCommits(CommitCase):
    """What a process holds on the stage from before a commit stays what it was: a working
    directory from the base image keeps its inode number and its listing, a file of the base
    opened before reads the same bytes, and so through a second commit in a row."""

    def test_base_cwd_and_open_base_file_survive_two_commits(self):
        img, mnt, store = self.base(), self.path("mnt"), self.path("store")
        inner = b"inner\n" * 1000

        def read(p):
            with open(p, "rb") as f:
                return f.read()

        with stage.Stage(img, mnt, store=store):
            d = os.path.join(mnt, "d")
            fd = os.open(os.path.join(d, "inner"), os.O_RDONLY)
            fd_ino = os.fstat(fd).st_ino
            here = os.getcwd()
            os.chdir(d)
            try:
                cwd_ino = os.stat(".").st_ino
                self.assertEqual(os.stat(d).st_ino, cwd_ino)
                problems = []
                for n in (1, 2):
                    stage.write_file(f"rel{n}", f"made in the cwd before commit {n}\n".encode())
                    stage.commit(mnt)
                    want = sorted(["inner"] + [f"rel{i}" for i in range(1, n + 1)])
                    checks = (
                        ("stat('.') st_ino", lambda: os.stat(".").st_ino, cwd_ino),
                        ("stat of the cwd's path st_ino", lambda: os.stat(d).st_ino, cwd_ino),
                        ("getcwd()", os.getcwd, d),
                        ("listing '.'", lambda: sorted(os.listdir(".")), want),
                        ("pread of the fd opened before", lambda: os.pread(fd, 1 << 16, 0),
                         inner),
                        ("fstat of that fd st_ino", lambda: os.fstat(fd).st_ino, fd_ino),
                        ("'inner' opened again, relative", lambda: read("inner"), inner),
                        (f"'rel{n}' relative", lambda: read(f"rel{n}"),
                         f"made in the cwd before commit {n}\n".encode()),
                    )
                    for what, fn, expected in checks:
                        try:
                            got = fn()
                        except OSError as e:
                            got = f"error {e}"
                        if got != expected:
                            show = [repr(x[:40]) + f" ({len(x)} bytes)"
                                    if isinstance(x, bytes) else repr(x)
                                    for x in (got, expected)]
                            problems.append(f"after commit {n}: {what}: {show[0]}, "
                                            f"expected {show[1]}")
                    # Numbers the kernel kept may not be given to other inodes.
                    seen = {}
                    for root, dirs, files in os.walk(mnt):
                        for name in dirs + files:
                            p = os.path.join(root, name)
                            ino = os.lstat(p).st_ino
                            if ino in seen:
                                problems.append(f"after commit {n}: {p} and {seen[ino]} "
                                                f"share inode {ino}")
                            seen[ino] = p
                env.fail_diff(self, problems, "held across commits, on the stage")
            finally:
                os.chdir(here)
                os.close(fd)
        self.assertEqual(readers.session_count(img), 3)


    def test_base_cwd_and_open_base_file_survive_discards(self):
        """A discard renumbers what it drops (--all: everything); the working directory,
        changed itself and then discarded, keeps its number and shows the base again."""
        img, mnt, store = self.base(), self.path("mnt"), self.path("store")
        inner = b"inner\n" * 1000
        with stage.Stage(img, mnt, store=store):
            d = os.path.join(mnt, "d")
            fd = os.open(os.path.join(d, "inner"), os.O_RDONLY)
            here = os.getcwd()
            os.chdir(d)
            try:
                cwd_ino, mode = os.stat(".").st_ino, os.stat(".").st_mode
                problems = []
                for how in (("/d",), ()):
                    stage.write_file("rel", b"staged\n")
                    os.chmod(".", 0o700)
                    stage.discard(mnt, *how)
                    what = f"after discard {' '.join(how) or '--all'}"
                    try:
                        st = os.stat(".")
                        if (st.st_ino, st.st_mode) != (cwd_ino, mode):
                            problems.append(f"{what}: stat('.') gives inode {st.st_ino} mode "
                                            f"{st.st_mode:o}, was {cwd_ino} {mode:o}")
                        if sorted(os.listdir(".")) != ["inner"]:
                            problems.append(f"{what}: '.' lists {sorted(os.listdir('.'))}")
                        if os.getcwd() != d:
                            problems.append(f"{what}: getcwd() is {os.getcwd()}")
                        if os.pread(fd, 1 << 16, 0) != inner:
                            problems.append(f"{what}: the fd opened before reads other bytes")
                    except OSError as e:
                        problems.append(f"{what}: {e}")
                env.fail_diff(self, problems, "held across discards, on the stage")
            finally:
                os.chdir(here)
                os.close(fd)


    def test_open_unlinked_files_read_on_across_a_commit(self):
        """A file unlinked while open (one staged, one from the base) reads on through its
        descriptor after a commit, as on any POSIX file system."""
        img, mnt, store = self.base(), self.path("mnt"), self.path("store")
        staged = b"staged, then unlinked while open\n" * 300
        with stage.Stage(img, mnt, store=store):
            stage.write_file(os.path.join(mnt, "s"), staged)
            fds = {"staged": (os.open(os.path.join(mnt, "s"), os.O_RDONLY), staged),
                   "base": (os.open(os.path.join(mnt, "d", "inner"), os.O_RDONLY),
                            b"inner\n" * 1000)}
            try:
                os.unlink(os.path.join(mnt, "s"))
                os.unlink(os.path.join(mnt, "d", "inner"))
                stage.write_file(os.path.join(mnt, "other"), b"something to commit\n")
                stage.commit(mnt)
                problems = []
                for what, (fd, want) in fds.items():
                    try:
                        if os.pread(fd, 1 << 20, 0) != want or os.fstat(fd).st_size != len(want):
                            problems.append(f"the {what} file reads other bytes")
                    except OSError as e:
                        problems.append(f"the {what} file: {e}")
                env.fail_diff(self, problems, "open unlinked files after a commit")
            finally:
                for fd, _ in fds.values():
                    os.close(fd)
        # The kernel sends the last close on its own time; by the unmount it has.
        self.assertEqual(os.listdir(os.path.join(store, "data")), [],
                         "the unlinked file's staged copy stays after its last close")


class Output(CommitCase):

    def test_terminal_pipe_and_json(self):
        """On a 40-column terminal the commit draws one line in place, never wider than
        the terminal, names its steps, and ends with a readable summary (no JSON); on a pipe
        it prints only the summary; --json stays one JSON object per line with phase
        events."""
        img = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            stage_big(mnt, 48)
            rc, out = run_in_pty([env.discfs_bin(), "commit", mnt], 40)
            self.assertEqual(rc, 0, out)
            self.assertNotIn("{", out, "the summary is JSON")
            self.assertRegex(out, r"committed: session \d+")
            self.assertIn("MD5 verified", out)
            ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
            for piece in re.split(r"[\r\n]", ansi.sub("", out)):
                self.assertLessEqual(len(piece.rstrip()) if "committed:" not in piece else 0,
                                     39, f"a line wider than the terminal: {piece!r}")
            drawn = ansi.sub("", out)
            self.assertIn("writing", drawn)
            self.assertNotIn("0:00 left", drawn)
            lines = [x for x in out.split("\n") if x.strip()]
            self.assertLessEqual(len(lines), 3, f"the progress spammed lines:\n{out!r}")

            stage_big(mnt, 8)
            p = stage.discfs("commit", mnt)
            self.assertEqual(p.err, "", "progress on a pipe")
            self.assertEqual(len(p.out.splitlines()), 1, p.out)
            self.assertTrue(p.out.startswith("committed: session "), p.out)

            stage.write_file(os.path.join(mnt, "last"), b"x")
            p = stage.commit(mnt, check=False)
            self.assertEqual(p.returncode, 0, p.err)
            phases = [e["phase"] for e in p.events if e.get("event") == "phase"]
            self.assertEqual(phases, ["waiting for open files", "writing", "verifying MD5",
                                      "activating", "written"])
            self.assertTrue(p.result and p.result["session"] > 0, p.out)

if __name__ == "__main__":
    unittest.main()
