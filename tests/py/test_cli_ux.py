"""What a new user meets at the command line (issue 10, items 12, 13, 15, 16).

- A verb that does not exist (`discfs create`, `umount`, a typo) is named as such in one
  line, exit 2, with the nearest verb; it used to fall through to the mount(8) form and print
  "MOUNTPOINT is required" and the mount help. The mount(8) form itself keeps working.
- A mount point with something mounted on it already is refused (exit 7, naming what is
  there): a second mount used to hide the first, whose stage `status` could then not find.
  A dead mount (daemon killed) and a missing folder get their own sentences (exit 6).
- `status` lists the staged paths (`git status --short` style; JSON with --json), `discard`
  says what it dropped, and dropping everything needs --all (or a yes on a terminal).
- Staging again right after `fusermount3 -u` waits for the old daemon to let go of the
  target instead of failing "already staged".

Run: /usr/bin/python3 -m testlib -v test_cli_ux   (from tests/py)
"""

import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from testlib import env, mount, sanitizers, stage
from testlib.stage import write_file

EXIT_USAGE = env.EXIT_USAGE
EXIT_MOUNT_FAILED = env.EXIT_MOUNT_FAILED
EXIT_BUSY = env.EXIT_BUSY


class Case(unittest.TestCase):
    def setUp(self):
        env.require_binary(env.discfs_bin(), "discfs")
        self.tmp = env.TempDir(prefix="discfs-cli-ux-")
        self.addCleanup(self.tmp.cleanup)
        stage.use_private_dirs(self, self.tmp.path)

    def discfs(self, *args, stdin=subprocess.DEVNULL):
        p = subprocess.run([env.discfs_bin()] + [str(a) for a in args], stdin=stdin,
                           capture_output=True, timeout=env.HANG_GUARD)
        p.out, p.err = env.txt(p.stdout), env.txt(p.stderr)
        sanitizers.check(" ".join(str(a) for a in args), p.err)
        return p

    def one_line(self, p):
        lines = [l for l in p.err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"want one line on stderr, got {p.err!r}")
        return lines[0]


class UnknownVerbs(Case):
    def test_unknown_verbs_are_named_with_a_suggestion(self):
        for argv, want in ((["verfiy", "x.iso"], "did you mean 'verify'"),
                           (["umount", "/mnt"], "fusermount3 -u"),
                           (["stauts", "/mnt"], "did you mean 'status'"),
                           (["comit"], "did you mean 'commit'"),
                           (["mnt", "a.iso", "/mnt"], "did you mean 'mount'"),
                           (["frobnicate", "a"], "is not a discfs command")):
            with self.subTest(argv=argv):
                p = self.discfs(*argv, stdin=subprocess.DEVNULL)
                self.assertEqual(p.returncode, EXIT_USAGE, p.err)
                line = self.one_line(p)
                self.assertIn(f"'{argv[0]}'", line)
                self.assertIn(want, line)
                self.assertNotIn("MOUNTPOINT is required", p.err)

    def test_mount8_form_with_a_missing_source_still_means_mount(self):
        # mount(8) passes the fstab source as it is: an absolute path that is missing is a
        # source that cannot be opened (3), not an unknown verb.
        mnt = self.tmp.sub("mnt")
        for source in (os.path.join(self.tmp.path, "missing.iso"), "missing.iso"):
            p = self.discfs(source, mnt, "-o", "ro")
            self.assertEqual(p.returncode, env.EXIT_CANNOT_OPEN, p.err)
            self.assertNotIn("not a discfs command", p.err)


def make_iso(tmp):
    src = os.path.join(tmp.path, "isosrc")
    os.makedirs(src, exist_ok=True)
    write_file(os.path.join(src, "README"), b"an image\n")
    iso = os.path.join(tmp.path, "image.iso")
    if os.path.exists(iso):
        return iso
    env.run(["xorriso", "-outdev", iso, "-map", src, "/"], check=True)
    return iso


class MountPoints(Case):
    def setUp(self):
        super().setUp()
        mount.require_fuse(self)

    def test_an_occupied_mount_point_is_refused(self):
        target = os.path.join(self.tmp.path, "first.iso")
        other = os.path.join(self.tmp.path, "second.iso")
        iso = make_iso(self.tmp)
        mnt = self.tmp.sub("mnt")
        with stage.Stage(target, mnt):
            for argv in (["stage", other, mnt], ["stage", "-f", other, mnt],
                         ["mount", iso, mnt], [iso, mnt, "-o", "ro"]):
                with self.subTest(argv=argv):
                    p = self.discfs(*argv)
                    self.assertEqual(p.returncode, EXIT_BUSY, p.err)
                    line = self.one_line(p)
                    self.assertIn(mnt, line)
                    self.assertIn("fuse.discfs", line)
                    self.assertIn(target, line, "the message does not name what is mounted")
            # The first stage is still the one there.
            self.assertEqual(stage.status(mnt)["target"], target)

    def test_a_stale_mount_says_how_to_remove_it(self):
        target = os.path.join(self.tmp.path, "t.iso")
        iso = make_iso(self.tmp)
        mnt = self.tmp.sub("mnt")
        with stage.Stage(target, mnt) as m:
            os.kill(m.pid, signal.SIGKILL)
            m.proc.wait(timeout=60)
            try:
                for argv in (["stage", target, mnt], ["mount", iso, mnt]):
                    with self.subTest(argv=argv):
                        p = self.discfs(*argv)
                        self.assertEqual(p.returncode, EXIT_MOUNT_FAILED, p.err)
                        line = self.one_line(p)
                        self.assertIn(f"fusermount3 -u {mnt}", line)
                        self.assertNotIn("not a directory", line)
            finally:
                m.kill9()  # reaps and unmounts the dead mount

    def test_a_missing_folder_and_a_file_are_told_apart(self):
        target = os.path.join(self.tmp.path, "t.iso")
        missing = os.path.join(self.tmp.path, "no-such-folder")
        a_file = os.path.join(self.tmp.path, "a-file")
        write_file(a_file, b"x")
        for where, want in ((missing, "does not exist"), (a_file, "not a folder")):
            for argv in (["stage", target, where], ["mount", make_iso(self.tmp), where]):
                with self.subTest(argv=argv):
                    p = self.discfs(*argv)
                    self.assertEqual(p.returncode, EXIT_MOUNT_FAILED, p.err)
                    self.assertIn(want, self.one_line(p))


class Restage(Case):
    def setUp(self):
        super().setUp()
        mount.require_fuse(self)

    def test_stage_right_after_unmount(self):
        """stage, fusermount3 -u, stage again at once, 20 times: every stage must succeed
        (it failed about one time in eight with "already staged" while the old daemon was
        still closing the store)."""
        target = os.path.join(self.tmp.path, "t.iso")
        mnt = self.tmp.sub("mnt")
        self.addCleanup(lambda: mount.unmount_and_reap(mnt))
        failures = []
        for i in range(20):
            p = self.discfs("stage", target, mnt)
            if p.returncode != 0:
                failures.append(f"round {i}: exit {p.returncode}: {p.err.strip()}")
                continue
            u = subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
            self.assertEqual(u.returncode, 0, env.txt(u.stderr))
        self.assertEqual(failures, [], f"{len(failures)} of 20 stages right after an unmount "
                                       f"failed")


    def test_stage_while_the_old_daemon_is_still_closing(self):
        """The same race made certain: a file held open keeps the daemon of a lazily
        unmounted stage alive (the mount is gone from the table, its daemon still holds the
        target). A new stage of the target waits for it rather than failing "already
        staged"; once the file is closed the old daemon exits and the new stage mounts."""
        target = os.path.join(self.tmp.path, "t.iso")
        mnt = self.tmp.sub("mnt")
        self.addCleanup(lambda: mount.unmount_and_reap(mnt))
        p = self.discfs("stage", target, mnt)
        self.assertEqual(p.returncode, 0, p.err)
        write_file(os.path.join(mnt, "held"), b"held open\n")
        fd = os.open(os.path.join(mnt, "held"), os.O_RDONLY)
        try:
            u = subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
            self.assertEqual(u.returncode, 0, env.txt(u.stderr))
            self.assertFalse(env.is_mounted(mnt))
            new = subprocess.Popen([env.discfs_bin(), "stage", target, mnt],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
            try:
                # A refusal comes at once; a stage that waits is still running.
                out, err = new.communicate(timeout=1)
            except subprocess.TimeoutExpired:
                os.close(fd)
                fd = None
                out, err = new.communicate(timeout=env.HANG_GUARD)
        finally:
            if fd is not None:
                os.close(fd)
        self.assertEqual(new.returncode, 0, f"the new stage failed while the old daemon was "
                                            f"closing: {env.txt(err)}")
        self.assertTrue(env.is_mounted(mnt))


class StatusAndDiscard(Case):
    """status lists what is staged; discard says what it dropped."""

    def setUp(self):
        super().setUp()
        mount.require_fuse(self)
        self.target = os.path.join(self.tmp.path, "t.iso")
        self.mnt = self.tmp.sub("mnt")
        with stage.Stage(self.target, self.mnt):
            for name in ("a", "b", "keep", "dir/c"):
                os.makedirs(os.path.dirname(os.path.join(self.mnt, name)), exist_ok=True)
                write_file(os.path.join(self.mnt, name), name.encode() + b"\n")
            stage.commit(self.mnt)

    def change_things(self):
        write_file(os.path.join(self.mnt, "new"), b"new\n")
        os.makedirs(os.path.join(self.mnt, "newdir/sub"))
        write_file(os.path.join(self.mnt, "newdir/sub/x"), b"x\n")
        with open(os.path.join(self.mnt, "a"), "ab") as f:
            f.write(b"more\n")
        os.rename(os.path.join(self.mnt, "b"), os.path.join(self.mnt, "b2"))
        os.unlink(os.path.join(self.mnt, "dir/c"))

    def test_status_lists_the_paths(self):
        with stage.Stage(self.target, self.mnt):
            self.change_things()
            st = stage.status(self.mnt)
            got = {(c["change"], c["path"], c.get("from")) for c in st["changes"]}
            self.assertEqual(got, {("added", "/new", None), ("added", "/newdir", None),
                                   ("added", "/newdir/sub", None),
                                   ("added", "/newdir/sub/x", None),
                                   ("modified", "/a", None), ("renamed", "/b2", "/b"),
                                   ("deleted", "/dir/c", None),
                                   # their modification times changed with the unlink and
                                   # the new names
                                   ("modified", "/dir", None), ("modified", "/", None)})
            text = self.discfs("status", self.mnt)
            self.assertEqual(text.returncode, 0, text.err)
            lines = text.out.splitlines()
            for want in ("A  /new", "A  /newdir/ (and 2 more inside)", "M  /a", "R  /b -> /b2",
                         "D  /dir/c"):
                self.assertIn(want, lines, text.out)
            self.assertFalse([l for l in lines if "/newdir/sub" in l], text.out)
            # The same without the daemon, from the store.
        st2 = stage.status(store=stage_store(st))
        self.assertEqual(st2["changes"], st["changes"])

    def test_status_of_many_paths(self):
        """The daemon's answer lists every path: a few thousand must not exceed what the
        control socket reads (64 KiB lines once)."""
        with stage.Stage(self.target, self.mnt):
            d = os.path.join(self.mnt, "many")
            os.mkdir(d)
            for i in range(1500):
                open(os.path.join(d, "a-rather-long-file-name-%05d.txt" % i), "wb").close()
            st = stage.status(self.mnt)
            self.assertEqual(len(st["changes"]), 1502)  # and "M /": its times changed
            text = self.discfs("status", self.mnt)
            self.assertEqual(text.returncode, 0, text.err)
            self.assertIn("A  /many/ (and 1500 more inside)", text.out.splitlines())
            p = self.discfs("discard", self.mnt, "/many")
            self.assertEqual(p.returncode, 0, p.err)
            self.assertIn("dropped 1501 staged changes:", p.out)

    def test_discard_says_what_it_dropped(self):
        with stage.Stage(self.target, self.mnt):
            self.change_things()
            p = self.discfs("discard", self.mnt, "/new", "/a")
            self.assertEqual(p.returncode, 0, p.err)
            self.assertIn("dropped 2 staged changes:", p.out)
            self.assertIn("A  /new", p.out.splitlines())
            self.assertIn("M  /a", p.out.splitlines())
            p = self.discfs("discard", self.mnt, "/keep")
            self.assertEqual(p.returncode, 0, p.err)
            self.assertIn("nothing dropped", p.out)

    def test_discarding_everything_needs_all_or_a_yes(self):
        with stage.Stage(self.target, self.mnt):
            self.change_things()
            staged = stage.status(self.mnt)["changes"]
            # Not on a terminal: refused without --all, nothing dropped.
            p = self.discfs("discard", self.mnt)
            self.assertEqual(p.returncode, EXIT_USAGE, p.err)
            self.assertIn("--all", self.one_line(p))
            self.assertEqual(stage.status(self.mnt)["changes"], staged)
            # On a terminal: asked; "n" drops nothing, "y" drops everything.
            for answer, left in ((b"n\n", staged), (b"y\n", [])):
                with self.subTest(answer=answer):
                    primary, secondary = os.openpty()
                    try:
                        os.write(primary, answer)
                        p = self.discfs("discard", self.mnt, stdin=secondary)
                    finally:
                        os.close(primary)
                        os.close(secondary)
                    self.assertEqual(p.returncode, 0, p.err)
                    self.assertIn("[y/N]", p.err)
                    self.assertIn("A  /new", p.err, "the question does not show what is staged")
                    self.assertEqual(stage.status(self.mnt)["changes"], left)
            # --all, and PATHs with --all is a usage error.
            self.change_things()
            p = self.discfs("discard", self.mnt, "--all", "/new")
            self.assertEqual(p.returncode, EXIT_USAGE, p.err)
            p = self.discfs("discard", self.mnt, "--all")
            self.assertEqual(p.returncode, 0, p.err)
            self.assertIn("D  /dir/c", p.out.splitlines())
            self.assertEqual(stage.status(self.mnt)["changes"], [])


def stage_store(st):
    return st["store"]


if __name__ == "__main__":
    unittest.main()
