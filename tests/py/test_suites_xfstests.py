"""xfstests' fsx and fsstress, bounded, on the stage mount, with remounts and commits checked
through a read-only `discfs mount` and an xorriso -osirrox extraction.

fsx (random reads, writes, truncates, mmap and fallocate on one file, each checked against
its in-memory copy) is patched to keep that copy in .fsxgood on success too
(tests/thirdparty/fsx-save-good.patch), so the file can be compared after a remount and in
the committed session. fsstress (random namespace and data operations from four processes)
leaves a tree that must read back whole, survive a remount and come back from the commit
as the stage showed it; and a commit while it runs must succeed and leave both consistent.

The runs are bounded by operation counts and seeds, never by time.
"""

import filecmp
import os
import unittest

from testlib import env, mount, readers, stage, thirdparty

M = env.ModuleFixture("discfs-xfstests-", binaries=("discfs-dump",), tools=("xorriso",),
                      fuse=True, root="fsstress changes owners and must run as root")

FSX_OPS = 5000
FSX_MAX_SIZE = 1 << 20          # -l: fsx's file stays below 1 MiB
FSSTRESS_OPS = 2000             # per process
FSSTRESS_PROCS = 4
# fsstress operations switched off. copy_file_range, clone, dedupe, splice and exchange
# write at up to st_size + 1024 * st_blksize, and the stage's st_blksize is 1 MiB: each call
# could add a GiB of hole, which an ISO 9660 session (no sparse files) would write out whole.
FSSTRESS_OFF = ["copyrange", "clonerange", "deduperange", "splice", "exchangerange"]


def setUpModule():
    stage.set_up_module(M)
    thirdparty.require_built()


def tearDownModule():
    stage.tear_down_module(M)


class Case(unittest.TestCase):

    def setUp(self):
        self.dir = M.sub(self.id().rsplit(".", 1)[-1])
        self.n = 0

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def fresh(self, name):
        self.n += 1
        p = self.path("%s%d" % (name, self.n))
        os.makedirs(p)
        return p

    def check(self, reference, actual, what, kind="fs"):
        env.fail_diff(self, stage.tree_problems(reference, actual, kind=kind), what)

    def extract(self, img, iso_path=None):
        """xorriso -osirrox extraction of img's newest session (or of one file in it)."""
        dest = self.fresh("extract")
        if iso_path is None:
            return readers.extract_tree(img, dest)
        out = os.path.join(dest, os.path.basename(iso_path))
        readers.xorriso(["-osirrox", "on", "-indev", readers.xdev(img), "-extract", iso_path,
                         out])
        return out

    def assert_md5(self, img):
        rc, out = readers.check_md5(img)
        self.assertEqual(rc, 0, "xorriso -check_md5 / -check_md5_r failed:\n" + out[-3000:])


# --------------------------------------------------------------------------
# fsx
# --------------------------------------------------------------------------

class Fsx(Case):

    def fsx(self, path, seed):
        """fsx on path (which exists): -E (no copy_file_range: its probe writes a byte of
        an existing file), the size bounded by -l; returns the .fsxgood it saved."""
        good = self.fresh("fsxgood")
        p = env.run([thirdparty.fsx_bin(), "-q", "-E", "-N", str(FSX_OPS), "-l",
                     str(FSX_MAX_SIZE), "-S", str(seed), "-P", good, path], check=False,
                    timeout=env.HANG_GUARD * 2)
        out = env.txt(p.stdout) + env.txt(p.stderr)
        self.assertEqual(p.returncode, 0, f"fsx -S {seed} failed on the stage:\n{out[-6000:]}")
        self.assertIn(f"All {FSX_OPS} operations completed A-OK!", out)
        good_file = os.path.join(good, os.path.basename(path) + ".fsxgood")
        self.assertTrue(os.path.isfile(good_file), out[-2000:])
        return good_file

    def assert_same(self, good, path, what):
        self.assertTrue(filecmp.cmp(good, path, shallow=False),
                        f"{what}: {path} ({os.path.getsize(path)} bytes) differs from what fsx "
                        f"wrote, {good} ({os.path.getsize(good)} bytes)")

    def test_fsx_remount_commit(self):
        """Two rounds: fsx on the stage (on a new file, then on the committed file, now part
        of the base), the file compared after a remount, after the commit on the stage,
        through a read-only mount and in xorriso's extraction."""
        img, mnt, store = self.path("t.iso"), self.path("mnt"), self.path("store")
        rel = os.path.join("fsx", "file")
        for seed in (1, 2):
            with stage.Stage(img, mnt, store=store):
                f = os.path.join(mnt, rel)
                if seed == 1:
                    os.mkdir(os.path.dirname(f))
                    open(f, "wb").close()
                good = self.fsx(f, seed)
                self.assert_same(good, f, f"round {seed}: on the stage after fsx")
            with stage.Stage(img, mnt, store=store):
                self.assert_same(good, f, f"round {seed}: on the stage mounted again")
                res = stage.commit(mnt)
                self.assertFalse(res["unchanged"], res)
                self.assertEqual(res["session"], seed)
                self.assert_same(good, f, f"round {seed}: on the stage after the commit")
            ro = self.fresh("ro")
            with mount.Mount(img, ro):
                self.assert_same(good, os.path.join(ro, rel),
                                 f"round {seed}: read-only discfs mount of the commit")
            self.assert_same(good, self.extract(img, "/" + rel),
                             f"round {seed}: xorriso -osirrox extraction of the commit")
            self.assert_md5(img)


# --------------------------------------------------------------------------
# fsstress
# --------------------------------------------------------------------------

class Fsstress(Case):

    def fsstress(self, d, seed, extra=()):
        off = [a for op in FSSTRESS_OFF for a in ("-f", op + "=0")]
        p = env.run([thirdparty.fsstress_bin(), "-d", d, "-n", str(FSSTRESS_OPS), "-p",
                     str(FSSTRESS_PROCS), "-s", str(seed), *off, *extra], check=False,
                    timeout=env.HANG_GUARD * 3)
        out = env.txt(p.stdout) + env.txt(p.stderr)
        self.assertEqual(p.returncode, 0, f"fsstress failed on the stage:\n{out[-6000:]}")
        # fsstress's parent exits 0 even when a process aborted; each process checks that
        # its working directory (p0, p1, ...) still stats as the one it made.
        self.assertNotIn("check_cwd", out, f"an fsstress process lost its working directory "
                         f"on the stage and aborted:\n{out[-3000:]}")
        return out

    def consistent(self, st, what):
        """Every entry stats and every file reads whole (trees.walk records the error of
        one that does not); returns the tree."""
        view = st.walk()
        bad = [f"{p}: {r.error}" for p, r in view.items() if r.error]
        self.assertFalse(bad, f"{what}: entries that cannot be read:\n  " + "\n  ".join(bad[:40]))
        self.assertGreater(len(view), 50, f"{what}: fsstress left only {len(view)} entries")
        return view

    def cycle(self, img, mnt, store, view, sessions):
        """view survives a remount, then the commit (session number `sessions`) reads back
        as view through a read-only mount and xorriso, and a later stage shows it."""
        with stage.Stage(img, mnt, store=store) as st:
            self.check(view, st.walk(), "the stage mounted again vs before")
            res = stage.commit(mnt)
            self.assertEqual(res["session"], sessions, res)
            self.check(view, st.walk(), "the stage after the commit vs before")
        ro = self.fresh("ro")
        with mount.Mount(img, ro) as m:
            self.check(view, m.walk(), "read-only discfs mount of the commit vs the stage")
        self.check(view, self.extract(img),
                   "xorriso -osirrox extraction of the commit vs the stage", kind="extract")
        self.assert_md5(img)
        with stage.Stage(img, mnt, store=store) as st:
            self.check(view, st.walk(), "the stage after the commit, mounted again")

    def run_and_commit(self, extra):
        img, mnt, store = self.path("t.iso"), self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store) as st:
            os.mkdir(os.path.join(mnt, "fss"))
            self.fsstress(os.path.join(mnt, "fss"), 1, extra)
            view = self.consistent(st, "after fsstress")
        self.cycle(img, mnt, store, view, 1)
        # Again in the same directory, now the base: fsstress reuses its names (f0, d1, ...),
        # so creates, renames and writes meet base files and directories.
        with stage.Stage(img, mnt, store=store) as st:
            self.fsstress(os.path.join(mnt, "fss"), 2, extra)
            view = self.consistent(st, "after fsstress on the base")
        self.cycle(img, mnt, store, view, 2)

    def test_fsstress_remount_commit(self):
        """fsstress -p 4 (without hard links, see the next case) on a new target and then on
        the committed tree: consistent, a remount shows the same tree, and each commit reads
        back as the stage showed it."""
        self.run_and_commit(["-f", "link=0"])

    def test_fsstress_hard_links_remount_commit(self):
        """The same with fsstress's hard links (of files and device nodes): they stay one
        file through remounts and commits (issue 10 items 1-2)."""
        self.run_and_commit([])

    def test_commit_while_fsstress_runs(self):
        """Each fsstress process runs `discfs commit` half-way through (-x) while the others
        keep working: every commit succeeds, and afterwards the stage is consistent, shows
        the same tree after a remount and the final commit reads back as the stage."""
        img, mnt, store = self.path("t.iso"), self.path("mnt"), self.path("store")
        rcs, log = self.path("commit-rcs"), self.path("commit.log")
        cmd = (f"{env.discfs_bin()} commit --json {mnt} >>{log} 2>&1; "
               f"echo $? >>{rcs}")
        with stage.Stage(img, mnt, store=store) as st:
            os.mkdir(os.path.join(mnt, "fss"))
            self.fsstress(os.path.join(mnt, "fss"), 3, ["-f", "link=0", "-x", cmd])
            with open(rcs, encoding="utf-8") as f:
                codes = [int(x) for x in f.read().split()]
            with open(log, encoding="utf-8", errors="replace") as f:
                text = f.read()
            self.assertEqual(len(codes), FSSTRESS_PROCS, f"fsstress ran `discfs commit` "
                             f"{len(codes)} times, not once a process:\n{text[-3000:]}")
            self.assertEqual(codes, [0] * len(codes),
                             f"`discfs commit` while fsstress ran failed:\n{text[-4000:]}")
            view = self.consistent(st, "after fsstress with commits")
        done = readers.session_count(img)
        self.assertGreaterEqual(done, 1, "no commit during fsstress wrote a session")
        self.assert_md5(img)
        self.cycle(img, mnt, store, view, done + 1)


class HeldAcrossCommit(Case):
    """What a process holds on the stage stays usable across a commit: its working directory
    and a file it opened before. Found by fsstress (a commit half-way through made its
    processes abort: stat(".") failed with ENOENT); not among issue 10's items."""

    def test_cwd_and_open_file_survive_commit(self):
        img, mnt, store = self.path("t.iso"), self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            os.makedirs(os.path.join(mnt, "d", "e"))
            stage.write_file(os.path.join(mnt, "d", "e", "f"), b"staged before the commit\n")
            fd = os.open(os.path.join(mnt, "d", "e", "f"), os.O_RDONLY)
            here = os.getcwd()
            os.chdir(os.path.join(mnt, "d", "e"))
            try:
                stage.commit(mnt)
                problems = []
                for what, fn in (("stat('.') in the working directory", lambda: os.stat(".")),
                                 ("listing the working directory", lambda: os.listdir(".")),
                                 ("opening 'f' relative to it", lambda: open("f", "rb").close()),
                                 ("reading the descriptor opened before the commit",
                                  lambda: os.pread(fd, 100, 0))):
                    err = env.errno_of(fn)
                    if err:
                        problems.append(f"{what}: {os.strerror(err)}")
                env.fail_diff(self, problems, "after a commit, on the stage")
            finally:
                os.chdir(here)
                os.close(fd)


if __name__ == "__main__":
    unittest.main()
