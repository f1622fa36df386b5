"""The manual pages stay true to the command (issue 15, item 3).

Every verb `discfs --help` lists has its page man/discfs-VERB.1, every option its
`discfs VERB --help` shows is named in that page (spelled exactly), discfs(1) points to every
verb's page, and each page renders with man(1) without a warning. A new verb or option
without its documentation fails here, naming what is missing.

DISCFS_MANDIR checks installed pages instead (/usr/share/man/man1, gzipped as Debian ships
them); scripts/test.sh does so with the installed package.

Run: /usr/bin/python3 -m testlib -v test_man   (from tests/py)
"""

import functools
import gzip
import os
import re
import shutil
import subprocess
import unittest

from testlib import env

MANDIR = os.environ.get("DISCFS_MANDIR") or os.path.join(env.PROJECT, "man")


@functools.lru_cache(maxsize=None)
def help_text(*verb):
    p = subprocess.run([env.discfs_bin(), *verb, "--help"], capture_output=True, text=True,
                       timeout=env.HANG_GUARD, env=dict(os.environ, LC_ALL="C"))
    if p.returncode != 0:
        raise AssertionError(f"discfs {' '.join(verb)} --help failed: {p.stderr}")
    return p.stdout


def section(text, title):
    """The lines under CLI11's "TITLE:" heading, up to the next heading."""
    out, inside = [], False
    for line in text.splitlines():
        if line == title + ":":
            inside = True
        elif inside and line and not line.startswith(" "):
            break
        elif inside:
            out.append(line)
    return out


def verbs():
    return [line.split()[0] for line in section(help_text(), "Subcommands")
            if re.match(r"  [a-z]", line)]


def options(*verb):
    """Every option name `discfs VERB --help` shows ("-f", "--foreground", "-o", ...)."""
    names = []
    for line in section(help_text(*verb), "Options"):
        m = re.match(r"\s+(-[^\s]+)", line)
        if m:
            names += m.group(1).split(",")
    return names


def page_path(name):
    for candidate in (name + ".1", name + ".1.gz"):
        path = os.path.join(MANDIR, candidate)
        if os.path.exists(path):
            return path
    return None


def page_source(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read()


def plain(roff):
    """The page's words with roff's escapes taken out: "\\-\\-tree" is "--tree"."""
    text = re.sub(r"\\f[BIRP]|\\f\(..|\\%|\\:|\\&", "", roff)
    return text.replace("\\-", "-").replace("\\(em", "-")


def names_option(text, option):
    return re.search(r"(?<![\w-])" + re.escape(option) + r"(?![\w-])", text) is not None


class ManPages(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        env.require_binary(env.discfs_bin(), "discfs")
        cls.verbs = verbs()

    def test_help_lists_verbs(self):
        # The parsing below found something to check.
        self.assertIn("mount", self.verbs)
        self.assertIn("--tree", options("mount"))

    def test_every_verb_has_its_page_naming_every_option(self):
        for verb in self.verbs:
            with self.subTest(verb=verb):
                path = page_path("discfs-" + verb)
                self.assertIsNotNone(path, f"'discfs {verb}' has no manual page "
                                     f"discfs-{verb}.1 in {MANDIR}")
                text = plain(page_source(path))
                self.assertRegex(text, r"(?m)^\.TH DISCFS-" + verb.upper() + r" 1 ")
                for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS",
                                "EXAMPLES", "SEE ALSO"):
                    self.assertRegex(text, r"(?m)^\.SH " + heading + "$",
                                     f"discfs-{verb}.1 has no {heading} section")
                missing = [o for o in options(verb) if not names_option(text, o)]
                self.assertEqual(missing, [], f"discfs-{verb}.1 does not name these options "
                                 f"of 'discfs {verb} --help'")
                self.assertRegex(text, r"discfs \(1\)|discfs\(1\)",
                                 f"discfs-{verb}.1 does not point back to discfs(1)")

    def test_overview_points_to_every_verb_page(self):
        path = page_path("discfs")
        self.assertIsNotNone(path, f"no discfs.1 in {MANDIR}")
        text = plain(page_source(path))
        for verb in self.verbs:
            with self.subTest(verb=verb):
                self.assertRegex(text, r"discfs-" + verb + r" \(1\)",
                                 f"discfs.1 does not point to discfs-{verb}(1)")
        for option in options():
            self.assertTrue(names_option(text, option), f"discfs.1 does not name {option}")

    def test_pages_carry_the_version(self):
        version = subprocess.run([env.discfs_bin(), "--version"], capture_output=True,
                                 text=True, timeout=env.HANG_GUARD).stdout.strip()
        self.assertRegex(version, r"^discfs \d")
        for name in ["discfs"] + ["discfs-" + v for v in self.verbs]:
            path = page_path(name)
            if path is None:
                continue  # named by the test above
            with self.subTest(page=name):
                th = re.search(r'(?m)^\.TH \S+ 1 "[^"]*" "([^"]*)"', page_source(path))
                self.assertIsNotNone(th, f"{name}: no .TH line")
                self.assertEqual(th.group(1), version,
                                 f"{name}'s .TH names another version than --version")

    def test_pages_render_without_warnings(self):
        if not shutil.which("man"):
            self.skipTest("man(1) missing")
        for name in ["discfs"] + ["discfs-" + v for v in self.verbs]:
            path = page_path(name)
            if path is None:
                continue  # named by the test above
            with self.subTest(page=name):
                p = subprocess.run(["man", "--warnings", "-l", path], capture_output=True,
                                   text=True, timeout=env.HANG_GUARD,
                                   env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8",
                                            MAN_KEEP_FORMATTING="0"))
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stderr.strip(), "", f"man --warnings -l {path} warns")
                self.assertIn(name, p.stdout.splitlines()[0].lower().replace("\u2010", "-"))


if __name__ == "__main__":
    unittest.main()
