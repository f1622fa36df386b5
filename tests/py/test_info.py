"""`discfs info SOURCE --json` against independent tools.

Every expected value comes from the writer (what it was told) or from an
independent reader run on the same image:

- the session table and the next writable address against
  `xorriso -indev IMG -toc` ("ISO session" lines, "Media nwa") on images grown
  by xorriso with 1 and 3 commits, and on a genisoimage image (first session
  at LBA 0);
- volume identifiers against `isoinfo -d -i IMG` and the values given to
  genisoimage; Rock Ridge and the Joliet level against isoinfo's report;
- boot entries against `xorriso -report_el_torito plain` (platform,
  bootability, emulation, load size, LBA) and their sizes against the files
  `xorriso -osirrox on -extract_boot_images DIR` writes: a BIOS+EFI image made
  by `xorriso -as mkisofs`, the same with the BIOS image hidden from the tree,
  a genisoimage floppy-emulation image, and grub-rescue-cdrom.iso when
  installed;
- MD5 tags: present when xorriso was asked for them (--md5 / -md5 on),
  absent from genisoimage images;
- the UDF revision against what mkudffs was told (--udfrev) and what udfinfo
  (udftools) reads; pycdlib's udf="2.60" images record 1.02 on disc, as
  udfinfo confirms; a UDF-only image shows only UDF;
- what is not an image exits 4 (a missing path 3) with one line on stderr.

Run: /usr/bin/python3 -m testlib -v test_info   (from tests/py)
"""

import json
import os
import re
import shutil
import struct
import unittest

from testlib import env, sanitizers

GRUB_RESCUE = "/usr/lib/grub-rescue/grub-rescue-cdrom.iso"


def discfs_info(path, check=True):
    p = env.run([env.discfs_bin(), "info", path, "--json"], check=False, timeout=120)
    out, err = env.txt(p.stdout), env.txt(p.stderr)
    report = sanitizers.report(err)
    if report:
        raise AssertionError(f"sanitizer report from discfs info {path}: {report}")
    if check:
        if p.returncode != 0:
            raise AssertionError(f"discfs info {path} exited {p.returncode}: {err}")
        return json.loads(out)
    return p.returncode, out, err


def xorriso_toc(img):
    """Sessions [(number, start, blocks)] and the nwa xorriso reports."""
    p = env.run(["xorriso", "-indev", img, "-toc"], timeout=120)
    text = env.txt(p.stdout) + env.txt(p.stderr)
    sessions = [(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                for m in re.finditer(r"^ISO session\s*:\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)s",
                                     text, re.M)]
    m = re.search(r"^Media nwa\s*:\s*(\d+)s", text, re.M)
    return sessions, int(m.group(1)) if m else None


def xorriso_el_torito(img):
    """Entries {n: dict} from -report_el_torito plain."""
    p = env.run(["xorriso", "-indev", img, "-report_el_torito", "plain"], timeout=120)
    out = {}
    for line in env.txt(p.stdout).splitlines():
        m = re.match(r"El Torito boot img :\s+(\d+)\s+(\S+)\s+([yn])\s+(\S+)\s+0x([0-9a-f]+)"
                     r"\s+0x([0-9a-f]+)\s+(\d+)\s+(\d+)", line)
        if m:
            out[int(m.group(1))] = dict(pltf=m.group(2), bootable=m.group(3) == "y",
                                        emul=m.group(4), ld_seg=int(m.group(5), 16),
                                        hdpt=int(m.group(6), 16), ldsiz=int(m.group(7)),
                                        lba=int(m.group(8)))
    return out


def xorriso_boot_sizes(img, tmp):
    """{n: bytes} of each boot image as xorriso sees it: the size of the tree file when
    -report_el_torito names one ("img path"), else the size of the eltorito_img<n>_*.img
    file -extract_boot_images writes (which pads tree files to whole blocks)."""
    dest = os.path.join(tmp, "boot-" + os.path.basename(img))
    env.run(["xorriso", "-indev", img, "-osirrox", "on", "-extract_boot_images", dest],
            timeout=120)
    sizes = {}
    for name in os.listdir(dest):
        m = re.match(r"eltorito_img(\d+)_", name)
        if m:
            sizes[int(m.group(1))] = os.path.getsize(os.path.join(dest, name))
    p = env.run(["xorriso", "-indev", img, "-report_el_torito", "plain"], timeout=120)
    for line in env.txt(p.stdout).splitlines():
        m = re.match(r"El Torito img path :\s+(\d+)\s+(/.*)$", line.strip())
        if m:
            out = os.path.join(dest, f"tree-file-{m.group(1)}")
            env.run(["xorriso", "-indev", img, "-osirrox", "on", "-extract", m.group(2), out],
                    timeout=120)
            sizes[int(m.group(1))] = os.path.getsize(out)
    return sizes


def isoinfo_d(img):
    p = env.run(["isoinfo", "-d", "-i", img], timeout=60)
    fields = {}
    for line in env.txt(p.stdout).splitlines():
        if ":" in line:
            k, _, v = line.partition(":")
            fields[k.strip()] = v.strip()
    return fields, env.txt(p.stdout)


def udfinfo_revision(img):
    """The UDF revision udfinfo (udftools) reads, or None without udfinfo."""
    if shutil.which("udfinfo") is None:
        return None
    p = env.run(["udfinfo", img], check=False, timeout=60)
    m = re.search(r"^udfrev=(\S+)", env.txt(p.stdout), re.M)
    return m.group(1) if m else None


XORRISO_PLTF = {"BIOS": "bios", "PPC": "ppc", "Mac": "mac", "UEFI": "efi"}
XORRISO_EMUL = {"none": "noemul", "fd1.2": "fd1.2m", "fd1.4": "fd1.44m", "fd2.8": "fd2.88m",
                "hd": "hdd"}


def fat_image(path, total_sectors=2880):
    """A file that starts with a FAT boot sector (BPB) declaring total_sectors x 512 bytes."""
    boot = bytearray(512)
    boot[0:3] = b"\xeb\x3c\x90"
    boot[3:11] = b"MSWIN4.1"
    struct.pack_into("<HBHBHHBHHHI", boot, 11, 512, 1, 1, 2, 224, total_sectors, 0xF0, 9,
                     18, 2, 0)
    boot[510:512] = b"\x55\xaa"
    with open(path, "wb") as f:
        f.write(bytes(boot) + os.urandom(total_sectors * 512 - 512))


class InfoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env.require_binary(env.discfs_bin(), "discfs")
        env.require_tools("xorriso", "genisoimage", "isoinfo")
        cls.tmp = env.TempDir()
        cls.src = cls.tmp.sub("src")
        for i, n in enumerate((300000, 100000, 5000)):
            d = cls.tmp.sub("src", f"d{i + 1}")
            with open(os.path.join(d, "f"), "wb") as f:
                f.write(os.urandom(n))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.path, name)

    def grow(self, img, commits, md5=False):
        for i in range(commits):
            args = ["xorriso", "-dev", img]
            if md5:
                args += ["-md5", "on"]
            env.run(args + ["-map", os.path.join(self.src, f"d{i + 1}"), f"/d{i + 1}",
                            "-commit"], timeout=120)

    def check_sessions(self, img, layout):
        info = discfs_info(img)
        sessions, nwa = xorriso_toc(img)
        self.assertTrue(sessions, "xorriso found no session")
        self.assertEqual([(s["number"], s["start_lba"], s["blocks"]) for s in info["sessions"]],
                         sessions)
        self.assertEqual(info["next_writable_lba"], nwa)
        self.assertEqual(info["layout"], layout)
        self.assertEqual(info["size_bytes"], os.path.getsize(img))
        return info

    def test_one_session_grown_by_xorriso(self):
        img = self.path("grown1.iso")
        self.grow(img, 1)
        info = self.check_sessions(img, "grown")
        self.assertEqual(len(info["sessions"]), 1)
        self.assertTrue(info["formats"]["rock_ridge"])

    def test_three_sessions_grown_by_xorriso(self):
        img = self.path("grown3.iso")
        self.grow(img, 3, md5=True)
        info = self.check_sessions(img, "grown")
        self.assertEqual(len(info["sessions"]), 3)
        self.assertTrue(info["md5_tags"])

    def test_genisoimage_is_one_session_at_zero_with_its_ids(self):
        img = self.path("gen.iso")
        env.run(["genisoimage", "-quiet", "-R", "-J", "-V", "VOL_LABEL", "-sysid", "SYSTEMX",
                 "-volset", "The Set", "-publisher", "Pub Lisher", "-p", "Prep Arer",
                 "-A", "App Lication", "-o", img, self.src])
        info = self.check_sessions(img, "single")
        self.assertEqual(info["sessions"][0]["start_lba"], 0)
        fields, text = isoinfo_d(img)
        vol = info["volume"]
        self.assertEqual(vol["volume_id"], fields["Volume id"])
        self.assertEqual(vol["system_id"], fields["System id"])
        self.assertEqual(vol["volume_set_id"], fields["Volume set id"])
        self.assertEqual(vol["publisher_id"], fields["Publisher id"])
        self.assertEqual(vol["preparer_id"], fields["Data preparer id"])
        self.assertEqual(vol["application_id"], fields["Application id"])
        self.assertEqual(vol["volume_id"], "VOL_LABEL")
        self.assertEqual(vol["publisher_id"], "Pub Lisher")
        m = re.search(r"Joliet with UCS level (\d)", text)
        self.assertEqual(info["formats"]["joliet_level"], int(m.group(1)) if m else None)
        self.assertEqual(info["formats"]["rock_ridge"], "Rock Ridge signatures" in text)
        self.assertTrue(info["formats"]["iso9660"])
        self.assertFalse(info["md5_tags"])
        self.assertEqual(info["boot"], [])
        self.assertRegex(vol["created"] or "", r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def check_boot(self, img, expect_entries=None):
        info = discfs_info(img)
        et = xorriso_el_torito(img)
        sizes = xorriso_boot_sizes(img, self.tmp.path)
        self.assertTrue(et, "xorriso sees no El Torito entries")
        if expect_entries is not None:
            self.assertEqual(len(et), expect_entries)
        self.assertEqual([b["number"] for b in info["boot"]], sorted(et))
        for b in info["boot"]:
            x = et[b["number"]]
            self.assertEqual(b["platform"], XORRISO_PLTF.get(x["pltf"], x["pltf"].lower()))
            self.assertEqual(b["emulation"], XORRISO_EMUL[x["emul"]])
            self.assertEqual(b["bootable"], x["bootable"])
            self.assertEqual(b["sector_count"], x["ldsiz"])
            self.assertEqual(b["load_lba"], x["lba"])
            self.assertEqual(b["load_segment"], x["ld_seg"])
            self.assertEqual(b["system_type"], x["hdpt"])
            self.assertEqual(b["file_name"],
                             f"{b['number']}-{b['platform']}-{b['emulation']}.img")
            if b["number"] in sizes:
                self.assertEqual(b["size_bytes"], sizes[b["number"]],
                                 f"boot image {b['number']} of {img}")
        return info

    def make_bios_efi_tree(self, name):
        root = self.tmp.sub(name)
        os.makedirs(os.path.join(root, "boot"), exist_ok=True)
        with open(os.path.join(root, "boot", "isolinux.bin"), "wb") as f:
            f.write(os.urandom(24 * 1024 + 100))
        fat_image(os.path.join(root, "boot", "efi.img"))
        with open(os.path.join(root, "after.dat"), "wb") as f:
            f.write(os.urandom(10000))
        return root

    def test_bios_and_efi_entries_made_by_xorriso(self):
        root = self.make_bios_efi_tree("bootsrc")
        img = self.path("boot.iso")
        env.run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "--md5", "-o", img,
                 "-b", "boot/isolinux.bin", "-no-emul-boot", "-boot-load-size", "4",
                 "-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot", root], timeout=120)
        info = self.check_boot(img, expect_entries=2)
        self.assertEqual(info["boot"][0]["tree_path"], "/boot/isolinux.bin")
        self.assertEqual(info["boot"][1]["platform"], "efi")
        self.assertEqual(info["boot"][1]["tree_path"], "/boot/efi.img")
        self.assertTrue(info["md5_tags"])

    def test_hidden_boot_image_gets_xorrisos_estimate(self):
        root = self.make_bios_efi_tree("hiddensrc")
        img = self.path("hidden.iso")
        env.run(["xorriso", "-as", "mkisofs", "-quiet", "-R", "-o", img,
                 "-b", "boot/isolinux.bin", "-no-emul-boot", "-boot-load-size", "4",
                 "-hide", os.path.join(root, "boot", "isolinux.bin"), "-eltorito-alt-boot",
                 "-e", "boot/efi.img", "-no-emul-boot",
                 "-hide", os.path.join(root, "boot", "efi.img"), root], timeout=120)
        info = self.check_boot(img, expect_entries=2)
        self.assertIsNone(info["boot"][0]["tree_path"])
        self.assertIsNone(info["boot"][1]["tree_path"])

    def test_floppy_emulation_made_by_genisoimage(self):
        root = self.tmp.sub("floppysrc")
        fat_image(os.path.join(root, "floppy.img"))
        img = self.path("floppy.iso")
        env.run(["genisoimage", "-quiet", "-R", "-b", "floppy.img", "-c", "boot.cat",
                 "-o", img, root])
        info = self.check_boot(img, expect_entries=1)
        self.assertEqual(info["boot"][0]["emulation"], "fd1.44m")
        self.assertEqual(info["boot"][0]["size_bytes"], 1474560)

    @unittest.skipUnless(os.path.exists(GRUB_RESCUE), "grub-rescue-pc is not installed")
    def test_grub_rescue_cdrom(self):
        info = self.check_boot(GRUB_RESCUE)
        self.check_sessions(GRUB_RESCUE, "single")
        self.assertEqual(info["boot"][0]["tree_path"], "/boot/grub/i386-pc/eltorito.img")

    def test_udf_revision_from_pycdlib(self):
        try:
            import pycdlib
        except ImportError:
            self.skipTest("pycdlib missing: run with /usr/bin/python3")
        img = self.path("udf260.iso")
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, joliet=3, udf="2.60")
        iso.add_fp(__import__("io").BytesIO(b"hello\n"), 6, "/HELLO.TXT;1",
                   udf_path="/hello.txt", joliet_path="/hello.txt")
        iso.write(img)
        iso.close()
        info = discfs_info(img)
        # pycdlib 1.11 records revision 1.02 in its domain identifiers whatever udf= says;
        # udfinfo (udftools) reads the same, so it is the reference here.
        self.assertEqual(info["formats"]["udf"], udfinfo_revision(img) or "1.02")
        self.assertTrue(info["formats"]["iso9660"])
        self.assertEqual(info["formats"]["joliet_level"], 3)

    def test_udf_only_image_from_mkudffs(self):
        env.require_tools("mkudffs")
        img = self.path("udf201.img")
        with open(img, "wb") as f:
            f.truncate(8 * 1024 * 1024)
        env.run(["mkudffs", "--media-type=hd", "--blocksize=2048", "--udfrev=0x0201",
                 "--label=UDFONLY", img])
        info = discfs_info(img)
        self.assertEqual(info["formats"]["udf"], "2.01")
        if udfinfo_revision(img):
            self.assertEqual(udfinfo_revision(img), "2.01")
        self.assertFalse(info["formats"]["iso9660"])
        self.assertFalse(info["formats"]["rock_ridge"])
        self.assertIsNone(info["formats"]["joliet_level"])
        self.assertEqual(info["volume"]["volume_id"], "UDFONLY")

    def test_text_output_names_every_session(self):
        img = self.path("grown3t.iso")
        self.grow(img, 3)
        p = env.run([env.discfs_bin(), "info", img])
        text = env.txt(p.stdout)
        sessions, nwa = xorriso_toc(img)
        for n, start, blocks in sessions:
            self.assertRegex(text, rf"(?m)^\s+{n}\s+{start}\s+{blocks}\s*$")
        self.assertRegex(text, rf"(?m)^next writable LBA:\s+{nwa}$")

    def test_non_images_exit_4_with_one_line(self):
        junk = self.path("junk.bin")
        with open(junk, "wb") as f:
            f.write(os.urandom(100000))
        zeros = self.path("zeros.bin")
        with open(zeros, "wb") as f:
            f.write(bytes(70000))
        for path in (junk, zeros):
            rc, out, err = discfs_info(path, check=False)
            self.assertEqual(rc, env.EXIT_NOT_AN_IMAGE, f"{path}: {err}")
            self.assertEqual(out, "")
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn("not an ISO 9660 image", err)
        rc, out, err = discfs_info(self.path("missing.iso"), check=False)
        self.assertEqual(rc, env.EXIT_CANNOT_OPEN)
        self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    unittest.main()
