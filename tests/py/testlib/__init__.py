"""Test support for the discfs integration suites (tests/py/test_*.py), one module a concern.

  env         binaries under test, exit codes, run(), requirements, temporary dirs, the
              module fixture (set-up, tear-down, shared cache)
  sanitizers  finding ASan/UBSan/LSan reports in a process's output
  mount       can FUSE mount here (and as another user), the one mount wrapper (Mount)
  trees       the one tree walker (walk) and the one tree diff (diff), link groups
  sources     source trees the images are made from
  images      image writers (xorriso, genisoimage, pycdlib, mkudffs + udfclient)
  readers     independent ISO 9660 readers (xorriso, pycdlib, 7-Zip, libarchive)
  udf         independent UDF readers and a UDF layout parser (to locate bytes)
  isolayout   an ISO 9660 layout parser and a byte patcher (to corrupt images)
  dump        discfs-dump's JSON lines
  probe       walking a mount in a child process, under a hang guard
  hostile     the hostile-image case registry and the rules every case is checked by
  stage       the staging verbs (stage, commit, status, discard)

Everything a test compares against comes from an independent source: the directory tree
an image was made from, or what another reader extracts; discfs output (discfs-dump, a
mount) is turned into the same record shape (trees.Rec) and compared field by field.

`python3 -m testlib -v MODULE` (from tests/py) runs MODULE like `python3 -m unittest`,
but exits 77 when every test was skipped (CTest's SKIP_RETURN_CODE).
"""
