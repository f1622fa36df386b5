"""Bootable images stay bootable across commits (burner/boot.cc through tests/tools/commit_driver).

Images: Debian's grub-rescue-cdrom.iso (grub-mkrescue: BIOS El Torito with boot-info-table and
GRUB2 boot info, protective MBR with the GRUB2 MBR) and an `xorriso -as mkisofs` image with
SYSLINUX's isolinux.bin (-boot-info-table), an EFI image, the isohdpfx.bin isohybrid MBR and
-isohybrid-gpt-basdat (Debian packages isolinux and syslinux-common). Each is copied, and a
change is committed twice with commit_driver; the same two changes are appended to another copy
by xorriso itself with `-boot_image any replay`, the reference. After every commit, checked with
independent tools only:
  - `xorriso -report_el_torito plain` lists the same boot entries as the original (platform,
    bootable, emulation, load segment, load size, paths, patching options);
  - `xorriso -report_system_area plain` shows the same MBR/GPT layout as xorriso's reference,
    with the partition over the ISO image ending where the new image ends;
  - `sfdisk -J` of the image shows partitions sized for the new image;
  - `xorriso -check_md5` passes;
  - the boot images extracted by `-osirrox on -extract_boot_images` equal the original ones,
    except the boot info table (checked for the new LBA, length and checksum as the El Torito
    boot-info-table convention defines) and the GRUB2 boot info (the image's 512-byte address
    + 5, as in the original and in xorriso's reference); the catalog apart from the boot image
    LBAs; the MBR boot code apart from the boot image address that isohybrid and GRUB2 patch in.
A non-bootable image stays non-bootable.
"""

import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

from test_commit_engine import Spec
from testlib import env, readers, sanitizers

GRUB_RESCUE = "/usr/lib/grub-rescue/grub-rescue-cdrom.iso"
ISOLINUX_BIN = "/usr/lib/ISOLINUX/isolinux.bin"
ISOHDPFX = "/usr/lib/ISOLINUX/isohdpfx.bin"
GRUB2_BOOT_INFO = 2548


def report(img, what):
    r = readers.xorriso_run("-indev", img,
                            "-report_el_torito" if what == "el" else "-report_system_area",
                            "plain")
    return [l for l in r.stdout.splitlines() if " : " in l]


def el_torito(img):
    """Boot entries without their LBA (which moves when a patched image is rewritten)."""
    out = []
    for l in report(img, "el"):
        key, _, val = l.partition(" : ")
        f = val.split()
        if key.startswith("El Torito boot img"):
            out.append(("img", f[:-1]))
        elif key.startswith("El Torito img path") or key.startswith("El Torito img opts"):
            out.append((key.strip(), f))
        elif key.startswith("El Torito cat path"):
            out.append(("cat", f))
    return out


def boot_paths(img):
    return [l.split(" : ")[1].split(None, 1)[1].strip() for l in report(img, "el")
            if l.startswith("El Torito img path")]


def iso_file_size(img, path):
    r = readers.xorriso_run("-indev", img, "-lsl", path)
    line = [l for l in r.stdout.splitlines() if l.startswith("-")][0]
    return int(line.split()[4])


def boot_lbas(img):
    return [int(l.split()[-1]) for l in report(img, "el") if l.startswith("El Torito boot img")]


def sysarea(img):
    """System area report lines, GUIDs (random per write) left out."""
    keep = []
    for l in report(img, "sa"):
        key, _, val = l.partition(" : ")
        key = key.strip()
        if "GUID" in key:
            continue
        keep.append((key, val.split()))
    return keep


def size512(img):
    return os.path.getsize(img) // 512


def iso_size512(sa):
    return int(dict(sa)["ISO image size/512"][0])


def catalog_records(cat):
    """(offset, record) of every boot entry of an El Torito catalog (not headers)."""
    out = []
    for off in range(32, len(cat) - 31, 32):
        rec = cat[off:off + 32]
        if rec[0] in (0x90, 0x91):  # section header
            continue
        if rec[0] not in (0x88, 0x00) or (off > 32 and rec == bytes(32)):
            break
        out.append((off, rec))
    return out


def catalog_lbas(cat):
    return [struct.unpack_from("<I", rec, 8)[0] for _, rec in catalog_records(cat)]


def mask_catalog_lbas(cat):
    cat = bytearray(cat)
    for off, _ in catalog_records(cat):
        cat[off + 8:off + 12] = bytes(4)
    return bytes(cat)


def top_spec(img, extra):
    """A staged tree keeping every top-level entry of img whole, plus `extra` local files."""
    s = Spec()
    r = readers.xorriso_run("-indev", img, "-find", "/", "-maxdepth", "1", "-exec", "lsdl")
    for line in r.stdout.splitlines():
        path = line.split("'")[1] if "'" in line else None
        if not path or path == "/":
            continue
        if line.startswith("d"):
            s.dir(path, base=path, whole=True)
        else:
            s.base(path, path)
    for path, local in extra:
        s.local(path, local)
    return s


def extract_boot_images(img, dest):
    os.makedirs(dest)
    r = readers.xorriso_run("-osirrox", "on", "-indev", img, "-extract_boot_images", dest)
    if r.returncode != 0:
        raise AssertionError(r.stderr[-2000:])
    out = {}
    for name in sorted(os.listdir(dest)):
        with open(os.path.join(dest, name), "rb") as f:
            out[name] = f.read()
    return out


class CommitBootTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        env.require_binary(env.commit_driver_bin(), "commit_driver")
        env.require_tools("xorriso", "sfdisk")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="discfs-commitboot-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.n = 0

    def path(self, name):
        return os.path.join(self.tmp, name)

    def driver_commit(self, img, spec, allow_dropped=False):
        self.n += 1
        sp = self.path("spec%d" % self.n)
        spec.write(sp)
        r = subprocess.run([env.commit_driver_bin(), "commit", img, sp], capture_output=True,
                           text=True, timeout=env.HANG_GUARD)
        self.assertIsNone(sanitizers.report(r.stderr), r.stderr[-3000:])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr[-3000:])
        if not allow_dropped:
            self.assertNotIn("does not keep all of the boot setup", r.stderr)
        self.last_stderr = r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    def check_boot_info_table(self, data, lba, name, img, file_length, session_lba=None):
        """bi_pvd, bi_file, bi_length, bi_csum at byte 8 (mkisofs -boot-info-table).

        bi_pvd is the PVD of the newest session (its start + 16), which records the size of
        that session: the image ends where it ends."""
        pvd, blk, length, csum = struct.unpack_from("<IIII", data, 8)
        if session_lba is not None:
            self.assertEqual(pvd, session_lba + 16, name)
        with open(img, "rb") as f:
            f.seek(pvd * 2048)
            desc = f.read(2048)
        self.assertEqual(desc[:6], b"\x01CD001", name)
        session_blocks = struct.unpack_from("<I", desc, 80)[0]
        self.assertEqual((pvd - 16 + session_blocks) * 4, iso_size512(sysarea(img)), name)
        self.assertEqual(blk, lba, name)
        # The extracted image is padded to whole blocks; bi_length is the file's size.
        self.assertEqual(length, file_length, name)
        self.assertLessEqual(length, len(data), name)
        words = data[64:length] + b"\0" * (-length % 4)
        self.assertEqual(sum(struct.unpack("<%dI" % (len(words) // 4), words)) & 0xffffffff,
                         csum, name)

    def run_case(self, original, bios_patched, grub2):
        ours = self.path("ours.iso")
        ref = self.path("ref.iso")
        shutil.copyfile(original, ours)
        shutil.copyfile(original, ref)
        entries0 = el_torito(original)
        self.assertTrue(entries0)
        boot0 = extract_boot_images(original, self.path("boot0"))
        for i in (1, 2):
            data = self.path("f%d" % i)
            with open(data, "wb") as f:
                f.write(os.urandom(200000 + i))
            spec = top_spec(ours, [("/added%d" % i, data)])
            session_lba = self.driver_commit(ours, spec)["start_lba"]
            r = readers.xorriso_run("-md5", "on", "-dev", ref, "-boot_image", "any", "replay",
                                    "-map", data, "/added%d" % i, "-commit")
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])

            # Same El Torito entries.
            self.assertEqual(el_torito(ours), entries0)
            code, out = readers.check_md5(ours)
            self.assertEqual(code, 0, out)

            # System area as xorriso's replay makes it, partitions sized for our image.
            sa, sa_ref = sysarea(ours), sysarea(ref)
            self.assertEqual([k for k, _ in sa], [k for k, _ in sa_ref])
            iso512 = iso_size512(sa)
            iso512_ref = iso_size512(sa_ref)
            # Our image file ends where the ISO image ends (xorriso pads its reference).
            self.assertEqual(iso512, size512(ours))
            mbr = [v for k, v in sa if k == "MBR partition"]
            mbr_ref = [v for k, v in sa_ref if k == "MBR partition"]
            self.assertEqual([v[:3] for v in mbr], [v[:3] for v in mbr_ref])
            whole = [v for v in mbr if int(v[3]) <= 1]
            self.assertTrue(whole, sa)
            self.assertEqual(int(whole[0][3]) + int(whole[0][4]), size512(ours))
            for v, v_ref in zip(mbr, mbr_ref):
                if int(v_ref[3]) > 1:  # a boot image partition keeps its place
                    self.assertEqual(v[3:5], v_ref[3:5])
            gpt = [v for k, v in sa if k == "GPT start and size"]
            gpt_ref = [v for k, v in sa_ref if k == "GPT start and size"]
            self.assertEqual(len(gpt), len(gpt_ref))
            for (n, start, size), (_, start_r, size_r) in zip(gpt, gpt_ref):
                if int(start_r) == 0:  # the partition over the ISO image
                    self.assertEqual(int(size) - iso512, int(size_r) - iso512_ref)
                else:  # a boot image that was not rewritten keeps its place
                    self.assertEqual((start, size), (start_r, size_r))

            # sfdisk sees partitions sized for the new image.
            table = json.loads(subprocess.run(["sfdisk", "-J", ours], capture_output=True,
                                              text=True, check=True).stdout)["partitiontable"]
            parts = table["partitions"]
            if table["label"] == "gpt":
                self.assertEqual(table["lastlba"] + 34, size512(ours))
            else:
                self.assertEqual(parts[0]["start"] + parts[0]["size"], size512(ours))

            # Boot images: as the original, apart from the patched tables.
            boot = extract_boot_images(ours, self.path("boot%d" % i))
            boot_ref = extract_boot_images(ref, self.path("bootref%d" % i))
            self.assertEqual(sorted(boot), sorted(boot0))
            self.assertEqual(sorted(boot_ref), sorted(boot0))
            self.compare_boot_images(boot0, boot, boot_lbas(original), boot_lbas(ours),
                                     boot_ref, boot_lbas(ref), bios_patched, grub2,
                                     (ours, session_lba, ref))

    def compare_boot_images(self, boot0, boot, lbas0, lbas, boot_ref, lbas_ref, bios_patched,
                            grub2, images):
        """The files of -extract_boot_images, name by name, against the original's."""
        for name in sorted(boot0):
            a, b = boot[name], boot0[name]
            self.assertEqual(len(a), len(b), name)
            if name == "eltorito_catalog.img":
                # Only the boot image LBAs may differ, and they are the ones reported.
                self.assertEqual(catalog_lbas(a), lbas, name)
                self.assertEqual(catalog_lbas(b), lbas0, name)
                a, b = mask_catalog_lbas(a), mask_catalog_lbas(b)
            elif name == "eltorito_img1_bios.img" and bios_patched:
                ours, session_lba, ref = images
                length = iso_file_size(ours, boot_paths(ours)[0])
                self.check_boot_info_table(a, lbas[0], name, ours, length, session_lba)
                self.check_boot_info_table(boot_ref[name], lbas_ref[0], name, ref, length)
                a, b = a[:8] + a[64:], b[:8] + b[64:]
                if grub2:
                    # GRUB2 boot info: the 512-byte address of the image + 5, little-endian
                    # 64-bit at byte 2548 (libisofs eltorito.c; libisofs.h still says 1012),
                    # in ours, in xorriso's reference and in the original alike.
                    at = GRUB2_BOOT_INFO - 56
                    self.assertEqual(struct.unpack_from("<Q", a, at)[0], lbas[0] * 4 + 5, name)
                    self.assertEqual(struct.unpack_from("<Q", b, at)[0], lbas0[0] * 4 + 5, name)
                    self.assertEqual(struct.unpack_from("<Q", boot_ref[name], GRUB2_BOOT_INFO)[0],
                                     lbas_ref[0] * 4 + 5, name)
                    a = a[:at] + a[at + 8:]
                    b = b[:at] + b[at + 8:]
            elif name.startswith("mbr_code_") or name == "systemarea.img":
                # MBR boot code as the original; bytes 432-439 hold the 512-byte address of
                # the first boot image (isohybrid: LBA * 4, GRUB2: LBA * 4 + 4), 440-443 the
                # disk signature (random with isohybrid), 446- the partition table (checked
                # above against xorriso's reports and sfdisk).
                self.assertEqual(struct.unpack_from("<Q", a, 432)[0] - lbas[0] * 4,
                                 struct.unpack_from("<Q", b, 432)[0] - lbas0[0] * 4, name)
                self.assertEqual(struct.unpack_from("<Q", boot_ref[name], 432)[0] -
                                 lbas_ref[0] * 4,
                                 struct.unpack_from("<Q", b, 432)[0] - lbas0[0] * 4, name)
                a, b = a[:432], b[:432]
            self.assertEqual(a, b, name)

    def test_grub_rescue(self):
        if not os.path.exists(GRUB_RESCUE):
            self.skipTest("%s missing (Debian package grub-rescue-pc)" % GRUB_RESCUE)
        self.run_case(GRUB_RESCUE, bios_patched=True, grub2=True)

    def test_isolinux_efi_isohybrid_gpt(self):
        for p in (ISOLINUX_BIN, ISOHDPFX):
            if not os.path.exists(p):
                self.skipTest("%s missing (Debian packages isolinux, syslinux-common)" % p)
        src = self.path("src")
        os.makedirs(os.path.join(src, "isolinux"))
        shutil.copyfile(ISOLINUX_BIN, os.path.join(src, "isolinux", "isolinux.bin"))
        with open(os.path.join(src, "efi.img"), "wb") as f:
            f.write(os.urandom(1440 * 1024))
        with open(os.path.join(src, "readme"), "w") as f:
            f.write("hello\n")
        img = self.path("hybrid.iso")
        r = subprocess.run(
            ["xorriso", "-as", "mkisofs", "-R", "-J", "-V", "HYB", "-o", img,
             "-isohybrid-mbr", ISOHDPFX, "-c", "isolinux/boot.cat",
             "-b", "isolinux/isolinux.bin", "-no-emul-boot", "-boot-load-size", "4",
             "-boot-info-table", "-eltorito-alt-boot", "-e", "efi.img", "-no-emul-boot",
             "-isohybrid-gpt-basdat", src], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn(("El Torito img opts", ["1", "boot-info-table", "isohybrid-suitable"]),
                      el_torito(img))
        self.run_case(img, bios_patched=True, grub2=False)

    def mkisofs(self, name, *args):
        src = self.path("src-" + name)
        os.makedirs(os.path.join(src, "isolinux"))
        shutil.copyfile(ISOLINUX_BIN, os.path.join(src, "isolinux", "isolinux.bin"))
        with open(os.path.join(src, "efi.img"), "wb") as f:
            f.write(os.urandom(1440 * 1024))
        img = self.path(name + ".iso")
        r = subprocess.run(["xorriso", "-as", "mkisofs", "-R", "-V", "X", "-o", img] +
                           list(args) + [src], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        return img

    def commit_twice_with_gap(self, img, gap):
        """Two commits that keep El Torito and MD5 but name `gap` in the one warning."""
        entries0 = el_torito(img)
        for i in (1, 2):
            data = self.path("g%d" % i)
            with open(data, "wb") as f:
                f.write(os.urandom(1000 + i))
            self.driver_commit(img, top_spec(img, [("/added%d" % i, data)]), allow_dropped=True)
            if i == 1:
                self.assertIn(gap, self.last_stderr)
            self.assertEqual(el_torito(img), entries0)
            self.assertEqual(readers.check_md5(img)[0], 0)

    def test_efi_boot_part_commit_succeeds(self):
        # -efi-boot-part --efi-boot-image: xorriso's own replay refuses to append ("No newly
        # added El Torito EFI boot image found for exposure as GPT partition"). discfs commits,
        # keeping both El Torito entries and dropping the GPT EFI partition with a warning.
        if not os.path.exists(ISOLINUX_BIN):
            self.skipTest("%s missing (Debian package isolinux)" % ISOLINUX_BIN)
        img = self.mkisofs("ebp", "-b", "isolinux/isolinux.bin", "-no-emul-boot",
                           "-boot-load-size", "4", "-boot-info-table", "-eltorito-alt-boot",
                           "-e", "efi.img", "-no-emul-boot", "-efi-boot-part",
                           "--efi-boot-image", "--protective-msdos-label")
        self.commit_twice_with_gap(img, "GPT EFI boot partition")
        whole = [v for k, v in sysarea(img) if k == "MBR partition"][0]
        self.assertEqual(int(whole[3]) + int(whole[4]), size512(img))

    @unittest.expectedFailure
    def test_efi_boot_part_kept(self):
        # Gap: the GPT "EFI boot partition" over an El Torito EFI image of an older session is
        # not kept. libisofs 1.5.4 exposes only a newly added image ("--efi-boot-image"), and
        # given as an interval of the imported image ("imported_iso:Sd-Ed::", flag 1 of
        # isoburn_igopt_set_efi_bootp) it lays out a GPT entry overlapping the old sessions and
        # the write fails ("GPT partitions 0 and 1 overlap"). Tried both; xorriso's replay fails
        # too. Fix would need a fresh copy of the EFI image in each session.
        if not os.path.exists(ISOLINUX_BIN):
            self.skipTest("%s missing (Debian package isolinux)" % ISOLINUX_BIN)
        img = self.mkisofs("ebp", "-b", "isolinux/isolinux.bin", "-no-emul-boot",
                           "-boot-load-size", "4", "-boot-info-table", "-eltorito-alt-boot",
                           "-e", "efi.img", "-no-emul-boot", "-efi-boot-part",
                           "--efi-boot-image", "--protective-msdos-label")
        self.commit_twice_with_gap(img, "GPT EFI boot partition")
        self.assertIn("EFI boot partition",
                      [v[1] for k, v in sysarea(img) if k == "GPT partname local"])

    @unittest.expectedFailure
    def test_appended_partition_kept(self):
        # Gap: partitions appended with -append_partition (e.g. an EFI FAT image of
        # grub-mkrescue with -appended_part_as_gpt) are not replayed: the new session gets
        # the protective MBR and GRUB2 MBR but no GPT, and the warning names the partition.
        # xorriso replays them as "-append_partition N TYPE --interval:imported_iso:...";
        # not tried here for lack of time (isoburn_igopt_set_partition_img with
        # isoburn_igopt_set_part_flag bit0, part_type_guid and appended_as_gpt).
        if not os.path.exists(ISOLINUX_BIN):
            self.skipTest("%s missing (Debian package isolinux)" % ISOLINUX_BIN)
        img = self.mkisofs("app", "--protective-msdos-label", "-b", "isolinux/isolinux.bin",
                           "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
                           "-append_partition", "2", "0xef", ISOLINUX_BIN,
                           "-appended_part_as_gpt")
        self.commit_twice_with_gap(img, "appended partitions are not replayed")
        self.assertTrue([v for k, v in sysarea(img) if k == "GPT start and size"])

    def test_plain_image_stays_plain(self):
        src = self.path("src")
        os.makedirs(src)
        with open(os.path.join(src, "a"), "w") as f:
            f.write("a\n")
        img = self.path("plain.iso")
        r = readers.xorriso_run("-md5", "on", "-dev", img, "-map", src, "/d", "-commit")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = self.path("b")
        with open(data, "wb") as f:
            f.write(b"b\n")
        for i in (1, 2):
            self.driver_commit(img, top_spec(img, [("/b%d" % i, data)]))
            self.assertEqual(el_torito(img), [])
            self.assertFalse([k for k, _ in sysarea(img) if k.startswith("MBR")])
            self.assertEqual(readers.check_md5(img)[0], 0)
        with open(img, "rb") as f:
            self.assertEqual(f.read(32768), bytes(32768))


if __name__ == "__main__":
    unittest.main()
