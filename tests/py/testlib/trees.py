"""The record every view of a tree is turned into, the one walker and the one diff.

A tree is {path: Rec}: "/" is the root, "/a/b" an entry below it.  walk() makes one of
a real directory (a source tree, an extraction, a FUSE mount); readers, discfs-dump and
the probe make the same shape, so that diff() can compare any two field by field.
"""

import collections
import hashlib
import os
import stat

Rec = collections.namedtuple(
    "Rec", "type mode uid gid nlink size mtime target rdev sha256 ino atime ctime error")
Rec.__new__.__defaults__ = (None,) * len(Rec._fields)

# Fields diff() compares by default.
COMPARE_ALL = ("type", "mode", "uid", "gid", "nlink", "size", "mtime", "target", "rdev",
               "sha256")

_TYPE_OF = ((stat.S_ISREG, "reg"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "lnk"),
            (stat.S_ISCHR, "chr"), (stat.S_ISBLK, "blk"), (stat.S_ISFIFO, "fifo"),
            (stat.S_ISSOCK, "sock"))


def type_of(mode):
    """"reg", "dir", "lnk", "chr", "blk", "fifo", "sock" (or "?") for an st_mode."""
    for f, name in _TYPE_OF:
        if f(mode):
            return name
    return "?"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def rec_of(path, data=True):
    """The Rec of one entry (lstat; a regular file's digest, or the error reading it)."""
    st = os.lstat(path)
    t = type_of(st.st_mode)
    # Whole seconds, rounded down (also before 1970), like the dump's times.
    r = Rec(type=t, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
            nlink=st.st_nlink, size=st.st_size if t != "dir" else None,
            mtime=st.st_mtime_ns // 10**9, ino=st.st_ino,
            atime=st.st_atime_ns // 10**9, ctime=st.st_ctime_ns // 10**9)
    if t == "lnk":
        r = r._replace(target=os.readlink(path))
    elif t in ("chr", "blk"):
        r = r._replace(rdev=(os.major(st.st_rdev), os.minor(st.st_rdev)))
    elif t == "reg" and data:
        try:
            r = r._replace(sha256=sha256_file(path))
        except OSError as e:
            r = r._replace(error=f"{e.__class__.__name__}: {e.strerror}")
    return r


def walk(root, data=True, skip=None):
    """Every entry below root, root included as "/": {path: Rec}.  skip(path) leaves an
    entry (and what is below it) out; a directory that cannot be listed raises."""
    def fail(e):
        raise e

    out = {"/": rec_of(root, data)}
    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else "/" + rel_dir
        for name in sorted(dirnames + filenames):
            rel = rel_dir + "/" + name
            if skip and skip(rel):
                continue
            out[rel] = rec_of(os.path.join(dirpath, name), data)
        dirnames[:] = [d for d in dirnames if not (skip and skip(rel_dir + "/" + d))]
    return out


def diff(expected, actual, fields=COMPARE_ALL, keep=None, subset=False, mtime_tolerance=None,
         links=False, max_lines=60):
    """Human-readable differences between two trees (empty when they agree).

    A field the expected record does not know (None) is not compared; fields other than
    the type are compared only where the types agree.  keep(path, exp_rec, field) -> bool
    may leave a field out for an entry.  subset: entries only actual has are fine.
    mtime_tolerance: mtimes may differ by that many seconds.  links: the entries that
    share an inode number (hard links) must be the same groups on both sides."""
    lines = [f"missing: {p!r} (expected {expected[p].type})"
             for p in sorted(set(expected) - set(actual))]
    if not subset:
        lines += [f"unexpected: {p!r} ({actual[p].type})"
                  for p in sorted(set(actual) - set(expected))]
    for p in sorted(set(expected) & set(actual)):
        e, a = expected[p], actual[p]
        if a.error:
            lines.append(f"{p!r}: error reported: {a.error}")
        for f in fields:
            if f != "type" and e.type != a.type:
                continue
            if keep and not keep(p, e, f):
                continue
            ev, av = getattr(e, f), getattr(a, f)
            if ev is None and f != "type":
                continue                    # the reference does not know this field
            if f == "mtime" and mtime_tolerance is not None:
                if av is None or abs(ev - av) > mtime_tolerance:
                    lines.append(f"{p!r}: mtime expected {ev} got {av} (+-{mtime_tolerance} s)")
            elif f == "mode" and av is not None:
                if ev != av:
                    lines.append(f"{p!r}: mode expected {ev:#o} got {av:#o}")
            elif ev != av:
                lines.append(f"{p!r}: {f} expected {ev!r} got {av!r}")
    if links and link_groups(expected) != link_groups(actual):
        lines.append(f"hard link groups differ: expected {link_groups(expected)} "
                     f"got {link_groups(actual)}")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... and {len(lines) - max_lines} more"]
    return lines


def link_groups(tree):
    """Sorted lists of the non-directory paths that share an inode number (2 or more)."""
    by_ino = collections.defaultdict(set)
    for p, r in tree.items():
        if r.type != "dir" and r.ino is not None:
            by_ino[r.ino].add(p)
    return sorted(sorted(g) for g in by_ino.values() if len(g) > 1)


def inode_problems(actual, allowed_groups):
    """Entries sharing an inode number that are not hard links of each other.

    allowed_groups: iterable of path lists that are one file (hard links)."""
    allowed = {}
    for g in allowed_groups:
        for p in g:
            allowed[p] = frozenset(g)
    by_ino = collections.defaultdict(list)
    for p, r in actual.items():
        if r.ino is not None:
            by_ino[r.ino].append(p)
    out = []
    for ino, paths in sorted(by_ino.items(), key=lambda kv: kv[1]):
        if len(paths) > 1 and not all(p in allowed and set(paths) <= allowed[p] for p in paths):
            out.append(f"ino {ino} shared by unrelated entries: {sorted(paths)[:6]}")
    return out


def subdir_counts(tree):
    """{dir path: number of direct subdirectories}."""
    counts = {p: 0 for p, r in tree.items() if r.type == "dir"}
    for p, r in tree.items():
        if r.type == "dir" and p != "/":
            parent = p.rsplit("/", 1)[0] or "/"
            if parent in counts:
                counts[parent] += 1
    return counts


def dir_nlink_problems(ref, actual):
    """A directory's st_nlink must be what Rock Ridge recorded (ref) or 2 + subdirs."""
    counts = subdir_counts(actual)
    out = []
    for p, r in sorted(actual.items()):
        if r.type != "dir" or p not in ref or ref[p].nlink is None:
            continue                 # the reference does not know what was recorded
        allowed = {2 + counts[p], ref[p].nlink}
        if r.nlink not in allowed:
            out.append(f"{p!r}: directory nlink {r.nlink}, expected one of {sorted(allowed)}")
    return out


def without_rr_moved(tree):
    """The tree without an empty /rr_moved (a relocation leftover readers show or hide)."""
    t = dict(tree)
    if "/rr_moved" in t and not any(p.startswith("/rr_moved/") for p in t):
        del t["/rr_moved"]
    return t
