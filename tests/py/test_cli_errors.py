"""What `discfs` answers when a verb fails in a way its code did not plan for.

Every failure ends in one exit path (cli/main.cc, exit_status_for in cli/exit_codes.h): the
exit code man/discfs.1 documents and one line "discfs: SENTENCE" on stderr.  Before it, an
exception that was not an imagecore::Error ended the process in std::terminate (exit 134,
"terminate called after throwing ...").  The inputs here are real ones that did that:

- a store whose database holds a pending session that is not a number (damaged, or edited
  by hand): `discfs status --store` and `discfs discard --store` ended in std::stoull;
  now the store says so -> 3, cannot open, naming store.db and the bad value;
- `discfs stage` run from a directory that has been removed: the target's absolute path
  cannot be made -> 3, cannot open, naming the target.

And `discfs stage -o user,noauto,_netdev,...` (what fstab and mount.fuse3 pass) mounts, as
`discfs mount` does: those options are not handed on to libfuse, which refused them.

Run: /usr/bin/python3 -m testlib -v test_cli_errors   (from tests/py)
"""

import json
import os
import sqlite3
import unittest
from unittest import mock

from testlib import env, mount, sanitizers

EXIT_CANNOT_OPEN = env.EXIT_CANNOT_OPEN


class CliErrors(unittest.TestCase):
    def setUp(self):
        env.require_binary(env.discfs_bin(), "discfs")
        self.tmp = env.TempDir(prefix="discfs-cli-errors-")
        self.addCleanup(self.tmp.cleanup)
        # The stage registry and default stores go below the test's directory.
        self.env = dict(os.environ, XDG_RUNTIME_DIR=self.tmp.sub("run"),
                        XDG_STATE_HOME=self.tmp.sub("state"))

    def discfs(self, *args, cwd=None):
        p = env.run([env.discfs_bin()] + list(args), check=False, timeout=120, env=self.env,
                  cwd=cwd)
        err = env.txt(p.stderr)
        report = sanitizers.report(err)
        if report:
            self.fail(f"sanitizer report from discfs {' '.join(args)}: {report}\n{err}")
        self.out = env.txt(p.stdout)
        return p.returncode, err

    def assert_one_line(self, err, starts_with):
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"want one line on stderr, got: {err!r}")
        self.assertTrue(lines[0].startswith(starts_with), f"stderr: {err!r}")
        return lines[0]

    def damaged_store(self):
        """A store made by discfs whose pending session is not a number, and whose base is
        not the target's newest session (so the store asks for the pending session)."""
        store = self.tmp.sub("store", make=False)
        target = os.path.join(self.tmp.path, "target.iso")  # missing: a blank target
        rc, err = self.discfs("status", "--store", store)
        self.assertEqual(rc, 0, err)
        db = sqlite3.connect(os.path.join(store, "store.db"))
        with db:
            db.execute("UPDATE meta SET value=? WHERE key='target'", (target,))
            db.execute("UPDATE meta SET value='5' WHERE key IN ('base_start', 'base_blocks')")
            db.execute("INSERT INTO meta(key, value) VALUES ('pending_start', 'x')")
        db.close()
        return store

    def test_status_of_a_damaged_store_names_the_damage(self):
        store = self.damaged_store()
        rc, err = self.discfs("status", "--store", store)
        self.assertEqual(rc, EXIT_CANNOT_OPEN, err)
        line = self.assert_one_line(err, f"discfs: {store}/store.db: ")
        self.assertIn("'x'", line)
        self.assertIn("damaged", line)

    def test_discard_of_a_damaged_store_names_the_damage(self):
        store = self.damaged_store()
        rc, err = self.discfs("discard", "--all", "--store", store)
        self.assertEqual(rc, EXIT_CANNOT_OPEN, err)
        line = self.assert_one_line(err, f"discfs: {store}/store.db: ")
        self.assertIn("'x'", line)
        self.assertIn("damaged", line)

    def test_stage_from_a_removed_directory_cannot_open_the_target(self):
        gone = self.tmp.sub("gone")
        mnt = self.tmp.sub("mnt")
        cmd = ["sh", "-c", 'cd "$1" && rmdir "$1" && exec "$2" stage new.iso "$3"', "sh", gone,
               env.discfs_bin(), mnt]
        p = env.run(cmd, check=False, timeout=120, env=self.env)
        err = env.txt(p.stderr)
        self.assertIsNone(sanitizers.report(err), err)
        self.assertEqual(p.returncode, EXIT_CANNOT_OPEN, err)
        line = self.assert_one_line(err, "discfs: new.iso: ")
        self.assertIn("No such file or directory", line)

    def test_stage_takes_the_options_fstab_passes(self):
        mount.require_fuse(self)
        mnt = self.tmp.sub("stage-mnt")
        target = os.path.join(self.tmp.path, "staged.iso")
        args = ["stage", "-f", "--store", self.tmp.sub("stage-store", make=False), "-o",
                "user,users,nouser,auto,noauto,_netdev,nofail,defaults,rw,x-gvfs-show,"
                "comment=from-fstab", target, mnt]
        # Mount starts discfs with this process's environment.
        with mock.patch.dict(os.environ, self.env), mount.Mount(target, mnt, args=args):
            with open(os.path.join(mnt, "hello.txt"), "w") as f:
                f.write("hello\n")
            rc, err = self.discfs("status", "--json", mnt)
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(self.out)["added"], 1)


if __name__ == "__main__":
    unittest.main()
