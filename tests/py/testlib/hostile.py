"""Hostile images: the rules every case is checked by, and the case registry.

A case is a function that makes one damaged image (bytes found with isolayout or
udf.UdfLayout, never by asking discfs) and says what it must show (Expect).  Cases
registers them; add_tests() gives a TestCase class test_<case>_dump and
test_<case>_mount for each, run by CaseRunner:

- nothing crashes, hangs (every command runs under a 60 s hang guard) or prints a
  sanitizer report;
- the damaged entry is still listed and reads as EIO, and the daemon's log names it;
- every undamaged entry is listed with the source's type, size, content and target;
- names never escape: no component "", ".", "..", with "/" or NUL, none over 255 bytes,
  every listed name can be looked up, "." and ".." once each;
- a directory loop never makes the tree endless;
- an image that cannot be shown is refused with the documented exit code and one line.
"""

import os
import re

from testlib import dump, env, mount, sanitizers, trees
from testlib import probe as probe_

TIMEOUT = probe_.TIMEOUT


class Expect:
    """Expectations of one hostile image.

    refuse      None: the image must open (dump exit 0, the mount goes live).
                Else the exit code it is refused with (man/discfs.1, EXIT STATUS).
    may_open    with refuse: opening it instead is fine too (then only the
                safety checks apply, and the mount's root must be usable).
    tree        the source records ({path: Rec}) of the image.
    eio_files   listed, and reading them fails with EIO.
    eio_dirs    listed, and listing them fails with EIO.
    maybe_eio   listed; read either their source content or EIO.
    loops       directory records that loop back: hidden, or fail with EIO
                (ELOOP from the kernel in a mount); nothing below them shown.
    replaceable may be missing or shown under another (sane) name, one each,
                in the same directory; read their source content or EIO.
    fragile     {dir: set of child paths}: those children may be missing;
                present ones read their source content or EIO.  The listing
                of dir itself may fail with EIO when fragile_listing.
    extras      {dir: n}: up to n unknown (sane) names may appear there.
    """

    def __init__(self, tree, refuse=None, may_open=False, eio_files=(), eio_dirs=(),
                 maybe_eio=(), loops=(), replaceable=(), fragile=None, fragile_listing=(),
                 extras=None, note=""):
        self.tree = tree
        self.refuse = refuse
        self.may_open = may_open
        self.eio_files = set(eio_files)
        self.eio_dirs = set(eio_dirs)
        self.maybe_eio = set(maybe_eio)
        self.loops = set(loops)
        self.replaceable = set(replaceable)
        self.fragile = {d: set(c) for d, c in (fragile or {}).items()}
        self.fragile_listing = set(fragile_listing)
        self.extras = dict(extras or {})
        self.note = note

    # -- classification of source paths --------------------------------------

    def _under(self, p, dirs):
        return any(p.startswith(d.rstrip("/") + "/") for d in dirs)

    def kind(self, p):
        if self._under(p, self.eio_dirs) or self._under(p, self.loops):
            return "gone"
        if p in self.eio_dirs:
            return "eio_dir"
        if p in self.loops:
            return "loop"
        if p in self.fragile_listing:
            return "fragile_dir"
        for d, kids in self.fragile.items():
            if p in kids or self._under(p, kids):
                return "fragile"
            if d in self.fragile_listing and self._under(p, [d]):
                return "fragile"
        if p in self.eio_files:
            return "eio_file"
        if p in self.maybe_eio:
            return "maybe_eio"
        if p in self.replaceable:
            return "replaceable"
        return "intact"

    def allowed_unknown(self):
        """{dir: how many unknown names may appear in it}."""
        out = dict(self.extras)
        for p in self.replaceable:
            d = p.rsplit("/", 1)[0] or "/"
            out[d] = out.get(d, 0) + 1
        return out


def _same_content(src, sha, size):
    if src.type != "reg":
        return True
    return sha == src.sha256 and (size is None or size == src.size)


# ---------------------------------------------------------------------------
# Checks shared by the dump and the mount
# ---------------------------------------------------------------------------

def unknown_problems(exp, view_paths):
    """Names in the view that the source does not have, beyond what exp allows."""
    allowed = exp.allowed_unknown()
    probs = []
    by_dir = {}
    for p in sorted(view_paths):
        if p == "/" or p in exp.tree:
            continue
        parent = p.rsplit("/", 1)[0] or "/"
        # Below an unknown directory: counted with that directory.
        anc = parent
        while anc not in exp.tree and anc != "/":
            anc = anc.rsplit("/", 1)[0] or "/"
        if anc != parent:
            continue
        by_dir.setdefault(parent, []).append(p)
    for d, paths in sorted(by_dir.items()):
        n = allowed.get(d, 0)
        if len(paths) > n:
            probs.append(f"unexpected names in {d!r} ({len(paths)} unknown, {n} allowed): "
                         f"{[os.path.basename(x) for x in paths][:8]}")
    return probs


# ---------------------------------------------------------------------------
# The case runner
# ---------------------------------------------------------------------------

class CaseRunner:
    """Runs discfs-dump or a mount on one hostile image and checks it against Expect."""

    def __init__(self, test, name, image, exp, where):
        """where: what makes the mount point (where.sub(name) -> a new directory)."""
        self.t, self.name, self.image, self.exp, self.where = test, name, image, exp, where

    def fail(self, lines, what):
        if lines:
            self.t.fail(abbreviate(
                f"[{self.name}] {what}:\n  " + "\n  ".join(lines[:40]) +
                (f"\n  ... {len(lines) - 40} more" if len(lines) > 40 else "") +
                f"\n  image: {self.image}" + (f"\n  ({self.exp.note})" if self.exp.note
                                              else "")))

    # -- discfs-dump ------------------------------------------------------------

    def run_dump(self):
        exp = self.exp
        d = dump.run(self.image, timeout=TIMEOUT)
        rep = d.sanitizer()
        if rep:
            self.t.fail(f"[{self.name}] sanitizer report from discfs-dump: {rep}\n{d.describe()}")
        if d.bad_lines:
            self.t.fail(f"[{self.name}] discfs-dump printed lines that are not JSON: "
                        f"{d.bad_lines[:3]}")
        if exp.refuse is not None and d.returncode != 0:
            self.t.assertEqual(d.returncode, exp.refuse,
                               f"[{self.name}] discfs-dump exit code\n{d.describe()}")
            return d
        if exp.refuse is not None and not exp.may_open:
            self.t.fail(f"[{self.name}] discfs-dump opened an image it must refuse "
                        f"(expected exit {exp.refuse})\n{d.describe()}")
        self.t.assertEqual(d.returncode, 0, f"[{self.name}] discfs-dump must walk the image\n"
                                            f"{d.describe()}")
        self.fail(dump_name_problems(d), "discfs-dump prints bad paths")
        if exp.refuse is not None:
            return d                         # opened a random image: safety only
        self.fail(self.dump_problems(d.raw), "discfs-dump does not match the source")
        return d

    def dump_problems(self, recs):
        """recs: {path: the dump's JSON object}."""
        exp = self.exp
        probs = []
        children = {}
        for p in recs:
            if p != "/":
                children.setdefault(p.rsplit("/", 1)[0] or "/", []).append(p)
        for p, src in sorted(exp.tree.items()):
            k = exp.kind(p)
            r = recs.get(p)
            if k == "gone":
                if r is not None:
                    probs.append(f"{p!r} must not be reachable (its directory is damaged), "
                                 f"but is listed")
                continue
            if r is None:
                if k in ("intact", "eio_file", "eio_dir", "maybe_eio", "fragile_dir"):
                    probs.append(f"{p!r} is missing ({k})")
                continue
            err, sha = r.get("error"), r.get("sha256")
            if k in ("intact", "maybe_eio", "replaceable", "fragile", "fragile_dir") and \
                    r.get("type") != src.type:
                probs.append(f"{p!r}: type {r.get('type')} (source: {src.type})")
                continue
            if k == "intact":
                if err:
                    probs.append(f"{p!r}: undamaged but reports error {err!r}")
                elif src.type == "reg" and not _same_content(src, sha, r.get("size")):
                    probs.append(f"{p!r}: size/sha256 {r.get('size')}/{sha} differ from the "
                                 f"source {src.size}/{src.sha256}")
                elif src.type == "lnk" and r.get("target") != src.target:
                    probs.append(f"{p!r}: target {r.get('target')!r} (source {src.target!r})")
            elif k in ("eio_file", "eio_dir"):
                if not err:
                    probs.append(f"{p!r} is damaged but discfs-dump reports no error "
                                 f"(sha256 {sha})")
                if k == "eio_dir" and children.get(p):
                    probs.append(f"{p!r} is damaged but discfs-dump lists entries in it: "
                                 f"{children[p][:4]}")
            elif k == "loop":
                if not err and children.get(p):
                    probs.append(f"{p!r} loops back to an ancestor, yet discfs-dump descends "
                                 f"into it ({len([q for q in recs if q.startswith(p + '/')])} "
                                 f"entries below it, e.g. {children[p][:2]})")
            elif k in ("maybe_eio", "replaceable", "fragile"):
                if src.type == "reg" and not err and not _same_content(src, sha, r.get("size")):
                    probs.append(f"{p!r}: reads wrong data (sha256 {sha}, size "
                                 f"{r.get('size')}; source {src.sha256}, {src.size}); "
                                 f"it must read its data or fail")
        probs += unknown_problems(exp, set(recs))
        depth = max((p.count("/") for p in recs), default=0)
        src_depth = max(p.count("/") for p in exp.tree)
        if depth > src_depth + 2:
            probs.append(f"discfs-dump shows paths {depth} levels deep (the source has "
                         f"{src_depth}): an endless tree, e.g. "
                         f"{max(recs, key=lambda q: q.count('/'))[:200]!r}")
        return probs

    # -- the mount ----------------------------------------------------------------

    def run_mount(self):
        exp = self.exp
        mnt = self.where.sub("mnt-" + self.name)
        with mount.Mount(self.image, mnt, env=sanitizers.without_leak_check(),
                         report=True) as m:
            if m.refused is None:
                probe = probe_.probe_mount(mnt)
                tools = (probe_.explore_with_tools(mnt, probe) if "root_error" not in probe
                         else None)
                extra_cats, extra_ls = {}, {}
                if tools is not None:
                    for p in sorted(exp.eio_files | exp.maybe_eio):
                        if p not in tools["cat"]:
                            c = env.run(["cat", "--", os.path.join(mnt, p.lstrip("/"))],
                                        check=False, timeout=TIMEOUT)
                            extra_cats[p] = (c.returncode, trees.sha256(c.stdout),
                                             env.txt(c.stderr))
                    for p in sorted(exp.eio_dirs | exp.loops | set(exp.fragile_listing)):
                        extra_ls[p] = probe_.ls_dir(mnt, p)
        for pr in m.problems:
            self.t.fail(f"[{self.name}] {pr}")
        if m.refused is not None:
            self.check_refusal(m)
            return
        if exp.refuse is not None and not exp.may_open:
            self.t.fail(f"[{self.name}] the image was mounted, but must be refused with exit "
                        f"{exp.refuse}")
        if "root_error" in probe:
            self.t.fail(f"[{self.name}] `discfs mount` went live, but the mount point itself "
                        f"gives {probe['root_error']} (stat fails): a mount that cannot be used "
                        f"must be refused instead\n--- daemon log ---\n{m.stderr[-3000:]}")
        cat_all = dict(tools["cat"])
        cat_all.update(extra_cats)
        with self.t.subTest(check="names"):
            self.fail(name_problems(probe) + probe_.tool_loop_reports(tools),
                      "names and shape of the mounted tree")
        if exp.refuse is not None:
            return                                   # opened a random image: safety only
        with self.t.subTest(check="entries"):
            self.fail(self.mount_problems(probe, cat_all, extra_ls), "the mount")
        with self.t.subTest(check="log"):
            missing = []
            for p in sorted(exp.eio_files | exp.eio_dirs | exp.loops):
                if exp.kind(p) not in ("eio_file", "eio_dir", "loop"):
                    continue
                base = p.rsplit("/", 1)[1]
                if base not in m.stderr:
                    missing.append(f"no log line names the damaged entry {p!r}")
            self.fail(missing + ([f"daemon log:\n{m.stderr[-2000:]}"] if missing else []),
                      "the daemon's log")

    def check_refusal(self, m):
        exp = self.exp
        if exp.refuse is None:
            self.t.fail(f"[{self.name}] discfs refused to mount (exit {m.refused}) an image "
                        f"that must be mounted\n{m.stderr[-3000:]}")
        self.t.assertEqual(m.refused, exp.refuse, f"[{self.name}] exit code of the refused "
                                                  f"mount\n{m.stderr[-2000:]}")
        lines = [ln for ln in m.stderr.splitlines() if ln.strip()]
        self.t.assertEqual(len(lines), 1, f"[{self.name}] a refusal must be one line, got "
                                          f"{lines[:10]}")

    def mount_problems(self, probe, cats, extra_ls):
        exp = self.exp
        ents = probe["entries"]
        lerr = probe["listing_errors"]
        probs = []
        for p, src in sorted(exp.tree.items()):
            k = exp.kind(p)
            e = ents.get(p)
            if k == "gone":
                if e is not None:
                    probs.append(f"{p!r} must not be reachable (its directory is damaged)")
                continue
            if e is None:
                if k in ("intact", "eio_file", "eio_dir", "maybe_eio", "fragile_dir"):
                    probs.append(f"{p!r} is missing ({k})")
                continue
            if "lstat_error" in e:
                if k == "loop" and e["lstat_error"] in ("EIO", "ELOOP"):
                    continue
                if k in ("eio_file", "eio_dir", "maybe_eio", "replaceable", "fragile",
                         "fragile_dir") and e["lstat_error"] == "EIO":
                    continue
                probs.append(f"{p!r}: stat fails with {e['lstat_error']} ({k})")
                continue
            if e["type"] != src.type and k != "loop":
                probs.append(f"{p!r}: type {e['type']} (source {src.type})")
                continue
            cat = cats.get(p)
            if k == "intact":
                if src.type == "reg":
                    if e.get("read_error"):
                        probs.append(f"{p!r}: undamaged but reading fails with "
                                     f"{e['read_error']}")
                    elif not _same_content(src, e.get("sha256"), e["size"]):
                        probs.append(f"{p!r}: reads wrong data (size {e['size']}, source "
                                     f"{src.size})")
                    if cat and cat[0] != 0:
                        probs.append(f"{p!r}: cat fails: {cat[2].strip()}")
                elif src.type == "lnk" and e.get("target") != src.target:
                    probs.append(f"{p!r}: target {e.get('target')!r} (source {src.target!r})")
                elif src.type == "dir" and p in lerr:
                    probs.append(f"{p!r}: undamaged directory, listing fails with {lerr[p]}")
            elif k == "eio_file":
                if cat is None:
                    probs.append(f"{p!r}: not read")
                elif cat[0] == 0 or "Input/output error" not in cat[2]:
                    probs.append(f"{p!r} is damaged: cat must fail with 'Input/output error', "
                                 f"got exit {cat[0]} {cat[2].strip()!r}"
                                 + (" (and printed the source's bytes)"
                                    if cat[1] == src.sha256 else ""))
            elif k == "eio_dir":
                rc, _, err = extra_ls.get(p, (None, "", ""))
                if rc == 0 or "Input/output error" not in err:
                    probs.append(f"{p!r} is damaged: ls must fail with 'Input/output error', "
                                 f"got exit {rc} {err.strip()!r}")
            elif k == "loop":
                rc, _, err = extra_ls.get(p, (None, "", ""))
                if rc == 0 and p not in lerr:
                    probs.append(f"{p!r} loops back to an ancestor, yet it is listed and can "
                                 f"be listed in turn (ls exit 0)")
            elif k in ("maybe_eio", "replaceable", "fragile"):
                if src.type == "reg":
                    if cat and cat[0] != 0 and "Input/output error" not in cat[2]:
                        probs.append(f"{p!r}: cat fails, but not with EIO: {cat[2].strip()!r}")
                    if cat and cat[0] == 0 and cat[1] != src.sha256:
                        probs.append(f"{p!r}: cat prints wrong data (it must print the "
                                     f"source's bytes or fail with EIO)")
                if k == "fragile" and src.type == "dir" and p in lerr and lerr[p] != "EIO":
                    probs.append(f"{p!r}: listing fails with {lerr[p]}, not EIO")
        for d in exp.fragile_listing:
            if d in lerr and lerr[d] != "EIO":
                probs.append(f"{d!r}: listing fails with {lerr[d]}, not EIO")
        # Unknown entries: counted, and whatever they are they must not crash anything;
        # cat of them must succeed or fail with EIO.
        probs += unknown_problems(exp, set(ents))
        for p, c in sorted(cats.items()):
            if p not in exp.tree and c[0] != 0 and "Input/output error" not in c[2]:
                probs.append(f"{p!r} (unknown entry): cat fails oddly: {c[2].strip()!r}")
        return probs


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------

class Cases:
    """Named hostile-image cases: @cases.case registers a function that makes one image
    and returns (path, Expect); build(name) makes it once."""

    def __init__(self):
        self.makers = {}
        self.built = {}

    def case(self, fn):
        self.makers[fn.__name__] = fn
        return fn

    def build(self, name):
        if name not in self.built:
            self.built[name] = self.makers[name]()
        return self.built[name]

    def add_tests(self, cls, where):
        """Adds test_<name>_dump and test_<name>_mount for every case to the TestCase class
        cls; where.sub() makes the mount points."""
        for name in self.makers:
            self._add(cls, name, where)

    def _add(self, cls, name, where):
        def test_dump(test):
            img, exp = self.build(name)
            CaseRunner(test, name, img, exp, where).run_dump()

        def test_mount(test):
            mount.require_fuse(test)
            img, exp = self.build(name)
            CaseRunner(test, name, img, exp, where).run_mount()

        test_dump.__doc__ = f"discfs-dump on the hostile image '{name}'"
        test_mount.__doc__ = f"mount + find/ls -lR/cat on the hostile image '{name}'"
        setattr(cls, f"test_{name}_dump", test_dump)
        setattr(cls, f"test_{name}_mount", test_mount)


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

def abbreviate(text):
    """Shorten runs of one character (the 200-byte names of hostile images) in messages."""
    return re.sub(r"(.)\1{31,}", lambda m: m.group(1) * 8 + f"<...{len(m.group(0))} x "
                  f"{m.group(1)!r}>", text)


def path_problems(paths, types=None):
    """Problems with the shape of a set of absolute paths (as a dump prints them):
    components that are empty, '.', '..', contain NUL, or a parent that is not
    a listed directory (a name with '/' in it shows up that way)."""
    probs = []
    for p in paths:
        if p == "/":
            continue
        if not p.startswith("/"):
            probs.append(f"{p!r}: not absolute")
            continue
        comps = p[1:].split("/")
        for c in comps:
            if c in ("", ".", ".."):
                probs.append(f"{p!r}: path component {c!r}")
            if "\x00" in c:
                probs.append(f"{p!r}: NUL byte in a name")
            if len(os.fsencode(c)) > 255:
                probs.append(f"{p!r}: a name longer than 255 bytes")
        parent = p.rsplit("/", 1)[0] or "/"
        if parent not in paths:
            probs.append(f"{p!r}: its parent {parent!r} is not listed (a '/' inside a name?)")
        elif types is not None and types.get(parent) != "dir":
            probs.append(f"{p!r}: its parent {parent!r} is not a directory")
    return probs


def dump_name_problems(d):
    """What is wrong with the paths a dump printed (dump.Dump)."""
    probs = path_problems(set(d.raw), {p: o.get("type") for p, o in d.raw.items()})
    return probs + [f"{p!r} printed twice" for p in d.duplicates]


def name_problems(probe):
    """What is wrong with the names a probe of a mount saw: a name listed twice, '.' or
    '..' more than once, a bad path, a listed name that cannot be looked up."""
    probs = list(probe["problems"])
    for d, (dots, dotdots) in sorted(probe["dots"].items()):
        if dots > 1 or dotdots > 1:
            probs.append(f"{d!r}: readdir returns '.' {dots} times and '..' {dotdots} "
                         f"times (a name shown as '.' or '..')")
    ents = probe["entries"]
    probs += path_problems(set(ents), {p: e.get("type") for p, e in ents.items()})
    for p, e in sorted(ents.items()):
        if e.get("lstat_error") in ("ENOENT", "ENAMETOOLONG", "EINVAL"):
            probs.append(f"{p!r} is listed but cannot be looked up ({e['lstat_error']}): "
                         f"the listed name is not the real one")
    return probs
