"""discfs-dump: the image walked through imagecore (no FUSE), one JSON object a line.

run() describes whatever discfs-dump did (the hostile and upstream suites judge it);
dump() is for images that must read: it raises on a sanitizer report, on output that is
not one JSON object per path, and (check) on an exit code other than 0.
"""

import json
import re

from testlib import env, sanitizers, trees

_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:.]+\] \[\w+\] ")


class Dump:
    """What discfs-dump printed: its exit code, its records, and anything odd.

    raw: {path: the JSON object}, in the printed order; records: {path: trees.Rec}."""

    def __init__(self, cmd, proc):
        self.cmd = cmd
        self.returncode = proc.returncode
        self.stdout = env.txt(proc.stdout)
        self.stderr = env.txt(proc.stderr)
        self.raw = {}
        self.log_lines = []     # spdlog lines that ended up on stdout
        self.bad_lines = []     # neither JSON objects with a path nor log lines
        self.duplicates = []    # paths printed more than once
        for line in self.stdout.splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                (self.log_lines if _LOG_LINE.match(line) else self.bad_lines).append(line)
                continue
            p = obj.get("path") if isinstance(obj, dict) else None
            if not isinstance(p, str):
                self.bad_lines.append(line)
            elif p in self.raw:
                self.duplicates.append(p)
            else:
                self.raw[p] = obj
        self.records = {p: _rec(o) for p, o in self.raw.items()}

    def sanitizer(self):
        return sanitizers.report(self.stderr, self.stdout)

    def describe(self):
        return (f"{' '.join(self.cmd)} -> exit {self.returncode}\n"
                f"stderr: {self.stderr[-3000:]}\nstdout (tail): {self.stdout[-1500:]}")


def _rec(o):
    rdev = o.get("rdev")
    return trees.Rec(type=o.get("type"), mode=o.get("mode"), uid=o.get("uid"),
                     gid=o.get("gid"), nlink=o.get("nlink"),
                     size=o.get("size") if o.get("type") != "dir" else None,
                     mtime=o.get("mtime"), target=o.get("target"),
                     rdev=tuple(rdev) if rdev is not None else None, sha256=o.get("sha256"),
                     ino=o.get("ino"), atime=o.get("atime"), ctime=o.get("ctime"),
                     error=o.get("error"))


def run(image, tree=None, data=True, extra=(), timeout=env.HANG_GUARD):
    """`discfs-dump [--tree T] [--no-data] [EXTRA] IMAGE`; raises only when it hangs."""
    cmd = [env.discfs_dump_bin()]
    if tree:
        cmd += ["--tree", tree]
    if not data:
        cmd.append("--no-data")
    cmd += [str(a) for a in extra] + [image]
    return Dump(cmd, env.run(cmd, check=False, timeout=timeout))


def dump(image, tree=None, data=True, extra=(), check=True, timeout=env.HANG_GUARD):
    """run(), raising AssertionError on a sanitizer report, on lines that are not one JSON
    object per path, and (check) unless it exited 0."""
    d = run(image, tree, data, extra, timeout)
    sanitizers.check(f"discfs-dump {image}", d.stderr, d.stdout)
    if check and d.returncode != 0:
        raise AssertionError(f"discfs-dump exited {d.returncode} on {image}\n"
                             f"stderr: {d.stderr[-4000:]}")
    if d.bad_lines or d.log_lines:
        raise AssertionError(f"discfs-dump printed lines that are not JSON objects with a "
                             f"path: {(d.bad_lines + d.log_lines)[:3]}")
    if d.duplicates:
        raise AssertionError(f"discfs-dump lists {d.duplicates[:5]} more than once")
    return d


def walk_order_problems(raw):
    """Where a dump's order is not root first, depth first: a path printed before its
    directory, a parent that is no directory, a directory re-entered after it was left."""
    paths = list(raw)
    if not paths or paths[0] != "/":
        return ["the first record must be the root"]
    probs, seen, closed, stack = [], {"/"}, set(), ["/"]
    for p in paths[1:]:
        parent = p.rsplit("/", 1)[0] or "/"
        if parent not in seen:
            probs.append(f"{p!r} printed before its directory {parent!r}")
        elif raw[parent].get("type") != "dir":
            probs.append(f"{p!r} printed below {parent!r}, which is no directory")
        while stack and stack[-1] != parent:
            closed.add(stack.pop())
        if parent in closed:
            probs.append(f"{p!r} printed after leaving {parent!r}")
        if raw[p].get("type") == "dir":
            stack.append(p)
        seen.add(p)
    return probs
