"""Crash safety of the stage mount and of commit (issue 4, point 7, the crash-safety bullet).

- kill -9 of the stage daemon while files are being copied in: after a remount, everything
  whose close() or fsync() returned is there with the right bytes, every namespace change
  that returned is there, and the store still opens, reports its status and commits;
- kill of a commit before the session write, during it, and after it but before LBA 0..31
  are rewritten (the commit point): xorriso still lists only the previous sessions and its
  MD5 checks pass, the staged changes are all still there, and the next commit has them;
- a store on a full disk (ENOSPC) and on a disk that fails its writes (EIO).

What a remounted stage must show is replayed from a journal the writer keeps of the calls that
returned; what a commit wrote is read back with xorriso (-toc, -check_md5, -osirrox).
"""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

from testlib import env, mount, readers, sanitizers, stage, trees

MiB = 1 << 20
_T0 = time.monotonic()


def trace(what):
    """Phase times on stderr when DISCFS_TEST_TRACE is set (for tuning the suite's runtime)."""
    if os.environ.get("DISCFS_TEST_TRACE"):
        sys.stderr.write("[%7.2f] %s\n" % (time.monotonic() - _T0, what))


# --------------------------------------------------------------------------
# Trees: {"/path": trees.Rec} holding type, permission bits, content digest, target
# --------------------------------------------------------------------------

def F(mode, sha):
    """A regular file of the model."""
    return trees.Rec(type="reg", mode=mode, sha256=sha)


def D(mode):
    """A directory of the model."""
    return trees.Rec(type="dir", mode=mode)


def snap(root):
    """Every entry below root (trees.walk) with what the model keeps of it: type,
    permission bits (not of symlinks), content digest, symlink target."""
    return {p: trees.Rec(type=r.type, mode=None if r.type == "lnk" else r.mode,
                         sha256=r.sha256, target=r.target, error=r.error)
            for p, r in trees.walk(root).items() if p != "/"}


def tree_diff(expected, actual):
    return trees.diff(expected, actual, fields=("type", "mode", "sha256", "target"),
                      max_lines=40)


def head64k(path):
    with open(path, "rb") as f:
        return f.read(65536)


write_file = stage.write_file


def make_source(root, seed):
    """A small tree for a base session: two directories with files, one loose file."""
    rng = random.Random(seed)
    for d in ("base_a", "base_b/deep"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for i in range(6):
        write_file(os.path.join(root, "base_a", "a%d" % i), rng.randbytes(rng.randint(1, 150000)))
    for i in range(3):
        write_file(os.path.join(root, "base_b", "deep", "b%d" % i), rng.randbytes(40000 + i))
    write_file(os.path.join(root, "keep.txt"), b"kept since session 1\n", mode=0o640)
    os.symlink("base_a/a0", os.path.join(root, "link"))


def xorriso_grow(img, src, where="/"):
    """Appends a session mapping src to `where` with xorriso (MD5 tags on)."""
    r = readers.xorriso_run("-md5", "on", "-dev", img, "-map", src, where, "-commit")
    if r.returncode != 0:
        raise AssertionError("xorriso could not write the base session: " + r.stderr[-2000:])


# --------------------------------------------------------------------------
# A commit whose daemon may be killed
# --------------------------------------------------------------------------

class CommitRun:
    """`discfs commit --json MNT` in the background, its output lines read as they come."""

    def __init__(self, mnt, *opts):
        cmd = [env.discfs_bin(), "commit", "--json", *opts, mnt]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        self.events = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "garbage", "line": line}
            with self.lock:
                self.events.append(ev)

    def progress(self):
        """(done, total) of the newest progress event, or None."""
        with self.lock:
            for ev in reversed(self.events):
                if ev.get("event") == "progress":
                    return ev["done"], ev["total"]
        return None

    def finished(self):
        with self.lock:
            return any(ev.get("event") in ("done", "error") for ev in self.events)

    def wait(self):
        try:
            rc = self.proc.wait(timeout=env.HANG_GUARD)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("discfs commit hung after its daemon was killed")
        self.reader.join(timeout=30)
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        rep = sanitizers.report(err)
        if rep:
            raise AssertionError(f"sanitizer report from discfs commit: {rep}\n{err[-4000:]}")
        return rc, err


# --------------------------------------------------------------------------
# The writer of the kill-during-copies test: a separate process that keeps a journal
# ("B seq op" before a call, "D seq op" after it returned) on a disk outside the stage.
# --------------------------------------------------------------------------

WRITER = r'''
import hashlib, json, os, random, subprocess, sys, threading
mnt, journal, scratch, src, seed = sys.argv[1:6]
rng = random.Random(int(seed))
os.umask(0o022)
jfd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
stop = threading.Event()

def log(tag, seq, op):
    os.write(jfd, ("%s %d %s\n" % (tag, seq, json.dumps(op))).encode())

def P(p):
    return mnt + p

def mode_of(p):
    return os.stat(P(p)).st_mode & 0o7777

def big():
    h = hashlib.sha256()
    size = 0
    try:
        fd = os.open(P("/big.bin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        log("D", -1, {"op": "big_open"})
        r = random.Random(7)
        while size < 96 * (1 << 20) and not stop.is_set():
            chunk = r.randbytes(256 << 10)
            os.write(fd, chunk)
            stop.wait(0.008)  # about 25 MiB/s: still writing when the daemon is killed
            h.update(chunk)
            size += len(chunk)
            if size % (2 << 20) == 0:
                os.fsync(fd)
                log("D", -1, {"op": "fsync", "size": size, "sha": h.hexdigest()})
        os.close(fd)
        log("D", -1, {"op": "big_closed", "size": size, "sha": h.hexdigest()})
    except OSError as e:
        log("E", -1, {"errno": e.errno, "where": "big"})

def namespace():
    files, dirs = [], ["/new"]
    seq = 0
    def do(op, fn):
        nonlocal seq
        seq += 1
        log("B", seq, op)
        fn()
        log("D", seq, op)
    try:
        do({"op": "mkdir", "path": "/new"}, lambda: os.mkdir(P("/new"), 0o755))
        base_done = set()
        while not stop.is_set() and seq < 5000:
            x = rng.random()
            if seq > 8 and "patch" not in base_done:
                base_done.add("patch")
                with open(os.path.join(src, "base_a/a1"), "rb") as f:
                    data = bytearray(f.read())
                patch = rng.randbytes(5000)
                data[100:5100] = patch
                def fn():
                    fd = os.open(P("/base_a/a1"), os.O_RDWR)
                    os.pwrite(fd, patch, 100)
                    os.close(fd)
                do({"op": "patch", "path": "/base_a/a1", "sha": hashlib.sha256(data).hexdigest()},
                   fn)
            elif seq > 12 and "chmod" not in base_done:
                base_done.add("chmod")
                do({"op": "chmod", "path": "/base_a/a2", "mode": 0o600},
                   lambda: os.chmod(P("/base_a/a2"), 0o600))
            elif seq > 16 and "unlink" not in base_done:
                base_done.add("unlink")
                do({"op": "unlink", "path": "/base_a/a3"}, lambda: os.unlink(P("/base_a/a3")))
            elif seq > 20 and "rendir" not in base_done:
                base_done.add("rendir")
                do({"op": "rename", "src": "/base_b", "dst": "/new/moved_b"},
                   lambda: os.rename(P("/base_b"), P("/new/moved_b")))
                dirs.append("/new/moved_b")
            elif x < 0.55 or not files:
                d = rng.choice(dirs)
                p = "%s/f%d" % (d, seq + 1)
                data = rng.randbytes(rng.choice((0, 1, 4096, 70000, 200000)))
                if rng.random() < 0.3:
                    s = os.path.join(scratch, "src%d" % (seq + 1))
                    with open(s, "wb") as f:
                        f.write(data)
                    def fn():
                        subprocess.run(["cp", s, P(p)], check=True)
                    via = "cp"
                else:
                    def fn():
                        with open(P(p), "wb") as f:
                            f.write(data)
                    via = "py"
                op = {"op": "write", "path": p, "via": via, "sha": hashlib.sha256(data).hexdigest()}
                seq += 1
                log("B", seq, op)
                fn()
                op["mode"] = mode_of(p)
                log("D", seq, op)
                files.append(p)
            elif x < 0.62:
                p = rng.choice(files)
                data = rng.randbytes(rng.randint(0, 30000))
                def fn():
                    with open(P(p), "wb") as f:
                        f.write(data)
                do({"op": "write", "path": p, "via": "py", "mode": None,
                    "sha": hashlib.sha256(data).hexdigest()}, fn)
            elif x < 0.72:
                p = "%s/d%d" % (rng.choice(dirs), seq + 1)
                do({"op": "mkdir", "path": p}, lambda: os.mkdir(P(p), 0o755))
                dirs.append(p)
            elif x < 0.82:
                p = files.pop(rng.randrange(len(files)))
                q = "%s/r%d" % (rng.choice(dirs), seq + 1)
                do({"op": "rename", "src": p, "dst": q}, lambda: os.rename(P(p), P(q)))
                files.append(q)
            elif x < 0.89:
                p = files.pop(rng.randrange(len(files)))
                do({"op": "unlink", "path": p}, lambda: os.unlink(P(p)))
            elif x < 0.96:
                p = rng.choice(files)
                m = rng.choice((0o600, 0o640, 0o755, 0o444))
                do({"op": "chmod", "path": p, "mode": m}, lambda: os.chmod(P(p), m))
            elif len(dirs) > 2:
                d = rng.choice(dirs[1:])
                q = "/new/m%d" % (seq + 1)
                do({"op": "rename", "src": d, "dst": q}, lambda: os.rename(P(d), P(q)))
                dirs = [q + x[len(d):] if x == d or x.startswith(d + "/") else x for x in dirs]
                files = [q + x[len(d):] if x.startswith(d + "/") else x for x in files]
    except (OSError, subprocess.CalledProcessError) as e:
        log("E", seq, {"error": str(e)})

t = threading.Thread(target=big)
t.start()
namespace()
stop.set()
t.join()
'''


def read_journal(path):
    """(done namespace ops in order, the namespace op in flight or None, big-file events)."""
    begun, done, order, big = {}, set(), [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a line cut by the kill (cannot happen: one write each; be safe)
            tag, seq, text = line.rstrip("\n").split(" ", 2)
            seq = int(seq)
            op = json.loads(text)
            if seq < 0:
                if tag == "D":
                    big.append(op)
                continue
            if tag == "B":
                begun[seq] = op
                order.append(seq)
            elif tag == "D":
                begun[seq] = op  # the D line may carry more (the mode of a new file)
                done.add(seq)
    finished = [begun[s] for s in order if s in done]
    open_ops = [begun[s] for s in order if s not in done]
    assert len(open_ops) <= 1, f"more than one namespace call in flight: {open_ops}"
    return finished, (open_ops[0] if open_ops else None), big


def under(path, top):
    return path == top or path.startswith(top + "/")


def apply_op(model, op):
    kind = op["op"]
    if kind == "write":
        old = model.get(op["path"])
        mode = op["mode"] if op.get("mode") is not None else (old.mode if old else 0o644)
        model[op["path"]] = F(mode, op["sha"])
    elif kind == "patch":
        model[op["path"]] = F(model[op["path"]].mode, op["sha"])
    elif kind == "mkdir":
        model[op["path"]] = D(0o755)
    elif kind == "chmod":
        model[op["path"]] = model[op["path"]]._replace(mode=op["mode"])
    elif kind == "unlink":
        del model[op["path"]]
    elif kind == "rename":
        src, dst = op["src"], op["dst"]
        moved = {p: r for p, r in model.items() if under(p, src)}
        for p in moved:
            del model[p]
        for p, r in moved.items():
            model[dst + p[len(src):]] = r
    else:
        raise AssertionError(f"unknown op {op!r}")


def touched(op):
    return [op[k] for k in ("path", "src", "dst") if k in op]


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

class CrashBase(unittest.TestCase):

    def setUp(self):
        mount.require_fuse(self)
        env.require_tools("xorriso")
        self.tmp = env.TempDir(prefix="discfs-crash-")
        self.addCleanup(self.tmp.cleanup)
        stage.use_private_dirs(self, self.tmp.path)
        self.mnt = self.tmp.sub("mnt")
        self.store = os.path.join(self.tmp.path, "store")
        self.img = os.path.join(self.tmp.path, "target.iso")
        self.src = self.tmp.sub("src")

    def stage(self, store=None, extra=()):
        st = stage.Stage(self.img, self.mnt, store=store or self.store, extra=extra)
        # Whatever happens, no daemon and no mount are left behind.
        self.addCleanup(lambda: mount.unmount_and_reap(self.mnt))
        self.addCleanup(lambda: st.proc and st.proc.poll() is None and st.proc.kill())
        return st

    def base_image(self, sessions=1):
        """target.iso grown by xorriso: session 1 from make_source, then small extra ones."""
        make_source(self.src, 1)
        xorriso_grow(self.img, self.src)
        for i in range(1, sessions):
            extra = self.tmp.sub("extra%d" % i)
            write_file(os.path.join(extra, "x"), b"extra session %d\n" % i)
            xorriso_grow(self.img, extra, "/extra%d" % i)
        rows = readers.toc(self.img)
        self.assertEqual(len(rows), sessions, "xorriso did not grow the base image")
        return rows

    def assert_previous_sessions(self, toc0, head0):
        """The target still ends with its previous session and every MD5 there matches."""
        self.assertEqual(readers.toc(self.img), toc0, "the target's table of contents changed")
        self.assertEqual(head64k(self.img), head0, "LBA 0..31 of the target changed")
        rc, out = readers.check_md5(self.img)
        self.assertEqual(rc, 0, "xorriso -check_md5 fails on the target:\n" + out[-3000:])

    def assert_committed(self, toc0, expected, what):
        """A successful commit appended one session holding exactly `expected`."""
        rows = readers.toc(self.img)
        self.assertEqual(rows[:-1], toc0, f"{what}: earlier sessions changed")
        self.assertEqual(len(rows), len(toc0) + 1, f"{what}: no new session")
        rc, out = readers.check_md5(self.img)
        self.assertEqual(rc, 0, f"{what}: xorriso -check_md5 fails:\n" + out[-3000:])
        dest = self.tmp.sub("extract-%d" % len(rows), make=False)
        r = readers.xorriso_run("-osirrox", "on", "-indev", self.img, "-extract", "/", dest)
        self.assertEqual(r.returncode, 0, "xorriso -extract failed: " + r.stderr[-2000:])
        env.fail_diff(self, tree_diff(expected, snap(dest)),
                      f"{what}: the new session (xorriso -osirrox) differs from the stage")


class KillDuringCopiesTest(CrashBase):

    def test_kill_9_during_copies_loses_nothing_that_returned(self):
        self.base_image()
        toc0 = readers.toc(self.img)
        journal = os.path.join(self.tmp.path, "journal")
        scratch = self.tmp.sub("scratch")
        st = self.stage()
        with st:
            trace("mounted")
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, self.mnt, journal, scratch, self.src, "4711"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.addCleanup(lambda: writer.poll() is None and writer.kill())
            # Kill once a good number of calls returned and the big file was fsync'd twice,
            # while both threads are still busy.
            deadline = time.monotonic() + 120
            while True:
                if writer.poll() is not None:
                    self.fail("the writer stopped before the kill:\n" +
                              env.txt(writer.stdout.read())[-3000:])
                st.check_alive()
                if os.path.exists(journal):
                    done, _, big = read_journal(journal)
                    if len(done) >= 120 and sum(1 for b in big if b["op"] == "fsync") >= 2:
                        break
                self.assertLess(time.monotonic(), deadline, "the writer made no progress")
                time.sleep(0.05)
            trace(f"kill point reached: {len(done)} calls, {len(big)} big-file events")
            time.sleep(random.Random().uniform(0.05, 0.4))
            st.kill9()
            trace("killed")
            try:
                writer.wait(timeout=60)
            except subprocess.TimeoutExpired:
                writer.kill()
                self.fail("the writer hung after the stage daemon was killed")
            writer.stdout.close()

        done, in_flight, big = read_journal(journal)
        self.assertTrue(any(b["op"] == "fsync" for b in big))
        base = snap(self.src)
        model = dict(base)
        for op in done:
            apply_op(model, op)

        st2 = self.stage()
        with st2:
            trace("remounted")
            actual = snap(self.mnt)
            trace("walked")
            self.check_big(actual, big)
            self.check_against_model(model, in_flight, actual)
            # The store opened, works and reports; a commit succeeds and is complete.
            write_file(os.path.join(self.mnt, "after-remount"), b"written after the crash\n")
            actual["/after-remount"] = F(0o644, trees.sha256(b"written after the crash\n"))
            status = stage.status(self.mnt)
            self.assertGreater(stage.staged_count(status), 0, status)
            res = stage.commit(self.mnt)
            trace("committed")
            self.assertTrue(res["verified"], res)
            time.sleep(stage.ATTR_TIMEOUT)
            env.fail_diff(self, tree_diff(actual, snap(self.mnt)),
                          "the stage after the commit differs from before it")
        self.assert_committed(toc0, actual, "commit after kill -9")
        trace("checked")

    def check_big(self, actual, big):
        """/big.bin holds at least every byte that an fsync returned for, unchanged."""
        rec = actual.pop("/big.bin", None)
        self.assertIsNotNone(rec, "/big.bin (created, fsync'd) is missing after the remount")
        path = os.path.join(self.mnt, "big.bin")
        closed = [b for b in big if b["op"] == "big_closed"]
        synced = [b for b in big if b["op"] in ("fsync", "big_closed")][-1]
        size = os.stat(path).st_size
        self.assertGreaterEqual(size, synced["size"],
                                "/big.bin lost data that fsync had returned for")
        if closed:
            self.assertEqual(size, synced["size"])
        import hashlib
        h = hashlib.sha256()
        left = synced["size"]
        with open(path, "rb") as f:
            while left:
                b = f.read(min(left, MiB))
                self.assertTrue(b, "short read of /big.bin")
                h.update(b)
                left -= len(b)
        self.assertEqual(h.hexdigest(), synced["sha"],
                         f"the first {synced['size']} bytes of /big.bin (fsync'd) differ")
        actual["/big.bin"] = rec  # back for the commit comparison

    def check_against_model(self, model, in_flight, actual):
        """actual == model, except what the one call in flight at the kill may have done."""
        actual = {p: r for p, r in actual.items() if p != "/big.bin"}
        if in_flight is None:
            env.fail_diff(self, tree_diff(model, actual), "the remounted stage differs from "
                          "what the calls that returned made")
            return
        after = dict(model)
        try:
            apply_op(after, in_flight)
        except KeyError:
            after = None
        tops = touched(in_flight)

        def outside(t):
            return {p: r for p, r in t.items() if not any(under(p, x) for x in tops)}

        def inside(t):
            return {p: r for p, r in t.items() if any(under(p, x) for x in tops)}

        env.fail_diff(self, tree_diff(outside(model), outside(actual)),
                      f"the remounted stage differs (call in flight: {in_flight})")
        got = inside(actual)
        if in_flight["op"] in ("write", "patch"):
            # Contents of a file being written when the daemon died are not promised; the
            # file is there if it was before, and is a regular file if it is there.
            p = in_flight["path"]
            if p in model:
                self.assertIn(p, got, f"{p} vanished during an unfinished write")
            if p in got:
                self.assertEqual(got[p].type, "reg", f"{p} is no longer a regular file")
            return
        ok = [inside(model)] + ([inside(after)] if after is not None else [])
        self.assertIn(got, ok, f"the call in flight ({in_flight}) left a state that is "
                      f"neither before nor after it: {got}")


class TimesKeptWithDataTest(CrashBase):

    T_A, T_M = 1_500_000_000_123_456_789, 1_600_000_000_987_654_321

    def test_times_set_while_open_survive_kill_after_close(self):
        """cp -a sets a new file's times while it is still open for writing, then closes
        it. The times show at once, and once the close returned they survive a kill -9 of
        the daemon with the data; so do times set on a closed file."""
        payload = b"payload " * 1000
        st = self.stage()
        with st:
            p = os.path.join(self.mnt, "open_then_timed")
            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o640)
            try:
                os.write(fd, payload)
                os.utime(fd, ns=(self.T_A, self.T_M))
                s = os.stat(p)
                self.assertEqual((s.st_atime_ns, s.st_mtime_ns), (self.T_A, self.T_M),
                                 "times set on an open file are not shown")
            finally:
                os.close(fd)
            q = os.path.join(self.mnt, "closed_then_timed")
            write_file(q, b"x")
            os.utime(q, ns=(self.T_A, self.T_M))
            st.kill9()
        st = self.stage()
        with st:
            for name in ("open_then_timed", "closed_then_timed"):
                s = os.stat(os.path.join(self.mnt, name))
                self.assertEqual((s.st_atime_ns, s.st_mtime_ns), (self.T_A, self.T_M),
                                 f"{name}: times after kill -9 and remount")
            with open(os.path.join(self.mnt, "open_then_timed"), "rb") as f:
                self.assertEqual(f.read(), payload)


class CommitKillTest(CrashBase):
    """Kills of the daemon while it commits; each ends with a good commit of the same store."""

    BIG = 48 * MiB

    def prepare(self, sessions=2, big=BIG):
        """A grown target and a stage with changes of every kind; returns (toc, head, tree)."""
        self.base_image(sessions)
        toc0, head0 = readers.toc(self.img), head64k(self.img)
        st = self.stage()
        with st:
            m = self.mnt
            os.makedirs(os.path.join(m, "new/sub"))
            write_file(os.path.join(m, "new/small"), b"small\n")
            write_file(os.path.join(m, "new/sub/mid"), os.urandom(300000), mode=0o600)
            with open(os.path.join(m, "new/big"), "wb") as f:
                for _ in range(big // MiB):
                    f.write(os.urandom(MiB))
            with open(os.path.join(m, "base_a/a1"), "r+b") as f:
                f.seek(10)
                f.write(b"changed in the stage")
            os.chmod(os.path.join(m, "base_a/a2"), 0o600)
            os.unlink(os.path.join(m, "base_a/a3"))
            os.rename(os.path.join(m, "base_b"), os.path.join(m, "new/moved_b"))
            os.symlink("new/big", os.path.join(m, "biglink"))
            expected = snap(m)
        return toc0, head0, expected

    def assert_staged(self, expected, what):
        """Remounts the store: it shows `expected` and its daemon answers status."""
        st = self.stage()
        with st:
            env.fail_diff(self, tree_diff(expected, snap(self.mnt)),
                          f"{what}: the remounted stage lost staged changes")
            self.assertGreater(stage.staged_count(stage.status(self.mnt)), 0)

    def final_commit(self, toc0, expected, what):
        st = self.stage()
        with st:
            res = stage.commit(self.mnt)
            self.assertEqual(res["session"], len(toc0) + 1, res)
            self.assertTrue(res["verified"], res)
        self.assert_committed(toc0, expected, what)

    def test_kill_before_session_write(self):
        toc0, head0, expected = self.prepare()
        whole0 = trees.sha256_file(self.img)
        # (1) The commit waits for a file still open for writing: nothing is written yet.
        st = self.stage()
        with st:
            held = open(os.path.join(self.mnt, "new/held"), "wb")
            held.write(b"held open during the commit\n")
            held.flush()
            os.fsync(held.fileno())
            expected["/new/held"] = F(0o644, trees.sha256(b"held open during the commit\n"))
            run = CommitRun(self.mnt, "--wait", "60")
            time.sleep(1.5)
            self.assertIsNone(run.proc.poll(), "commit did not wait for the open file")
            st.check_alive()
            st.kill9()
            try:
                held.close()
            except OSError:
                pass
            rc, err = run.wait()
        self.assertEqual(rc, env.EXIT_COMMIT_FAILED,
                         "discfs commit must fail (exit 8) when its daemon is killed")
        self.assertTrue(err.strip(), "discfs commit failed without a message")
        self.assertEqual(trees.sha256_file(self.img), whole0, "the target changed")
        self.assert_previous_sessions(toc0, head0)
        self.assert_staged(expected, "kill while commit waited for writers")

        # (2) Killed just after the commit was asked for (store snapshot, target probe,
        # image load, tree rebuild), before or at most early in the write.
        st = self.stage()
        with st:
            run = CommitRun(self.mnt)
            time.sleep(0.3)
            st.kill9()
            rc, _ = run.wait()
        self.assertEqual(rc, env.EXIT_COMMIT_FAILED)
        self.assert_previous_sessions(toc0, head0)
        self.assert_staged(expected, "kill right after the commit started")
        self.final_commit(toc0, expected, "commit after kills before the write")

    def test_kill_during_session_write(self):
        toc0, head0, expected = self.prepare()
        size0 = os.stat(self.img).st_size
        st = self.stage()
        with st:
            run = CommitRun(self.mnt)
            deadline = time.monotonic() + env.HANG_GUARD
            while True:
                size = os.stat(self.img).st_size
                if size > size0 + 4 * MiB:
                    st.signal(signal.SIGSTOP)  # freeze the write where it is
                    break
                self.assertIsNone(run.proc.poll(), "the commit ended before it was caught "
                                  "writing: " + json.dumps(run.events[-3:]))
                self.assertLess(time.monotonic(), deadline, "the target never grew")
                time.sleep(0.002)
            size_at_kill = os.stat(self.img).st_size
            prog = run.progress()
            st.kill9()
            rc, _ = run.wait()
        self.assertEqual(rc, env.EXIT_COMMIT_FAILED)
        self.assertFalse(any(e.get("event") == "done" for e in run.events))
        self.assertLess(size_at_kill, size0 + self.BIG,
                        f"the write was not caught in the middle (progress {prog})")
        self.assert_previous_sessions(toc0, head0)
        self.assert_staged(expected, "kill during the session write")
        self.final_commit(toc0, expected, "commit after a kill during the write")

    def test_kill_after_write_before_activation(self):
        """The daemon is frozen once the write is complete (while the session is read back),
        and killed there, before LBA 0..31 are rewritten."""
        toc0, head0, expected = self.prepare()
        size0 = os.stat(self.img).st_size
        st = self.stage()
        with st:
            run = CommitRun(self.mnt)
            deadline = time.monotonic() + env.HANG_GUARD
            while True:
                prog = run.progress()
                if prog and prog[0] >= prog[1] > 0:
                    st.signal(signal.SIGSTOP)
                    break
                self.assertIsNone(run.proc.poll(), "the commit ended before its write was "
                                  "seen complete: " + json.dumps(run.events[-3:]))
                self.assertLess(time.monotonic(), deadline, "no progress from the commit")
                time.sleep(0.002)
            frozen_toc = readers.toc(self.img)
            st.kill9()
            rc, _ = run.wait()
        self.assertGreater(os.stat(self.img).st_size, size0, "no session data was written")
        if frozen_toc != toc0:
            self.skipTest("timing: the daemon had already rewritten LBA 0..31 when it was "
                          "stopped (test_failure_before_activation_* covers this point)")
        self.assertEqual(rc, env.EXIT_COMMIT_FAILED)
        self.assert_previous_sessions(toc0, head0)
        self.assert_staged(expected, "kill after the write, before LBA 0..31")
        self.final_commit(toc0, expected, "commit after a kill before LBA 0..31")

    def test_failure_before_activation_with_commit_driver(self):
        """A session written in full but never made the newest (the commit engine's
        fail_before_activation through tests/tools/commit_driver) is what a crash at that
        point leaves on the target; the stage and its next commit must not mind it."""
        env.require_binary(env.commit_driver_bin(), "commit_driver")
        toc0, head0, expected = self.prepare(big=4 * MiB)
        junk = os.path.join(self.tmp.path, "junk")
        write_file(junk, os.urandom(12 * MiB))
        spec = os.path.join(self.tmp.path, "spec")
        with open(spec, "w") as f:
            f.write("D\t/\t755\t0\t0\t1700000000\t-\t0\n"
                    "D\t/base_a\t755\t0\t0\t1700000000\t/base_a\t1\n"
                    "F\t/junk\t644\t0\t0\t1700000000\tL\t%s\n" % junk)
        end0 = (toc0[-1][0] + toc0[-1][1]) * 2048  # where the newest session ends
        r = subprocess.run([env.commit_driver_bin(), "commit", self.img, spec,
                            "--fail-before-activation"], capture_output=True, text=True,
                           timeout=env.HANG_GUARD)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("LBA 0..31", r.stdout)
        self.assertGreater(os.stat(self.img).st_size, end0 + 12 * MiB,
                           "commit_driver wrote no session")
        self.assert_previous_sessions(toc0, head0)
        self.assert_staged(expected, "a written but inactive session on the target")
        self.final_commit(toc0, expected, "commit over an inactive session")

    def test_kill_after_activation_before_store_reset(self):
        """The daemon dies after LBA 0..31 were rewritten but before the store was cleared:
        simulated by putting back a copy of the store taken before the commit (the commit
        does not touch the store before that point). Nothing may be lost: the new session
        holds the changes, and the stage either serves it at once or refuses with a way out
        that works."""
        toc0, head0, expected = self.prepare(big=2 * MiB)
        saved = os.path.join(self.tmp.path, "store-before-commit")
        shutil.copytree(self.store, saved, ignore=shutil.ignore_patterns("control.sock"))
        self.final_commit(toc0, expected, "commit")
        shutil.rmtree(self.store)
        shutil.copytree(saved, self.store)
        toc1 = readers.toc(self.img)
        st = self.stage()
        try:
            st.__enter__()
        except mount.DaemonDied as e:
            msg = str(e)
            self.assertIn("discard", msg, "the refusal does not say how to go on")
            p = stage.discard(store=self.store, check=False)
            self.assertEqual(p.returncode, 0,
                             "the stage refused and advised 'discfs discard --all --store', which "
                             "then fails: " + p.err[-2000:] + "\nthe refusal was: " +
                             msg[-1500:])
            st = self.stage()
            st.__enter__()
        try:
            env.fail_diff(self, tree_diff(expected, snap(self.mnt)),
                          "the stage after the restart does not show the committed session")
            self.assertEqual(stage.staged_count(stage.status(self.mnt)), 0)
        finally:
            st.__exit__(None, None, None)
        self.assertEqual(readers.toc(self.img), toc1)
        self.assertEqual(readers.check_md5(self.img)[0], 0)


# --------------------------------------------------------------------------
# The store's disk: full (ENOSPC) and failing (EIO)
# --------------------------------------------------------------------------

def require_root(test):
    if not env.is_root():
        test.skipTest("mounting a tmpfs or loop file system for the store needs root")


def mount_tmpfs(test, where, size):
    os.makedirs(where, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs",
                        where], capture_output=True, text=True)
    if r.returncode != 0:
        test.skipTest("cannot mount a tmpfs for the store: " + r.stderr.strip())
    test.addCleanup(umount, where)


def umount(where):
    if os.path.ismount(where):
        if subprocess.run(["umount", where], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", where], capture_output=True)


def write_until_error(path, chunk=256 << 10, limit=512 * MiB):
    """Writes to path until write, fsync or close fails; (bytes accepted, errno)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    n, err = 0, 0
    data = os.urandom(chunk)
    try:
        while n < limit:
            n += os.write(fd, data)
        os.fsync(fd)
    except OSError as e:
        err = e.errno
    try:
        os.close(fd)
    except OSError as e:
        err = err or e.errno
    return n, err


class StoreDiskTest(CrashBase):

    def setUp(self):
        super().setUp()
        require_root(self)

    def full_store_stage(self):
        """A stage whose store is on an 8 MiB tmpfs with 1 MiB of ballast next to it, filled
        up through the stage. Returns (stage, {path: data} closed before the disk filled)."""
        self.base_image()
        disk = self.tmp.sub("storefs", make=False)
        mount_tmpfs(self, disk, "8m")
        self.store = os.path.join(disk, "store")
        self.ballast = os.path.join(disk, "ballast")
        write_file(self.ballast, b"\0" * MiB)
        st = self.stage()
        st.__enter__()
        self.addCleanup(lambda: st.proc.poll() is None and st.__exit__(None, None, None))
        keep = {"/keep1": os.urandom(MiB), "/dir/keep2": os.urandom(512 << 10)}
        os.mkdir(os.path.join(self.mnt, "dir"))
        for p, data in keep.items():
            write_file(self.mnt + p, data)
        n, err = write_until_error(os.path.join(self.mnt, "fill"))
        self.assertEqual(err, errno.ENOSPC,
                         f"filling the store's disk gave {errno.errorcode.get(err, err)} "
                         f"after {n} bytes, not ENOSPC")
        st.check_alive()
        return st, keep

    def test_enospc_on_the_store_disk(self):
        st, keep = self.full_store_stage()
        toc0 = readers.toc(self.img)
        # Changes on a full disk: refused with ENOSPC (or done); the daemon lives on.
        e = env.errno_of(os.mkdir, os.path.join(self.mnt, "dir/while-full"))
        self.assertIn(e, (0, errno.ENOSPC), f"mkdir on a full store: {errno.errorcode.get(e, e)}")
        e = env.errno_of(write_file, os.path.join(self.mnt, "dir/small-while-full"), b"x" * 9000)
        self.assertIn(e, (0, errno.ENOSPC), f"a write on a full store: {errno.errorcode.get(e, e)}")
        st.check_alive()
        self.assertIsInstance(stage.status(self.mnt), dict)
        for p, data in keep.items():
            self.assertEqual(trees.sha256_file(self.mnt + p), trees.sha256(data),
                             f"{p} changed while the disk was full")
        # Room again (something else on that disk was deleted); then the stage cleans up.
        os.unlink(self.ballast)
        for name in ("fill", "dir/while-full", "dir/small-while-full"):
            p = os.path.join(self.mnt, name)
            if os.path.isdir(p):
                os.rmdir(p)
            elif os.path.lexists(p):
                os.unlink(p)
        after = os.urandom(MiB)
        write_file(os.path.join(self.mnt, "after"), after)
        # Full again, then room again through discard.
        n, err = write_until_error(os.path.join(self.mnt, "fill2"), limit=3 * MiB)
        self.assertIn(err, (0, errno.ENOSPC), f"second fill: {errno.errorcode.get(err, err)}")
        stage.discard(self.mnt, "/fill2")
        time.sleep(stage.ATTR_TIMEOUT)
        self.assertFalse(os.path.exists(os.path.join(self.mnt, "fill2")))
        write_file(os.path.join(self.mnt, "dir/after2"), b"after the discard\n")
        expected = snap(self.mnt)
        st.__exit__(None, None, None)
        # The store opens again after all this, and commits.
        st = self.stage()
        with st:
            env.fail_diff(self, tree_diff(expected, snap(self.mnt)),
                          "the remounted store differs")
            stage.commit(self.mnt)
        base = snap(self.src)
        self.assertEqual({p: expected[p] for p in base}, base)
        self.assertEqual(expected["/keep1"].sha256, trees.sha256(keep["/keep1"]))
        self.assertEqual(expected["/after"].sha256, trees.sha256(after))
        self.assert_committed(toc0, expected, "commit after ENOSPC")

    def test_rm_and_discard_free_a_full_store_disk(self):
        """A user whose store's disk is full frees room the obvious way: rm on the stage, or
        discfs discard. Both must work while the disk is full."""
        st, keep = self.full_store_stage()
        e = env.errno_of(os.unlink, os.path.join(self.mnt, "fill"))
        p = stage.discard(self.mnt, "/fill", check=False) if e else None
        self.assertEqual(e, 0, "rm of a staged file fails while the store's disk is full "
                         f"({errno.errorcode.get(e, e)}), so the user cannot make room; "
                         "discfs discard MNT /fill then " +
                         ("works" if p and p.returncode == 0 else
                          "fails too: " + (p.err.strip() if p else "")))
        write_file(os.path.join(self.mnt, "after"), b"room again\n")
        n, err = write_until_error(os.path.join(self.mnt, "fill2"))
        self.assertEqual(err, errno.ENOSPC)
        p = stage.discard(self.mnt, check=False)
        self.assertEqual(p.returncode, 0, "discfs discard (everything) fails while the "
                         "store's disk is full: " + p.err.strip())
        time.sleep(stage.ATTR_TIMEOUT)
        self.assertEqual(snap(self.mnt), snap(self.src), "discard left staged changes")
        st.__exit__(None, None, None)

    def loop_device(self, backing_file):
        r = subprocess.run(["losetup", "-f", "--show", backing_file], capture_output=True,
                           text=True)
        if r.returncode != 0:
            self.skipTest("losetup is not allowed here: " + r.stderr.strip())
        loop = r.stdout.strip()
        self.addCleanup(subprocess.run, ["losetup", "-d", loop], capture_output=True)
        return loop

    def test_eio_from_the_store_disk(self):
        """The store on ext4 on a loop device whose backing file lives on a small tmpfs:
        filling that tmpfs behind ext4's back makes the loop device fail its writes (ext4
        then sees EIO for its metadata and ENOSPC for data)."""
        for tool in ("losetup", "mkfs.ext4", "e2fsck"):
            if shutil.which(tool) is None:
                self.skipTest(f"{tool} is missing: cannot build a failing disk for the store")
        back = self.tmp.sub("backing", make=False)
        mount_tmpfs(self, back, "40m")
        disk_img = os.path.join(back, "disk.img")
        with open(disk_img, "wb") as f:
            f.truncate(64 * MiB)
        loop = self.loop_device(disk_img)
        filler = os.path.join(back, "filler")

        def fail():
            subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=1M"],
                           capture_output=True)

        self.failing_store_flow(loop, fail, lambda: os.unlink(filler))

    def test_eio_from_device_mapper_error_target(self):
        """The store on ext4 on a device-mapper linear device that is switched to the "error"
        target (every I/O fails with EIO), then back."""
        for tool in ("losetup", "mkfs.ext4", "e2fsck", "dmsetup"):
            if shutil.which(tool) is None:
                self.skipTest(f"{tool} is missing: cannot build a failing disk for the store")
        if subprocess.run(["dmsetup", "version"], capture_output=True).returncode != 0:
            self.skipTest("device-mapper is not available in this kernel (dmsetup version "
                          "fails); test_eio_from_the_store_disk covers failing writes")
        backing = os.path.join(self.tmp.path, "dm-backing.img")
        with open(backing, "wb") as f:
            f.truncate(64 * MiB)
        loop = self.loop_device(backing)
        sectors = 64 * MiB // 512
        name = "discfs-test-%d" % os.getpid()
        linear = "0 %d linear %s 0" % (sectors, loop)
        r = subprocess.run(["dmsetup", "create", name, "--table", linear],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("dmsetup create is not allowed here: " + r.stderr.strip())
        self.addCleanup(subprocess.run, ["dmsetup", "remove", "--force", name],
                        capture_output=True)
        dev = "/dev/mapper/" + name

        def load(table):
            for cmd in (["dmsetup", "suspend", "--nolockfs", name],
                        ["dmsetup", "load", name, "--table", table],
                        ["dmsetup", "resume", name]):
                subprocess.run(cmd, check=True, capture_output=True)

        self.failing_store_flow(dev, lambda: load("0 %d error" % sectors), lambda: load(linear))

    def failing_store_flow(self, dev, make_fail, make_work):
        """ext4 on `dev` holds the store; the device fails (make_fail) while files are
        written through the stage, then works again (make_work): the writer got an error,
        the daemon lived, what was closed before is intact, and after an fsck the store opens
        and commits."""
        self.base_image()
        toc0 = readers.toc(self.img)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", dev], check=True,
                       capture_output=True)
        ext = self.tmp.sub("ext", make=False)
        os.makedirs(ext)
        r = subprocess.run(["mount", "-o", "errors=continue", dev, ext], capture_output=True,
                           text=True)
        if r.returncode != 0:
            self.skipTest(f"cannot mount ext4 on {dev}: " + r.stderr.strip())
        self.addCleanup(umount, ext)
        self.store = os.path.join(ext, "store")
        keep = {"/keep1": os.urandom(2 * MiB), "/keep2": os.urandom(100000)}
        st = self.stage()
        with st:
            for p, data in keep.items():
                write_file(self.mnt + p, data)
            os.mkdir(os.path.join(self.mnt, "kept-dir"))
            make_fail()
            n, err = write_until_error(os.path.join(self.mnt, "doomed"), limit=32 * MiB)
            trace(f"failing disk: writer got {errno.errorcode.get(err, err)} after {n} bytes")
            self.assertIn(err, (errno.EIO, errno.ENOSPC, errno.EROFS),
                          f"writing on a failing disk gave {errno.errorcode.get(err, err)} "
                          f"after {n} bytes")
            st.check_alive()
            e = env.errno_of(os.mkdir, os.path.join(self.mnt, "dir-on-failing-disk"))
            trace(f"failing disk: mkdir gave {errno.errorcode.get(e, e)}")
            self.assertIn(e, (0, errno.EIO, errno.ENOSPC, errno.EROFS))
            st.check_alive()
            for p, data in keep.items():
                self.assertEqual(trees.sha256_file(self.mnt + p), trees.sha256(data),
                                 f"{p} changed when the disk started failing")
            stage.status(self.mnt)
            make_work()
        # The disk works again; the file system is checked as after any I/O error.
        umount(ext)
        fsck = subprocess.run(["e2fsck", "-fy", dev], capture_output=True, text=True)
        trace(f"e2fsck: exit {fsck.returncode}")
        self.assertLess(fsck.returncode, 4, "e2fsck could not repair the store's disk: " +
                        fsck.stdout[-2000:])
        subprocess.run(["mount", dev, ext], check=True, capture_output=True)
        st = self.stage()
        with st:
            now = snap(self.mnt)
            for p, data in keep.items():
                self.assertEqual(now.get(p), F(0o644, trees.sha256(data)), p)
            self.assertEqual(now.get("/kept-dir"), D(0o755))
            for p in ("/doomed", "/dir-on-failing-disk"):
                if p in now:
                    os.unlink(self.mnt + p) if now[p].type == "reg" else os.rmdir(self.mnt + p)
            expected = snap(self.mnt)
            stage.commit(self.mnt)
        self.assert_committed(toc0, expected, "commit after EIO")


if __name__ == "__main__":
    unittest.main()
