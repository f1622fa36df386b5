#!/usr/bin/env bash
# Builds the fuzz targets with clang and runs each for SECONDS (default 60) from a seed corpus
# of small images: the shared upstream test images and images made here by xorriso and
# genisoimage. Exits non-zero when the fuzzer finds a crash, leak or sanitizer report.
set -euo pipefail
seconds=${1:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
cmake --preset fuzz >/dev/null
cmake --build build/fuzz -j"$(nproc)" --target fuzz_reader >/dev/null

corpus=build/fuzz/corpus
mkdir -p "$corpus"
shared="$top/../shared/testdata/upstream"
if [ -d "$shared" ]; then
  for f in "$shared"/*.xz; do
    out="$corpus/$(basename "${f%.xz}")"
    [ -s "$out" ] || xz -dc "$f" >"$out"
    # Keep seeds small: the fuzzer mutates whole inputs.
    [ "$(stat -c %s "$out")" -le 2000000 ] || rm -f "$out"
  done
fi
seedsrc=$(mktemp -d)
trap 'rm -rf "$seedsrc"' EXIT
mkdir -p "$seedsrc/t/sub"
echo hello >"$seedsrc/t/hello.txt"
ln -s hello.txt "$seedsrc/t/link"
# A long target: genisoimage records its SL entry's length modulo 256 (tests/py/test_rr_links.py;
# genisoimage 1.1.11 hangs on some other long targets, e.g. this one with "/end" appended).
ln -s "$(printf 'comp%03d/' $(seq 0 38))comp039" "$seedsrc/t/long_link"
head -c 200000 /dev/zero | tr "\\0" z >"$seedsrc/t/z.txt"
[ -s "$corpus/xorriso-rr-joliet.iso" ] ||
  xorriso -outdev "$corpus/xorriso-rr-joliet.iso" -joliet on -map "$seedsrc/t" / \
    -set_filter_r --zisofs / -- -commit >/dev/null 2>&1
[ -s "$corpus/genisoimage-rr.iso" ] ||
  genisoimage -quiet -R -J -o "$corpus/genisoimage-rr.iso" "$seedsrc/t" 2>/dev/null
[ -s "$corpus/genisoimage-udf.iso" ] ||
  genisoimage -quiet -udf -R -J -o "$corpus/genisoimage-udf.iso" "$seedsrc/t" 2>/dev/null
[ -s "$corpus/pycdlib-udf260.iso" ] ||
  /usr/bin/python3 - "$seedsrc/t/hello.txt" "$corpus/pycdlib-udf260.iso" <<'PY' || true
import sys, pycdlib
iso = pycdlib.PyCdlib()
iso.new(udf="2.60", interchange_level=3)
iso.add_directory("/SUB", udf_path="/sub")
iso.add_file(sys.argv[1], "/HELLO.TXT;1", udf_path="/sub/hello.txt")
iso.write(sys.argv[2])
PY
if [ ! -s "$corpus/mkudffs-cdr-tail.udf" ]; then
  # Write-once UDF whose VAT is followed by unrecorded (zero) space: the tail search.
  truncate -s 1M "$corpus/mkudffs-cdr-tail.udf"
  mkudffs -m cdr "$corpus/mkudffs-cdr-tail.udf" >/dev/null 2>&1 || rm -f "$corpus/mkudffs-cdr-tail.udf"
fi
if [ ! -s "$corpus/genisoimage-udf-2-sessions.iso" ]; then
  # Two genisoimage -udf sessions appended in one file: anchors of both sessions.
  u="$corpus/genisoimage-udf-2-sessions.iso"
  genisoimage -quiet -udf -o "$u" "$seedsrc/t/sub" 2>/dev/null
  n=$(($(stat -c %s "$u") / 2048))
  genisoimage -quiet -udf -C "0,$n" -M "$u" -o "$seedsrc/s2" "$seedsrc/t" 2>/dev/null &&
    dd if="$seedsrc/s2" of="$u" bs=2048 seek="$n" conv=notrunc status=none
fi
if [ ! -s "$corpus/xorriso-3-sessions.iso" ]; then
  # A grown image: three sessions, the El Torito catalog in the last one.
  g="$corpus/xorriso-3-sessions.iso"
  xorriso -dev "$g" -map "$seedsrc/t" / -commit >/dev/null 2>&1
  xorriso -dev "$g" -rm /link -- -map "$seedsrc/t/hello.txt" /new.txt -commit >/dev/null 2>&1
  xorriso -dev "$g" -boot_image any bin_path=/hello.txt -boot_image any emul_type=no_emulation \
    -mv /new.txt /renamed.txt -- -commit >/dev/null 2>&1
fi

if [ ! -s "$corpus/genisoimage-appended.iso" ]; then
  # Sessions one after another without libisoburn's chain (genisoimage -C/-M), as on a CD-R.
  # Without the long link: genisoimage -M cannot read back the SL entry it wrote for it.
  a="$corpus/genisoimage-appended.iso"
  mkdir -p "$seedsrc/plain/sub"
  cp "$seedsrc/t/hello.txt" "$seedsrc/t/z.txt" "$seedsrc/plain/"
  ln -s hello.txt "$seedsrc/plain/link"
  genisoimage -quiet -R -o "$a" "$seedsrc/plain"
  next=$(($(stat -c %s "$a") / 2048))
  genisoimage -quiet -R -C "0,$next" -M "$a" -o "$a.2" "$seedsrc/plain/sub"
  dd if="$a.2" of="$a" bs=2048 seek="$next" conv=notrunc status=none
  rm -f "$a.2"
fi

mkdir -p build/fuzz/artifacts
build/fuzz/tests/fuzz/fuzz_reader -max_total_time="$seconds" -max_len=2000000 -rss_limit_mb=2048 \
  -timeout=20 -artifact_prefix=build/fuzz/artifacts/ -print_final_stats=1 "$corpus" 2>&1 | tail -n 20
