"""`discfs create`: images mastered from a source tree, read back by independent readers.

- The rich source tree (testlib/sources.build_tree: nested and deep folders, symlinks,
  hard links, device nodes and a fifo when root, odd and long names, modes, owners, times,
  empty files) against what pycdlib and `xorriso -osirrox` agree the image holds (Rock
  Ridge: modes, owners, links, times, content), what 7-Zip extracts and pycdlib reads as
  the Joliet tree, the symlinks libarchive (bsdtar) reads, what a `xorriso -as mkisofs
  -R -J` image of the same tree holds, and what a discfs mount of the result shows.
- MD5 tags: `xorriso -check_md5` passes and every file carries one.
- Graft points and excludes, the identifiers as `isoinfo -d` reads them, ISO 9660:1999,
  zisofs (xorriso decodes the chosen files, only those), a file over 4 GiB as a
  multi-extent file (pycdlib counts the extents, the mount reads its bytes).
- Boot: an isolinux image with an isohybrid MBR starts isolinux in QEMU from a CD drive and
  from a hard disk (its serial line names the kernel isolinux.cfg asks for); a UEFI entry and
  GPT in the layout of `xorriso -as mkisofs -e ... -isohybrid-gpt-basdat`, as xorriso reports
  it (no OVMF in Debian's test set-up here, so UEFI is not booted).
- SOURCE_DATE_EPOCH: two runs are byte-identical (cmp), another epoch differs.
- Refusals leave no file: --capacity too small (needed and available MB named), a missing
  SRC, an existing IMAGE without --force, Ctrl-C while writing; --json progress lines.

Run: /usr/bin/python3 -m testlib -v test_create   (from tests/py)
"""

import glob
import json
import os
import signal
import subprocess
import time
import unittest

from testlib import dump, env, mount, readers, sanitizers, sources, trees

M = env.ModuleFixture("discfs-create-", binaries=("discfs", "discfs-dump"),
                      tools=("xorriso", "isoinfo", "7z"), pycdlib=True)
setUpModule, tearDownModule = M.set_up, M.tear_down

EXIT_MEDIUM_REFUSED = 10


def create(*args, check=True, extra_env=None):
    """`discfs create ARGS` (exit 0 wanted when check); the CompletedProcess, texts decoded."""
    e = dict(os.environ)
    e.pop("SOURCE_DATE_EPOCH", None)
    e.update(extra_env or {})
    p = env.run([env.discfs_bin(), "create", *[str(a) for a in args]], check=False, env=e)
    p.out, p.err = env.txt(p.stdout), env.txt(p.stderr)
    sanitizers.check("discfs create", p.err)
    if check and p.returncode != 0:
        raise AssertionError(f"discfs create {args} exited {p.returncode}: {p.err}")
    return p


def rich_source():
    def make():
        root = os.path.join(M.path, "src")
        st = sources.build_tree(root)
        return root, st
    return M.cached("src", make)


def rich_image():
    def make():
        root, _ = rich_source()
        img = os.path.join(M.path, "rich.iso")
        create("-o", img, root)
        return img
    return M.cached("rich", make)


def leftovers(folder):
    """Temporary files discfs create left in folder."""
    return glob.glob(os.path.join(folder, ".*.discfs-*"))


def isoinfo_ids(img):
    p = env.run(["isoinfo", "-d", "-i", img])
    out = {}
    for line in env.txt(p.stdout).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


class RichTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.st = rich_source()
        cls.img = rich_image()
        cls.src = trees.walk(cls.root)

    def test_rock_ridge_tree_is_the_source_tree(self):
        ref, _ = readers.rock_ridge_reference(self.img, M.path, "rich")
        lines = trees.diff(self.src, ref, fields=("type", "mode", "uid", "gid", "size", "mtime",
                                                  "target", "rdev", "sha256"), links=True)
        env.fail_diff(self, lines, "Rock Ridge tree (pycdlib + xorriso) against the source")
        for g in self.st.hardlink_groups:
            self.assertEqual({ref[p].nlink for p in g}, {len(g)}, f"PX link count of {g}")

    def test_joliet_tree_has_the_names_and_contents(self):
        # Joliet holds no symlinks or special files; names are cut at 103 characters.
        jol = readers.pycdlib_tree(self.img, "joliet")
        want = {p: r for p, r in self.src.items()
                if r.type in ("reg", "dir") and all(len(c) <= 103 for c in p.split("/"))}
        lines = trees.diff(want, jol, fields=("type", "size", "sha256", "mtime"), subset=True)
        env.fail_diff(self, lines, "Joliet tree (pycdlib) against the source")
        self.assertIn("/" + sources.UNICODE_NAME, jol)

    def test_seven_zip_extracts_the_files(self):
        if readers.sevenzip_format(self.img) not in ("Iso", None):
            self.skipTest(f"7-Zip reads this image as {readers.sevenzip_format(self.img)}")
        got = readers.sevenzip_tree(self.img, os.path.join(M.path, "7z-rich"))
        want = {p: r for p, r in self.src.items() if p != "/" and r.type in ("reg", "dir")
                and all(len(c) <= 103 for c in p.split("/"))}
        lines = trees.diff(want, got, fields=("type", "size", "sha256", "mtime"), subset=True)
        env.fail_diff(self, lines, "7-Zip extraction against the source")

    def test_libarchive_reads_the_symlinks(self):
        got = readers.libarchive_symlinks(self.img)
        if got is None:
            self.skipTest("libarchive (bsdtar's library) is not installed")
        # libarchive 3.6 drops the '/' where a target continues in a second SL entry (over
        # 255 bytes): it reads xorriso -as mkisofs's image of the same link the same way.
        want = {p: r.target for p, r in self.src.items() if r.type == "lnk"}
        long = {p for p, t in want.items() if len(t) > 255}
        self.assertTrue(long, "precondition: the tree has a target over 255 bytes")
        self.assertEqual({p: t for p, t in got.items() if p not in long},
                         {p: t for p, t in want.items() if p not in long})
        self.assertEqual(set(got), set(want))

    def test_same_files_as_xorriso_mkisofs(self):
        peer = os.path.join(M.path, "peer.iso")
        env.run(["xorriso", "-as", "mkisofs", "-R", "-J", "-joliet-long", "-o", peer, self.root])
        ours = readers.extract_tree(self.img, os.path.join(M.path, "x-ours"))
        theirs = readers.extract_tree(peer, os.path.join(M.path, "x-peer"))
        lines = trees.diff(theirs, ours, fields=("type", "size", "sha256", "target", "mode"))
        env.fail_diff(self, lines, "discfs create against xorriso -as mkisofs -R -J")
        self.assertEqual(sorted(readers.pycdlib_tree(peer, "joliet", data=False)),
                         sorted(readers.pycdlib_tree(self.img, "joliet", data=False)),
                         "Joliet names of discfs create and of xorriso -as mkisofs -J")

    def test_md5_tags_pass_xorriso_check(self):
        rc, out = readers.check_md5(self.img)
        self.assertEqual(rc, 0, out[-3000:])
        regular = {p for p, r in self.src.items() if r.type == "reg"}
        self.assertEqual(readers.files_with_md5(self.img), regular, "files with a recorded MD5")

    def test_discfs_mount_shows_the_source_tree(self):
        mount.require_fuse(self)
        mnt = M.sub("mnt-rich")
        with mount.Mount(self.img, mnt):
            got = trees.walk(mnt)
        lines = trees.diff(self.src, got, fields=("type", "mode", "uid", "gid", "size", "mtime",
                                                  "target", "rdev", "sha256"))
        env.fail_diff(self, lines, "discfs mount of the new image against the source")


class Layout(unittest.TestCase):
    def test_graft_points_and_excludes(self):
        d = M.sub("graft")
        sources.write(d, "docs/a.txt", b"a\n")
        sources.write(d, "docs/b.log", b"log\n")
        sources.write(d, "docs/sub/c.log", b"log\n")
        sources.write(d, "docs/sub/keep.txt", b"keep\n")
        sources.write(d, "docs/skipme/x.txt", b"x\n")
        sources.write(d, "single.bin", b"single\n")
        sources.write(d, "top/t.txt", b"top\n")
        img = os.path.join(M.path, "graft.iso")
        create("-o", img, "--exclude", "*.log", "--exclude", "skipme",
               os.path.join(d, "docs") + "=/x/y", os.path.join(d, "single.bin") + "=/z/renamed.bin",
               os.path.join(d, "top"))
        got = readers.extract_tree(img, os.path.join(M.path, "graft-x"))
        self.assertEqual(sorted(got), ["/", "/t.txt", "/x", "/x/y", "/x/y/a.txt", "/x/y/sub",
                                       "/x/y/sub/keep.txt", "/z", "/z/renamed.bin"])
        self.assertEqual(got["/z/renamed.bin"].sha256, trees.sha256(b"single\n"))

    def test_identifiers_in_isoinfo(self):
        d = M.sub("ids")
        sources.write(d, "f", b"f\n")
        img = os.path.join(M.path, "ids.iso")
        create("-o", img, "--volid", "My_Volume 1", "--publisher", "Example Publisher",
               "--preparer", "Someone", "--application", "discfs test", "--volset", "SET1",
               "--sysid", "LINUX", d)
        ids = isoinfo_ids(img)
        # The volume id as given (as xorriso keeps it); the others in the capitals ECMA-119
        # allows there (a-characters), as xorriso -as mkisofs records them too.
        self.assertEqual(ids.get("Volume id"), "My_Volume 1")
        self.assertEqual(ids.get("Publisher id"), "EXAMPLE PUBLISHER")
        self.assertEqual(ids.get("Data preparer id"), "SOMEONE")
        self.assertEqual(ids.get("Application id"), "DISCFS TEST")
        self.assertEqual(ids.get("Volume set id"), "SET1")
        self.assertEqual(ids.get("System id"), "LINUX")

    def test_iso9660_1999_on_request(self):
        d = M.sub("v1999")
        sources.write(d, "a_rather_long_file_name_for_iso_9660_1999.txt", b"x\n")

        def enhanced(img):
            with open(img, "rb") as f:
                for lba in range(16, 32):
                    f.seek(lba * 2048)
                    vd = f.read(7)
                    if vd[0] == 255:
                        return False
                    if vd[0] == 2 and vd[1:6] == b"CD001" and vd[6] == 2:
                        return True
            return False

        plain, v1999 = os.path.join(M.path, "plain.iso"), os.path.join(M.path, "1999.iso")
        create("-o", plain, d)
        create("-o", v1999, "--iso9660-1999", d)
        self.assertFalse(enhanced(plain))
        self.assertTrue(enhanced(v1999), "an enhanced volume descriptor (version 2)")

    def test_zisofs_compresses_the_chosen_files(self):
        root, _ = rich_source()
        img = os.path.join(M.path, "zisofs.iso")
        create("-o", img, "--zisofs", "*.txt", root)
        z = readers.zisofs_files(img)
        self.assertIn("/sizes/compressible.txt", z)
        self.assertNotIn("/sizes/zeros_100000.bin", z)
        self.assertTrue(all(p.endswith(".txt") for p in z), z)
        self.assertLess(os.path.getsize(img), os.path.getsize(rich_image()))
        got = readers.extract_tree(img, os.path.join(M.path, "zisofs-x"))
        src = trees.walk(root)
        lines = trees.diff({p: r for p, r in src.items() if p in z}, got,
                           fields=("size", "sha256"), subset=True)
        env.fail_diff(self, lines, "zisofs files as xorriso decodes them")
        d = dump.dump(img)
        self.assertEqual(d.records["/sizes/compressible.txt"].sha256,
                         src["/sizes/compressible.txt"].sha256)

    def test_file_over_4_gib_is_multi_extent(self):
        d = M.sub("big")
        marks = sources.make_sparse_big_file(os.path.join(d, "big.bin"))
        img = os.path.join(M.path, "big.iso")
        try:
            create("-o", img, d)
            self.assertGreaterEqual(readers.pycdlib_extent_count(img, "/BIG.BIN;1"), 2)
            lsdl = env.txt(env.run(["xorriso", "-indev", img, "-find", "/big.bin", "-exec",
                                    "lsdl"]).stdout)
            self.assertIn(str(4500 * 1024 * 1024), lsdl)
            mount.require_fuse(self)
            mnt = M.sub("mnt-big")
            with mount.Mount(img, mnt):
                with open(os.path.join(mnt, "big.bin"), "rb") as f:
                    for off, data in marks.items():
                        f.seek(off)
                        self.assertEqual(f.read(len(data)), data, f"bytes at {off}")
        finally:
            for p in (img, os.path.join(d, "big.bin")):
                if os.path.exists(p):
                    os.unlink(p)


ISOLINUX = "/usr/lib/ISOLINUX/isolinux.bin"
ISOHDPFX = "/usr/lib/ISOLINUX/isohdpfx.bin"
LDLINUX = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
MARKER = "discfs-marker-ok"


def boot_tree():
    """An isolinux tree whose configuration asks, on the serial line, for a kernel named
    MARKER: seeing "Loading /MARKER" proves firmware -> boot record -> isolinux -> the ISO
    9660 tree (ldlinux.c32, isolinux.cfg) all worked. Also an EFI image stand-in."""
    def make():
        for f in (ISOLINUX, ISOHDPFX, LDLINUX):
            if not os.path.exists(f):
                return None
        root = M.sub("boot-src")
        for f in (ISOLINUX, LDLINUX):
            with open(f, "rb") as src:
                sources.write(root, "isolinux/" + os.path.basename(f), src.read())
        sources.write(root, "isolinux/isolinux.cfg",
                      f"SERIAL 0 115200\nPROMPT 0\nDEFAULT x\nLABEL x\n  KERNEL /{MARKER}\n"
                      .encode())
        sources.write(root, "boot/grub/efi.img", bytes(1440 * 1024))
        return root
    root = M.cached("boot-src", make)
    if root is None:
        raise unittest.SkipTest("isolinux/syslinux-common boot files are not installed")
    return root


def el_torito_report(img):
    p = env.run(["xorriso", "-indev", img, "-report_el_torito", "plain", "-report_system_area",
                 "plain"])
    return env.txt(p.stdout) + env.txt(p.stderr)


class Boot(unittest.TestCase):
    HYBRID = ("--boot-bios", "/isolinux/isolinux.bin", "--isohybrid-mbr", ISOHDPFX)

    def test_bios_image_boots_from_cd_and_from_disk_in_qemu(self):
        env.require_tools("qemu-system-x86_64")
        root = boot_tree()
        img = os.path.join(M.path, "bios.iso")
        create("-o", img, *self.HYBRID, root)
        report = el_torito_report(img)
        self.assertRegex(report, r"El Torito boot img :\s+1\s+BIOS\s+y\s+none\s+0x0000\s+0x00\s+4")
        self.assertIn("boot-info-table isohybrid-suitable", report)
        self.assertIn("MBR isohybrid", report)
        for name, how in (("cd", ["-cdrom", img, "-boot", "d"]),
                          ("disk", ["-drive", f"file={img},format=raw,if=ide,snapshot=on",
                                    "-boot", "c"])):
            with self.subTest(boot_from=name):
                serial = os.path.join(M.path, f"serial-{name}.txt")
                q = subprocess.Popen(["qemu-system-x86_64", "-nodefaults", "-display", "none",
                                      "-m", "128", "-serial", f"file:{serial}", *how],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                text = ""
                try:
                    deadline = time.monotonic() + env.HANG_GUARD    # hang guard only
                    while MARKER not in text and q.poll() is None and \
                            time.monotonic() < deadline:
                        time.sleep(0.2)
                        if os.path.exists(serial):
                            with open(serial, "rb") as f:
                                text = env.txt(f.read())
                finally:
                    q.kill()
                    q.wait()
                self.assertIn("Loading /" + MARKER, text,
                              f"isolinux did not start from the {name}: {text[-500:]!r}")

    def test_uefi_entry_and_gpt(self):
        root = boot_tree()
        img = os.path.join(M.path, "uefi.iso")
        create("-o", img, *self.HYBRID, "--boot-efi", "/boot/grub/efi.img", "--isohybrid-gpt",
               root)
        report = el_torito_report(img)
        # The layout of xorriso -as mkisofs ... -e boot/grub/efi.img -isohybrid-gpt-basdat.
        self.assertRegex(report, r"El Torito boot img :\s+2\s+UEFI\s+y\s+none\s+0x0000\s+0x00"
                                 r"\s+2880")
        self.assertRegex(report, r"El Torito img path :\s+2\s+/boot/grub/efi.img")
        self.assertRegex(report, r"MBR partition\s+:\s+2\s+0x00\s+0xef")
        self.assertRegex(report, r"GPT partition path :\s+2\s+/boot/grub/efi.img")
        self.assertIn("El Torito cat path : /isolinux/boot.cat", report)
        a, b = (os.path.join(M.path, n) for n in ("uefi1.iso", "uefi2.iso"))
        for out in (a, b):
            create("-o", out, *self.HYBRID, "--boot-efi", "/boot/grub/efi.img",
                   "--isohybrid-gpt", root, extra_env={"SOURCE_DATE_EPOCH": "1700000000"})
        self.assertEqual(env.run(["cmp", a, b], check=False).returncode, 0,
                         "the GPT of two runs with the same SOURCE_DATE_EPOCH differs")

    def test_bad_boot_options_leave_no_file(self):
        root = boot_tree()
        d = M.sub("boot-refusals")
        img = os.path.join(d, "x.iso")
        for args, code, words in (
                (("--isohybrid-mbr", ISOHDPFX), env.EXIT_USAGE, "--boot-bios"),
                (("--boot-bios", "/no/such.bin"), env.EXIT_CANNOT_OPEN, "/no/such.bin"),
                (("--boot-bios", "/isolinux/isolinux.bin", "--isohybrid-mbr", root),
                 env.EXIT_USAGE, root)):
            with self.subTest(args=args):
                p = create("-o", img, *args, root, check=False)
                self.assertEqual(p.returncode, code, p.err)
                self.assertIn(words, p.err)
                self.assertEqual(len([ln for ln in p.err.splitlines() if ln.strip()]), 1, p.err)
                self.assertFalse(os.path.exists(img))
                self.assertFalse(leftovers(d))


class Reproducible(unittest.TestCase):
    def test_same_epoch_same_bytes_other_epoch_other_bytes(self):
        root, _ = rich_source()
        a, b, c = (os.path.join(M.path, n) for n in ("r1.iso", "r2.iso", "r3.iso"))
        create("-o", a, root, extra_env={"SOURCE_DATE_EPOCH": "1700000000"})
        # Reading the files moved their atimes (relatime); the image must not care.
        trees.walk(root)
        create("-o", b, root, extra_env={"SOURCE_DATE_EPOCH": "1700000000"})
        create("-o", c, root, extra_env={"SOURCE_DATE_EPOCH": "1700000001"})
        self.assertEqual(env.run(["cmp", a, b], check=False).returncode, 0,
                         "two runs with the same SOURCE_DATE_EPOCH differ")
        self.assertNotEqual(env.run(["cmp", "-s", a, c], check=False).returncode, 0)
        with open(a, "rb") as f:
            f.seek(16 * 2048)
            pvd = f.read(2048)
        self.assertEqual(pvd[1:6], b"CD001")
        # ECMA-119 8.4.26/27: creation and modification times, 16 digits and a GMT offset.
        self.assertEqual(pvd[813:830], b"2023111422132000\0")
        self.assertEqual(pvd[830:847], b"2023111422132000\0")
        ref, _ = readers.rock_ridge_reference(a, M.path, "repro")
        bad = [p for p, r in ref.items()
               if r.atime is not None and (r.atime != r.mtime or r.ctime != r.mtime)]
        self.assertFalse(bad[:10], "atime and ctime are the mtime with SOURCE_DATE_EPOCH")


class Refusals(unittest.TestCase):
    def setUp(self):
        self.dir = M.sub("out-" + self._testMethodName)
        self.src = M.sub("small-src")
        sources.write(self.src, "f.bin", sources.rand_bytes(5, 3 << 20))

    def test_capacity_too_small_leaves_no_file(self):
        img = os.path.join(self.dir, "cap.iso")
        p = create("-o", img, "--capacity", "1M", self.src, check=False)
        self.assertEqual(p.returncode, EXIT_MEDIUM_REFUSED, p.err)
        lines = [ln for ln in p.err.splitlines() if ln.strip()]
        self.assertEqual(len(lines), 1, p.err)
        self.assertRegex(lines[0], r"needs 3\.\d MB but the capacity is 1\.0 MB")
        self.assertFalse(os.path.exists(img))
        self.assertFalse(leftovers(self.dir))
        create("-o", img, "--capacity", "cd", self.src)
        self.assertTrue(os.path.exists(img))

    def test_missing_source_is_one_sentence_and_no_file(self):
        img = os.path.join(self.dir, "missing.iso")
        p = create("-o", img, self.src, os.path.join(self.dir, "no-such-folder"), check=False)
        self.assertEqual(p.returncode, env.EXIT_CANNOT_OPEN, p.err)
        lines = [ln for ln in p.err.splitlines() if ln.strip()]
        self.assertEqual(len(lines), 1, p.err)
        self.assertIn("no-such-folder", lines[0])
        self.assertIn("No such file or directory", lines[0])
        self.assertFalse(os.path.exists(img))
        self.assertFalse(leftovers(self.dir))

    def test_existing_image_kept_without_force(self):
        img = os.path.join(self.dir, "exists.iso")
        with open(img, "wb") as f:
            f.write(b"precious")
        p = create("-o", img, self.src, check=False)
        self.assertEqual(p.returncode, env.EXIT_USAGE, p.err)
        self.assertIn("--force", p.err)
        with open(img, "rb") as f:
            self.assertEqual(f.read(), b"precious")
        create("-o", img, "--force", self.src)
        self.assertEqual(readers.pvd_volume_id(img), "DISCFS")
        self.assertFalse(leftovers(self.dir))

    def test_json_progress_and_result(self):
        img = os.path.join(self.dir, "json.iso")
        p = create("-o", img, "--json", self.src)
        events = [json.loads(ln) for ln in p.out.splitlines()]
        phases = [e["phase"] for e in events if e["event"] == "phase"]
        self.assertEqual(phases, ["adding files", "writing"])
        progress = [e for e in events if e["event"] == "progress"]
        self.assertTrue(progress)
        self.assertEqual(progress[-1]["done"], progress[-1]["total"])
        done = events[-1]
        self.assertEqual(done["event"], "done")
        self.assertEqual(done["result"]["bytes"], os.path.getsize(img))
        self.assertEqual(done["result"]["files"], 1)

    def test_interrupt_while_writing_leaves_no_file(self):
        src = M.sub("sigint-src")
        big = os.path.join(src, "big.bin")
        with open(big, "wb") as f:
            f.truncate(8 << 30)          # sparse: libisofs reads 8 GiB of zeros
        img = os.path.join(self.dir, "sigint.iso")
        p = subprocess.Popen([env.discfs_bin(), "create", "--json", "-o", img, src],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for line in p.stdout:
                if json.loads(line)["event"] == "progress":
                    break                # the temporary file exists and is being written
            self.assertTrue(leftovers(self.dir), "precondition: the write is under way")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=env.HANG_GUARD)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.unlink(big)
        err = env.txt(err)
        sanitizers.check("discfs create (interrupted)", err)
        self.assertEqual(p.returncode, env.EXIT_CANCELLED, err)
        self.assertIn("cancelled", err)
        self.assertFalse(os.path.exists(img))
        self.assertFalse(leftovers(self.dir))

    def test_bad_graft_is_a_usage_error(self):
        p = create("-o", os.path.join(self.dir, "g.iso"), self.src + "=", check=False)
        self.assertEqual(p.returncode, env.EXIT_USAGE, p.err)
        self.assertIn("after '='", p.err)
        p = create("-o", os.path.join(self.dir, "g.iso"), self.src + "=/a/../b", check=False)
        self.assertEqual(p.returncode, env.EXIT_USAGE, p.err)


if __name__ == "__main__":
    unittest.main()
