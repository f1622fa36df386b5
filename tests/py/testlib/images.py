"""Image writers: every image a test reads is made by a tool that is not discfs.

ISO 9660: xorriso (native and -as mkisofs, zisofs, multisession), genisoimage, pycdlib's
PyCdlib API.  UDF: pycdlib (UDF 2.60), genisoimage -udf (a 1.02 bridge), mkudffs of
several revisions and media types filled by udfclient.
"""

import io
import os
import shutil
import stat
import subprocess
import unittest

from testlib import env, readers, sources, udf


# --------------------------------------------------------------------------
# ISO 9660
# --------------------------------------------------------------------------

def make_xorriso_native(img, src, joliet=True, hardlinks=True, extra=()):
    """xorriso native commands: Rock Ridge (always) + Joliet, hard links recorded."""
    args = ["-outdev", img, "-blank", "as_needed",
            "-joliet", "on" if joliet else "off",
            "-hardlinks", "on" if hardlinks else "off",
            "-compliance", "joliet_long_names",
            "-volid", "DISCFS_NATIVE"]
    args += list(extra)
    args += ["-map", src, "/", "-commit"]
    readers.xorriso(args)
    return img


def make_xorriso_mkisofs(img, src, extra=("-R", "-J")):
    env.run(["xorriso", "-as", "mkisofs"] + list(extra) +
            ["-joliet-long", "-V", "DISCFS_MKISOFS", "-o", img, src])
    return img


def make_genisoimage(img, src, flags):
    """genisoimage with the given flags (e.g. ['-R','-J'], ['-J'], [], ['-iso-level','3'])."""
    cmd = ["genisoimage", "-quiet", "-input-charset", "utf-8", "-V", "DISCFS_GENISO"]
    cmd += list(flags)
    if "-J" in flags:
        cmd.append("-joliet-long")
    cmd += ["-o", img, src]
    env.run(cmd)
    return img


def make_zisofs(img, src):
    """Rock Ridge + Joliet image whose regular files are zisofs-compressed."""
    readers.xorriso(["-outdev", img, "-blank", "as_needed", "-joliet", "on",
                     "-hardlinks", "on", "-compliance", "joliet_long_names",
                     "-zisofs", "level=6:block_size=32k",
                     "-map", src, "/",
                     "-set_filter_r", "--zisofs", "/", "--",
                     "-commit"])
    return img


def _write_sparse(cmd, img):
    """Runs the image writer cmd (which writes the image to its stdout) into
    `cp --sparse=always`, which keeps the zero runs as holes: a 4.4 GiB image costs almost
    no disk space or time."""
    w = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    c = subprocess.run(["cp", "--sparse=always", "/dev/stdin", img], stdin=w.stdout,
                       stderr=subprocess.PIPE)
    w.stdout.close()
    err = env.txt(w.stderr.read())
    w.stderr.close()
    rc = w.wait()
    if rc != 0 or c.returncode != 0:
        raise RuntimeError(f"making {img} failed: {cmd[0]} {rc}: {err[-2000:]} / cp: "
                           f"{env.txt(c.stderr)}")
    os.chmod(img, 0o644)
    return img


def make_big_level3(img, src):
    """Level-3 image (multi-extent files) from src, which holds a > 4 GiB file."""
    return _write_sparse(["xorriso", "-as", "mkisofs", "-iso-level", "3", "-R", "-J",
                          "-joliet-long", "-V", "DISCFS_BIG", "-o", "-", src], img)


def make_pycdlib_image(img, src, rock_ridge="1.09", joliet=3, interchange=3):
    """Build an image from a (simple) source tree with pycdlib's PyCdlib API.

    Regular files, directories, symlinks and hard links are added; pycdlib
    records its own times, so compare such images with pycdlib's reading.
    Returns the map of rr_path -> iso_path used."""
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=interchange, rock_ridge=rock_ridge, joliet=joliet,
            vol_ident="DISCFS_PYCDLIB")
    seen_inodes = {}
    counter = [0]
    open_files = []

    def iso_name(is_dir):
        counter[0] += 1
        return ("D%06d" % counter[0]) if is_dir else ("F%06d.DAT;1" % counter[0])

    def walk(src_dir, iso_dir, jol_dir):
        for name in sorted(os.listdir(src_dir)):
            sp = os.path.join(src_dir, name)
            lst = os.lstat(sp)
            jname = name[:64]
            jp = (jol_dir.rstrip("/") + "/" + jname) if joliet else None
            if stat.S_ISDIR(lst.st_mode):
                ip = iso_dir.rstrip("/") + "/" + iso_name(True)
                iso.add_directory(ip, rr_name=name, joliet_path=jp,
                                  file_mode=stat.S_IFDIR | stat.S_IMODE(lst.st_mode))
                walk(sp, ip, jp)
            elif stat.S_ISLNK(lst.st_mode):
                ip = iso_dir.rstrip("/") + "/" + iso_name(False)
                iso.add_symlink(symlink_path=ip, rr_symlink_name=name,
                                rr_path=os.readlink(sp), joliet_path=jp)
            elif stat.S_ISREG(lst.st_mode):
                ip = iso_dir.rstrip("/") + "/" + iso_name(False)
                key = (lst.st_dev, lst.st_ino)
                if lst.st_nlink > 1 and key in seen_inodes:
                    iso.add_hard_link(iso_old_path=seen_inodes[key], iso_new_path=ip,
                                      rr_name=name)
                    if jp:
                        iso.add_hard_link(iso_old_path=seen_inodes[key], joliet_new_path=jp)
                    continue
                f = open(sp, "rb")
                open_files.append(f)
                iso.add_fp(f, lst.st_size, ip, rr_name=name, joliet_path=jp,
                           file_mode=stat.S_IFREG | stat.S_IMODE(lst.st_mode))
                seen_inodes[key] = ip
            # device nodes and fifos: not supported by pycdlib's API

    walk(src, "/", "/")
    iso.write(img)
    iso.close()
    for f in open_files:
        f.close()
    return img


def make_multisession(img, work):
    """Grow an image with three xorriso sessions (adds, deletes, renames, rewrites).

    Returns the path of a directory that mirrors what the newest session must show."""
    expect = os.path.join(work, "expect")
    s1 = os.path.join(work, "s1")
    os.makedirs(s1)
    data = {
        "keep.txt": b"kept through all sessions\n",
        "to_delete.txt": b"deleted in session 2\n",
        "to_rename.txt": b"renamed in session 2\n",
        "rewrite.txt": b"version one\n",
        "dir1/inner.txt": b"inner one\n",
        "dir_gone/x.txt": b"dir removed in session 3\n",
        "dir_move/y.txt": b"dir renamed in session 3\n",
    }
    for rel, content in data.items():
        p = os.path.join(s1, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content)
        os.utime(p, (sources.T_ATIME, sources.T2020))
    os.symlink("keep.txt", os.path.join(s1, "link_to_keep"))
    sources.set_dir_times(s1)
    readers.xorriso(["-dev", img, "-joliet", "on", "-hardlinks", "on",
                     "-map", s1, "/", "-commit"])
    # (every session is written with -joliet on so that each keeps a Joliet tree)
    shutil.copytree(s1, expect, symlinks=True)

    # Session 2: add, delete, rename, replace content.
    s2 = os.path.join(work, "s2")
    os.makedirs(os.path.join(s2, "added_dir"))
    with open(os.path.join(s2, "added.txt"), "wb") as f:
        f.write(b"added in session 2\n")
    with open(os.path.join(s2, "added_dir", "z.bin"), "wb") as f:
        f.write(sources.rand_bytes(22, 70000))
    with open(os.path.join(s2, "rewrite.txt"), "wb") as f:
        f.write(b"version two, longer than version one\n")
    for p in ("added.txt", "added_dir/z.bin", "rewrite.txt"):
        os.utime(os.path.join(s2, p), (sources.T_ATIME, sources.T2100))
    os.utime(os.path.join(s2, "added_dir"), (sources.T_ATIME, sources.T1980))
    readers.xorriso(["-dev", img, "-joliet", "on", "-hardlinks", "on",
                     "-rm", "/to_delete.txt", "--",
                     "-mv", "/to_rename.txt", "/renamed.txt", "--",
                     "-map", os.path.join(s2, "added.txt"), "/added.txt",
                     "-map", os.path.join(s2, "added_dir"), "/added_dir",
                     "-map", os.path.join(s2, "rewrite.txt"), "/rewrite.txt",
                     "-commit"])
    os.remove(os.path.join(expect, "to_delete.txt"))
    os.rename(os.path.join(expect, "to_rename.txt"), os.path.join(expect, "renamed.txt"))
    shutil.copy2(os.path.join(s2, "added.txt"), os.path.join(expect, "added.txt"))
    shutil.copytree(os.path.join(s2, "added_dir"), os.path.join(expect, "added_dir"))
    shutil.copy2(os.path.join(s2, "rewrite.txt"), os.path.join(expect, "rewrite.txt"))

    # Session 3: remove a directory, rename a directory, rewrite again, add a symlink.
    s3 = os.path.join(work, "s3")
    os.makedirs(s3)
    with open(os.path.join(s3, "rewrite.txt"), "wb") as f:
        f.write(b"v3\n")
    os.utime(os.path.join(s3, "rewrite.txt"), (sources.T_ATIME, sources.T1950))
    readers.xorriso(["-dev", img, "-joliet", "on", "-hardlinks", "on",
                     "-rm_r", "/dir_gone", "--",
                     "-mv", "/dir_move", "/dir_moved", "--",
                     "-map", os.path.join(s3, "rewrite.txt"), "/rewrite.txt",
                     "-commit"])
    shutil.rmtree(os.path.join(expect, "dir_gone"))
    os.rename(os.path.join(expect, "dir_move"), os.path.join(expect, "dir_moved"))
    shutil.copy2(os.path.join(s3, "rewrite.txt"), os.path.join(expect, "rewrite.txt"))
    return expect


# --------------------------------------------------------------------------
# UDF
# --------------------------------------------------------------------------

def make_appended(img, srcs, gaps=False):
    """Sessions written one after another into one file as for a multisession CD-R, without
    libisoburn's chain: genisoimage -R -J for srcs[0] at LBA 0, then for each further source
    `genisoimage -C LAST,NEXT -M IMG` (its tree merged with the previous session's), copied
    into IMG at NEXT.  NEXT is where the previous session ends, or with gaps=True that plus
    the gap a CD-R leaves (11,400 blocks after the first session, 6,900 after later ones),
    zeros in between.  Returns [(start_lba, blocks)] of each session."""
    base = ["genisoimage", "-quiet", "-input-charset", "utf-8", "-R", "-J"]
    env.run(base + ["-V", "APPENDED_1", "-o", img, srcs[0]])
    sessions = [(0, os.path.getsize(img) // 2048)]
    for n, src in enumerate(srcs[1:], start=2):
        last, blocks = sessions[-1]
        nxt = last + blocks + ((11400 if n == 2 else 6900) if gaps else 0)
        part = img + f".s{n}"
        env.run(base + ["-V", f"APPENDED_{n}", "-C", f"{last},{nxt}", "-M", img, "-o", part,
                        src])
        with open(part, "rb") as f:
            data = f.read()
        os.unlink(part)
        with open(img, "r+b") as f:
            f.seek(nxt * 2048)
            f.write(data)
        sessions.append((nxt, len(data) // 2048))
    return sessions


def make_pycdlib_udf(img, src, iso_stub_only=False, udf="2.60"):
    """pycdlib image with a UDF tree holding everything under src.

    The ISO 9660 tree holds either the same files under generated 8.3 names
    (iso_stub_only=False) or only /README.TXT, a stub saying "use UDF" (like
    Windows install discs).  Symlinks: UDF symlinks; hard links: UDF hard links.
    Returns the stub's bytes (or None)."""
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, udf=udf, vol_ident="DISCFS_UDF")
    files = []
    counter = [0]
    seen = {}
    stub = None
    if iso_stub_only:
        stub = b"This disc holds its files in the UDF file system.\n"
        iso.add_fp(io.BytesIO(stub), len(stub), iso_path="/README.TXT;1")

    def iso_name(is_dir):
        counter[0] += 1
        return ("D%06d" % counter[0]) if is_dir else ("F%06d.DAT;1" % counter[0])

    def walk(sdir, idir, udir):
        for name in sorted(os.listdir(sdir)):
            sp = os.path.join(sdir, name)
            lst = os.lstat(sp)
            up = udir.rstrip("/") + "/" + name
            ip = None if iso_stub_only else idir.rstrip("/") + "/" + iso_name(
                stat.S_ISDIR(lst.st_mode))
            if stat.S_ISDIR(lst.st_mode):
                iso.add_directory(iso_path=ip, udf_path=up)
                walk(sp, ip, up)
            elif stat.S_ISLNK(lst.st_mode):
                iso.add_symlink(udf_symlink_path=up, udf_target=os.readlink(sp))
            elif stat.S_ISREG(lst.st_mode):
                key = (lst.st_dev, lst.st_ino)
                if lst.st_nlink > 1 and key in seen:
                    iso.add_hard_link(udf_old_path=seen[key], udf_new_path=up)
                    continue
                f = open(sp, "rb")
                files.append(f)
                iso.add_fp(f, lst.st_size, iso_path=ip, udf_path=up)
                seen[key] = up

    try:
        walk(src, "/", "/")
        iso.write(img)
    finally:
        iso.close()
        for f in files:
            f.close()
    return stub


def make_genisoimage_udf(img, src):
    """genisoimage -udf -R -J: ISO 9660 + Rock Ridge + Joliet + UDF 1.02 bridge."""
    env.run(["genisoimage", "-quiet", "-input-charset", "utf-8", "-V", "DISCFS_GENUDF",
             "-udf", "-R", "-J", "-joliet-long", "-o", img, src])
    return img


def make_mkudffs(img, media, rev, blocks=32768):
    """An empty UDF file system from mkudffs (2048-byte blocks, sparse file)."""
    if os.path.exists(img):
        os.unlink(img)
    p = env.run(["mkudffs", "--media-type=" + media, "--udfrev=" + rev, "--blocksize=2048",
                 "--vid=DISCFS_" + media.upper(), "--lvid=DISCFS_LV", img, str(blocks)],
                check=False)
    if p.returncode != 0:
        raise unittest.SkipTest(f"mkudffs --media-type={media} --udfrev={rev} cannot make "
                                f"this image: {env.txt(p.stderr).strip()[-300:]}")
    return img


def make_udfclient(img, media, rev, src):
    """mkudffs, then udfclient copies every top-level entry of src into it.

    udfclient follows symlinks and writes each hard link as its own file, and
    writes names with characters outside Latin-1 mangled: build src with
    links=False, unicode=False."""
    make_mkudffs(img, media, rev)
    names = sorted(os.listdir(src))
    out = udf.udfclient_session(img, src, ["mput " + " ".join('"%s"' % n for n in names)])
    bad = [ln for ln in out.splitlines()
           if ln.startswith("While ") or "discs full" in ln or "Can't" in ln]
    if bad:
        raise RuntimeError(f"udfclient could not write {img}: {bad[:5]}")
    return img


def make_genisoimage_big(img, src):
    """genisoimage -udf -allow-limited-size: a > 4 GiB file whose UDF entry has
    the full size (the ISO 9660 record is cut)."""
    return _write_sparse(["genisoimage", "-quiet", "-udf", "-allow-limited-size",
                          "-iso-level", "3", "-V", "DISCFS_BIGUDF", "-o", "-", src], img)
