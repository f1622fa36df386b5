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
import fcntl
import time
import unittest

from testlib import env, images, mount, readers, sources, stage

M = env.ModuleFixture("discfs-commitproto-", tools=("xorriso",))
MiB = 1 << 20


def setUpModule():
    M.set_up()
    stage.set_private_dirs(M.path)


def tearDownModule():
    if M.tmp is not None:
        for mnt in env.mounts_below(M.path):
            mount.unmount_and_reap(mnt)
    M.tear_down()


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


if __name__ == "__main__":
    unittest.main()
