"""The third-party file-system suites (pjdfstest; fsx and fsstress from xfstests): building
them, running pjdfstest and judging its results against the expected-failures list.

The sources are the upstream tarballs in ../shared/third-party/ (next to the checkout);
tests/thirdparty/build.sh unpacks, patches and builds them into build/thirdparty/ (kept while
the tarballs and patches are unchanged). The tests skip, saying why, when the sources are
absent.

tests/thirdparty/pjdfstest-expected.tsv lists the pjdfstest checks that fail on the stage
mount on purpose (a limitation by design) or for a known, filed reason: one line a test file,

    FILE <TAB> TESTS <TAB> WHERE <TAB> REASON
    chmod/12.t   3-4,7-8   all   issue 10 item 8, being fixed: ...

TESTS are test numbers and ranges; WHERE is `all` or the runs (`fresh`, `iso`,
comma-separated) the line holds for. A run fails on a check that fails and is not listed, and
on a listed check that passes (so that the list stays true: remove the line when the fix
lands).
"""

import collections
import os
import re
import subprocess
import unittest

from testlib import env

BUILD_SH = os.path.join(env.PROJECT, "tests", "thirdparty", "build.sh")
EXPECTED = os.path.join(env.PROJECT, "tests", "thirdparty", "pjdfstest-expected.tsv")


def out_dir():
    return os.environ.get("DISCFS_THIRDPARTY_BUILD") or os.path.join(env.PROJECT, "build",
                                                                     "thirdparty")


def pjdfstest_dir():
    return os.path.join(out_dir(), "pjdfstest")


def fsx_bin():
    return os.path.join(out_dir(), "xfstests", "ltp", "fsx")


def fsstress_bin():
    return os.path.join(out_dir(), "xfstests", "ltp", "fsstress")


def require_built():
    """Builds the suites (a no-op when up to date); SkipTest when the sources are absent."""
    p = env.run(["bash", BUILD_SH, out_dir()], check=False, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"tests/thirdparty/build.sh failed (exit {p.returncode}):\n"
                           f"{env.txt(p.stderr)[-4000:]}")
    for f in (os.path.join(pjdfstest_dir(), "pjdfstest"), fsx_bin(), fsstress_bin()):
        if not os.access(f, os.X_OK):
            why = env.txt(p.stderr).strip() or f"{f} is missing"
            raise unittest.SkipTest(f"the third-party suites are not built: {why}")


# --------------------------------------------------------------------------
# pjdfstest's results
# --------------------------------------------------------------------------

_HEADER = re.compile(r"^(\S+\.t) \.\.+ ?(.*)$")
_PLAN = re.compile(r"^1\.\.(\d+)")
_TAP = re.compile(r"^(not )?ok (\d+)\b(.*)$")


class FileResult:
    def __init__(self):
        self.plan = None
        self.failed = {}        # number -> the TAP line
        self.seen = set()

    def failing(self):
        """{number: why} of the checks that failed or never ran."""
        out = dict(self.failed)
        if self.plan is None:
            out[0] = "no plan: the test file did not run to its end"
        else:
            for n in range(1, self.plan + 1):
                if n not in self.seen:
                    out.setdefault(n, "not run")
        return out


def parse_prove(text, tests_dir):
    """{"chmod/12.t": FileResult} from `prove -r -v` output (paths made relative to
    tests_dir). A check passes on `ok N` and on `not ok N # TODO` (TAP's expected failure,
    which pjdfstest uses for other systems' quirks)."""
    results = collections.OrderedDict()
    cur = None
    prefix = tests_dir.rstrip("/") + "/"

    def tap(line):
        m = _PLAN.match(line)
        if m and cur.plan is None:
            cur.plan = int(m.group(1))
            return
        m = _TAP.match(line)
        if m:
            n = int(m.group(2))
            cur.seen.add(n)
            todo = re.search(r"#\s*TODO", m.group(3), re.I)
            if m.group(1) and not todo:
                cur.failed[n] = line.strip()

    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            name = m.group(1)
            if name.startswith(prefix):
                name = name[len(prefix):]
            cur = results.setdefault(name, FileResult())
            if m.group(2):
                tap(m.group(2))
            continue
        if cur is not None:
            tap(line)
    return results


def parse_numbers(spec):
    """"3-4,7" -> {3, 4, 7}."""
    out = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        else:
            out.add(int(part))
    return out


def format_numbers(nums):
    """{3, 4, 7} -> "3-4,7"."""
    nums = sorted(nums)
    parts = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(parts)


def expected_failures(run, path=EXPECTED):
    """{file: {number: reason}} the list expects to fail in `run` ("fresh", "iso")."""
    out = collections.defaultdict(dict)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 4:
                raise AssertionError(f"{path}:{lineno}: want 4 tab-separated columns "
                                     f"(FILE TESTS WHERE REASON), got {len(cols)}")
            name, nums, where, reason = (c.strip() for c in cols)
            runs = {w.strip() for w in where.split(",")}
            if "all" not in runs and run not in runs:
                continue
            for n in parse_numbers(nums):
                out[name][n] = reason
    return out


def judge(results, expected, tests_dir):
    """Lines saying what disagrees with the list: unexpected failures, and listed failures
    that passed (or whose test file no longer exists)."""
    unexpected, fixed = [], []
    for name, res in results.items():
        failing = res.failing()
        exp = expected.get(name, {})
        for n in sorted(set(failing) - set(exp)):
            unexpected.append(f"{name} #{n}: {failing[n]}")
        for n in sorted(set(exp) - set(failing)):
            fixed.append(f"{name} #{n} passes now (listed: {exp[n]})")
    for name in sorted(set(expected) - set(results)):
        if not os.path.exists(os.path.join(tests_dir, name)):
            fixed.append(f"{name} is listed but is not a pjdfstest test file")
        else:
            fixed.append(f"{name} is listed but did not run")
    out = []
    if unexpected:
        out.append(f"{len(unexpected)} unexpected failures (fix them, or list them with the "
                   f"reason in tests/thirdparty/pjdfstest-expected.tsv):")
        out += ["  " + x for x in unexpected]
    if fixed:
        out.append(f"{len(fixed)} listed failures did not fail (remove them from "
                   f"tests/thirdparty/pjdfstest-expected.tsv):")
        out += ["  " + x for x in fixed]
    return out


def summary(results):
    """{file: "3-4,7"} of every failing check: the list's TESTS column for a new run."""
    return {name: format_numbers(res.failing()) for name, res in results.items()
            if res.failing()}


def run_pjdfstest(cwd, log_path, timeout=1500):
    """`prove -r -v TESTS` as root from cwd (a directory inside the mount under test).
    Returns (parsed results, the whole output). The guard is against a hang only."""
    tests = os.path.join(pjdfstest_dir(), "tests")
    with open(log_path, "wb") as log:
        try:
            p = subprocess.run(["prove", "-r", "-v", tests], cwd=cwd, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"pjdfstest hung (no end after {timeout}s); output in "
                                 f"{log_path}") from e
    with open(log_path, "rb") as f:
        text = env.txt(f.read())
    del p
    return parse_prove(text, tests), text
