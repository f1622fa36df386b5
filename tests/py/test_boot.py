"""El Torito boot images shown as files: `discfs mount --boot` (MNT/.boot) and
`discfs-dump --boot` (/.boot).

Images come from independent writers: Debian's grub-rescue-cdrom.iso
(grub-mkrescue), `xorriso -as mkisofs` with BIOS no-emulation plus EFI (and
one with PPC and Mac entries), and genisoimage with 1.44 MB, 1.2 MB and
2.88 MB floppy emulation and hard-disk emulation.  The reference for every
entry is what `xorriso -osirrox on -extract_boot_images DIR` writes
(eltorito_imgN_PLATFORM.img), except that a boot image which is a file of the
tree (xorriso reports its "img path") is that file byte for byte, as xorriso
extracts it with -extract (its boot extraction pads it to whole 2048-byte
blocks, and must start with the same bytes); platform and emulation come from
`xorriso -report_el_torito plain`.  A .boot file is named
"N-PLATFORM-EMULATION.img" (bios/efi/ppc/mac; noemul, fd1.2m, fd1.44m,
fd2.88m, hdd) and must hold exactly the extracted bytes.

FUSE parts skip (with the reason) where /dev/fuse is missing.
Run: /usr/bin/python3 -m testlib -v test_boot   (from tests/py)
"""

import errno
import hashlib
import os
import re
import shutil
import stat
import unittest

from testlib import dump, env, images, mount, readers, sources, trees

GRUB_RESCUE = "/usr/lib/grub-rescue/grub-rescue-cdrom.iso"

PLATFORM = {"BIOS": "bios", "UEFI": "efi", "PPC": "ppc", "Mac": "mac"}
EMULATION = {"none": "noemul", "fd1.2": "fd1.2m", "fd1.4": "fd1.44m", "fd2.8": "fd2.88m",
             "hd": "hdd"}
NAME_RE = re.compile(r"^(\d+)-(bios|efi|ppc|mac)-(noemul|fd1\.2m|fd1\.44m|fd2\.88m|hdd)\.img$")

M = env.ModuleFixture("discfs-boot-", binaries=("discfs-dump",), tools=("xorriso", "genisoimage"))
setUpModule, tearDownModule = M.set_up, M.tear_down


def ROOT_NLINK(path, rec, field):
    """The root's link count may count .boot as a subdirectory."""
    return not (path == "/" and field == "nlink")


def rand_file(path, n, seed):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(sources.rand_bytes(seed, n))
    return path


# ---------------------------------------------------------------------------
# The reference: xorriso's report and extraction
# ---------------------------------------------------------------------------

REPORT_RE = re.compile(r"^El Torito boot img :\s*(\d+)\s+(\S+)\s+\S+\s+(\S+)\s")
PATH_RE = re.compile(r"^El Torito img path :\s*(\d+)\s+(/.*)$")


def boot_reference(img, name):
    """{expected .boot file name: sha256 of xorriso's extraction} for img, and the sizes."""
    def make():
        p = env.run(["xorriso", "-indev", img, "-report_el_torito", "plain"])
        entries = {}
        paths = {}
        for line in env.txt(p.stdout).splitlines():
            m = PATH_RE.match(line.strip())
            if m:
                paths[int(m.group(1))] = m.group(2)
            m = REPORT_RE.match(line.strip())
            if m:
                n, plat, emul = int(m.group(1)), m.group(2), m.group(3)
                if plat not in PLATFORM or emul not in EMULATION:
                    raise RuntimeError(f"xorriso reports an unknown platform/emulation: {line!r}")
                entries[n] = (PLATFORM[plat], EMULATION[emul], plat)
        if not entries:
            raise RuntimeError(f"precondition: xorriso finds no El Torito entry in {img}")
        dest = os.path.join(M.path, "boot-x-" + name)
        env.run(["xorriso", "-indev", img, "-osirrox", "on", "-extract_boot_images", dest])
        ref = {}
        for n, (plat, emul, xplat) in sorted(entries.items()):
            xname = f"eltorito_img{n}_{'uefi' if plat == 'efi' else plat}.img"
            xpath = os.path.join(dest, xname)
            if not os.path.exists(xpath):
                raise RuntimeError(f"precondition: xorriso wrote no {xname} for {img}: "
                                   f"{sorted(os.listdir(dest))}")
            with open(xpath, "rb") as f:
                data = f.read()
            if n in paths:
                # The boot image is a file of the tree: the .boot file is that file.
                fpath = os.path.join(M.path, f"boot-f-{name}-{n}")
                env.run(["xorriso", "-indev", img, "-osirrox", "on", "-extract", paths[n], fpath])
                with open(fpath, "rb") as f:
                    whole = f.read()
                if not data.startswith(whole):
                    raise RuntimeError(f"precondition: xorriso's boot extraction of entry {n} "
                                       f"does not start with the file {paths[n]}")
                data = whole
            ref[f"{n}-{plat}-{emul}.img"] = (hashlib.sha256(data).hexdigest(), len(data))
        return ref
    return M.cached(("ref", name), make)


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------

def grub_rescue():
    if not os.path.isfile(GRUB_RESCUE):
        raise unittest.SkipTest(f"{GRUB_RESCUE} is absent (install grub-rescue-pc)")
    return GRUB_RESCUE


def have_mkfs_vfat():
    return shutil.which("mkfs.vfat") is not None


def bios_efi_image():
    """xorriso -as mkisofs: BIOS no-emulation (load size 4 of a 6000-byte file) plus,
    when dosfstools is installed, an EFI FAT image."""
    def make():
        work = M.sub("bios-efi")
        src = os.path.join(work, "src")
        rand_file(os.path.join(src, "boot", "x.bin"), 6000, 1)
        with open(os.path.join(src, "readme.txt"), "wb") as f:
            f.write(b"boot test\n")
        args = ["xorriso", "-as", "mkisofs", "-R", "-J", "-V", "DISCFS_BOOT",
                "-b", "boot/x.bin", "-no-emul-boot", "-boot-load-size", "4"]
        if have_mkfs_vfat():
            efi = os.path.join(src, "boot", "efi.img")
            env.run(["mkfs.vfat", "-C", "-n", "DISCFSEFI", efi, "1440"])
            args += ["-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot"]
        img = os.path.join(work, "bios-efi.iso")
        env.run(args + ["-o", img, src])
        return img
    return M.cached("bios-efi", make)


def ppc_mac_image():
    """xorriso -as mkisofs with BIOS, PPC and Mac platform entries."""
    def make():
        work = M.sub("ppc-mac")
        src = os.path.join(work, "src")
        rand_file(os.path.join(src, "b.bin"), 2048, 2)
        rand_file(os.path.join(src, "p.bin"), 4096, 3)
        rand_file(os.path.join(src, "m.bin"), 8192, 4)
        img = os.path.join(work, "ppc-mac.iso")
        env.run(["xorriso", "-as", "mkisofs", "-R", "-b", "b.bin", "-no-emul-boot",
                 "-boot-load-size", "4",
                 "-eltorito-alt-boot", "-eltorito-platform", "0x01", "-b", "p.bin", "-no-emul-boot",
                 "-eltorito-alt-boot", "-eltorito-platform", "0x02", "-b", "m.bin", "-no-emul-boot",
                 "-o", img, src])
        return img
    return M.cached("ppc-mac", make)


def hidden_image():
    """xorriso native commands: BIOS and (with dosfstools) EFI images hidden from every tree,
    so their sizes must come from the layout, as xorriso finds them."""
    def make():
        work = M.sub("hidden")
        src = os.path.join(work, "src")
        rand_file(os.path.join(src, "boot", "x.bin"), 6000, 9)
        with open(os.path.join(src, "readme"), "wb") as f:
            f.write(b"hidden boot images\n")
        args = ["-boot_image", "any", "bin_path=/boot/x.bin",
                "-boot_image", "any", "load_size=2048"]
        hide = ["/boot/x.bin"]
        if have_mkfs_vfat():
            env.run(["mkfs.vfat", "-C", "-n", "DISCFSEFI", os.path.join(src, "boot", "efi.img"),
                     "1440"])
            args += ["-boot_image", "any", "next", "-boot_image", "any", "efi_path=/boot/efi.img"]
            hide.append("/boot/efi.img")
        img = os.path.join(work, "hidden.iso")
        env.run(["xorriso", "-abort_on", "FAILURE", "-outdev", img, "-map", src, "/"] + args +
                ["-hide", "on"] + hide + ["--", "-commit"])
        return img
    return M.cached("hidden", make)


def hard_disk_image(path):
    """A 1 MiB disk image with an MBR holding one active partition (for -hard-disk-boot)."""
    d = bytearray(sources.rand_bytes(5, 1 << 20))
    d[446:510] = bytes(64)
    e = bytearray(16)
    e[0] = 0x80
    e[1:4] = bytes([0, 33, 0])
    e[4] = 0x83
    e[5:8] = bytes([63, 63, 31])
    e[8:12] = (32).to_bytes(4, "little")
    e[12:16] = (2016).to_bytes(4, "little")
    d[446:462] = e
    d[510:512] = b"\x55\xaa"
    with open(path, "wb") as f:
        f.write(d)


def floppy_image():
    """genisoimage: 1.44 MB floppy emulation (the default entry) and, as further
    sections, 1.2 MB and 2.88 MB floppies and a hard disk."""
    def make():
        work = M.sub("floppy")
        src = os.path.join(work, "src")
        rand_file(os.path.join(src, "fd.img"), 1474560, 6)
        rand_file(os.path.join(src, "f12.img"), 1228800, 7)
        rand_file(os.path.join(src, "f288.img"), 2949120, 8)
        hard_disk_image(os.path.join(src, "hd.img"))
        with open(os.path.join(src, "hello.txt"), "wb") as f:
            f.write(b"hello\n")
        img = os.path.join(work, "floppy.iso")
        env.run(["genisoimage", "-quiet", "-R", "-V", "DISCFS_FLOPPY", "-c", "boot.cat",
                 "-b", "fd.img",
                 "-eltorito-alt-boot", "-b", "f12.img",
                 "-eltorito-alt-boot", "-b", "f288.img",
                 "-eltorito-alt-boot", "-b", "hd.img", "-hard-disk-boot",
                 "-o", img, src])
        return img
    return M.cached("floppy", make)


# ---------------------------------------------------------------------------
# Checks shared by every image
# ---------------------------------------------------------------------------

class BootChecks:
    """Subclasses set image() and name."""

    name = None
    expect_names = None     # names the image must have, beyond what xorriso says

    @classmethod
    def setUpClass(cls):
        if cls.name is None:
            raise unittest.SkipTest("abstract")
        cls.img = cls.image()
        cls.ref = boot_reference(cls.img, cls.name)

    def test_reference_names(self):
        # Guards the test: xorriso's report maps onto the names the brief fixes.
        if self.expect_names:
            self.assertEqual(sorted(self.ref), sorted(self.expect_names))

    def boot_records(self, records, prefix="/.boot"):
        return {p[len(prefix) + 1:]: r for p, r in records.items()
                if p.startswith(prefix + "/")}

    def check_files(self, files, what):
        """files: {name: Rec with size and sha256}."""
        bad = []
        for name in sorted(set(self.ref) | set(files)):
            if name not in files:
                bad.append(f"missing: {name}")
                continue
            if not NAME_RE.match(name):
                bad.append(f"badly formed name: {name!r}")
            if name not in self.ref:
                bad.append(f"unexpected: {name} (xorriso: {sorted(self.ref)})")
                continue
            r = files[name]
            digest, size = self.ref[name]
            if r.type != "reg":
                bad.append(f"{name}: type {r.type}")
            if r.error:
                bad.append(f"{name}: error {r.error}")
            if r.size != size:
                bad.append(f"{name}: size {r.size}, xorriso extracts {size}")
            elif r.sha256 != digest:
                bad.append(f"{name}: bytes differ from xorriso's extraction")
        env.fail_diff(self, bad, what)

    # --- discfs-dump ------------------------------------------------------

    def test_dump_boot(self):
        d = dump.dump(self.img, extra=["--boot"])
        self.assertIn("/.boot", d.records, "discfs-dump --boot must list /.boot")
        self.assertEqual(d.records["/.boot"].type, "dir")
        self.check_files(self.boot_records(d.records), "discfs-dump --boot")
        # Nothing else changes.
        plain = dump.dump(self.img)
        rest = {p: r for p, r in d.records.items() if p != "/.boot" and not p.startswith("/.boot/")}
        env.fail_diff(self, trees.diff(plain.records, rest,
                                       fields=trees.COMPARE_ALL + ("ino",), keep=ROOT_NLINK),
                      "--boot must add /.boot and change nothing else")

    def test_dump_without_boot(self):
        d = dump.dump(self.img, data=False)
        self.assertNotIn("/.boot", d.records)

    # --- FUSE -------------------------------------------------------------

    def mount_boot(self, *opts, options=()):
        mnt = M.sub(f"mnt-{self.name}-{len(os.listdir(M.path))}")
        args = ["mount", "-f"] + list(opts)
        if options:
            args += ["-o", ",".join(options)]
        return mnt, mount.Mount(self.img, mnt, args=args + [self.img, mnt])

    def test_mount_boot(self):
        mount.require_fuse(self)
        mnt, m = self.mount_boot("--boot")
        with m:
            self.assertIn(".boot", os.listdir(mnt))
            st = os.lstat(os.path.join(mnt, ".boot"))
            self.assertTrue(stat.S_ISDIR(st.st_mode))
            self.assertEqual(st.st_mode & 0o555, 0o555, f".boot must be readable by all: "
                                                        f"{st.st_mode:#o}")
            files = trees.walk(os.path.join(mnt, ".boot"))
            m.check_alive()
            files.pop("/")
            unreadable = [k for k, r in files.items() if r.mode & 0o444 != 0o444]
            self.assertFalse(unreadable, "boot images must be readable by all")
            self.check_files({k[1:]: r for k, r in files.items()}, "MNT/.boot")
            rest = trees.walk(mnt, skip=lambda p: p == "/.boot" or p.startswith("/.boot/"))
        mnt2, m2 = self.mount_boot()
        with m2:
            self.assertNotIn(".boot", os.listdir(mnt2), "without --boot there is no .boot")
            with self.assertRaises(FileNotFoundError):
                os.lstat(os.path.join(mnt2, ".boot"))
            plain = trees.walk(mnt2)
        env.fail_diff(self, trees.diff(plain, rest, fields=trees.COMPARE_ALL + ("ino",),
                                       keep=ROOT_NLINK),
                      "--boot must change nothing but adding .boot")

    def test_mount_option_boot(self):
        mount.require_fuse(self)
        mnt, m = self.mount_boot(options=["ro", "boot"])
        with m:
            files = trees.walk(os.path.join(mnt, ".boot"))
            files.pop("/")
            self.check_files({k[1:]: r for k, r in files.items()}, "MNT/.boot with -o boot")

    def test_boot_files_read_only(self):
        mount.require_fuse(self)
        mnt, m = self.mount_boot("--boot")
        with m:
            d = os.path.join(mnt, ".boot")
            name = sorted(self.ref)[0]
            f = os.path.join(d, name)
            probs = []

            def expect_erofs(what, fn):
                try:
                    fn()
                except OSError as e:
                    if e.errno != errno.EROFS:
                        probs.append(f"{what}: {errno.errorcode.get(e.errno, e.errno)}, "
                                     f"expected EROFS")
                else:
                    probs.append(f"{what}: succeeded on a read-only boot image")

            expect_erofs("open O_WRONLY", lambda: os.close(os.open(f, os.O_WRONLY)))
            expect_erofs("open O_RDWR", lambda: os.close(os.open(f, os.O_RDWR)))
            expect_erofs("truncate", lambda: os.truncate(f, 0))
            expect_erofs("unlink", lambda: os.unlink(f))
            expect_erofs("chmod", lambda: os.chmod(f, 0o666))
            expect_erofs("rename", lambda: os.rename(f, os.path.join(d, "renamed.img")))
            expect_erofs("create", lambda: os.close(os.open(os.path.join(d, "new.img"),
                                                            os.O_WRONLY | os.O_CREAT, 0o644)))
            expect_erofs("mkdir", lambda: os.mkdir(os.path.join(d, "sub")))
            expect_erofs("rmdir .boot", lambda: os.rmdir(d))
            m.check_alive()
            env.fail_diff(self, probs, "writes into .boot")
            # Still intact afterwards.
            self.assertEqual(trees.sha256_file(f), self.ref[name][0])
            self.assertEqual(sorted(os.listdir(d)), sorted(self.ref))

    def test_boot_with_sessions(self):
        mount.require_fuse(self)
        mnt, m = self.mount_boot("--boot", "--sessions")
        # man/discfs.1: `discfs mount --sessions --boot backup.iso ~/history` shows
        # "1 2 3 .boot": the boot images at the root, beside the sessions.
        with m:
            names = os.listdir(mnt)
            self.assertIn("1", names)
            self.assertIn(".boot", names, "--boot --sessions shows MNT/.boot")
            where = [p for p in (os.path.join(mnt, ".boot"), os.path.join(mnt, "1", ".boot"))
                     if os.path.isdir(p)]
            for d in where:
                files = trees.walk(d)
                files.pop("/")
                self.check_files({k[1:]: r for k, r in files.items()},
                                 f"{os.path.relpath(d, mnt)} of --boot --sessions")
            m.check_alive()


class GrubRescue(BootChecks, unittest.TestCase):
    """grub-mkrescue's image: one BIOS no-emulation entry with a boot info table."""
    name = "grub"
    expect_names = ["1-bios-noemul.img"]
    image = staticmethod(grub_rescue)


class BiosEfi(BootChecks, unittest.TestCase):
    name = "bios-efi"
    image = staticmethod(bios_efi_image)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.expect_names = ["1-bios-noemul.img"]
        if have_mkfs_vfat():
            cls.expect_names.append("2-efi-noemul.img")

    def test_efi_entry(self):
        if not have_mkfs_vfat():
            self.skipTest("mkfs.vfat missing (install dosfstools): no EFI entry made")
        self.assertIn("2-efi-noemul.img", self.ref)
        self.assertEqual(self.ref["2-efi-noemul.img"][1], 1474560)

    def test_bios_entry_size(self):
        # The boot file of the tree, all 6000 bytes, not just the 4 sectors the catalog
        # loads (nor xorriso's padding to whole blocks).
        self.assertEqual(self.ref["1-bios-noemul.img"][1], 6000)


class PpcMac(BootChecks, unittest.TestCase):
    name = "ppc-mac"
    expect_names = ["1-bios-noemul.img", "2-ppc-noemul.img", "3-mac-noemul.img"]
    image = staticmethod(ppc_mac_image)


class Floppies(BootChecks, unittest.TestCase):
    name = "floppy"
    expect_names = ["1-bios-fd1.44m.img", "2-bios-fd1.2m.img", "3-bios-fd2.88m.img",
                    "4-bios-hdd.img"]
    image = staticmethod(floppy_image)

    def test_floppy_sizes(self):
        sizes = {n: s for n, (_, s) in self.ref.items()}
        self.assertEqual(sizes["1-bios-fd1.44m.img"], 1474560)
        self.assertEqual(sizes["2-bios-fd1.2m.img"], 1228800)
        self.assertEqual(sizes["3-bios-fd2.88m.img"], 2949120)
        self.assertEqual(sizes["4-bios-hdd.img"], 1 << 20)


class Hidden(BootChecks, unittest.TestCase):
    name = "hidden"
    image = staticmethod(hidden_image)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.expect_names = ["1-bios-noemul.img"]
        if have_mkfs_vfat():
            cls.expect_names.append("2-efi-noemul.img")

    def test_images_hidden_from_the_tree(self):
        d = dump.dump(self.img, data=False).records
        self.assertNotIn("/boot/x.bin", d, "precondition: the boot image is hidden")
        self.assertEqual(self.ref["1-bios-noemul.img"][1], 6144)


class GrownBoot(unittest.TestCase):
    """A grown image whose first session boots and whose second (xorriso's default on
    append) drops El Torito: --boot shows each session's own boot records."""

    @classmethod
    def setUpClass(cls):
        work = M.sub("grown")
        src = os.path.join(work, "src")
        rand_file(os.path.join(src, "boot", "x.bin"), 6000, 10)
        extra = os.path.join(work, "later.txt")
        with open(extra, "wb") as f:
            f.write(b"second session\n")
        cls.img = os.path.join(work, "grown.iso")
        x = ["xorriso", "-abort_on", "FAILURE", "-dev", cls.img]
        env.run(x + ["-map", src, "/", "-boot_image", "any", "bin_path=/boot/x.bin",
                     "-boot_image", "any", "load_size=2048", "-commit"])
        env.run(x + ["-map", extra, "/later.txt", "-commit"])
        starts = [start for start, _ in readers.toc(cls.img)]
        if len(starts) != 2:
            raise RuntimeError(f"precondition: two sessions expected: {starts}")
        dest = os.path.join(work, "x1")
        env.run(["xorriso", "-load", "sbsector", str(starts[0]), "-indev", cls.img,
                 "-osirrox", "on", "-extract_boot_images", dest])
        with open(os.path.join(dest, "eltorito_img1_bios.img"), "rb") as f:
            padded = f.read()
        # /boot/x.bin is a file of session 1's tree: .boot shows that file.
        with open(os.path.join(src, "boot", "x.bin"), "rb") as f:
            cls.data = f.read()
        if not padded.startswith(cls.data):
            raise RuntimeError("precondition: xorriso's boot extraction is not x.bin")

    def test_dump_session_1_boot(self):
        d = dump.dump(self.img, extra=["--boot", "--session", "1"])
        r = d.records.get("/.boot/1-bios-noemul.img")
        self.assertIsNotNone(r, f"session 1's boot image: {sorted(d.records)[:8]}")
        self.assertEqual((r.size, r.sha256),
                         (len(self.data), hashlib.sha256(self.data).hexdigest()))

    def test_dump_newest_has_no_boot_image(self):
        d = dump.dump(self.img, extra=["--boot"], data=False)
        self.assertFalse([p for p in d.records if p.startswith("/.boot/")],
                         "the newest session has no El Torito record")

    def test_mount_session_1_boot(self):
        mount.require_fuse(self)
        mnt = M.sub("mnt-grown")
        with mount.Mount(self.img, mnt, args=["mount", "-f", "--boot", "--session", "1", self.img,
                                              mnt]) as m:
            f = os.path.join(mnt, ".boot", "1-bios-noemul.img")
            self.assertEqual(trees.sha256_file(f), hashlib.sha256(self.data).hexdigest())
            m.check_alive()


class NoBootRecord(unittest.TestCase):
    """An image without El Torito: --boot gives an empty .boot (man/discfs.1: --boot adds the
    folder; tests/INTERFACES.md: "an image without a boot catalog shows an empty .boot")."""

    def test_dump_and_mount(self):
        work = M.sub("noboot")
        src = os.path.join(work, "src")
        os.makedirs(src)
        with open(os.path.join(src, "a.txt"), "wb") as f:
            f.write(b"no boot record\n")
        img = images.make_genisoimage(os.path.join(work, "noboot.iso"), src, ["-R"])
        d = dump.dump(img, extra=["--boot"])
        self.assertEqual(d.records["/.boot"].type, "dir")
        self.assertFalse([p for p in d.records if p.startswith("/.boot/")])
        self.assertIn("/a.txt", d.records)
        if mount.fuse_unavailable_reason() or not os.access(env.discfs_bin(), os.X_OK):
            return
        mnt = M.sub("mnt-noboot")
        with mount.Mount(img, mnt, args=["mount", "-f", "--boot", img, mnt]) as m:
            self.assertIn("a.txt", os.listdir(mnt))
            self.assertEqual(os.listdir(os.path.join(mnt, ".boot")), [])
            m.check_alive()


if __name__ == "__main__":
    unittest.main()
