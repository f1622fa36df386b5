"""`python3 -m testlib [-v] MODULE...`: run test modules like `python3 -m unittest`, but
exit 77 (env.SKIP_RC) when nothing ran because everything was skipped (no FUSE, binaries
missing), so that CTest shows the module as skipped rather than passed."""

import sys
import unittest

from testlib import env


def main(argv):
    prog = unittest.main(module=None, argv=["testlib"] + list(argv), exit=False)
    r = prog.result
    skipped_tests = sum(1 for t, _ in r.skipped if isinstance(t, unittest.TestCase))
    if not r.wasSuccessful():
        return 1
    if r.testsRun - skipped_tests == 0 and r.skipped:
        sys.stderr.write("testlib: every test was skipped\n")
        return env.SKIP_RC
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
