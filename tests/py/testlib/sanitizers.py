"""Sanitizer reports (ASan, UBSan, LSan, TSan) in what a process printed.

The dev preset builds with AddressSanitizer and UndefinedBehaviorSanitizer; a report
fails the test that ran the process, whatever the exit code was.
"""

import os

MARKERS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
           "ERROR: UndefinedBehaviorSanitizer", "ERROR: ThreadSanitizer",
           "WARNING: ThreadSanitizer")


def report(*texts):
    """The first sanitizer report line found in any of texts, or None."""
    for text in texts:
        for line in (text or "").splitlines():
            if any(marker in line for marker in MARKERS):
                return line.strip()
    return None


def check(what, *texts):
    """Raise AssertionError naming `what` when texts hold a sanitizer report."""
    rep = report(*texts)
    if rep:
        raise AssertionError(f"sanitizer report from {what}: {rep}\n"
                             + "\n".join(t[-6000:] for t in texts if t))


def without_leak_check(env=None):
    """The environment (default: this process's) with LeakSanitizer off.

    For the daemons of the per-case hostile mounts: LeakSanitizer reports at daemon exit
    the directory handles of RELEASEDIR requests the kernel drops at unmount (a race, so
    it would make every case flaky).  That defect has its own test
    (test_badinput.LeakAtUnmount).  AddressSanitizer and UBSan reports are still caught."""
    env = dict(os.environ if env is None else env)
    opts = env.get("ASAN_OPTIONS", "")
    env["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "detect_leaks=0"
    return env
