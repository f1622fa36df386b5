#!/usr/bin/env python3
"""Start a FUSE daemon in the background and time how long its mount takes.

mountwait.py --out FILE [--timeout SECS] [--log FILE] MOUNTPOINT -- COMMAND [ARG...]

Records st_dev of MOUNTPOINT, starts COMMAND (in its own session, stdin from
/dev/null, stdout+stderr to FILE), then polls os.stat(MOUNTPOINT) in a tight
loop until st_dev changes.  The clock (time.perf_counter) starts just before
the fork, so the figure covers exec, option parsing, opening the image and
the FUSE handshake - what a user waits for.

On success writes "<seconds> <pid>" to FILE (atomically, via rename) and then
stays alive as the daemon's parent until it exits, so that the daemon is
reaped (the caller runs this helper in the background, waits for FILE,
unmounts later, and waits for the helper).  If COMMAND ends before the mount
appears, writes "fail <status>" and exits 1; on timeout kills it, writes
"timeout" and exits 2.
"""
import os
import signal
import subprocess
import sys
import time


def main():
    args = sys.argv[1:]
    timeout, log, out = 300.0, os.devnull, None
    while args and args[0].startswith("--") and args[0] != "--":
        opt = args.pop(0)
        if opt == "--timeout":
            timeout = float(args.pop(0))
        elif opt == "--out":
            out = args.pop(0)
        elif opt == "--log":
            log = args.pop(0)
        else:
            sys.exit(f"mountwait: unknown option {opt}")
    if out is None or len(args) < 3 or args[1] != "--":
        sys.exit(__doc__)
    mnt, cmd = args[0], args[2:]
    dev0 = os.stat(mnt).st_dev
    logf = open(log, "ab")
    stat = os.stat
    clock = time.perf_counter
    t0 = clock()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = t0 + timeout
    n = 0
    while True:
        try:
            if stat(mnt).st_dev != dev0:
                break
        except OSError:
            pass  # e.g. ENOTCONN while the daemon is half-way up
        n += 1
        if n & 255 == 0:
            if proc.poll() is not None:
                print(f"mountwait: {cmd[0]} exited with status {proc.returncode} "
                      f"before the mount appeared (see {log})", file=sys.stderr)
                report(out, f"fail {proc.returncode}")
                sys.exit(1)
            if clock() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                print(f"mountwait: no mount after {timeout:.0f}s, killed {cmd[0]}",
                      file=sys.stderr)
                report(out, "timeout")
                sys.exit(2)
    t1 = clock()
    report(out, f"{t1 - t0:.6f} {proc.pid}")
    # Stay the daemon's parent so it is reaped when it exits (unmount/kill).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: None)
    while True:
        try:
            sys.exit(0 if proc.wait() == 0 else 3)
        except InterruptedError:
            continue


def report(path, line):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(line + "\n")
    os.rename(tmp, path)


if __name__ == "__main__":
    main()
