"""`discfs rip` from a source with bad sectors.

The source is tests/tools/eio_fs: a FUSE file serving an image made by xorriso, whose chosen
byte ranges fail with EIO (and can be healed by rewriting its ranges file); it logs every
read it serves.  The map is checked with GNU ddrescue's own ddrescuelog when installed
(gddrescue), the copy with cmp against the original and with xorriso -check_md5.

Run: /usr/bin/python3 -m testlib -v test_rip   (from tests/py)
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from testlib import env, mount, readers, sanitizers, sources

M = env.ModuleFixture("discfs-rip-", binaries=("eio_fs",), tools=("xorriso", "genisoimage"),
                      fuse=True)
setUpModule, tearDownModule = M.set_up, M.tear_down

B = 2048


class EioMount(mount.Mount):
    """eio_fs BACKING RANGES LOG MNT -f for the life of a with-block; MNT/image is the file."""

    def __init__(self, backing, ranges, log, mnt):
        super().__init__(backing, mnt)
        self.ranges, self.log = ranges, log

    def command(self):
        return [env.eio_fs_bin(), self.image, self.ranges, self.log, self.mountpoint, "-f"]


def rip(*args, check_rc=None):
    cmd = [env.discfs_bin(), "rip", *[str(a) for a in args], "--json"]
    p = env.run(cmd, check=False, timeout=env.HANG_GUARD)
    err = env.txt(p.stderr)
    sanitizers.check(" ".join(cmd), err)
    lines = [json.loads(x) for x in env.txt(p.stdout).splitlines() if x.strip()]
    res = [x for x in lines if x.get("event") == "result"]
    if check_rc is not None and p.returncode != check_rc:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}, not {check_rc}: {err}")
    return p.returncode, (res[-1] if res else None), err


def read_log(path):
    """[(offset, size, ok)] of the reads eio_fs served."""
    with open(path) as f:
        return [(int(a), int(b), c == "ok") for a, b, c in (l.split() for l in f if l.strip())]


def map_blocks(path):
    """[(pos, size, status)] of a ddrescue mapfile (our own reading; ddrescuelog checks too)."""
    out, status_seen = [], False
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            if not status_seen:
                status_seen = True
                continue
            pos, size, st = line.split()[:3]
            out.append((int(pos, 16), int(size, 16), st))
    return out


def ddrescuelog(*args):
    if shutil.which("ddrescuelog") is None:
        return None
    return env.txt(env.run(["ddrescuelog", *args]).stdout)


class Rip(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.join(M.path, self.id().rsplit(".", 1)[-1])
        os.makedirs(self.tmp)
        self.ranges, self.log = self.p("ranges"), self.p("log")
        self.set_ranges([])
        open(self.log, "w").close()

    def p(self, *parts):
        return os.path.join(self.tmp, *parts)

    def set_ranges(self, ranges, delay_ms=None):
        with open(self.ranges, "w") as f:
            if delay_ms:
                f.write(f"delay {delay_ms}\n")
            for a, b in ranges:
                f.write(f"{a} {b}\n")

    def image(self, mib=2):
        """Two sessions grown by xorriso with MD5 tags; returns (img, bytes the sessions
        reach, per xorriso -toc)."""
        src, img = self.p("src"), self.p("orig.iso")
        os.makedirs(src)
        for i in range(mib):
            sources.write(src, f"f{i}", sources.rand_bytes(f"r{i}", 1 << 20))
        readers.xorriso(["-md5", "on", "-dev", img, "-map", src, "/", "-commit"])
        sources.write(src, "g", sources.rand_bytes("g", 300_000))
        readers.xorriso(["-md5", "on", "-dev", img, "-map", self.p("src", "g"), "/g",
                         "-commit"])
        rows = readers.toc_rows(img)
        end = max(start + blocks for _, start, blocks in rows) * B
        return img, end

    def same_as_original(self, img, out, end):
        self.assertEqual(os.path.getsize(out), end)
        self.assertEqual(subprocess.run(["cmp", "-n", str(end), img, out]).returncode, 0,
                         "the copy differs from the original")
        with open(img, "rb") as f:
            f.seek(end)
            self.assertEqual(f.read().strip(b"\0"), b"", "the original has data past the "
                             "sessions' end")
        self.assertEqual(readers.check_md5(out)[0], 0, "xorriso -check_md5 fails on the copy")

    def test_bad_sectors_are_mapped_then_healed(self):
        img, end = self.image()
        # One range inside a block, one across the 128 KiB read boundary at 256 KiB, one
        # covering session 2's first block.
        rows = readers.toc_rows(img)
        s2 = rows[1][1] * B
        bad = [(300 * B + 10, 300 * B + 20), (256 * 1024 - 100, 256 * 1024 + 3000),
               (s2, s2 + 1)]
        bad_sectors = sorted({b for a, z in bad for b in range(a // B, (z - 1) // B + 1)})
        self.set_ranges(bad)
        out, mp = self.p("copy.iso"), self.p("copy.map")
        with EioMount(img, self.ranges, self.log, self.p("mnt")):
            src = self.p("mnt", "image")
            rc, res, err = rip(src, "-o", out, "--map", mp, "--retries", "2")
            self.assertEqual(rc, env.EXIT_PARTIAL_RIP, err)
            self.assertEqual(res["bad_sectors"], len(bad_sectors))
            self.assertEqual(os.path.getsize(out), end)
            got_bad = sorted(b for pos, size, st in map_blocks(mp) if st == "-"
                             for b in range(pos // B, (pos + size) // B))
            self.assertEqual(got_bad, bad_sectors)
            self.assertEqual(sum(size for _, size, _ in map_blocks(mp)), end)
            listed = ddrescuelog("-b", "2048", "-l-", mp)
            if listed is not None:
                self.assertEqual([int(x) for x in listed.split()], bad_sectors)
            # Bad sectors read as zeros; every other byte is the original's.
            with open(img, "rb") as a, open(out, "rb") as b:
                orig, copy = a.read(end), b.read()
            for s in bad_sectors:
                self.assertEqual(copy[s * B:(s + 1) * B], bytes(B))
            masked = bytearray(orig)
            for s in bad_sectors:
                masked[s * B:(s + 1) * B] = bytes(B)
            self.assertEqual(bytes(masked), copy)
            # Each bad block was tried 1 + 2 times, block by block.
            tries = [o for o, n, ok in read_log(self.log) if not ok and n == B]
            for s in bad_sectors:
                self.assertEqual(tries.count(s * B), 3, s)

            # Heal; the rerun reads only the bad blocks and ends with the original.
            self.set_ranges([])
            open(self.log, "w").close()
            rc, res, err = rip(src, "-o", out, "--map", mp)
            self.assertEqual(rc, 0, err)
            self.assertEqual(res["md5_tags"], "ok")
            self.assertEqual(res["bad_sectors"], 0)
            reads = read_log(self.log)
            self.assertEqual(sorted(o // B for o, n, ok in reads),
                             bad_sectors, "the rerun read more than the bad areas")
            self.assertEqual([st for _, _, st in map_blocks(mp)], ["+"])
        self.same_as_original(img, out, end)
        if shutil.which("ddrescuelog"):
            self.assertIn("rescued:", ddrescuelog("-t", mp))

    def test_ddrescue_goes_on_from_our_map(self):
        # The map is GNU ddrescue's own format: ddrescue itself resumes from it, retrying
        # (-r1) only the sectors discfs left bad.
        if shutil.which("ddrescue") is None:
            self.skipTest("ddrescue (gddrescue) is missing")
        img, end = self.image()
        self.set_ranges([(500 * B + 1, 502 * B)])
        out, mp = self.p("copy.iso"), self.p("copy.map")
        with EioMount(img, self.ranges, self.log, self.p("mnt")):
            src = self.p("mnt", "image")
            rip(src, "-o", out, "--map", mp, check_rc=env.EXIT_PARTIAL_RIP)
            self.set_ranges([])
            open(self.log, "w").close()
            env.run(["ddrescue", "-b2048", "-r1", src, out, mp])
            reads = [(o, n) for o, n, _ in read_log(self.log) if o < end]
            self.assertEqual(sorted(o // B for o, _ in reads), [500, 501], reads)
        with open(img, "rb") as a, open(out, "rb") as b:
            self.assertEqual(a.read(end), b.read(end))

    def test_sigint_keeps_the_map_and_resumes(self):
        img, end = self.image(mib=6)
        self.set_ranges([], delay_ms=40)
        out, mp = self.p("copy.iso"), self.p("copy.map")
        with EioMount(img, self.ranges, self.log, self.p("mnt")):
            src = self.p("mnt", "image")
            cmd = [env.discfs_bin(), "rip", src, "-o", out, "--map", mp]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                # Wait (hang guard only) until a saved map shows progress, then Ctrl-C.
                deadline = time.monotonic() + env.HANG_GUARD
                while time.monotonic() < deadline and proc.poll() is None:
                    if os.path.exists(mp) and any(st == "+" for _, _, st in map_blocks(mp)):
                        break
                    time.sleep(0.05)
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=env.HANG_GUARD)
            finally:
                if proc.poll() is None:
                    proc.kill()
            err = env.txt(err)
            sanitizers.check(" ".join(cmd), err)
            self.assertEqual(proc.returncode, env.EXIT_CANCELLED, err)
            self.assertIn("run the same command again", err)
            blocks = map_blocks(mp)
            done = sum(size for _, size, st in blocks if st == "+")
            self.assertGreater(done, 0)
            self.assertLess(done, end, "the run was not interrupted midway")
            self.assertEqual(sum(size for _, size, _ in blocks), end)
            self.assertFalse(os.path.exists(mp + ".tmp"))
            if shutil.which("ddrescuelog"):
                self.assertIn("non-tried:", ddrescuelog("-t", mp))
            finished = [(pos, pos + size) for pos, size, st in blocks if st == "+"]

            self.set_ranges([])
            open(self.log, "w").close()
            rc, res, err = rip(src, "-o", out, "--map", mp, check_rc=0)
            for o, n, _ in read_log(self.log):
                for a, z in finished:
                    self.assertFalse(o < z and o + n > a,
                                     f"the resumed run read {o}+{n}, finished before")
        self.same_as_original(img, out, end)

    def test_image_file_with_published_checksum(self):
        img, end = self.image()
        with open(img, "rb") as f:
            sha = hashlib.sha256(f.read(end)).hexdigest()
        out = self.p("copy.iso")
        rc, res, err = rip(img, "-o", out, "--sha256", sha)
        self.assertEqual(rc, 0, err)
        self.assertEqual((res["sha256"], res["md5_tags"]), ("ok", "ok"))
        self.same_as_original(img, out, end)
        self.assertEqual(env.txt(env.run(["sha256sum", out]).stdout).split()[0], sha)
        os.remove(out)
        os.remove(out + ".map")
        rc, res, err = rip(img, "-o", out, "--sha256", "0" * 64)
        self.assertEqual(rc, env.EXIT_MISMATCH, err)
        self.assertEqual(res["sha256"], "mismatch")
        # The source as its own output is refused before anything is written.
        before = os.path.getsize(img)
        rc, res, err = rip(img, "-o", img)
        self.assertEqual(rc, env.EXIT_CANNOT_OPEN, err)
        self.assertIn("the source itself", err)
        self.assertEqual(os.path.getsize(img), before)
        self.assertFalse(os.path.exists(img + ".map"))

    def test_block_device_is_read_as_far_as_the_sessions_reach(self):
        losetup = shutil.which("losetup") or shutil.which("losetup", path="/usr/sbin:/sbin")
        if not env.is_root() or not losetup:
            self.skipTest("loop devices need root and losetup")
        img, end = self.image()
        stick = self.p("stick")
        shutil.copy(img, stick)
        with open(stick, "ab") as f:
            f.write(sources.rand_bytes("tail", 1 << 20))
        p = env.run([losetup, "-r", "-f", "--show", stick], check=False, timeout=60)
        dev = env.txt(p.stdout).strip()
        if p.returncode != 0 or not dev.startswith("/dev/") or not os.path.exists(dev):
            self.skipTest(f"loop devices are not available here: {env.txt(p.stderr).strip()}")
        self.addCleanup(subprocess.run, [losetup, "-d", dev], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        out = self.p("copy.iso")
        rc, res, err = rip(dev, "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["bytes"], end)
        self.same_as_original(img, out, end)

    def test_udf_image_is_copied_whole(self):
        from testlib import images
        if not shutil.which("mkudffs"):
            self.skipTest("mkudffs (udftools) is missing")
        img = images.make_mkudffs(self.p("u.udf"), "hd", "0x0201", blocks=4096)
        out = self.p("copy.udf")
        rc, res, err = rip(img, "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["md5_tags"], "no-tags")
        self.assertEqual(subprocess.run(["cmp", img, out]).returncode, 0)

    def test_image_without_tags(self):
        src, img, out = self.p("src"), self.p("g.iso"), self.p("copy.iso")
        sources.write(src, "a", sources.rand_bytes("a", 100_000))
        env.run(["genisoimage", "-quiet", "-R", "-o", img, src])
        rc, res, err = rip(img, "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertEqual(res["md5_tags"], "no-tags")
        self.assertEqual(subprocess.run(["cmp", img, out]).returncode, 0)


if __name__ == "__main__":
    unittest.main()
