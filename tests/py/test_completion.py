"""Bash completion for discfs (issue 15, item 3): packaging/bash-completion/discfs.

Completion runs in a real bash with the file sourced, the way bash calls it on TAB
(COMP_WORDS, COMP_CWORD, then the function `complete -p discfs` names), and what it offers is
compared with `discfs --help` and `discfs VERB --help`: every verb, every option of each
verb, the values of an option with a fixed set. Arguments: image files (not other files) and
drives for mount and info, folders for a mount point, discfs mounts from the mount table for
commit, status and discard.

DISCFS_COMPLETION checks another copy (the installed one, in scripts/test.sh).

Run: /usr/bin/python3 -m testlib -v test_completion   (from tests/py)
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from testlib import env
from test_man import options, verbs

SCRIPT = os.environ.get("DISCFS_COMPLETION") or os.path.join(
    env.PROJECT, "packaging", "bash-completion", "discfs")


def complete(words, cwd=None, setup=""):
    """What bash offers for the command line `words` (the last one being completed)."""
    bash = f"""
set -u
source {sh_quote(SCRIPT)}
{CACHE[0]}
{setup}
fn=$(complete -p discfs | sed -n 's/.* -F \\([^ ]*\\) .*/\\1/p')
COMP_WORDS=("$@")
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="$*"
COMP_POINT=${{#COMP_LINE}}
"$fn" discfs "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", bash, "bash",
                        env.discfs_bin(), *words], capture_output=True, text=True, cwd=cwd,
                       timeout=env.HANG_GUARD, env=dict(os.environ, LC_ALL="C"))
    if p.returncode != 0 or p.stderr:
        raise AssertionError(f"completing {words}: exit {p.returncode}: {p.stderr}")
    return sorted(line for line in p.stdout.split("\n") if line)


# `declare -p` of the completion's cache of --help texts, filled once (setUpClass): each
# --help of the sanitizer build takes about a second, and every case runs a new bash.
CACHE = [""]


def warm_cache(verb_list):
    bash = f"""
source {sh_quote(SCRIPT)}
for v in "" {' '.join(verb_list)}; do _discfs_help "$1" "$v" >/dev/null; done
declare -p _discfs_help_cache
"""
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", bash, "bash", env.discfs_bin()],
                       capture_output=True, text=True, timeout=env.HANG_GUARD,
                       env=dict(os.environ, LC_ALL="C"), check=True)
    CACHE[0] = p.stdout.replace("declare -A", "declare -gA")


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


class Completion(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        env.require_binary(env.discfs_bin(), "discfs")
        if not shutil.which("bash"):
            raise unittest.SkipTest("bash missing")
        cls.verbs = verbs()
        warm_cache(cls.verbs)
        cls.dir = tempfile.mkdtemp(prefix="discfs-completion.")
        for name in ("disc.iso", "OLD.ISO", "notes.txt", "win.udf"):
            open(os.path.join(cls.dir, name), "w").close()
        os.mkdir(os.path.join(cls.dir, "folder"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_verbs_are_those_of_help(self):
        self.assertEqual(complete([""]), sorted(self.verbs))
        self.assertEqual(complete(["st"]), sorted(v for v in self.verbs if v.startswith("st")))

    def test_options_of_every_verb_are_those_of_help(self):
        for verb in self.verbs:
            with self.subTest(verb=verb):
                want = sorted(options(verb))
                self.assertEqual(complete([verb, "-"]), want)
                self.assertEqual(complete([verb, "--"]),
                                 sorted(o for o in want if o.startswith("--")))
        self.assertEqual(complete(["-"]), sorted(options()))

    def test_option_values_from_a_fixed_set(self):
        self.assertEqual(complete(["mount", "--tree", ""]),
                         sorted(["auto", "rockridge", "udf", "joliet", "iso9660"]))
        self.assertEqual(complete(["mount", "--tree", "j"]), ["joliet"])
        # The value is no positional: the next word is the SOURCE again.
        self.assertEqual(complete(["mount", "--tree", "udf", ""], cwd=self.dir),
                         ["OLD.ISO", "disc.iso", "folder", "win.udf"])

    def test_mount_offers_images_drives_and_folders(self):
        self.assertEqual(complete(["mount", ""], cwd=self.dir),
                         ["OLD.ISO", "disc.iso", "folder", "win.udf"])
        self.assertEqual(complete(["mount", "-f", "disc.iso", ""], cwd=self.dir), ["folder"])
        self.assertEqual(complete(["info", "--json", "n"], cwd=self.dir), [])
        # The mount.fuse3 form: "discfs SOURCE MOUNTPOINT".
        self.assertEqual(complete(["./d"], cwd=self.dir), ["./disc.iso"])
        self.assertEqual(complete(["./disc.iso", ""], cwd=self.dir), ["folder"])
        fake = os.path.join(self.dir + ".dev")
        os.makedirs(fake, exist_ok=True)
        self.addCleanup(shutil.rmtree, fake, True)
        for d in ("sr0", "sr1", "sda"):
            open(os.path.join(fake, d), "w").close()
        setup = f"_discfs_dev_glob={sh_quote(fake)}/sr*"
        self.assertEqual(complete(["info", fake + "/s"], setup=setup),
                         [fake + "/sr0", fake + "/sr1"])

    def test_mount_options(self):
        self.assertEqual(complete(["mount", "-o", "uid=1,se"]),
                         ["uid=1,session=", "uid=1,sessions"])

    def test_stage_verbs_offer_discfs_mounts(self):
        table = os.path.join(self.dir, "mounts")
        with open(table, "w") as f:
            f.write("/srv/a.iso /media/my\\040stage fuse.discfs rw,nosuid,nodev 0 0\n"
                    "/dev/sda1 /home ext4 rw 0 0\n"
                    "archive.iso /mnt/ro fuse.discfs ro,nosuid,nodev 0 0\n")
        setup = f"_discfs_mounts={sh_quote(table)}"
        for verb in ("commit", "status", "discard"):
            with self.subTest(verb=verb):
                self.assertEqual(complete([verb, ""], setup=setup),
                                 ["/media/my stage", "/mnt/ro"])
                self.assertEqual(complete([verb, "--json" if verb != "discard" else "--all",
                                           "/me"], setup=setup), ["/media/my stage"])
        # No discfs mount matches: folders.
        self.assertEqual(complete(["status", "f"], setup=setup, cwd=self.dir), ["folder"])


if __name__ == "__main__":
    unittest.main()
