"""Extended attributes, ACLs and recorded MD5s of libisofs/xorriso images.

A source tree gets user attributes (text, binary, empty, many, long) and
POSIX ACLs (access and default) with setfattr/setfacl; xorriso (the
independent writer) records them as AAIP.  What discfs shows, through
discfs-dump and through a FUSE mount, is compared with `getfattr`/`getfacl`
on the source; `user.discfs.md5` with `md5sum` of the source file and with
what `xorriso -find ... -exec get_md5` reports.  Images without AAIP show
no attributes.

Run: /usr/bin/python3 -m testlib -v test_xattr   (from tests/py)
"""

import hashlib
import os
import random
import unittest

from testlib import dump, env, images, mount, stage

MD5_NAME = "user.discfs.md5"

M = env.ModuleFixture("discfs-xattr-", binaries=("discfs-dump",),
                      tools=("xorriso", "genisoimage", "setfattr", "getfattr", "setfacl",
                             "getfacl"))
tearDownModule = M.tear_down
_src = None


def setUpModule():
    global _src
    M.set_up()
    _src = build_source(os.path.join(M.path, "src"))


# --------------------------------------------------------------------------
# Source tree and images
# --------------------------------------------------------------------------

def build_source(root):
    os.makedirs(root)
    try:
        os.setxattr(root, "user.probe", b"1")
        os.removexattr(root, "user.probe")
    except OSError as e:
        raise unittest.SkipTest(f"the temporary file system takes no user xattrs ({e.strerror}); "
                                f"set DISCFS_TEST_TMP to an ext4/xfs/tmpfs directory")

    def P(rel):
        return os.path.join(root, rel)

    def wfile(rel, data):
        os.makedirs(os.path.dirname(P(rel)), exist_ok=True)
        with open(P(rel), "wb") as f:
            f.write(data)
        os.chmod(P(rel), 0o644)
        return P(rel)

    rnd = random.Random(4242)
    os.setxattr(root, "user.rootattr", b"on the root")
    env.run(["setfattr", "-n", "user.foo", "-v", "bar", wfile("files/plain.txt", b"plain\n")])
    wfile("files/binary.bin", rnd.randbytes(5000))
    os.setxattr(P("files/binary.bin"), "user.bin", bytes(range(256)))
    os.setxattr(P("files/binary.bin"), "user.nul", b"\x00\x00\x00")
    os.setxattr(P("files/binary.bin"), "user.empty", b"")
    # ext4 keeps at most one block of attributes per file: spread them over files.
    many = wfile("files/many.txt", b"many attributes\n")
    for i in range(40):
        os.setxattr(many, "user.attr_%02d" % i, ("v%d " % i).encode() * (i % 5 + 1))
    os.setxattr(wfile("files/long_value.bin", b"long value\n"), "user.long_value",
                rnd.randbytes(3500))
    os.setxattr(wfile("files/long_name.txt", b"long name\n"), "user." + "n" * 200,
                b"a 205-byte name")
    env.run(["setfacl", "-m", "u:1234:rwx,g:5678:r-x", wfile("files/acl.txt", b"acl\n")])
    both = wfile("files/acl_and_attr.bin", rnd.randbytes(70000))
    env.run(["setfacl", "-m", "u:4321:r--,g:8765:rw-,m::rw-", both])
    os.setxattr(both, "user.with_acl", b"yes")
    os.setxattr(wfile("files/hard_a", b"hard-linked\n"), "user.hard", b"shared by two names")
    os.link(P("files/hard_a"), P("files/hard_b"))
    wfile("files/noattr.txt", b"nothing recorded\n")
    wfile("files/empty", b"")
    os.makedirs(P("dirs/acl_dir"))
    env.run(["setfacl", "-m", "u:4321:r-x", P("dirs/acl_dir")])
    env.run(["setfacl", "-d", "-m", "u:1234:rwx,g:5678:r-x", P("dirs/acl_dir")])
    wfile("dirs/acl_dir/inherits.txt", b"inherits the default ACL\n")
    os.makedirs(P("dirs/default_only"))
    env.run(["setfacl", "-d", "-m", "u:1234:rwx", P("dirs/default_only")])
    os.makedirs(P("dirs/attr_dir/sub"))
    os.setxattr(P("dirs/attr_dir"), "user.dir", b"directory attribute")
    os.setxattr(P("dirs/attr_dir/sub"), "user.sub", b"nested")
    # Deeper than 8 levels: `-compliance deep_paths_off` relocates the deepest directory.
    deep = P("deep/" + "/".join("d%d" % i for i in range(1, 11)))
    os.makedirs(deep)
    os.setxattr(os.path.dirname(deep), "user.level", b"9")
    os.setxattr(deep, "user.level", b"10")
    os.setxattr(wfile(os.path.relpath(deep, root) + "/leaf.txt", b"deep\n"), "user.leaf", b"1")
    return root


def image(kind):
    """Images of the source, made once: 'backup' (-for_backup: every namespace, ACLs,
    MD5s), 'on' (-xattr on -acl on -md5 on), 'relocated' (-for_backup with Rock Ridge
    relocation of deep directories), 'none' (xorriso defaults: no AAIP) and 'genisoimage'
    (-R -J, which knows no AAIP)."""
    return M.cached(("image", kind), lambda: _make_image(kind))


def _make_image(kind):
    img = os.path.join(M.path, kind + ".iso")
    if kind == "backup":
        env.run(["xorriso", "-for_backup", "-joliet", "on", "-outdev", img,
                 "-map", _src, "/"])
    elif kind == "on":
        env.run(["xorriso", "-xattr", "on", "-acl", "on", "-md5", "on", "-joliet", "on",
                 "-outdev", img, "-map", _src, "/"])
    elif kind == "relocated":
        env.run(["xorriso", "-for_backup", "-compliance", "deep_paths_off", "-outdev", img,
                 "-map", _src, "/"])
    elif kind == "none":
        env.run(["xorriso", "-joliet", "on", "-outdev", img, "-map", _src, "/"])
    elif kind == "genisoimage":
        images.make_genisoimage(img, _src, ["-R", "-J"])
    return img


# --------------------------------------------------------------------------
# Independent views
# --------------------------------------------------------------------------

def getfattr_tree(root):
    """{'/rel': {name: hexvalue}} from `getfattr -R -d -m - -e hex` (paths with none left
    out)."""
    p = env.run(["getfattr", "-R", "-d", "-m", "-", "-e", "hex", "."], cwd=root, check=False)
    out, cur = {}, None
    for line in env.txt(p.stdout).splitlines():
        if line.startswith("# file: "):
            rel = line[len("# file: "):]
            cur = "/" if rel == "." else "/" + rel[2:] if rel.startswith("./") else "/" + rel
            out[cur] = {}
        elif line.strip() and cur is not None:
            name, _, value = line.partition("=")
            assert value.startswith("0x"), line
            out[cur][name] = value[2:]
    if p.returncode != 0 and not out:
        raise AssertionError(f"getfattr failed on {root}: {env.txt(p.stderr)[-2000:]}")
    return {k: v for k, v in out.items() if v}


def getfacl_tree(root):
    """{'/rel': text} from `getfacl -R -n` (numeric ids), one block per entry."""
    p = env.run(["getfacl", "-R", "-n", "-p", "."], cwd=root)
    out, cur = {}, None
    for line in env.txt(p.stdout).splitlines():
        if line.startswith("# file: "):
            rel = line[len("# file: "):]
            cur = "/" if rel == "." else "/" + rel[2:] if rel.startswith("./") else "/" + rel
            out[cur] = []
        elif line.strip() and cur is not None:
            out[cur].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def source_files():
    out = []
    for dirpath, _, files in os.walk(_src):
        for f in files:
            out.append("/" + os.path.relpath(os.path.join(dirpath, f), _src))
    return sorted(out)


def md5_of(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def xorriso_md5s(img):
    """{'/path': md5} as `xorriso -md5 on -indev IMG -find / -exec get_md5` reports it."""
    p = env.run(["xorriso", "-md5", "on", "-indev", img, "-find", "/", "-type", "f",
                 "-exec", "get_md5", "--"])
    out = {}
    for line in env.txt(p.stdout).splitlines():
        digest, _, path = line.partition("  ")
        if len(digest) == 32 and path.startswith("/"):
            out[path] = digest
    return out


def dump_xattrs(img, tree=None):
    """{'/path': {name: hexvalue}} from `discfs-dump --xattrs` (paths with none left out)."""
    d = dump.dump(img, tree=tree, data=False, extra=["--xattrs"])
    for path, raw in d.raw.items():
        if raw.get("error"):
            raise AssertionError(f"discfs-dump reports an error for {path}: {raw['error']}")
    return {p: raw["xattrs"] for p, raw in d.raw.items() if raw.get("xattrs")}


def without(tree, name):
    out = {}
    for p, attrs in tree.items():
        rest = {k: v for k, v in attrs.items() if k != name}
        if rest:
            out[p] = rest
    return out


def attr_diff(expected, actual):
    lines = []
    for p in sorted(set(expected) | set(actual)):
        e, a = expected.get(p, {}), actual.get(p, {})
        for n in sorted(set(e) | set(a)):
            if e.get(n) != a.get(n):
                ev = e.get(n, "<absent>")
                av = a.get(n, "<absent>")
                lines.append(f"{p} {n}: expected {ev[:80]} got {av[:80]}")
    return lines


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

class SourceSanity(unittest.TestCase):
    def test_the_source_has_what_the_tests_compare(self):
        src = getfattr_tree(_src)
        self.assertIn("system.posix_acl_access", src["/files/acl.txt"])
        self.assertIn("system.posix_acl_default", src["/dirs/default_only"])
        self.assertEqual(len(src["/files/many.txt"]), 40)


class DumpAttributes(unittest.TestCase):
    """(a) discfs-dump --xattrs shows what getfattr shows on the source."""

    def check(self, kind):
        shown = dump_xattrs(image(kind))
        lines = attr_diff(getfattr_tree(_src), without(shown, MD5_NAME))
        if lines:
            self.fail(f"{kind} image: discfs-dump attributes differ from the source:\n  " +
                      "\n  ".join(lines[:40]))

    def test_for_backup_image(self):
        self.check("backup")

    def test_xattr_acl_md5_on_image(self):
        self.check("on")

    def test_relocated_deep_directories(self):
        with open(image("relocated"), "rb") as f:
            self.assertIn(b"RE\x04\x01", f.read(), "xorriso relocated nothing")
        self.check("relocated")

    def test_no_isofs_attributes_are_shown(self):
        for path, attrs in dump_xattrs(image("backup")).items():
            for name in attrs:
                self.assertFalse(name.startswith("isofs."), f"{path} shows {name}")
                self.assertTrue(name.split(".")[0] in ("user", "system", "trusted", "security"),
                                f"{path} shows {name}")

    def test_joliet_and_plain_trees_show_none(self):
        for tree in ("joliet", "iso9660"):
            self.assertEqual(dump_xattrs(image("backup"), tree=tree), {}, tree)


class Md5(unittest.TestCase):
    """(c) user.discfs.md5 is the file's MD5 as md5sum and xorriso compute it."""

    def test_md5_matches_md5sum_and_xorriso(self):
        for kind in ("backup", "on"):
            img = image(kind)
            shown = dump_xattrs(img)
            xor = xorriso_md5s(img)
            files = source_files()
            self.assertEqual(sorted(xor), files, f"{kind}: xorriso lists other files")
            for f in files:
                want = md5_of(os.path.join(_src, f.lstrip("/")))
                self.assertEqual(xor[f], want, f"{kind}: xorriso's MD5 of {f}")
                got_hex = shown.get(f, {}).get(MD5_NAME)
                self.assertIsNotNone(got_hex, f"{kind}: {f} has no {MD5_NAME}")
                self.assertEqual(bytes.fromhex(got_hex).decode(), want, f"{kind}: {f}")

    def test_directories_have_no_md5(self):
        d = dump.dump(image("backup"), data=False, extra=["--xattrs"])
        for path, raw in d.raw.items():
            if raw["type"] != "reg":
                self.assertNotIn(MD5_NAME, raw.get("xattrs", {}), path)


class NoAaip(unittest.TestCase):
    def test_images_without_aaip_show_no_attributes(self):
        for kind in ("none", "genisoimage"):
            self.assertEqual(dump_xattrs(image(kind)), {}, kind)


class DamagedAaip(unittest.TestCase):
    def test_mangled_al_entries_never_crash(self):
        """Random bytes over the AL entries and continuation areas of a real image: the
        dump finishes (exit 0: damage inside one entry is that entry's error, never the
        walk's) without a sanitizer report (dump.dump checks)."""
        with open(image("backup"), "rb") as f:
            data = f.read()
        spots = []
        at = data.find(b"AL")
        while at >= 0:
            if at + 4 < len(data) and data[at + 3] == 1 and data[at + 2] >= 5:
                spots.append(at)
            at = data.find(b"AL", at + 1)
        self.assertGreater(len(spots), 20, "the image should hold many AL entries")
        rnd = random.Random(77)
        for n in range(12):
            buf = bytearray(data)
            for spot in rnd.sample(spots, 6):
                for _ in range(rnd.randint(1, 8)):
                    buf[spot + rnd.randint(2, 60)] = rnd.randrange(256)
            path = os.path.join(M.path, "mangled-%d.iso" % n)
            with open(path, "wb") as f:
                f.write(buf)
            d = dump.dump(path, data=False, extra=["--xattrs"], check=False)
            self.assertEqual(d.returncode, env.EXIT_OK, f"mangled image {n}: {d.stderr[-2000:]}")
            self.assertIn("/files", d.raw, f"mangled image {n}: the tree is gone")
            os.unlink(path)


class MountAttributes(unittest.TestCase):
    """(b) getfattr and getfacl on a FUSE mount show what they show on the source."""

    @classmethod
    def setUpClass(cls):
        reason = mount.fuse_unavailable_reason()
        if reason:
            raise unittest.SkipTest(reason)
        env.require_binary(env.discfs_bin(), "discfs")

    def mounted(self, kind):
        mnt = M.sub("mnt-" + kind + "-" + self._testMethodName)
        return mount.Mount(image(kind), mnt), mnt

    def test_getfattr_and_getfacl_match_the_source(self):
        want_attrs = getfattr_tree(_src)
        want_acl = getfacl_tree(_src)
        for kind in ("backup", "on"):
            m, mnt = self.mounted(kind)
            with m:
                got = getfattr_tree(mnt)
                lines = attr_diff(want_attrs, without(got, MD5_NAME))
                if lines:
                    self.fail(f"{kind}: getfattr on the mount differs from the source:\n  " +
                              "\n  ".join(lines[:40]))
                got_acl = getfacl_tree(mnt)
                self.assertEqual(sorted(got_acl), sorted(want_acl), f"{kind}: getfacl entries")
                for path in sorted(want_acl):
                    self.assertEqual(got_acl[path], want_acl[path], f"{kind}: getfacl of {path}")
                # One attribute by name, as an application asks for it.
                p = env.run(["getfattr", "--only-values", "-n", "user.foo",
                             os.path.join(mnt, "files/plain.txt")])
                self.assertEqual(p.stdout, b"bar")
                m.check_alive()

    def test_md5_attribute_on_the_mount(self):
        m, mnt = self.mounted("backup")
        with m:
            for f in source_files():
                p = env.run(["getfattr", "--only-values", "-n", MD5_NAME,
                             os.path.join(mnt, f.lstrip("/"))])
                self.assertEqual(env.txt(p.stdout), md5_of(os.path.join(_src, f.lstrip("/"))),
                                 f)
                # And what the mount reads back has that MD5.
                self.assertEqual(md5_of(os.path.join(mnt, f.lstrip("/"))), env.txt(p.stdout), f)

    def test_missing_attribute_is_enodata(self):
        m, mnt = self.mounted("backup")
        with m:
            path = os.path.join(mnt, "files/noattr.txt")
            with self.assertRaises(OSError) as cm:
                os.getxattr(path, "user.not_there")
            self.assertEqual(cm.exception.errno, 61)  # ENODATA
            self.assertEqual([n for n in os.listxattr(path) if n != MD5_NAME], [])

    def test_writes_are_refused(self):
        m, mnt = self.mounted("backup")
        with m:
            path = os.path.join(mnt, "files/plain.txt")
            with self.assertRaises(OSError) as cm:
                os.setxattr(path, "user.new", b"x")
            self.assertIn(cm.exception.errno, (30, 95), cm.exception)  # EROFS / EOPNOTSUPP

    def test_images_without_aaip_list_nothing(self):
        for kind in ("none", "genisoimage"):
            m, mnt = self.mounted(kind)
            with m:
                for rel in ("files/plain.txt", "dirs/acl_dir", ""):
                    path = os.path.join(mnt, rel)
                    p = env.run(["getfattr", "-d", "-m", "-", path], check=False)
                    err = env.txt(p.stderr)
                    self.assertTrue(
                        (p.returncode == 0 and not p.stdout.strip()) or
                        (p.returncode != 0 and "Operation not supported" in err),
                        f"{kind} {rel}: getfattr rc {p.returncode} out {p.stdout!r} err {err}")
                    p = env.run(["getfattr", "-n", "user.foo", path], check=False)
                    self.assertNotEqual(p.returncode, 0, f"{kind} {rel}: user.foo is shown")
                    err = env.txt(p.stderr)
                    self.assertTrue("No such attribute" in err or "not supported" in err, err)
                # getfacl falls back to the mode: owner, group and other only.
                acl = "\n".join(getfacl_tree(mnt).values())
                self.assertIn("user::", acl, kind)
                self.assertNotIn("user:1234", acl, kind)
                self.assertNotIn("default:", acl, kind)


if __name__ == "__main__":
    unittest.main()


class StagedChangesKeepAttributes(unittest.TestCase):
    """A commit keeps the extended attributes and ACLs of base files whose contents were
    staged (the rebuilt node takes them over), and an ACL follows a staged chmod. Checked
    with xorriso restoring the committed session to disk, getfattr and getfacl."""

    def setUp(self):
        mount.require_fuse(self)
        self.tmp = env.TempDir(prefix="discfs-xattr-stage-")
        self.addCleanup(self.tmp.cleanup)
        stage.use_private_dirs(self, self.tmp.path)

    def extract(self, img, name):
        dest = os.path.join(self.tmp.path, name)
        env.run(["xorriso", "-osirrox", "on", "-xattr", "on", "-acl", "on", "-indev", img,
                 "-extract", "/", dest])
        return dest

    def test_rewritten_base_files_keep_xattrs_and_acls(self):
        img = os.path.join(self.tmp.path, "target.iso")
        with open(image("backup"), "rb") as a, open(img, "wb") as b:
            b.write(a.read())
        mnt = self.tmp.sub("mnt")
        changed = ["/files/plain.txt", "/files/binary.bin", "/files/acl_and_attr.bin",
                   "/files/acl.txt", "/files/long_value.bin"]
        with stage.Stage(img, mnt, store=os.path.join(self.tmp.path, "store")):
            with open(os.path.join(mnt, "files/plain.txt"), "ab") as f:
                f.write(b"appended in the stage\n")
            with open(os.path.join(mnt, "files/binary.bin"), "wb") as f:
                f.write(b"rewritten whole\n")
            with open(os.path.join(mnt, "files/acl_and_attr.bin"), "r+b") as f:
                f.seek(100)
                f.write(b"patched")
            with open(os.path.join(mnt, "files/acl.txt"), "ab") as f:
                f.write(b"more\n")
            os.chmod(os.path.join(mnt, "files/acl.txt"), 0o600)
            with open(os.path.join(mnt, "files/long_value.bin"), "ab") as f:
                f.write(b"x")
            stage.commit(mnt)
        out = self.extract(img, "out")
        want = getfattr_tree(_src)
        got = getfattr_tree(out)
        lines = []
        for p in changed:
            w = {k: v for k, v in want.get(p, {}).items() if k != "system.posix_acl_access"}
            g = {k: v for k, v in got.get(p, {}).items() if k != "system.posix_acl_access"}
            lines += attr_diff({p: w}, {p: g})
        self.assertEqual(lines, [], "xattrs lost or changed by the commit:\n  " +
                         "\n  ".join(lines))
        acl = getfacl_tree(out)
        src_acl = getfacl_tree(_src)
        self.assertEqual(acl["/files/acl_and_attr.bin"], src_acl["/files/acl_and_attr.bin"])
        # chmod 0600 on a file with an ACL: the named entries stay, the mask and other follow.
        got_lines = acl["/files/acl.txt"].splitlines()
        self.assertIn("user:1234:rwx", " ".join(got_lines))
        self.assertIn("group:5678:r-x", " ".join(got_lines))
        self.assertIn("mask::---", got_lines)
        self.assertIn("other::---", got_lines)
        with open(os.path.join(out, "files/plain.txt"), "rb") as f:
            self.assertEqual(f.read(), b"plain\nappended in the stage\n")
