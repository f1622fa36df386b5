"""`discfs stage` / `commit` / `status` / `discard` through the real FUSE mount.

Every change is made twice with the same ordinary tool (cp -a, mv, rm, ln, chmod, dd, ...):
once on the stage mount and once on a plain directory, the mirror.  What the kernel's own
filesystem does with the mirror is the reference: after `discfs commit` the new session
must hold exactly the mirror, as seen by

  - xorriso -osirrox extraction (independent of discfs): tree, contents, modes, owners,
    times, symlink targets, device numbers, hard links;
  - discfs-dump and a read-only `discfs mount` (hard links share an inode there);
  - the stage mount itself, before and after the commit;

and xorriso must list every session and pass -check_md5 / -check_md5_r.
"""

import errno
import hashlib
import mmap
import os
import signal
import stat
import random
import shutil
import subprocess
import time
import unittest

from testlib import env, images, mount, readers, sources, stage, trees

M = env.ModuleFixture("discfs-stage-", binaries=("discfs-dump",), tools=("xorriso",))
MiB = 1 << 20
write = stage.write_file
rand_bytes = sources.rand_bytes


def setUpModule():
    stage.set_up_module(M)


def tearDownModule():
    stage.tear_down_module(M)


def copy_tree(src, dst):
    """cp -a (keeps hard links, device nodes, FIFOs, owners and times)."""
    env.run(["cp", "-a", src, dst])


class Twin:
    """The stage mount and its mirror: every change is applied to both."""

    def __init__(self, test, mnt, mirror):
        self.test, self.m, self.r = test, mnt, mirror
        self.log = []

    def sh(self, cmd, **subs):
        """Run the shell command on both sides; {R} is the root.  Both must agree on the
        outcome (exit 0 on both, or the same failure)."""
        res = []
        for root in (self.m, self.r):
            c = cmd.format(R=root, **subs)
            p = subprocess.run(["bash", "-c", c], capture_output=True, text=True,
                               timeout=env.HANG_GUARD)
            res.append(p)
        self.log.append(cmd)
        m, r = res
        if r.returncode != 0:
            raise AssertionError(f"mirror command failed ({r.returncode}): {cmd}\n{r.stderr}")
        if m.returncode != 0:
            self.test.fail(f"on the stage mount, `{cmd}` failed ({m.returncode}): "
                           f"{m.stderr.strip()}")
        return m

    def py(self, fn):
        """fn(root) on both sides."""
        out = []
        for root in (self.m, self.r):
            out.append(fn(root))
        return out

    def check_view(self, what):
        """The stage mount shows exactly the mirror."""
        env.fail_diff(self.test, stage.tree_problems(trees.walk(self.r), trees.walk(self.m)),
                      f"stage mount vs mirror ({what})")


def add_tree(root):
    """A small tree added with cp -a: owners, odd modes, times, a hard link pair, symlinks,
    a FIFO, a nested directory and a 3 MiB file."""
    os.makedirs(os.path.join(root, "sub", "deeper"))
    write(os.path.join(root, "f1"), b"first added file\n", sources.T2020)
    write(os.path.join(root, "sub", "g"), rand_bytes(5, 70001), sources.T1980)
    write(os.path.join(root, "sub", "deeper", "h"), b"", sources.T2100)
    write(os.path.join(root, "big.bin"), rand_bytes(6, 3 * MiB), sources.T2020)
    write(os.path.join(root, "pair_a"), b"pair\n", sources.T2020)
    os.link(os.path.join(root, "pair_a"), os.path.join(root, "sub", "pair_b"))
    os.symlink("sub/g", os.path.join(root, "to_g"))
    os.symlink("/no/such/target", os.path.join(root, "dangling"))
    os.mkfifo(os.path.join(root, "sub", "fifo"), 0o640)
    os.chmod(os.path.join(root, "f1"), 0o750)
    os.chown(os.path.join(root, "sub", "g"), 4321, 8765)
    os.lchown(os.path.join(root, "to_g"), 77, 88)
    os.chmod(os.path.join(root, "sub", "deeper"), 0o2750)
    for d in ("sub/deeper", "sub", ""):
        os.utime(os.path.join(root, d), (sources.T_ATIME, sources.T1950))
    os.utime(os.path.join(root, "to_g"), (sources.T_ATIME, sources.T1980), follow_symlinks=False)


def base_tree(root):
    """What a base session holds under /t: sources.build_tree's rich tree plus bigdir, a
    12 MiB directory that the operations rename (its data must not be written again)."""
    sources.build_tree(root, deep=True, big_random=True, very_long_symlink=False)
    os.makedirs(os.path.join(root, "bigdir", "inner"))
    for i in range(5):
        write(os.path.join(root, "bigdir", "part%d" % i), rand_bytes(100 + i, 2 * MiB),
              sources.T2020)
    write(os.path.join(root, "bigdir", "inner", "part5"), rand_bytes(105, 2 * MiB), sources.T2020)
    os.mkdir(os.path.join(root, "emptydir"))
    sources.set_dir_times(root)


def every_operation(tw, t, src_added):
    """Point 1 of issue 4, on the tree `t` (a path below the roots holding base_tree)."""
    T = "{R}" + t
    sh = tw.sh
    # create, cp -a of a whole tree (hard links, symlinks, FIFO, owners, times)
    sh(f"cp -a {src_added} {T}/added")
    sh(f"echo created > {T}/created.txt")
    # append: to a base file (copied up first) and to a new one
    sh(f"echo appended line >> {T}/README")
    sh(f"printf 'more' >> {T}/added/f1")
    # random writes (dd conv=notrunc) in the middle of a base file and of a new file
    sh(f"dd if={T}/sizes/size_4095.bin of={T}/sizes/random_1MiB.bin bs=512 seek=1001 "
       f"count=3 conv=notrunc status=none")
    sh(f"dd if=/dev/zero of={T}/added/big.bin bs=1000 seek=1234 count=5 conv=notrunc "
       f"status=none")
    # a write through one of three base hard links: all three show it
    sh(f"echo via link >> {T}/hard/three_b")
    # truncate: shrink, grow (sparse), to zero; a new sparse file
    sh(f"truncate -s 100 {T}/sizes/size_65537.bin")
    sh(f"truncate -s 300000 {T}/sizes/size_2049.bin")
    sh(f"truncate -s 0 {T}/archive.tar.gz")
    sh(f"truncate -s 5M {T}/sparse5M")
    # overwrite in place, and replace by rename over an existing file
    sh(f"cp {T}/sizes/size_511.bin {T}/lower.txt")
    sh(f"echo replacement > {T}/repl.tmp && mv -f {T}/repl.tmp {T}/UPPER.TXT")
    # unlink: base files, one of a base hard-link pair, a new file, a base subtree
    sh(f"rm {T}/Makefile {T}/hard/two {T}/added/dangling")
    sh(f"rm -r {T}/a/b/c")
    if os.path.exists(os.path.join(tw.r, t.lstrip("/"), "dev")):
        sh(f"rm {T}/dev/fifo")
    # mkdir / rmdir (new and base directories)
    sh(f"mkdir -p {T}/newdir/x/y && rmdir {T}/newdir/x/y")
    sh(f"rmdir {T}/emptydir")
    sh(f"rm {T}/modes/sticky_dir/inside && rmdir {T}/modes/sticky_dir")
    # rename: a file within its directory, across directories, whole base directories
    # (bigdir never listed before the rename), a directory onto an empty one, a new dir
    sh(f"mv {T}/lower.txt {T}/lower2.txt")
    sh(f"mv {T}/empty {T}/newdir/empty_moved")
    sh(f"mkdir -p {T}/newdir/deep/er && mv {T}/bigdir {T}/newdir/deep/er/bigdir_moved")
    sh(f"mv {T}/hard {T}/hard_renamed")
    sh(f"mkdir {T}/target_empty && mv -T {T}/owners {T}/target_empty")
    sh(f"mv {T}/added/sub {T}/newdir/sub_moved")
    sh(f"mv {T}/répertoire_ß {T}/renamed_ünicode")
    # hard links: to an untouched base file, to a changed base file, to a new file
    sh(f"ln {T}/sizes/size_1.bin {T}/size_1.link")
    sh(f"ln {T}/README {T}/newdir/README.hard")
    sh(f"ln {T}/added/f1 {T}/added/f1.link")
    # symlinks
    sh(f"ln -s ../README {T}/newdir/rel_link")
    sh(f"ln -s /an/absolute/target {T}/abs_link")
    sh(f"ln -s {'x' * 200}/{'y' * 150} {T}/long_link")
    # mknod: device nodes and FIFOs
    if env.is_root():
        sh(f"mknod -m 640 {T}/newdir/chr c 10 200 && mknod -m 600 {T}/newdir/blk b 8 17")
    sh(f"mkfifo -m 604 {T}/newdir/fifo")
    # chmod (incl. setuid/sticky), chown (files, symlinks, dirs)
    sh(f"chmod 4711 {T}/added/f1")
    sh(f"chmod 1777 {T}/newdir/x")
    sh(f"chmod 600 {T}/README")
    sh(f"chmod 700 {T}/links")
    if env.is_root():
        sh(f"chown 1111:2222 {T}/lower2.txt")
        sh(f"chown -h 3333:4444 {T}/links/relative")
        sh(f"chown 5:6 {T}/a")
        sh(f"chown 0:0 {T}/target_empty/u1234_g5678")
    # python: create + write + fsync, rename with flags
    flags = tw.py(lambda root: python_ops(root + t))
    # utimens: files, a symlink (touch -h), directories (last, after their contents)
    sh(f"touch -d '1999-01-02 03:04:05 UTC' {T}/sizes/size_1.bin")
    sh(f"touch -d '1960-05-06 07:08:09 UTC' {T}/created.txt")
    sh(f"touch -m -d @0 {T}/added/pair_a")
    sh(f"touch -h -d '2001-02-03 04:05:06 UTC' {T}/links/absolute")
    sh(f"touch -d '2090-01-01 00:00:00 UTC' {T}/newdir/deep {T}/a {T}/newdir/x")
    m, r = flags
    tw.test.assertEqual(r["noreplace_existing"], errno.EEXIST)
    tw.test.assertEqual(m, r, "renameat2 flags behave differently on the stage mount")


def python_ops(root):
    """Calls the shell tools do not make: fsync, rename over a file, renameat2 flags."""
    out = {}
    fd = os.open(os.path.join(root, "fsynced.bin"), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    os.write(fd, rand_bytes(9, 200000))
    os.fsync(fd)
    os.pwrite(fd, b"PATCH", 7)
    os.fdatasync(fd)
    os.close(fd)
    write(os.path.join(root, "ren_src"), b"source\n")
    write(os.path.join(root, "ren_dst"), b"destination\n")
    out["noreplace_existing"] = env.errno_of(stage.renameat2, os.path.join(root, "ren_src"),
                                             os.path.join(root, "ren_dst"), stage.RENAME_NOREPLACE)
    out["noreplace_new"] = env.errno_of(stage.renameat2, os.path.join(root, "ren_src"),
                                        os.path.join(root, "ren_new"), stage.RENAME_NOREPLACE)
    os.rename(os.path.join(root, "ren_new"), os.path.join(root, "ren_dst"))
    # a file opened, unlinked while open, written: the data goes nowhere
    fd = os.open(os.path.join(root, "unlinked_open"), os.O_CREAT | os.O_RDWR, 0o644)
    os.unlink(os.path.join(root, "unlinked_open"))
    os.write(fd, b"gone")
    os.close(fd)
    return out


class StageCase(unittest.TestCase):
    """Common set-up: a fresh directory per test."""

    def setUp(self):
        mount.require_fuse(self)
        self.dir = M.sub(self.id().rsplit(".", 1)[-1])
        self.n = 0

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def fresh(self, name):
        self.n += 1
        p = self.path("%s%d" % (name, self.n))
        os.makedirs(p)
        return p

    def assert_md5(self, img):
        rc, out = readers.check_md5(img)
        self.assertEqual(rc, 0, "xorriso -check_md5 / -check_md5_r failed:\n" + out[-3000:])
        return out

    def assert_session_holds(self, img, mirror, what, session=None):
        """img's newest session (or `session`) is the mirror, by extraction (newest only),
        discfs-dump and a read-only discfs mount."""
        exp = trees.walk(mirror)
        extra = ["--session", str(session)] if session else []
        env.fail_diff(self, stage.tree_problems(exp, stage.dump_tree(img, *extra)),
                      f"discfs-dump {' '.join(extra)} vs mirror ({what})")
        if session is None:
            ext = readers.extract_tree(img, self.fresh("extract"))
            env.fail_diff(self, stage.tree_problems(exp, ext, kind="extract"),
                          f"xorriso -osirrox extraction vs mirror ({what})")
        mnt = self.fresh("ro")
        with mount.Mount(img, mnt, args=["mount", "-f", *extra, img, mnt]):
            env.fail_diff(self, stage.tree_problems(exp, trees.walk(mnt)),
                          f"discfs mount {' '.join(extra)} vs mirror ({what})")


# --------------------------------------------------------------------------
# 1. every operation, on a new image and on a base made by xorriso
# --------------------------------------------------------------------------

class EveryOperation(StageCase):

    def run_ops(self, tw, t):
        src = self.path("added_src")
        if not os.path.exists(src):
            add_tree(src)
        every_operation(tw, t, src)

    def test_new_image(self):
        """Blank target: cp -a a rich tree and change it (session 1 at LBA 32), then make
        every change again on what is now the base (session 2)."""
        img = self.path("new.iso")
        mnt, mirror, store = self.path("mnt"), self.path("mirror"), self.path("store")
        os.makedirs(mirror)
        src = self.path("src")
        base_tree(src)
        tw = None
        with stage.Stage(img, mnt, store=store) as st:
            tw = Twin(self, mnt, mirror)
            tw.sh("chmod 755 {R}")
            tw.sh(f"cp -a {src} {{R}}/t1 && cp -a {src} {{R}}/t2")
            self.assertFalse(os.path.exists(img), "the target was created before a commit")
            sv = os.statvfs(mnt)
            self.assertGreaterEqual(sv.f_namemax, 255)
            self.assertGreater(sv.f_bavail, 0)
            self.run_ops(tw, "/t1")
            tw.check_view("before commit 1")
            r1 = stage.commit(mnt)
            self.assertEqual((r1["session"], r1["start_lba"]), (1, 32))
            self.assertTrue(r1["verified"])
            self.assertEqual(readers.toc(img), [(32, r1["blocks"])])
            time.sleep(stage.ATTR_TIMEOUT)
            tw.check_view("after commit 1")
            self.assertEqual(stage.staged_count(stage.status(mnt)), 0)
            self.assert_md5(img)
            self.assert_session_holds(img, mirror, "session 1")
            snap1 = self.path("snap1")
            copy_tree(mirror, snap1)

            self.run_ops(tw, "/t2")
            tw.check_view("before commit 2")
            r2 = stage.commit(mnt)
            self.assertEqual(r2["session"], 2)
            time.sleep(stage.ATTR_TIMEOUT)
            tw.check_view("after commit 2")
            st.check_alive()
        rows = readers.toc(img)
        self.assertEqual([x[0] for x in rows], [32, r2["start_lba"]])
        self.assert_md5(img)
        self.assert_session_holds(img, mirror, "session 2")
        # Session 2 reuses the 12 MiB of /t2/bigdir: it holds the new data only.
        self.assertLess(r2["blocks"] * 2048, 12 * MiB,
                        "session 2 wrote the renamed base directory's data again")
        # Session 1 is still there as it was.
        env.fail_diff(self, stage.tree_problems(trees.walk(snap1), stage.dump_tree(img, "--session",
                                                                                   "1")),
                      "discfs-dump --session 1 vs mirror after commit 1")

    def test_xorriso_base(self):
        """Base made by xorriso (Rock Ridge, Joliet, hard links): every change, one commit."""
        src = self.path("src")
        base_tree(os.path.join(src, "t"))
        sources.set_dir_times(src)
        img = images.make_xorriso_native(self.path("base.iso"), src)
        rows0 = readers.toc(img)
        mirror = self.path("mirror")
        copy_tree(src, mirror)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            tw = Twin(self, mnt, mirror)
            tw.check_view("base")
            self.run_ops(tw, "/t")
            tw.check_view("before commit")
            res = stage.commit(mnt)
            time.sleep(stage.ATTR_TIMEOUT)
            tw.check_view("after commit")
        rows = readers.toc(img)
        self.assertEqual(rows[:-1], rows0)
        self.assertEqual(len(rows), len(rows0) + 1)
        self.assertEqual(rows[-1], (res["start_lba"], res["blocks"]))
        self.assertLess(res["blocks"] * 2048, 12 * MiB,
                        "the new session rewrote the renamed base directory's data")
        self.assert_md5(img)
        self.assert_session_holds(img, mirror, "session 2")
        env.fail_diff(self, stage.tree_problems(trees.walk(src),
                                                stage.dump_tree(img, "--session", "1")),
                      "session 1 after the commit vs the tree it was made from")

    def test_rename_base_dirs_copies_nothing(self):
        """Renaming and moving base directories (and files) stages no data and the session
        holds directory records only; the files keep their extents."""
        src = self.path("src")
        base_tree(os.path.join(src, "t"))
        img = images.make_xorriso_native(self.path("base.iso"), src)
        lba_before = file_lbas(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            t = os.path.join(mnt, "t")
            os.makedirs(os.path.join(t, "x", "y"))
            os.rename(os.path.join(t, "bigdir"), os.path.join(t, "x", "y", "moved"))
            os.rename(os.path.join(t, "sizes"), os.path.join(mnt, "sizes_top"))
            os.rename(os.path.join(t, "README"), os.path.join(t, "x", "README.moved"))
            st = stage.status(mnt)
            self.assertEqual(st["bytes_staged"], 0, st)
            self.assertGreaterEqual(st["renamed"], 3, st)
            self.assertLess(du(os.path.join(store)), 2 * MiB, "the rename copied data into "
                            "the store")
            res = stage.commit(mnt)
        self.assertLess(res["blocks"] * 2048, 1 * MiB, res)
        self.assert_md5(img)
        lba_after = file_lbas(img)
        moved = {"/t/bigdir/": "/t/x/y/moved/", "/t/sizes/": "/sizes_top/",
                 "/t/README": "/t/x/README.moved"}
        for old, lba in lba_before.items():
            new = old
            for a, b in moved.items():
                if old.startswith(a):
                    new = b + old[len(a):]
            if old in ("/t/README",):
                new = moved[old]
            self.assertIn(new, lba_after, f"{old} (now {new}) is missing")
            self.assertEqual(lba_after[new], lba, f"{old} -> {new} was written again")


def file_lbas(img):
    """{path: first LBA of the data} of every non-empty regular file (xorriso report_lba)."""
    r = readers.xorriso_run("-indev", readers.xdev(img), "-find", "/", "-type", "f", "-exec",
                            "report_lba", "--")
    out = {}
    for line in (r.stdout + r.stderr).splitlines():
        # "File data lba:  0 ,      34 ,       1 ,       26 , '/t/README'"
        if line.startswith("File data lba:") and "'" in line:
            nums = line.split(":", 1)[1].split(",")
            path = line[line.index("'") + 1:line.rindex("'")]
            if int(nums[3]) > 0:
                out.setdefault(path, int(nums[1]))
    return out


def du(path):
    total = 0
    for top, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(top, f)).st_blocks * 512
            except OSError:
                pass
    return total


# --------------------------------------------------------------------------
# 2. ten commits in a row, every session checked against its record
# --------------------------------------------------------------------------

class TenCommits(StageCase):

    def test_ten_commits(self):
        img = self.path("ten.iso")
        mnt, mirror, store = self.path("mnt"), self.path("mirror"), self.path("store")
        os.makedirs(mirror)
        rng = random.Random(20240611)
        records = {}
        results = []
        counter = [0]
        done = {}

        def files(root):
            return sorted(p for p, r in trees.walk(root, data=False).items() if r.type == "reg")

        def dirs(root):
            return sorted(p for p, r in trees.walk(root, data=False).items() if r.type == "dir")

        with stage.Stage(img, mnt, store=store):
            tw = Twin(self, mnt, mirror)
            tw.sh("chmod 755 {R}")
            for n in range(1, 11):
                ops = ["add", "add", "add", "overwrite", "append", "delete", "mkdir",
                       "rename_dir", "symlink"] + (["rmdir"] if n % 3 == 0 else [])
                rng.shuffle(ops)
                for op in ops:
                    fs, ds = files(mirror), dirs(mirror)
                    if op in ("rename_dir", "rmdir") and len(ds) < 3:
                        op = "mkdir"
                    if op in ("overwrite", "append", "delete") and not fs:
                        op = "add"
                    done[op] = done.get(op, 0) + 1
                    counter[0] += 1
                    c = counter[0]
                    if op == "add":
                        d = rng.choice(ds)
                        size = rng.choice([0, 1, 2048, 5000, 70000, 300000])
                        data = rand_bytes(c, size)
                        name = "f%03d" % c
                        tw.py(lambda root: write(root + d.rstrip("/") + "/" + name, data,
                                                 sources.T2020 + c))
                    elif op == "overwrite":
                        f = rng.choice(fs)
                        data = rand_bytes(c, rng.choice([10, 4096, 100000]))
                        tw.py(lambda root: write(root + f, data, sources.T1980 + c))
                    elif op == "append":
                        f = rng.choice(fs)
                        tw.sh("echo 'appended %d' >> '{R}%s'" % (c, f))
                    elif op == "delete":
                        tw.sh("rm '{R}%s'" % rng.choice(fs))
                    elif op == "mkdir":
                        tw.sh("mkdir '{R}%s/d%03d'" % (rng.choice(ds).rstrip("/"), c))
                    elif op == "rename_dir":
                        d = rng.choice(ds[1:])
                        dest = rng.choice([x for x in ds if not (x + "/").startswith(d + "/")])
                        tw.sh("mv '{R}%s' '{R}%s/r%03d'" % (d, dest.rstrip("/"), c))
                    elif op == "rmdir":
                        tw.sh("rm -r '{R}%s'" % rng.choice(ds[1:]))
                    elif op == "symlink":
                        tw.sh("ln -s target%d '{R}%s/l%03d'" % (c, rng.choice(ds).rstrip("/"),
                                                                c))
                res = stage.commit(mnt)
                self.assertEqual(res["session"], n, res)
                results.append(res)
                records[n] = trees.walk(mirror)
                # (names cached by the kernel before the commit fail for up to the 1 s
                # entry timeout: see test_change_right_after_commit)
                time.sleep(stage.ATTR_TIMEOUT)
            time.sleep(stage.ATTR_TIMEOUT)
            tw.check_view("after ten commits")
        self.assertGreaterEqual(done.get("rename_dir", 0), 5, done)
        rows = readers.toc(img)
        self.assertEqual(rows, [(r["start_lba"], r["blocks"]) for r in results])
        self.assertEqual(rows[0][0], 32)
        self.assert_md5(img)
        # --sessions: every session side by side
        mnt_all = self.fresh("all")
        with mount.Mount(img, mnt_all, args=["mount", "-f", "--sessions", img, mnt_all]):
            self.assertEqual(sorted(os.listdir(mnt_all), key=int),
                             [str(n) for n in range(1, 11)])
            for n in range(1, 11):
                got = trees.walk(os.path.join(mnt_all, str(n)))
                env.fail_diff(self, stage.tree_problems(records[n], got, skip=("/",)),
                              f"--sessions /{n} vs its record")
        # --session N, one mount each, and discfs-dump --session N
        for n in range(1, 11):
            m = self.fresh("s")
            with mount.Mount(img, m, args=["mount", "-f", "--session", str(n), img, m]):
                env.fail_diff(self, stage.tree_problems(records[n], trees.walk(m)),
                              f"mount --session {n} vs its record")
            env.fail_diff(self, stage.tree_problems(records[n],
                                                    stage.dump_tree(img, "--session", str(n))),
                          f"discfs-dump --session {n} vs its record")
        ext = readers.extract_tree(img, self.fresh("extract"))
        env.fail_diff(self, stage.tree_problems(records[10], ext, kind="extract"),
                      "xorriso extraction of session 10 vs its record")


# --------------------------------------------------------------------------
# 3. status, discard, commit options, refusals, capacity
# --------------------------------------------------------------------------

def small_base(path, src):
    os.makedirs(os.path.join(src, "d", "e"))
    write(os.path.join(src, "keep"), b"keep\n", sources.T2020)
    write(os.path.join(src, "change"), b"change me\n", sources.T2020)
    write(os.path.join(src, "gone"), b"to be deleted\n", sources.T2020)
    write(os.path.join(src, "d", "e", "inner"), rand_bytes(1, 100000), sources.T2020)
    sources.set_dir_times(src)
    return images.make_xorriso_native(path, src)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Verbs(StageCase):

    def base(self):
        src = self.fresh("src")
        img = small_base(self.path("base.iso"), src)
        return img, src

    def test_change_right_after_commit(self):
        """Names the kernel looked up before a commit keep working right after it: an
        overwrite, an append, a chmod and a rename of a just-committed file."""
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            f = os.path.join(mnt, "keep")
            write(os.path.join(mnt, "new"), b"new\n")
            os.stat(f)
            stage.commit(mnt)
            problems = []
            for what, fn in (("overwrite", lambda: write(f, b"overwritten\n")),
                             ("append", lambda: open(os.path.join(mnt, "new"), "ab").close()),
                             ("chmod", lambda: os.chmod(os.path.join(mnt, "change"), 0o600)),
                             ("rename", lambda: os.rename(os.path.join(mnt, "gone"),
                                                          os.path.join(mnt, "gone2")))):
                e = env.errno_of(fn)
                if e:
                    problems.append(f"{what} right after the commit: {os.strerror(e)}")
            self.assertEqual(problems, [])

    def test_append_right_after_discard(self):
        """An append just after a discard lands at the end of the base contents (not at the
        end the discarded copy had, leaving a hole of zeros)."""
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            f = os.path.join(mnt, "change")
            # one shell: append, discard, append again (as a user would type it)
            env.run(["bash", "-c", 'echo longer and longer >> "$1" && "$2" discard "$3" /change '
                     '&& echo x >> "$1"', "-", f, env.discfs_bin(), mnt])
            time.sleep(stage.ATTR_TIMEOUT)
            with open(f, "rb") as fh:
                self.assertEqual(fh.read(), b"change me\nx\n")

    def test_open_for_writing_at_commit(self):
        """A file still open for writing holds the commit back: with --wait 1 the commit
        fails as busy (exit 7) naming the file, writes nothing, and succeeds once it is
        closed; a commit waiting for the close picks up everything written."""
        img, src = self.base()
        before = sha(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            fh = open(os.path.join(mnt, "open_file"), "wb")
            try:
                fh.write(b"half")
                fh.flush()
                p = stage.commit(mnt, "--wait", "1", check=False)
                self.assertEqual(p.returncode, env.EXIT_BUSY, p.err)
                self.assertIn("open_file", p.err)
                self.assertEqual(sha(img), before)
                # a commit that waits: close the file while it waits
                proc = subprocess.Popen([env.discfs_bin(), "commit", "--json", "--wait", "60",
                                         mnt], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
                time.sleep(1.0)
                fh.write(b" and whole\n")
            finally:
                fh.close()
            out, err = proc.communicate(timeout=env.HANG_GUARD)
            self.assertEqual(proc.returncode, 0, err)
        d = stage.dump_tree(img)
        self.assertEqual(d["/open_file"].sha256, hashlib.sha256(b"half and whole\n").hexdigest())
        self.assert_md5(img)

    def test_every_handle_sees_every_write(self):
        """Write-only handles write past the page cache: a reader that cached the old bytes
        sees the new ones, and writes through a read-write handle and a shared mapping
        are seen by the write-only and read-only handles alike."""
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            p = os.path.join(mnt, "d", "e", "inner")
            with open(os.path.join(src, "d", "e", "inner"), "rb") as f:
                want = bytearray(f.read())
            r = os.open(p, os.O_RDONLY)
            try:
                self.assertEqual(os.pread(r, len(want), 0), bytes(want))  # now cached
                w = os.open(p, os.O_WRONLY)
                try:
                    os.pwrite(w, b"WRITE-ONLY", 5000)
                    want[5000:5010] = b"WRITE-ONLY"
                    self.assertEqual(os.pread(r, len(want), 0), bytes(want),
                                     "a cached reader missed a write-only handle's write")
                    rw = os.open(p, os.O_RDWR)
                    try:
                        with mmap.mmap(rw, 0) as m:
                            m[70000:70006] = b"MAPPED"
                            m.flush()
                        want[70000:70006] = b"MAPPED"
                        os.pwrite(rw, b"READ-WRITE", 90000)
                        want[90000:90010] = b"READ-WRITE"
                    finally:
                        os.close(rw)
                    os.pwrite(w, b"APPENDED", len(want))
                    want += b"APPENDED"
                finally:
                    os.close(w)
                self.assertEqual(os.fstat(r).st_size, len(want))
                self.assertEqual(os.pread(r, len(want) + 10, 0), bytes(want))
            finally:
                os.close(r)
            with open(p, "rb") as f:
                self.assertEqual(f.read(), bytes(want))
            stage.commit(mnt)
        self.assertEqual(stage.dump_tree(img)["/d/e/inner"].sha256,
                         hashlib.sha256(bytes(want)).hexdigest())

    def test_commit_with_nothing_staged_writes_nothing(self):
        """A commit with nothing staged leaves the target byte for byte as it was and says
        so (as xorriso -commit does without pending changes); a blank target stays blank;
        a new volume id alone is a change and is committed."""
        img, src = self.base()
        before, toc0 = sha(img), readers.toc(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            os.listdir(os.path.join(mnt, "d"))  # visiting imports, but changes nothing
            res = stage.commit(mnt)
            self.assertTrue(res["unchanged"], res)
            self.assertEqual(res["session"], len(toc0), res)
            self.assertEqual(sha(img), before, "a commit of nothing changed the target")
            text = stage.discfs("commit", mnt).out
            self.assertIn("nothing to commit", text)
            self.assertEqual(sha(img), before)
            res = stage.commit(mnt, "--volid", "RELABELLED")
            self.assertFalse(res["unchanged"], res)
            self.assertEqual(res["session"], len(toc0) + 1, res)
        self.assertEqual(readers.pvd_volume_id(img), "RELABELLED")
        blank = self.path("blank.iso")
        with stage.Stage(blank, self.path("mnt2"), store=self.path("store2")):
            res = stage.commit(self.path("mnt2"))
            self.assertTrue(res["unchanged"], res)
            self.assertEqual(res["session"], 0, res)
        self.assertFalse(os.path.exists(blank), "a commit of nothing created the target")
        res = stage.commit(None, store=store)
        self.assertTrue(res["unchanged"], res)

    def test_big_and_small_writes_mix(self):
        """Big aligned writes (which bypass the page cache) and small or unaligned ones over
        the same bytes, through write-only and read-write handles, leave exactly what was
        written last, as read through the mount, after a remount and in the commit."""
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        MiB = 1 << 20
        want = bytearray()
        with stage.Stage(img, mnt, store=store):
            p = os.path.join(mnt, "mixed")
            w = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
            rw = os.open(p, os.O_RDWR)
            try:
                def put(fd, off, data):
                    self.assertEqual(os.pwrite(fd, data, off), len(data))
                    if off > len(want):
                        want.extend(bytes(off - len(want)))
                    want[off:off + len(data)] = data
                for i in range(4):
                    put(w, i * MiB, rand_bytes(10 + i, MiB))          # aligned, 1 MiB
                put(rw, 3000, b"small" * 100)                         # inside block 0
                put(w, MiB - 7, b"across a boundary")                # unaligned
                self.assertEqual(os.pread(rw, 4 * MiB, 0), bytes(want))
                put(w, 0, rand_bytes(20, 2 * MiB))                    # aligned over both
                put(rw, 5 * MiB + 123, b"tail after a hole")          # hole, then tail
                put(w, 4 * MiB, rand_bytes(21, MiB))                  # aligned, in the hole
                self.assertEqual(os.pread(rw, 8 * MiB, 0), bytes(want))
            finally:
                os.close(rw)
                os.close(w)
        with stage.Stage(img, mnt, store=store):
            with open(os.path.join(mnt, "mixed"), "rb") as f:
                self.assertEqual(f.read(), bytes(want), "after a remount")
            stage.commit(mnt)
        self.assertEqual(stage.dump_tree(img)["/mixed"].sha256, hashlib.sha256(want).hexdigest())

    def test_sigterm_unmounts_and_keeps_the_store(self):
        """kill (SIGTERM) of a foreground stage daemon, right after a copy, ends it at once
        with exit 0 and unmounts; staging again shows what was copied."""
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        os.makedirs(mnt, exist_ok=True)
        dev0 = os.stat(mnt).st_dev
        proc = subprocess.Popen([env.discfs_bin(), "stage", "-f", "--store", store, img, mnt],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.assertTrue(mount.wait_live(mnt, dev0), "the stage did not come up")
            write(os.path.join(mnt, "copied"), rand_bytes(7, 3 << 20))
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                mount.unmount_and_reap(mnt)
        self.assertEqual(proc.returncode, 0, err.decode(errors="replace")[-2000:])
        self.assertEqual(os.stat(mnt).st_dev, dev0, "still mounted after SIGTERM")
        with stage.Stage(img, mnt, store=store):
            with open(os.path.join(mnt, "copied"), "rb") as f:
                self.assertEqual(f.read(), rand_bytes(7, 3 << 20))

    def test_deleted_name_back_at_once_after_discard(self):
        """A deleted base file whose name was looked up since (and not found) is back as
        soon as the discard returns: the kernel keeps no stale "no such file"."""
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            gone = os.path.join(mnt, "gone")
            for discard_args in (["/gone"], []):
                os.unlink(gone)
                self.assertFalse(os.path.exists(gone))
                self.assertFalse(os.path.exists(gone))
                stage.discard(mnt, *discard_args)
                with open(gone, "rb") as f:
                    self.assertEqual(f.read(), b"to be deleted\n", f"discard {discard_args}")

    def test_same_owner_and_mode_stage_nothing(self):
        """chown to the owner and chmod to the mode a base file already has (what cp -a and
        rsync -a do to what they copy over) change nothing: nothing is staged. A real chmod
        is staged."""
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            keep = os.path.join(mnt, "keep")
            s = os.stat(keep)
            os.chown(keep, s.st_uid, s.st_gid)
            os.chmod(keep, stat.S_IMODE(s.st_mode))
            st = stage.status(mnt)
            self.assertEqual(stage.staged_count(st), 0, st)
            os.chmod(keep, 0o600)
            st = stage.status(mnt)
            self.assertEqual(st["changed"], 1, st)
            self.assertEqual(stat.S_IMODE(os.stat(keep).st_mode), 0o600)

    def test_dummy_on_blank_target(self):
        """--dummy on a target that does not exist yet creates nothing."""
        img = self.path("blank.iso")
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            write(os.path.join(mnt, "f"), b"f\n")
            res = stage.commit(mnt, "--dummy")
            self.assertTrue(res["dummy"])
            self.assertFalse(os.path.exists(img), "--dummy created the target")
            self.assertEqual(stage.status(mnt)["added"], 1)

    def test_status_and_discard(self):
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            st0 = stage.status(mnt)
            self.assertEqual(stage.staged_count(st0), 0, st0)
            self.assertEqual(st0["bytes_staged"], 0, st0)
            write(os.path.join(mnt, "new1"), rand_bytes(2, 300000))
            write(os.path.join(mnt, "new2"), b"two\n")
            with open(os.path.join(mnt, "change"), "ab") as f:
                f.write(b"changed\n")
            os.unlink(os.path.join(mnt, "gone"))
            os.rename(os.path.join(mnt, "d"), os.path.join(mnt, "d_renamed"))
            st = stage.status(mnt)
            # changed: the appended file, and the root directory if its new mtime counts
            self.assertEqual((st["added"], st["deleted"], st["renamed"]), (2, 1, 1), st)
            self.assertIn(st["changed"], (1, 2), st)
            self.assertGreaterEqual(st["bytes_staged"], 300000 + 4, st)
            self.assertLess(st["bytes_staged"], 300000 + 4 + 64 * 1024, st)
            # text form carries the same numbers
            text = stage.discfs("status", mnt).out
            self.assertRegex(text, r"added:\s+2\b")
            # discard one path: an added file
            stage.discard(mnt, "/new1")
            st = stage.status(mnt)
            self.assertEqual(st["added"], 1, st)
            time.sleep(stage.ATTR_TIMEOUT)
            self.assertFalse(os.path.exists(os.path.join(mnt, "new1")))
            # discard one path: a changed base file goes back to its base contents
            stage.discard(mnt, "/change")
            time.sleep(stage.ATTR_TIMEOUT)
            with open(os.path.join(mnt, "change"), "rb") as f:
                self.assertEqual(f.read(), b"change me\n")
            self.assertLessEqual(stage.status(mnt)["changed"], 1)
            # discard everything: the view is the base again
            stage.discard(mnt)
            st = stage.status(mnt)
            self.assertEqual(stage.staged_count(st), 0, st)
            self.assertEqual(st["bytes_staged"], 0, st)
            time.sleep(stage.ATTR_TIMEOUT)
            env.fail_diff(self, stage.tree_problems(trees.walk(src), trees.walk(mnt)),
                          "stage view after discard of everything vs the base")
            # discard of something not staged/nonexistent: an error, not a crash
            p = stage.discard(mnt, "/no/such/path", check=False)
            self.assertNotEqual(p.returncode, 0, "discard of a path that does not exist")

    def test_dummy_to_volid(self):
        img, src = self.base()
        before = sha(img)
        rows0 = readers.toc(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            write(os.path.join(mnt, "added"), rand_bytes(3, 50000), sources.T2100)
            os.unlink(os.path.join(mnt, "gone"))
            st = stage.status(mnt)
            res = stage.commit(mnt, "--dummy")
            self.assertTrue(res["dummy"], res)
            self.assertEqual(sha(img), before, "--dummy changed the target")
            self.assertEqual(stage.status(mnt), st, "--dummy changed what is staged")
            new = self.path("new.iso")
            res = stage.commit(mnt, "--to", new, "--volid", "NEW_VOLUME")
            self.assertEqual(sha(img), before, "--to changed the target")
            self.assertEqual(stage.status(mnt), st, "--to changed what is staged")
            self.assertEqual(len(readers.toc(new)), 1, "--to did not write a single session")
            self.assertEqual(readers.toc(new)[0][0], 0)
            self.assertEqual(readers.pvd_volume_id(new), "NEW_VOLUME")
            self.assert_md5(new)
            expect = self.fresh("expect")
            shutil.rmtree(expect)
            copy_tree(src, expect)
            os.unlink(os.path.join(expect, "gone"))
            write(os.path.join(expect, "added"), rand_bytes(3, 50000), sources.T2100)
            ext = readers.extract_tree(new, self.fresh("x"))
            env.fail_diff(self, stage.tree_problems(trees.walk(expect), ext, kind="extract",
                                                    skip=("/",)),
                          "--to image vs base plus changes")
            # --no-joliet / --no-md5 (isoinfo and xorriso read what was written)
            bare = self.path("bare.iso")
            stage.commit(mnt, "--to", bare, "--no-joliet", "--no-md5")
            self.assertEqual(sha(img), before)
            if shutil.which("isoinfo"):
                self.assertIn("NO Joliet present", env.run(["isoinfo", "-d", "-i", bare]).stdout
                              .decode())
                self.assertIn("Joliet with UCS level", env.run(["isoinfo", "-d", "-i", new])
                              .stdout.decode())
            self.assertEqual(readers.files_with_md5(bare), set())
            self.assertIn("/added", readers.files_with_md5(new))
            # --volid on a real commit
            res = stage.commit(mnt, "--volid", "SECOND_SESSION")
            self.assertEqual(readers.pvd_volume_id(img), "SECOND_SESSION")
            self.assertEqual(readers.toc(img)[:-1], rows0)
            self.assert_md5(img)

    def test_auto_commit(self):
        img, src = self.base()
        rows0 = readers.toc(img)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store, extra=["--auto-commit", "2"]) as daemon:
            write(os.path.join(mnt, "auto"), b"committed when quiet\n", sources.T2020)
            deadline = time.monotonic() + 60
            while len(readers.toc(img)) == len(rows0) and time.monotonic() < deadline:
                time.sleep(0.5)
            self.assertEqual(len(readers.toc(img)), len(rows0) + 1,
                             "no session after 60 s of quiet with --auto-commit 2")
            daemon.check_alive()
            deadline = time.monotonic() + 30
            while stage.staged_count(stage.status(mnt)) and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(stage.staged_count(stage.status(mnt)), 0)
        d = stage.dump_tree(img)
        self.assertIn("/auto", d)
        self.assertEqual(d["/auto"].sha256,
                         hashlib.sha256(b"committed when quiet\n").hexdigest())
        self.assert_md5(img)

    def test_commit_store_without_mount(self):
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            write(os.path.join(mnt, "offline"), b"committed without the mount\n", sources.T2020)
            os.unlink(os.path.join(mnt, "gone"))
        self.assertFalse(env.is_mounted(mnt))
        st = stage.status(store=store)
        self.assertEqual((st["added"], st["deleted"]), (1, 1), st)
        n0 = len(readers.toc(img))
        res = stage.commit(store=store)
        self.assertEqual(len(readers.toc(img)), n0 + 1)
        self.assertEqual(stage.staged_count(stage.status(store=store)), 0)
        self.assert_md5(img)
        d = stage.dump_tree(img)
        self.assertNotIn("/gone", d)
        self.assertIn("/offline", d)
        # and a stage mount of the store afterwards shows the new session, nothing staged
        with stage.Stage(img, mnt, store=store):
            self.assertEqual(stage.staged_count(stage.status(mnt)), 0)
            with open(os.path.join(mnt, "offline"), "rb") as f:
                self.assertEqual(f.read(), b"committed without the mount\n")
        self.assertEqual(res["session"], n0 + 1)

    def test_relative_store_found_from_elsewhere(self):
        """`discfs stage --store REL` records the store's absolute path: status and commit
        of the mount point from another directory find the same store (they used to make
        an empty store there and report nothing staged)."""
        img, src = self.base()
        mnt = self.path("mnt")
        here = os.getcwd()
        self.addCleanup(os.chdir, here)
        # A name of this run's own: the old code made a store of that name in "/" as well.
        rel = "rs-" + os.path.basename(os.path.normpath(M.sub("", make=False)))[-8:]
        stray = os.path.join("/", rel)
        self.addCleanup(shutil.rmtree, stray, True)
        os.chdir(self.dir)
        with stage.Stage(img, mnt, store=rel):
            write(os.path.join(mnt, "rel"), b"staged through a relative store\n")
            os.chdir("/")
            self.assertEqual(stage.status(mnt)["added"], 1)
            self.assertEqual(stage.commit(mnt)["session"], 2)
        self.assertFalse(os.path.exists(stray), "status or commit made a store in /")
        self.assertIn("/rel", stage.dump_tree(img))

    def test_failed_daemon_start_leaves_no_mount(self):
        """A stage whose daemon cannot start once the mount is live (here: a store so deep
        that its control socket's path does not fit a UNIX socket address) fails with one
        sentence and leaves no mount and no daemon behind; it used to leave a mount that
        nothing could commit or stop but fusermount3."""
        img, src = self.base()
        mnt = self.path("mnt")
        os.makedirs(mnt)
        deep = self.path("s" * 110)
        for extra in ([], ["-f"]):
            p = stage.discfs("stage", *extra, "--store", deep, img, mnt, check=False,
                             timeout=120)
            leftover = env.is_mounted(mnt)
            if leftover:
                mount.unmount_and_reap(mnt)
            self.assertFalse(leftover, f"stage {extra} left its mount behind: {p.err}")
            self.assertNotEqual(p.returncode, env.EXIT_OK, f"stage {extra}: {p.err}")
            deadline = time.monotonic() + 10   # the daemon may still be on its way out
            while mount.daemons_on(mnt) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(mount.daemons_on(mnt), [], f"stage {extra}: a daemon is left")
            self.assertTrue(p.err.strip().startswith("discfs: "), p.err)

    def test_second_stage_refused(self):
        img, src = self.base()
        mnt, mnt2 = self.path("mnt"), self.path("mnt2")
        os.makedirs(mnt2)
        with stage.Stage(img, mnt) as first:     # default store (under XDG_STATE_HOME)
            for extra in ([], ["-f"]):
                p = stage.discfs("stage", *extra, img, mnt2, check=False, timeout=60)
                leftover = env.is_mounted(mnt2)
                if leftover:
                    mount.unmount_and_reap(mnt2)
                self.assertFalse(leftover, f"second stage {extra} mounted")
                self.assertEqual(p.returncode, env.EXIT_BUSY,
                                 f"second stage {extra}: exit {p.returncode}: {p.err}")
                lines = [x for x in p.err.splitlines() if x.strip()]
                self.assertEqual(len(lines), 1, f"second stage {extra}: {p.err!r}")
                self.assertIn(str(first.pid), lines[0])
                first.check_alive()
        mount.unmount_and_reap(mnt2)

    def test_second_stage_other_store_refused(self):
        """The same target staged through another store: still one stage at a time."""
        img, src = self.base()
        mnt, mnt2 = self.path("mnt"), self.path("mnt2")
        os.makedirs(mnt2)
        with stage.Stage(img, mnt, store=self.path("store1")) as first:
            try:
                p = stage.discfs("stage", "--store", self.path("store2"), img, mnt2, check=False,
                                 timeout=60)
                self.assertFalse(env.is_mounted(mnt2),
                                 "a second stage of the same target (other --store) mounted")
                self.assertEqual(p.returncode, env.EXIT_BUSY, p.err)
                self.assertIn(str(first.pid), p.err)
            finally:
                mount.unmount_and_reap(mnt2)

    def test_daemonized(self):
        """Without -f, stage returns once the mount is live; unmount ends the daemon."""
        img, src = self.base()
        mnt, store = self.path("mnt"), self.path("store")
        os.makedirs(mnt)
        try:
            stage.discfs("stage", "--store", store, img, mnt, timeout=120)
            self.assertTrue(env.is_mounted(mnt))
            write(os.path.join(mnt, "x"), b"x\n")
            self.assertEqual(stage.commit(mnt)["session"], 2)
        finally:
            problems = mount.unmount_and_reap(mnt)
        self.assertEqual(problems, [])
        self.assertIn("/x", stage.dump_tree(img))

    def test_refused_targets(self):
        """A UDF-only image and a read-only image are refused before anything is written."""
        mnt = self.path("mnt")
        os.makedirs(mnt)
        cases = []
        if shutil.which("mkudffs"):
            udf = self.path("u.udf")
            with open(udf, "wb") as f:
                f.truncate(4 * MiB)
            env.run(["mkudffs", "--media-type=hd", udf])
            cases.append(("UDF-only", udf, "UDF"))
        img, src = self.base()
        ro = self.path("ro.iso")
        shutil.copy(img, ro)
        os.chmod(ro, 0o444)
        cases.append(("read-only", ro, "read-only"))
        for what, target, word in cases:
            before = sha(target)
            store = self.path("store-" + what)
            p = stage.discfs("stage", "-f", "--store", store, target, mnt, check=False, timeout=60)
            if env.is_mounted(mnt):
                mount.unmount_and_reap(mnt)
                self.fail(f"{what} target was mounted for staging")
            self.assertEqual(p.returncode, env.EXIT_UNSUPPORTED,
                             f"{what} target: exit {p.returncode} (man/discfs.1: a target that "
                             f"cannot take a session is refused with exit 5)")
            self.assertIn(word, p.err, f"{what}: the message does not say why: {p.err!r}")
            self.assertEqual(len([x for x in p.err.splitlines() if x.strip()]), 1, p.err)
            self.assertEqual(sha(target), before, f"{what} target was written")
        if not shutil.which("mkudffs"):
            self.skipTest("mkudffs missing (udftools): UDF-only target not tried")

    def test_capacity(self):
        mnt, store = self.path("mnt"), self.path("store")
        img = self.path("cap.iso")
        with stage.Stage(img, mnt, store=store, extra=["--capacity", "1M"]):
            sv = os.statvfs(mnt)
            self.assertEqual(sv.f_blocks * sv.f_frsize, MiB, "statfs does not show 1 MiB")
            self.assertEqual(sv.f_bavail, 0)
            t0 = time.monotonic()
            p = subprocess.run(["dd", "if=/dev/zero", "of=" + os.path.join(mnt, "big"),
                                "bs=1M", "count=8"], capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("No space left on device", p.stderr)
            self.assertLess(time.monotonic() - t0, 30)
        # a larger capacity: free space shrinks with what is staged, and a write that does
        # not fit fails at once while one that fits goes through
        with stage.Stage(img, mnt, store=self.path("store2"), extra=["--capacity", "32M"]):
            sv = os.statvfs(mnt)
            self.assertEqual(sv.f_blocks * sv.f_frsize, 32 * MiB)
            free0 = sv.f_bavail * sv.f_frsize
            self.assertGreater(free0, 16 * MiB)
            self.assertLessEqual(free0, 32 * MiB)
            st = stage.status(mnt)
            self.assertAlmostEqual(st["free_bytes_after_commit"], free0, delta=64 * 1024)
            write(os.path.join(mnt, "four"), rand_bytes(4, 4 * MiB))
            sv = os.statvfs(mnt)
            free1 = sv.f_bavail * sv.f_frsize
            self.assertAlmostEqual(free0 - free1, 4 * MiB, delta=64 * 1024)
            self.assertAlmostEqual(stage.status(mnt)["free_bytes_after_commit"], free1,
                                   delta=64 * 1024)
            big = os.path.join(mnt, "toobig")
            fd = os.open(big, os.O_CREAT | os.O_WRONLY, 0o644)
            try:
                e = env.errno_of(os.ftruncate, fd, 64 * MiB)
                self.assertEqual(e, errno.ENOSPC, "truncate past capacity")
                chunk = bytes(MiB)
                written = 0
                err = 0
                for _ in range(64):
                    try:
                        written += os.write(fd, chunk)
                    except OSError as ex:
                        err = ex.errno
                        break
                self.assertEqual(err, errno.ENOSPC)
                self.assertLessEqual(written, free1)
            finally:
                os.close(fd)
            os.unlink(big)
            res = stage.commit(mnt)
            self.assertEqual(res["session"], 1)
        self.assert_md5(img)


# --------------------------------------------------------------------------
# 3b. the kernel drops what it cached as soon as a discard or a commit returns
# --------------------------------------------------------------------------

class KernelForgetsAtOnce(StageCase):
    """Entries and attributes the kernel cached (1 s entry/attr timeouts) are dropped when
    a discard or a commit returns, so that what the stage shows right after them is the
    new state, not a stale one.  Nothing here sleeps: each check runs within the timeout
    of the stat or lookup that cached the old state."""

    def staged_changes(self, mnt):
        """Adds /added, appends to /change, chmods /keep and stats all three (the kernel
        now holds their entries and attributes, and /change's pages).  Returns when."""
        write(os.path.join(mnt, "added"), b"added in the stage\n")
        with open(os.path.join(mnt, "change"), "ab") as f:
            f.write(b"appended in the stage\n")
        os.chmod(os.path.join(mnt, "keep"), 0o600)
        os.utime(os.path.join(mnt, "added"), ns=(1_500_000_000_123_456_789,
                                                 1_600_000_000_987_654_321))
        cached = time.monotonic()
        for name in ("added", "change", "keep"):
            os.stat(os.path.join(mnt, name))
        with open(os.path.join(mnt, "change"), "rb") as f:
            self.assertEqual(f.read(), b"change me\nappended in the stage\n")
        return cached

    def within_timeout(self, cached):
        """The checks ran while the kernel's own 1 s timeout would still have kept what it
        cached at `cached`: else they prove nothing (a slow machine), and the test says so."""
        if time.monotonic() - cached >= 1.0:
            self.skipTest("the discard or commit took longer than the kernel's 1 s entry/attr "
                          "timeout here, so a stale entry would have expired anyway")

    def test_discard_is_seen_at_once(self):
        src = self.fresh("src")
        img = small_base(self.path("base.iso"), src)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            cached = self.staged_changes(mnt)
            stage.discard(mnt)
            self.assertFalse(os.path.lexists(os.path.join(mnt, "added")),
                             "a discarded new file can still be looked up")
            st = os.stat(os.path.join(mnt, "change"))
            self.assertEqual(st.st_size, len(b"change me\n"),
                             "a discarded append still shows in the size")
            with open(os.path.join(mnt, "change"), "rb") as f:
                self.assertEqual(f.read(), b"change me\n", "discarded bytes are still read")
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(mnt, "keep")).st_mode), 0o644,
                             "a discarded chmod still shows")
            self.assertEqual(sorted(os.listdir(mnt)), sorted(os.listdir(src)))
            self.within_timeout(cached)

    def test_commit_is_seen_at_once(self):
        """The new session records whole-second times and the stage numbers its inodes
        anew: right after the commit the stage shows the session's times, as xorriso
        extracts them, not the nanoseconds the kernel cached before."""
        src = self.fresh("src")
        img = small_base(self.path("base.iso"), src)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            cached = self.staged_changes(mnt)
            before = {n: os.stat(os.path.join(mnt, n)) for n in ("added", "change")}
            stage.commit(mnt)
            after = {n: os.stat(os.path.join(mnt, n)) for n in ("added", "change", "keep")}
            self.within_timeout(cached)
        dest = self.fresh("extract")
        shutil.rmtree(dest)
        readers.xorriso_extract(img, dest)
        for name, st in after.items():
            x = os.lstat(os.path.join(dest, name))
            self.assertEqual((st.st_mtime_ns, st.st_size, stat.S_IMODE(st.st_mode)),
                             (x.st_mtime_ns, x.st_size, stat.S_IMODE(x.st_mode)),
                             f"{name} right after the commit is not what the session holds")
        for name, st in before.items():
            self.assertNotEqual(st.st_mtime_ns, after[name].st_mtime_ns,
                                f"precondition: {name}'s staged time has nanoseconds the "
                                f"session does not keep")


# --------------------------------------------------------------------------
# 4. appending to images made by other tools
# --------------------------------------------------------------------------

class OtherTools(StageCase):

    def test_xorriso_md5_grown(self):
        src1, src2 = self.fresh("s"), self.fresh("s")
        write(os.path.join(src1, "old1"), rand_bytes(11, 300000), sources.T2020)
        write(os.path.join(src1, "old2"), b"old two\n", sources.T2020)
        write(os.path.join(src2, "mid"), rand_bytes(12, 100000), sources.T2020)
        img = self.path("md5.iso")
        for src, to in ((src1, "/one"), (src2, "/two")):
            r = readers.xorriso_run("-md5", "on", "-dev", img, "-map", src, to, "--", "-commit")
            self.assertEqual(r.returncode, 0, r.stderr)
        old_md5 = readers.files_with_md5(img)
        self.assertEqual(old_md5, {"/one/old1", "/one/old2", "/two/mid"})
        mirror = self.path("mirror")
        ext0 = self.fresh("x0")
        shutil.rmtree(ext0)
        readers.xorriso_extract(img, ext0)
        copy_tree(ext0, mirror)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            tw = Twin(self, mnt, mirror)
            tw.sh("echo new > {R}/one/new && mv {R}/two {R}/three && rm {R}/one/old2")
            tw.sh("chmod 600 {R}/one/old1")
            stage.commit(mnt)
        self.assertEqual(len(readers.toc(img)), 3)
        out = self.assert_md5(img)
        self.assertIn("File contents and their MD5 checksums match", out)
        have = readers.files_with_md5(img)
        self.assertLessEqual({"/one/old1", "/three/mid", "/one/new"}, have,
                             "MD5 tags of older files were dropped")
        env.fail_diff(self, stage.tree_problems(trees.walk(mirror),
                                                readers.extract_tree(img, self.fresh("x")),
                                                kind="extract"),
                      "extraction after appending to an xorriso -md5 image")

    def test_genisoimage_single_session(self):
        env.require_tools("genisoimage")
        src = self.fresh("s")
        write(os.path.join(src, "f"), b"from genisoimage\n", sources.T2020)
        os.makedirs(os.path.join(src, "dir"))
        write(os.path.join(src, "dir", "g"), rand_bytes(13, 40000), sources.T1980)
        sources.set_dir_times(src)
        img = images.make_genisoimage(self.path("g.iso"), src, ["-R", "-J"])
        mirror = self.path("mirror")
        copy_tree(src, mirror)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            tw = Twin(self, mnt, mirror)
            tw.check_view("genisoimage base")
            tw.sh("echo added > {R}/added && mv {R}/dir {R}/dir2 && echo x >> {R}/f")
            res = stage.commit(mnt)
            time.sleep(stage.ATTR_TIMEOUT)
            tw.check_view("after commit")
        self.assertTrue(res["verified"])
        self.assert_md5(img)
        self.assert_session_holds(img, mirror, "after appending to genisoimage")


# --------------------------------------------------------------------------
# 4b. hard links of the base: one inode on the stage, one file in the commit
# --------------------------------------------------------------------------

def hard_link_base(src):
    """Hard links as xorriso records them (-hardlinks on: a PX serial shared by the names):
    a file with three names in three folders, a pair in one folder, a pair nobody touches in
    two folders, a pair whose other name is never listed, a symlink with two names and
    (as root) a device node with two names."""
    for d in ("d1", "d2", "d3", "e1", "e2", "f1", "f2"):
        os.makedirs(os.path.join(src, d))
    write(os.path.join(src, "d1", "a"), b"hello\n", sources.T2020)
    os.link(os.path.join(src, "d1", "a"), os.path.join(src, "d2", "b"))
    os.link(os.path.join(src, "d1", "a"), os.path.join(src, "c"))
    write(os.path.join(src, "d3", "x"), b"pair in one folder\n", sources.T1980)
    os.link(os.path.join(src, "d3", "x"), os.path.join(src, "d3", "y"))
    write(os.path.join(src, "e1", "p1"), b"never touched\n", sources.T2020)
    os.link(os.path.join(src, "e1", "p1"), os.path.join(src, "e2", "p2"))
    write(os.path.join(src, "f1", "q1"), b"linked again\n", sources.T2020)
    os.link(os.path.join(src, "f1", "q1"), os.path.join(src, "f2", "q2"))
    os.symlink("d1/a", os.path.join(src, "s1"))
    os.link(os.path.join(src, "s1"), os.path.join(src, "d1", "s2"), follow_symlinks=False)
    if env.is_root():
        os.mknod(os.path.join(src, "n1"), 0o640 | stat.S_IFCHR, os.makedev(1, 3))
        os.link(os.path.join(src, "n1"), os.path.join(src, "d2", "n2"))
    sources.set_dir_times(src)


class HardLinks(StageCase):

    def test_base_hard_links(self):
        """Names of one base file are one inode on the stage (st_ino, st_nlink, contents),
        readable on every later mount with the same store, and one file in the commit."""
        src = self.path("src")
        hard_link_base(src)
        img = images.make_xorriso_native(self.path("base.iso"), src)
        mirror = self.path("mirror")
        copy_tree(src, mirror)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            Twin(self, mnt, mirror).check_view("first mount")
        # A later mount with the same store: every name must still open (it was ENOENT).
        with stage.Stage(img, mnt, store=store):
            tw = Twin(self, mnt, mirror)
            tw.check_view("second mount")
            tw.sh("cat {R}/c {R}/d1/a {R}/d2/b {R}/d3/x > /dev/null")
            # a write through one name is seen through the others
            tw.sh("echo through c >> {R}/c")
            # unlinking one name lowers the others' count
            tw.sh("rm {R}/d3/y")
            # a new link to an unmodified base file whose other name was never listed
            tw.sh("ln {R}/f1/q1 {R}/q3")
            # a new link to a changed one, and links to the symlink and the device node
            tw.sh("ln {R}/d2/b {R}/d3/b2")
            tw.sh("ln -P {R}/s1 {R}/s3")
            if env.is_root():
                tw.sh("ln {R}/n1 {R}/n3")
            tw.check_view("after the changes")
            self.assertEqual(os.stat(os.path.join(mnt, "c")).st_nlink, 4)
            res = stage.commit(mnt)
            time.sleep(stage.ATTR_TIMEOUT)
            tw.check_view("after the commit")
        self.assertTrue(res["verified"])
        self.assert_session_holds(img, mirror, "hard links committed")
        ext = readers.extract_tree(img, self.fresh("x"))
        groups = trees.link_groups(ext)
        for g in (["/c", "/d1/a", "/d2/b", "/d3/b2"], ["/e1/p1", "/e2/p2"],
                  ["/f1/q1", "/f2/q2", "/q3"], ["/d1/s2", "/s1", "/s3"]):
            self.assertIn(g, groups, "xorriso -osirrox does not extract these as one file")
        # The committed hard links, staged again with the same store, twice.
        with stage.Stage(img, mnt, store=store):
            Twin(self, mnt, mirror).check_view("restaged after the commit")
        with stage.Stage(img, mnt, store=store):
            tw = Twin(self, mnt, mirror)
            tw.sh("cat {R}/q3 {R}/f2/q2 {R}/c > /dev/null")
            tw.sh("echo again >> {R}/q3")
            tw.check_view("written after restaging")

    def test_names_in_folders_never_listed(self):
        """A hard-linked base file changed through one name while its other names sit in
        folders the stage never listed (the commit reuses those folders whole): those names
        get the new contents and attributes, and stay links of it."""
        src = self.path("src")
        hard_link_base(src)
        img = images.make_xorriso_native(self.path("base.iso"), src)
        mirror = self.path("mirror")
        copy_tree(src, mirror)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            tw = Twin(self, mnt, mirror)
            tw.sh("echo through p1 >> {R}/e1/p1")        # e2/p2 never listed
            tw.sh("ln {R}/f1/q1 {R}/q3")                 # f2/q2 never listed
            tw.sh("chmod 600 {R}/d3/x")                  # d3/y listed with it
            tw.sh("chmod 640 {R}/c")                     # d1/a and d2/b never listed
            tw.sh("ln -P {R}/s1 {R}/s3")                 # d1/s2 never listed
            if env.is_root():
                tw.sh("chown 7:8 {R}/n1")                # d2/n2 never listed
            stage.commit(mnt)
        self.assert_session_holds(img, mirror, "names in folders never listed")


    def test_links_made_on_the_stage(self):
        """Hard links made on the stage to a new file, symlink, FIFO and device node are one
        file each in the commit."""
        img = self.path("new.iso")
        mirror = self.path("mirror")
        os.makedirs(mirror)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            tw = Twin(self, mnt, mirror)
            tw.sh("chmod 755 {R} && mkdir {R}/d")
            tw.sh("echo new > {R}/f && ln {R}/f {R}/d/f2")
            tw.sh("ln -s f {R}/s && ln -P {R}/s {R}/d/s2 && ln -P {R}/s {R}/s3")
            tw.sh("mkfifo -m 640 {R}/p && ln {R}/p {R}/d/p2")
            if env.is_root():
                tw.sh("mknod -m 600 {R}/n c 1 3 && ln {R}/n {R}/d/n2")
            tw.check_view("before the commit")
            stage.commit(mnt)
            time.sleep(stage.ATTR_TIMEOUT)
            tw.check_view("after the commit")
        self.assert_session_holds(img, mirror, "links made on the stage")

    def test_names_without_serial_numbers_are_separate(self):
        """An image whose PX records carry no serial number does not say which names are
        one file: the stage shows them as xorriso extracts them, separate files (link
        count 1), so that unlinking one does not leave a wrong count on the others."""
        src = self.path("src")
        hard_link_base(src)
        img = images.make_xorriso_native(self.path("base.iso"), src, hardlinks=False)
        ext = readers.extract_tree(img, self.fresh("x"))
        self.assertEqual(trees.link_groups(ext), [], "precondition: no hard links recorded")
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(img, mnt, store=store):
            env.fail_diff(self, stage.tree_problems(ext, trees.walk(mnt), kind="extract"),
                          "stage mount vs xorriso -osirrox extraction of the base")


# --------------------------------------------------------------------------
# 5. a loop block device as the target
# --------------------------------------------------------------------------

def losetup():
    return shutil.which("losetup") or shutil.which("losetup", path="/usr/sbin:/sbin")


class LoopDevice(StageCase):

    def setUp(self):
        super().setUp()
        if not losetup():
            self.skipTest("losetup is missing (util-linux): loop device target not tried")
        backing = self.path("loop.img")
        with open(backing, "wb") as f:
            f.write(bytes(64 * MiB))
        p = env.run([losetup(), "-f", "--show", backing], check=False, timeout=60)
        if p.returncode != 0:
            self.skipTest("loop devices are not allowed here: losetup -f --show: " +
                          env.txt(p.stderr).strip())
        self.dev = env.txt(p.stdout).strip()
        self.addCleanup(lambda: subprocess.run([losetup(), "-d", self.dev],
                                               capture_output=True))

    def test_loop_target(self):
        dev = self.dev
        mirror = self.path("mirror")
        os.makedirs(mirror)
        src = self.path("src")
        base_tree(src)
        added = self.path("added_src")
        add_tree(added)
        mnt, store = self.path("mnt"), self.path("store")
        with stage.Stage(dev, mnt, store=store):
            sv = os.statvfs(mnt)
            self.assertEqual(sv.f_blocks * sv.f_frsize, 64 * MiB,
                             "statfs does not show the device size")
            tw = Twin(self, mnt, mirror)
            tw.sh("chmod 755 {R}")
            tw.sh(f"cp -a {src} {{R}}/t")
            r1 = stage.commit(mnt)
            self.assertEqual((r1["session"], r1["start_lba"]), (1, 32))
            every_operation(tw, "/t", added)
            tw.check_view("before commit 2")
            r2 = stage.commit(mnt)
            self.assertEqual(r2["session"], 2)
            self.assertLess(r2["blocks"] * 2048, 12 * MiB)
            time.sleep(stage.ATTR_TIMEOUT)
            tw.check_view("after commit 2")
            sv2 = os.statvfs(mnt)
            self.assertLess(sv2.f_bavail, sv.f_bavail)
        self.assertEqual([x[0] for x in readers.toc(dev)], [32, r2["start_lba"]])
        self.assert_md5(dev)
        self.assert_session_holds(dev, mirror, "loop device, session 2")


if __name__ == "__main__":
    unittest.main()
