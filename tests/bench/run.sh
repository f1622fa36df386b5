#!/usr/bin/env bash
# discfs benchmark: the read-only mount side by side with fuseiso, archivemount
# and direct reads of the image file; the staging mount and commit side by side
# with cp into a plain directory and xorriso.  A tool a person runs by hand; it never
# passes or fails on time (exit status != 0 only when it could not run at all).
# See tests/bench/README.md for what each row measures and how to read the table.
set -uo pipefail
export LC_ALL=C            # EPOCHREALTIME and printf need '.' as the decimal point

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LIB=$HERE/lib

DISCFS=$ROOT/build/release/cli/discfs
WORK=/var/tmp/discfs-bench
RUNS=3
QUICK=0
PINNED=0
TOOLS_WANTED=discfs,fuseiso,archivemount
ROWS_WANTED=walk,lslR,tar,seq,rand,udf,sessions,stage,commit,create
OP_TIMEOUT=900             # any single timed operation
AM_TIMEOUT=120             # archivemount reading file data (big file; tar of all small files)
FIO_RUNTIME=10
SETTLE=3                  # seconds between deleting a stage copy and the next copy
XBASE=""                  # under which 7z x writes (default: tmpfs if it has room, else WORK)
XOUT=""

usage() {
    cat <<EOF
usage: tests/bench/run.sh [options]

  --discfs PATH    discfs binary (default: build/release/cli/discfs in the project;
                   discfs rows are skipped when it does not exist)
  --work DIR       work directory; the corpus is cached here between runs and
                   results-TIMESTAMP.json is written here (default: /var/tmp/discfs-bench)
  --runs N         runs per row; medians are reported (default: 3)
  --quick          20,000 small files and a 1 GiB big file (smoke run); the stage
                   rows copy 512 MiB instead of 4 GiB
  --pinned         also run the round-trip-bound rows (walks, ls -lR, tar, fio on
                   a fresh mount; udf walks and tar; session walks) with daemon
                   and client pinned to CPU 0 (taskset -c 0)
  --tools LIST     subset of discfs,fuseiso,archivemount (default: all)
  --rows LIST      subset of walk,lslR,tar,seq,rand,udf,sessions,stage,commit,create
                   (default: all); stage and commit compare discfs (when in
                   --tools) with cp into a plain directory and with xorriso;
                   create compares discfs create with xorriso -as mkisofs
  --timeout SECS   limit for any one timed operation (default: $OP_TIMEOUT)
  --am-timeout S   limit for archivemount reading file data: the big-file rows and
                   the tar row (default: $AM_TIMEOUT; it rescans the archive per file)
  --fio-runtime S  seconds per fio run (default: $FIO_RUNTIME)
  --7z-out DIR     directory under which the 7z x reference extracts (into a fresh
                   subdirectory, deleted between runs); default /dev/shm when it is a
                   tmpfs with room, else WORK
  -h, --help       this text
EOF
}

die() { echo "run.sh: $*" >&2; exit 2; }

while (($#)); do
    case $1 in
        --discfs) DISCFS=${2:?}; shift 2 ;;
        --discfs=*) DISCFS=${1#*=}; shift ;;
        --work) WORK=${2:?}; shift 2 ;;
        --work=*) WORK=${1#*=}; shift ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --quick) QUICK=1; shift ;;
        --pinned) PINNED=1; shift ;;
        --tools) TOOLS_WANTED=${2:?}; shift 2 ;;
        --tools=*) TOOLS_WANTED=${1#*=}; shift ;;
        --rows) ROWS_WANTED=${2:?}; shift 2 ;;
        --rows=*) ROWS_WANTED=${1#*=}; shift ;;
        --timeout) OP_TIMEOUT=${2:?}; shift 2 ;;
        --am-timeout) AM_TIMEOUT=${2:?}; shift 2 ;;
        --fio-runtime) FIO_RUNTIME=${2:?}; shift 2 ;;
        --7z-out) XBASE=${2:?}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer"
for v in OP_TIMEOUT AM_TIMEOUT FIO_RUNTIME; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "${v,,} wants a positive integer"
done
[[ $DISCFS == /* ]] || DISCFS=$PWD/$DISCFS

for c in python3 xorriso fio 7z fincore taskset dd tar find timeout mountpoint openssl \
         df stat awk sha256sum sync cp; do
    command -v "$c" >/dev/null || die "needs '$c' (see tests/bench/README.md)"
done
if [[ ,$ROWS_WANTED, == *,udf,* ]]; then
    command -v genisoimage >/dev/null || die "needs 'genisoimage' for the udf rows (see tests/bench/README.md)"
fi

# ---------------------------------------------------------------- tools ---
TOOLS=()
IFS=, read -ra _want <<<"$TOOLS_WANTED"
for t in "${_want[@]}"; do
    case $t in
        discfs)
            if [[ -x $DISCFS ]]; then TOOLS+=(discfs)
            else echo "note: no discfs binary at $DISCFS - discfs rows skipped" >&2; fi ;;
        fuseiso|archivemount)
            if command -v "$t" >/dev/null; then TOOLS+=("$t")
            else echo "note: $t not installed - skipped" >&2; fi ;;
        *) die "unknown tool '$t'" ;;
    esac
done
((${#TOOLS[@]})) || die "no tool to measure"
want_row() { [[ ,$ROWS_WANTED, == *,$1,* ]]; }

if ((QUICK)); then
    NSMALL=20000; BIG_BYTES=$((1 << 30)); CORPUS=$WORK/corpus-quick
else
    NSMALL=200000; BIG_BYTES=$((6 << 30)); CORPUS=$WORK/corpus-full
fi
SMALL_ISO=$CORPUS/small.iso
BIG_ISO=$CORPUS/big.iso
# udf and sessions rows: the same corpus whatever --quick says
NUDF=10000; UDF_BIG_BYTES=$((1 << 30)); NSESSIONS=5
UCORPUS=$WORK/corpus-udf
UDF_IMG=$UCORPUS/udf-small.img
UDF_BIG=$UCORPUS/udf-big.img
SCORPUS=$WORK/corpus-sessions
GROWN=$SCORPUS/grown.iso
# stage rows: a tree of a few big files (3/4 of the bytes) and many small ones, copied
# into a staging mount; commit rows: copies of small.iso plus one new 1 GiB or 4 KiB file
if ((QUICK)); then
    STAGE_BYTES=$((512 << 20)); STAGE_NBIG=3; STAGE_NSMALL=2048; STCORPUS=$WORK/corpus-stage-quick
else
    STAGE_BYTES=$((4 << 30)); STAGE_NBIG=3; STAGE_NSMALL=16384; STCORPUS=$WORK/corpus-stage-full
fi
STAGE_SRC=$STCORPUS/tree
# stage_copy_big: STAGE_BYTES in 4 big files only; stage_copy_small: the small/ part of STAGE_SRC
STAGE_BIG_SRC=$STCORPUS/bigtree; STAGE_BIG_N=4
STAGE_SMALL_SRC=$STAGE_SRC/small
CCORPUS=$WORK/corpus-commit
ONE_G_BYTES=$((1 << 30)); ONE_F_BYTES=4096
ONE_G_DIR=$CCORPUS/bench-1g          # holds big-1g.bin; becomes /bench-1g in the image
ONE_F_DIR=$CCORPUS/bench-4k          # holds small-4k.bin; becomes /bench-4k
# xorriso's commit: the features discfs commit writes by default (Rock Ridge, Joliet,
# session and file MD5s); -md5 on before -dev, so that MD5s already in the image are loaded.
XORRISO_OPTS=(-report_about WARNING -md5 on -joliet on)
# create rows: the small tree (NSMALL files) and the big file (BIG_BYTES), kept on disk
if ((QUICK)); then CRCORPUS=$WORK/corpus-create-quick; else CRCORPUS=$WORK/corpus-create-full; fi
CR_SMALL=$CRCORPUS/small
CR_BIG=$CRCORPUS/big
STAMP=$(date +%Y%m%d-%H%M%S)
LOGDIR=$WORK/logs-$STAMP
SAMPLES=$WORK/samples-$STAMP.tsv
META=$WORK/meta-$STAMP.tsv
RESULTS=$WORK/results-$STAMP.json
MNTROOT=$WORK/mnt
TMPD=$WORK/tmp-$STAMP
mkdir -p "$WORK" "$CORPUS" "$LOGDIR" "$MNTROOT" "$TMPD" || die "cannot create $WORK"
: >"$SAMPLES"; : >"$META"

gib() { awk -v b="$1" 'BEGIN { printf "%.1f GiB", b / 1073741824 }'; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
metaget() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n1; }

# A builtin sleep (no fork), so that polling does not load the CPUs.
exec {SLEEPFD}<> <(:)
nap() { read -r -t "$1" -u "$SLEEPFD" _ || true; }

# ------------------------------------------------------- cleanup & mounts ---
declare -A SUP_OF=() PID_OF=()     # mount point -> mountwait pid / daemon pid

# is_mounted DIR: also true for a dead FUSE mount (daemon crashed: stat gives ENOTCONN,
# so mountpoint(1) says no, yet the mount stays until unmounted and breaks the next mount)
is_mounted() {
    mountpoint -q "$1" 2>/dev/null || awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts
}

unmount_one() {
    local m=$1 sup=${SUP_OF[$1]:-} pid=${PID_OF[$1]:-} i
    if is_mounted "$m"; then
        umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null ||
            fusermount -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
            echo "warning: could not unmount $m" >&2
    fi
    if [[ -n $pid ]]; then
        for ((i = 0; i < 200; i++)); do          # daemon exits on unmount; give it 10 s
            [[ -d /proc/$pid ]] || break
            [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
            nap 0.05
        done
        if [[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
            echo "warning: daemon $pid still alive after unmounting $m, killing it" >&2
            kill -TERM "$pid" 2>/dev/null; nap 1; kill -KILL "$pid" 2>/dev/null
        fi
    fi
    [[ -n $sup ]] && wait "$sup" 2>/dev/null
    unset "SUP_OF[$m]" "PID_OF[$m]"
}

# The script's own stdout/stderr: a signal can arrive while a function runs with
# its output redirected (timed ... >op.out 2>op.err), and the trap runs there.
exec {OUTFD}>&1 {ERRFD}>&2
cleanup() {
    local m
    trap - EXIT INT TERM
    exec 1>&"$OUTFD" 2>&"$ERRFD"
    if [[ -n $CHILD ]]; then
        kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null
        wait "$CHILD" 2>/dev/null
    fi
    for m in "${!SUP_OF[@]}"; do unmount_one "$m"; done
    for m in "$MNTROOT"/*; do
        is_mounted "$m" && unmount_one "$m"
    done
    rm -rf "$XOUT" "$TMPD"
}
trap cleanup EXIT
trap 'echo "interrupted - unmounting" >&"$ERRFD"; exit 130' INT TERM

# do_mount TOOL IMAGE PIN -> MNT, M_MS (mount latency ms), M_PID; returns 1 on failure.
# DOPTS: extra options for discfs mount (--tree udf, --sessions), empty for the ISO rows.
# TOOL discfs-stage: `discfs stage -f --store $STAGE_STORE IMAGE MNT` (IMAGE may not exist).
DOPTS=()
do_mount() {
    local tool=$1 img=$2 pin=$3 out cmd=() sup i line
    MNT=$MNTROOT/$tool
    is_mounted "$MNT" && unmount_one "$MNT"
    mkdir -p "$MNT"
    case $tool in
        discfs) cmd=("$DISCFS" mount -f "${DOPTS[@]}" "$img" "$MNT") ;;
        discfs-stage) cmd=("$DISCFS" stage -f --store "$STAGE_STORE" "$img" "$MNT") ;;
        fuseiso) cmd=(fuseiso -n "$img" "$MNT" -f) ;;
        archivemount) cmd=(archivemount "$img" "$MNT" -f -o ro) ;;
    esac
    ((pin)) && cmd=(taskset -c 0 "${cmd[@]}")
    out=$TMPD/mount.out
    rm -f "$out"
    python3 "$LIB/mountwait.py" --out "$out" --timeout "$OP_TIMEOUT" \
        --log "$LOGDIR/$tool.log" "$MNT" -- "${cmd[@]}" &
    sup=$!
    for ((i = 0; ; i++)); do
        [[ -s $out ]] && break
        kill -0 "$sup" 2>/dev/null || break
        nap 0.01
    done
    line=$(cat "$out" 2>/dev/null)
    if [[ ! $line =~ ^[0-9.]+\ [0-9]+$ ]]; then
        wait "$sup" 2>/dev/null
        M_ERR="mount failed (${line:-no result}); see $LOGDIR/$tool.log"
        echo "  $tool: $M_ERR" >&2
        return 1
    fi
    M_PID=${line#* }
    M_MS=$(awk -v s="${line% *}" 'BEGIN { printf "%.3f", s * 1000 }')
    SUP_OF[$MNT]=$sup
    PID_OF[$MNT]=$M_PID
    return 0
}

# --------------------------------------------------------------- timing ---
# timed CMD... : runs CMD (always "timeout ..."), sets EL_US, EL_S, RC.  CMD runs in
# the background and is waited for, so that Ctrl-C reaches the trap at once
# (timeout puts itself in its own process group, which cleanup kills).
CHILD=""
timed() {
    local t0 t1
    t0=${EPOCHREALTIME/./}
    "$@" &
    CHILD=$!
    wait "$CHILD"
    RC=$?
    t1=${EPOCHREALTIME/./}
    CHILD=""
    EL_US=$((t1 - t0))
    EL_S=$(printf '%d.%06d' $((EL_US / 1000000)) $((EL_US % 1000000)))
}

# rec ROW TOOL RUN VALUE [NOTE]
rec() {
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$SAMPLES"
    printf '  %-16s run %d/%d  %-12s %s%s\n' "$1" "$3" "$RUNS" "$2" "$4" "${5:+  ($5)}"
}

warm() {   # warm IMAGE: make sure the whole image is in the page cache
    local f=$1 size res pct
    size=$(stat -c %s "$f")
    res=$(fincore -b -n -r -o RES "$f" 2>/dev/null || echo 0)
    WARM_BEFORE=$((size ? res * 100 / size : 100))
    if ((res < size - size / 100)); then
        cat "$f" >/dev/null
        res=$(fincore -b -n -r -o RES "$f" 2>/dev/null || echo 0)
    fi
    pct=$((size ? res * 100 / size : 100))
    ((pct >= 95)) || echo "warning: only $pct% of $f stays in the page cache (RAM?)" >&2
    WARM_PCT=$pct
}

PINPFX=()
set_pin() { if (($1)); then PINPFX=(taskset -c 0); else PINPFX=(); fi; }
suffix() { (($1)) && echo _pinned; }

# op_* run one client operation against $MNT; they write what they read to $TMPD/op.out
op_find() { timed timeout -k 5 "$OP_TIMEOUT" "${PINPFX[@]}" bash -c 'set -o pipefail; find "$1" | wc -l' _ "$1" >"$TMPD/op.out" 2>"$TMPD/op.err"; }
op_lslR() { timed timeout -k 5 "$OP_TIMEOUT" "${PINPFX[@]}" bash -c 'ls -lR "$1" >/dev/null' _ "$1" 2>"$TMPD/op.err"; }
op_tar() { timed timeout -k 5 "$2" "${PINPFX[@]}" bash -c 'set -o pipefail; tar cf - -C "$1" . | wc -c' _ "$1" >"$TMPD/op.out" 2>"$TMPD/op.err"; }
op_7z() {   # op_7z IMAGE [7Z OPTION...]
    local img=$1; shift
    rm -rf "$XOUT"; sync
    timed timeout -k 5 "$OP_TIMEOUT" "${PINPFX[@]}" 7z x -y "$@" -o"$XOUT" "$img" >"$TMPD/op.out" 2>"$TMPD/op.err"
    rm -rf "$XOUT"; sync
}
op_dd() {   # op_dd LIMIT FILE [SKIP COUNT]
    local lim=$1 f=$2 extra=()
    # shellcheck disable=SC2054  # the comma belongs to dd's iflag value
    (($# > 2)) && extra=(skip="$3" count="$4" iflag=skip_bytes,count_bytes)
    timed timeout -k 5 "$lim" dd if="$f" of=/dev/null bs=1M "${extra[@]}" 2>"$TMPD/op.err"
    DD_BYTES=$(sed -n 's/^\([0-9][0-9]*\) bytes.*/\1/p' "$TMPD/op.err" | tail -n1)
    DD_BYTES=${DD_BYTES:-0}
}
op_fio() {  # op_fio LIMIT FILE [OFFSET SIZE] -> FIO_IOPS
    local lim=$1 f=${2//:/\\:} extra=()
    (($# > 2)) && extra=(--offset="$3" --size="$4")
    rm -f "$TMPD/fio.json"
    timed timeout -k 5 "$lim" "${PINPFX[@]}" fio --name=r --filename="$f" --rw=randread --bs=4k \
        --direct=0 --ioengine=psync --runtime="$FIO_RUNTIME" --time_based --numjobs=2 \
        --group_reporting --readonly --invalidate=0 "${extra[@]}" \
        --output-format=json --output="$TMPD/fio.json" >"$TMPD/op.out" 2>"$TMPD/op.err"
    FIO_IOPS=$(python3 -c '
import json, sys
t = open(sys.argv[1]).read()
d = json.loads(t[t.index("{"):])
print("%.1f" % d["jobs"][0]["read"]["iops"])' "$TMPD/fio.json" 2>/dev/null)
    [[ -n $FIO_IOPS ]] || RC=1
}
errnote() { local e; e=$(grep -v '^$' "$TMPD/op.err" 2>/dev/null | tail -n1 | cut -c1-120); echo "exit $RC${e:+: $e}"; }
rate() { awk -v b="$1" -v us="$2" 'BEGIN { printf "%.1f", b / us * 1e6 / 1048576 }'; }

# ---------------------------------------------------------------- corpus ---
build_small() {
    local src=$CORPUS/small-src entries
    echo "building small.iso: $NSMALL files of 0-8 KiB in a 4-level tree ..."
    rm -rf "$src" "$SMALL_ISO.part"
    python3 "$LIB/mkcorpus.py" "$src" "$NSMALL" || die "mkcorpus failed"
    entries=$(find "$src" | wc -l)
    xorriso -as mkisofs -R -J -V DISCFS_BENCH_SMALL -quiet -o "$SMALL_ISO.part" "$src" ||
        die "xorriso failed on small.iso"
    mv "$SMALL_ISO.part" "$SMALL_ISO"
    printf 'files=%s\nentries=%s\n' "$NSMALL" "$entries" >"$CORPUS/small.meta"
    rm -rf "$src"
}

build_big() {
    local src=$CORPUS/big-src left chunk alloc
    echo "building big.iso: one file of $BIG_BYTES random bytes, -iso-level 3 ..."
    rm -rf "$src" "$BIG_ISO.part"
    mkdir -p "$src"
    left=$BIG_BYTES
    while ((left > 0)); do
        chunk=$((left < (1 << 30) ? left : (1 << 30)))
        openssl rand "$chunk" || die "openssl rand failed"
        left=$((left - chunk))
    done >"$src/big"
    [[ $(stat -c %s "$src/big") == "$BIG_BYTES" ]] || die "big file has the wrong size"
    alloc=$(($(stat -c %b "$src/big") * $(stat -c %B "$src/big")))
    ((alloc >= BIG_BYTES)) || die "big file is sparse ($alloc bytes allocated)"
    xorriso -as mkisofs -iso-level 3 -R -J -V DISCFS_BENCH_BIG -quiet -o "$BIG_ISO.part" "$src" ||
        die "xorriso failed on big.iso"
    mv "$BIG_ISO.part" "$BIG_ISO"
    rm -rf "$src"
    big_layout >"$CORPUS/big.meta" || die "cannot find /big in big.iso"
}

big_layout() {   # prints offset=, size=, extents=, contiguous= for /big in big.iso
    xorriso -indev "$BIG_ISO" -find /big -exec report_lba 2>/dev/null | awk -F, '
        /^File data lba:/ {
            sub(/^File data lba:/, "", $1)
            start = $2 + 0; blocks = $3 + 0; size = $4 + 0
            if (n == 0) first = start
            else if (start != prev_end) contig = 0
            prev_end = start + blocks; n++
        }
        BEGIN { contig = 1 }
        END { if (n == 0) exit 1
              printf "offset=%.0f\nsize=%.0f\nextents=%d\ncontiguous=%d\n", first * 2048, size, n, contig }'
}

# Which images this run needs: small.iso for walk/lslR/tar, big.iso for seq/rand,
# the UDF images for udf, the grown image for sessions.
USE_SMALL=0; USE_BIG=0; USE_UDF=0; USE_SESS=0; USE_STAGE=0; USE_COMMIT=0; USE_CREATE=0
{ want_row walk || want_row lslR || want_row tar; } && USE_SMALL=1
{ want_row seq || want_row rand; } && USE_BIG=1
want_row udf && USE_UDF=1
want_row sessions && USE_SESS=1
want_row stage && USE_STAGE=1
want_row commit && USE_COMMIT=1
want_row create && USE_CREATE=1
((USE_CREATE)) && { command -v /usr/bin/time >/dev/null || die "needs /usr/bin/time (package time) for the create rows"; }
((USE_SMALL + USE_BIG + USE_UDF + USE_SESS + USE_STAGE + USE_COMMIT + USE_CREATE)) ||
    die "no row group selected (--rows)"
# discfs is measured in the stage and commit rows when it is one of the tools
HAVE_DISCFS=0
for t in "${TOOLS[@]}"; do [[ $t == discfs ]] && HAVE_DISCFS=1; done

build_udf() {     # udf-small.img: NUDF small files, genisoimage -udf, then UDF only
    local src=$UCORPUS/udf-src entries bytes img=$UDF_IMG.part n
    echo "building udf-small.img: $NUDF files of 0-8 KiB, genisoimage -udf, ISO 9660 side removed ..."
    mkdir -p "$UCORPUS"
    rm -rf "$src" "$img"
    python3 "$LIB/mkcorpus.py" "$src" "$NUDF" || die "mkcorpus failed"
    entries=$(find "$src" | wc -l)
    bytes=$(find "$src" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
    genisoimage -udf -quiet -input-charset utf-8 -V DISCFS_BENCH_UDF -o "$img" "$src" ||
        die "genisoimage -udf failed"
    python3 "$LIB/udfonly.py" "$img" || die "could not make $img UDF-only"
    # 7-Zip reads the UDF tree; it must see every file and directory
    n=$(7z l -tudf "$img" 2>/dev/null | awk '/ files, .* folders$/ { f = $(NF-3); d = $(NF-1) } END { print f + d + 1 }')
    [[ $n == "$entries" ]] || die "7z sees $n entries in $img, the source has $entries"
    mv "$img" "$UDF_IMG"
    printf 'files=%s\nentries=%s\nbytes=%s\nwriter=%s\n' "$NUDF" "$entries" "$bytes" \
        "genisoimage -udf (UDF 1.02), ISO 9660 descriptors removed by lib/udfonly.py" \
        >"$UCORPUS/udf-small.meta"
    rm -rf "$src"
}

build_udf_big() {  # udf-big.img: one 1 GiB file /big, genisoimage -udf, then UDF only
    local src=$UCORPUS/udf-big-src img=$UDF_BIG.part line off
    echo "building udf-big.img: one file of $UDF_BIG_BYTES random bytes, genisoimage -udf ..."
    mkdir -p "$UCORPUS"
    rm -rf "$src" "$img"
    mkdir -p "$src"
    openssl rand "$UDF_BIG_BYTES" >"$src/big" || die "openssl rand failed"
    genisoimage -udf -quiet -input-charset utf-8 -V DISCFS_BENCH_UDF_BIG -o "$img" "$src" ||
        die "genisoimage -udf failed on udf-big.img"
    # Both trees share the file's one extent: xorriso finds it through the ISO side...
    line=$(xorriso -indev "$img" -find / -type f -exec report_lba 2>/dev/null | grep -m1 '^File data lba:')
    [[ -n $line ]] || die "cannot find the big file in $img"
    off=$(awk -F, '{ sub(/^File data lba:/, "", $1); printf "%.0f", ($2 + 0) * 2048 }' <<<"$line")
    # ... and the bytes there must be the file's
    cmp "$src/big" <(dd if="$img" bs=1M skip="$off" count="$UDF_BIG_BYTES" \
                         iflag=skip_bytes,count_bytes 2>/dev/null) ||
        die "the big file is not stored contiguously at byte $off of $img"
    python3 "$LIB/udfonly.py" "$img" || die "could not make $img UDF-only"
    # ... and 7-Zip, reading the UDF tree of the UDF-only image, must find the same bytes
    cmp "$src/big" <(7z x -tudf -so "$img" big 2>/dev/null) ||
        die "7z x -tudf does not read the big file of $img back"
    mv "$img" "$UDF_BIG"
    printf 'offset=%s\nsize=%s\n' "$off" "$UDF_BIG_BYTES" >"$UCORPUS/udf-big.meta"
    rm -rf "$src"
}

build_sessions() {  # grown.iso: NSESSIONS xorriso sessions, each adding NUDF/NSESSIONS files
    local src=$SCORPUS/sess-src out=$SCORPUS/sess-split img=$GROWN.part k n
    echo "building grown.iso: $NUDF files added over $NSESSIONS xorriso sessions ..."
    mkdir -p "$SCORPUS"
    rm -rf "$src" "$out" "$img"
    python3 "$LIB/mkcorpus.py" "$src" "$NUDF" || die "mkcorpus failed"
    python3 "$LIB/splitcorpus.py" "$src" "$out" "$NSESSIONS" >/dev/null || die "splitcorpus failed"
    for ((k = 1; k <= NSESSIONS; k++)); do
        xorriso -report_about WARNING -dev "$img" -joliet on -map "$out/s$k" / -commit \
            >>"$LOGDIR/xorriso-sessions.log" 2>&1 || die "xorriso session $k failed (see $LOGDIR)"
    done
    n=$(xorriso -indev "$img" -toc 2>/dev/null | grep -c '^ISO session')
    ((n == NSESSIONS)) || die "xorriso sees $n sessions in $img, expected $NSESSIONS"
    n=$(xorriso -indev "$img" -find / 2>/dev/null | grep -c "^'")
    [[ $n == "$(metaget "$out/sessions.meta" entries_newest)" ]] ||
        die "xorriso sees $n entries in the newest session of $img, expected" \
            "$(metaget "$out/sessions.meta" entries_newest)"
    mv "$img" "$GROWN"
    cp "$out/sessions.meta" "$SCORPUS/grown.meta"
    rm -rf "$src" "$out"
}

build_stage_tree() {   # the tree the stage rows copy: STAGE_BYTES in NBIG big + NSMALL small files
    local line n bytes
    echo "building the stage copy tree: $(gib "$STAGE_BYTES") in $STAGE_NBIG big and" \
         "$STAGE_NSMALL small files ..."
    mkdir -p "$STCORPUS"
    rm -rf "$STAGE_SRC" "$STCORPUS/tree.meta"
    line=$(python3 "$LIB/mkcopytree.py" "$STAGE_SRC" "$STAGE_BYTES" "$STAGE_NBIG" "$STAGE_NSMALL") ||
        die "mkcopytree failed"
    read -r n bytes < <(tree_count "$STAGE_SRC")
    [[ $n == $((STAGE_NBIG + STAGE_NSMALL)) && $bytes == "$STAGE_BYTES" ]] ||
        die "the stage tree holds $n files, $bytes bytes (wanted $((STAGE_NBIG + STAGE_NSMALL)), $STAGE_BYTES)"
    tr ' ' '\n' <<<"$line" >"$STCORPUS/tree.meta"
}

build_stage_bigtree() {   # the tree stage_copy_big copies: STAGE_BYTES in STAGE_BIG_N files
    local line n bytes
    echo "building the stage big-file tree: $(gib "$STAGE_BYTES") in $STAGE_BIG_N files ..."
    mkdir -p "$STCORPUS"
    rm -rf "$STAGE_BIG_SRC" "$STCORPUS/bigtree.meta"
    line=$(python3 "$LIB/mkcopytree.py" "$STAGE_BIG_SRC" "$STAGE_BYTES" "$STAGE_BIG_N" 0) ||
        die "mkcopytree failed"
    read -r n bytes < <(tree_count "$STAGE_BIG_SRC")
    [[ $n == "$STAGE_BIG_N" && $bytes == "$STAGE_BYTES" ]] ||
        die "the stage big-file tree holds $n files, $bytes bytes (wanted $STAGE_BIG_N, $STAGE_BYTES)"
    tr ' ' '\n' <<<"$line" >"$STCORPUS/bigtree.meta"
}

build_create_corpus() {   # the create rows' sources: NSMALL small files and one BIG_BYTES file
    local left chunk n bytes
    echo "building the create sources: $NSMALL small files and $(gib "$BIG_BYTES") of random data ..."
    rm -rf "$CRCORPUS"
    mkdir -p "$CR_BIG"
    python3 "$LIB/mkcorpus.py" "$CR_SMALL" "$NSMALL" || die "mkcorpus failed"
    left=$BIG_BYTES
    while ((left > 0)); do
        chunk=$((left < (1 << 30) ? left : (1 << 30)))
        openssl rand "$chunk" || die "openssl rand failed"
        left=$((left - chunk))
    done >"$CR_BIG/big"
    read -r n bytes < <(tree_count "$CR_SMALL")
    printf 'files=%s\nbytes=%s\n' "$n" "$bytes" >"$CRCORPUS/create.meta"
}

build_commit_files() {   # the files the commit rows add: 1 GiB and 4 KiB of random bytes
    echo "building the commit files: $(gib "$ONE_G_BYTES") and $ONE_F_BYTES bytes of random data ..."
    rm -rf "$ONE_G_DIR" "$ONE_F_DIR"
    mkdir -p "$ONE_G_DIR" "$ONE_F_DIR"
    openssl rand "$ONE_G_BYTES" >"$ONE_G_DIR/big-1g.bin.part" || die "openssl rand failed"
    openssl rand "$ONE_F_BYTES" >"$ONE_F_DIR/small-4k.bin.part" || die "openssl rand failed"
    mv "$ONE_F_DIR/small-4k.bin.part" "$ONE_F_DIR/small-4k.bin"
    mv "$ONE_G_DIR/big-1g.bin.part" "$ONE_G_DIR/big-1g.bin"
}

# tree_count DIR: prints "FILES BYTES" (regular files under DIR and their sizes)
tree_count() {
    find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{ n++; s += $1 } END { printf "%d %.0f\n", n, s }'
}

small_need=0; big_need=0; udf_need=0; udfbig_need=0; sess_need=0; stage_need=0; commit_need=0
create_need=0
((USE_CREATE)) && ! [[ -s $CRCORPUS/create.meta && -s $CR_BIG/big ]] && create_need=1
stagebig_need=0
((USE_SMALL || USE_COMMIT)) && ! [[ -s $SMALL_ISO && -s $CORPUS/small.meta ]] && small_need=1
((USE_STAGE)) && ! [[ -d $STAGE_SRC && -s $STCORPUS/tree.meta ]] && stage_need=1
((USE_STAGE)) && ! [[ -d $STAGE_BIG_SRC && -s $STCORPUS/bigtree.meta ]] && stagebig_need=1
((USE_COMMIT)) && ! [[ -s $ONE_G_DIR/big-1g.bin && -s $ONE_F_DIR/small-4k.bin ]] && commit_need=1
((USE_BIG)) && ! [[ -s $BIG_ISO && -s $CORPUS/big.meta ]] && big_need=1
((USE_UDF)) && ! [[ -s $UDF_IMG && -s $UCORPUS/udf-small.meta ]] && udf_need=1
((USE_UDF)) && ! [[ -s $UDF_BIG && -s $UCORPUS/udf-big.meta ]] && udfbig_need=1
((USE_SESS)) && ! [[ -s $GROWN && -s $SCORPUS/grown.meta ]] && sess_need=1
# Disk: a small file takes ~6.5 KiB in the source tree and ~5.7 KiB in the image;
# the big file exists twice while it is mastered; 7z x writes the small tree once more.
est_small_src=$((NSMALL * 6656)); est_small_iso=$((NSMALL * 5836))
est_udf_src=$((NUDF * 6656)); est_udf_img=$((NUDF * 5836))
need=$((1 << 29)); x_need=0; corpus_bytes=0
((USE_SMALL)) && { x_need=$est_small_src; corpus_bytes=$((corpus_bytes + est_small_iso)); }
((USE_BIG)) && corpus_bytes=$((corpus_bytes + BIG_BYTES))
((USE_UDF)) && { ((x_need < est_udf_src)) && x_need=$est_udf_src
                 corpus_bytes=$((corpus_bytes + est_udf_img + UDF_BIG_BYTES)); }
((USE_SESS)) && corpus_bytes=$((corpus_bytes + est_udf_img))
((USE_STAGE)) && corpus_bytes=$((corpus_bytes + 2 * STAGE_BYTES))   # tree + bigtree
((USE_COMMIT)) && corpus_bytes=$((corpus_bytes + ONE_G_BYTES))
((USE_COMMIT && !USE_SMALL)) && corpus_bytes=$((corpus_bytes + est_small_iso))
# the sources, and while a row runs one image of them
((USE_CREATE)) && corpus_bytes=$((corpus_bytes + est_small_src + 2 * BIG_BYTES))
need=$((need + x_need))
# the stage rows hold one copy of the tree at a time (in the store or the plain directory);
# the commit rows two copies of small.iso, each grown by the 1 GiB file
((USE_STAGE)) && need=$((need + STAGE_BYTES + STAGE_BYTES / 8))
((USE_COMMIT)) && need=$((need + 2 * (est_small_iso + ONE_G_BYTES) + (64 << 20)))
((stage_need)) && need=$((need + STAGE_BYTES + (64 << 20)))
((stagebig_need)) && need=$((need + STAGE_BYTES))
((commit_need)) && need=$((need + ONE_G_BYTES))
((small_need)) && need=$((need + est_small_src + est_small_iso))
((big_need)) && need=$((need + 2 * BIG_BYTES + (64 << 20)))
((udf_need)) && need=$((need + est_udf_src + est_udf_img))
((udfbig_need)) && need=$((need + 2 * UDF_BIG_BYTES + (64 << 20)))
((sess_need)) && need=$((need + est_udf_src + est_udf_img))
avail=$(df -B1 --output=avail "$WORK" | tail -n1 | tr -d ' ')
echo "corpus: $((small_need + big_need + udf_need + udfbig_need + sess_need + stage_need + stagebig_need + commit_need))" \
     "image(s) or file set(s) to build" \
     "(under $WORK/corpus-*)"
echo "disk: this run needs about $(gib "$need") free in $WORK" \
     "(corpus when built: $(gib "$corpus_bytes"), plus 7z output" \
     "$(gib "$x_need"), plus sources while mastering); $(gib "$avail") available"
if [[ -z $XBASE ]]; then
    XBASE=$WORK
    if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] &&
       (($(df -B1 --output=avail /dev/shm | tail -n1) > x_need * 3 / 2)); then
        XBASE=/dev/shm
    fi
fi
[[ -d $XBASE ]] || die "--7z-out: no directory $XBASE"
XOUT=$XBASE/discfs-bench-7z-$STAMP
[[ $(stat -c %d "$XBASE") == $(stat -c %d "$WORK") ]] || need=$((need - x_need))
echo "7z x reference extracts to $XOUT ($(stat -f -c %T "$XBASE"))"
((avail >= need)) || die "not enough free disk space in $WORK"
((small_need)) && build_small
((big_need)) && build_big
((udf_need)) && build_udf
((udfbig_need)) && build_udf_big
((sess_need)) && build_sessions
((stage_need)) && build_stage_tree
((stagebig_need)) && build_stage_bigtree
((commit_need)) && build_commit_files
((create_need)) && build_create_corpus
img_bytes=0; BIG_SIZE=0
if ((USE_SMALL)); then
    EXPECT_ENTRIES=$(metaget "$CORPUS/small.meta" entries)
    img_bytes=$((img_bytes + $(stat -c %s "$SMALL_ISO")))
fi
if ((USE_BIG)); then
    [[ -s $CORPUS/big.meta ]] || big_layout >"$CORPUS/big.meta"
    BIG_OFF=$(metaget "$CORPUS/big.meta" offset)
    BIG_SIZE=$(metaget "$CORPUS/big.meta" size)
    BIG_CONTIG=$(metaget "$CORPUS/big.meta" contiguous)
    if [[ $BIG_CONTIG != 1 ]]; then
        echo "note: /big is not stored contiguously; direct dd reads the whole image" >&2
        BIG_OFF=0; BIG_SIZE=$(stat -c %s "$BIG_ISO")
    fi
    img_bytes=$((img_bytes + $(stat -c %s "$BIG_ISO")))
fi
if ((USE_UDF)); then
    UDF_ENTRIES=$(metaget "$UCORPUS/udf-small.meta" entries)
    UDF_DATA=$(metaget "$UCORPUS/udf-small.meta" bytes)
    UDF_BIG_OFF=$(metaget "$UCORPUS/udf-big.meta" offset)
    UDF_BIG_SIZE=$(metaget "$UCORPUS/udf-big.meta" size)
    img_bytes=$((img_bytes + $(stat -c %s "$UDF_IMG") + $(stat -c %s "$UDF_BIG") + UDF_BIG_SIZE))
fi
if ((USE_SESS)); then
    SESS_N=$(metaget "$SCORPUS/grown.meta" sessions)
    SESS_NEWEST=$(metaget "$SCORPUS/grown.meta" entries_newest)
    SESS_ALL=$(metaget "$SCORPUS/grown.meta" entries_all)
    img_bytes=$((img_bytes + $(stat -c %s "$GROWN")))
fi

memavail=$(($(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) * 1024))
if ((memavail < img_bytes + BIG_SIZE + (1 << 30))); then
    echo "warning: $(gib "$memavail") of available RAM is less than the images plus the big" \
         "files' FUSE page cache ($(gib $((img_bytes + BIG_SIZE)))); 'warm image' may not hold" >&2
fi

# ------------------------------------------------------------------ meta ---
tool_version() {
    case $1 in
        discfs) timeout 5 "$DISCFS" --version 2>&1 | head -n1 ;;
        fuseiso) dpkg-query -W -f='${Version}' fuseiso 2>/dev/null ;;
        archivemount) archivemount -V 2>&1 | head -n1 ;;
    esac
}
meta date "$(date -Is)"
meta host "$(hostname)"
meta kernel "$(uname -r)"
meta cpus "$(nproc)"
meta cpu_model "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
meta mem_total_kib "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
meta runs "$RUNS"
meta quick "$QUICK"
meta pinned "$PINNED"
meta tools "$(IFS=,; echo "${TOOLS[*]}")"
meta discfs_path "$DISCFS"
if [[ -x $DISCFS ]]; then
    meta discfs_sha256 "$(sha256sum "$DISCFS" | cut -c1-64)"
    meta discfs_mtime "$(date -Is -r "$DISCFS")"
fi
for t in "${TOOLS[@]}"; do meta "${t}_version" "$(tool_version "$t")"; done
meta fio_version "$(fio --version)"
meta 7z_version "$(7z 2>/dev/null | grep -m1 -i '7-zip')"
meta xorriso_version "$(xorriso -version 2>/dev/null | head -n1)"
meta rows "$ROWS_WANTED"
if ((USE_SMALL)); then
    meta small_iso "$SMALL_ISO"
    meta small_iso_bytes "$(stat -c %s "$SMALL_ISO")"
    meta small_files "$NSMALL"
    meta small_entries_expected "$EXPECT_ENTRIES"
fi
if ((USE_BIG)); then
    meta big_iso "$BIG_ISO"
    meta big_iso_bytes "$(stat -c %s "$BIG_ISO")"
    meta big_bytes "$BIG_SIZE"
    meta big_offset "$BIG_OFF"
    meta big_extents "$(metaget "$CORPUS/big.meta" extents)"
fi
if ((USE_UDF)); then
    meta genisoimage_version "$(genisoimage -version 2>&1 | head -n1)"
    meta udf_img "$UDF_IMG"
    meta udf_img_bytes "$(stat -c %s "$UDF_IMG")"
    meta udf_files "$(metaget "$UCORPUS/udf-small.meta" files)"
    meta udf_entries_expected "$UDF_ENTRIES"
    meta udf_data_bytes "$UDF_DATA"
    meta udf_writer "$(metaget "$UCORPUS/udf-small.meta" writer)"
    meta udf_big_img "$UDF_BIG"
    meta udf_big_bytes "$UDF_BIG_SIZE"
    meta udf_big_offset "$UDF_BIG_OFF"
fi
if ((USE_SESS)); then
    meta grown_iso "$GROWN"
    meta grown_iso_bytes "$(stat -c %s "$GROWN")"
    meta grown_sessions "$SESS_N"
    meta grown_entries_newest "$SESS_NEWEST"
    meta grown_entries_all "$SESS_ALL"
    meta grown_files_per_session "$(metaget "$SCORPUS/grown.meta" files_added_1)"
fi
if ((USE_STAGE)); then
    meta stage_tree "$STAGE_SRC"
    meta stage_bytes "$STAGE_BYTES"
    meta stage_gib "$(awk -v b="$STAGE_BYTES" 'BEGIN { printf "%g", b / 1073741824 }')"
    STAGE_FILES=$(metaget "$STCORPUS/tree.meta" files)
    meta stage_files "$STAGE_FILES"
    meta stage_big_files "$(metaget "$STCORPUS/tree.meta" big_files)"
    meta stage_small_files "$(metaget "$STCORPUS/tree.meta" small_files)"
    read -r STAGE_SMALL_FILES STAGE_SMALL_BYTES < <(tree_count "$STAGE_SMALL_SRC")
    meta stage_small_bytes "$STAGE_SMALL_BYTES"
    meta stage_small_mib "$(awk -v b="$STAGE_SMALL_BYTES" 'BEGIN { printf "%g", b / 1048576 }')"
    meta stage_small_dirs "$(find "$STAGE_SMALL_SRC" -type d | wc -l)"
    meta stage_bigtree "$STAGE_BIG_SRC"
    read -r STAGE_BIG_FILES STAGE_BIG_BYTES < <(tree_count "$STAGE_BIG_SRC")
    meta stage_bigtree_files "$STAGE_BIG_FILES"
    meta stage_bigtree_bytes "$STAGE_BIG_BYTES"
    meta stage_bigtree_gib "$(awk -v b="$STAGE_BIG_BYTES" 'BEGIN { printf "%g", b / 1073741824 }')"
    meta stage_fs "$(stat -f -c %T "$WORK") ($(df --output=source "$WORK" | tail -n1))"
fi
if ((USE_COMMIT)); then
    COMMIT_FILES=$(metaget "$CORPUS/small.meta" files)
    meta commit_base "$SMALL_ISO"
    meta commit_base_bytes "$(stat -c %s "$SMALL_ISO")"
    meta commit_base_files "$COMMIT_FILES"
    meta commit_1g_bytes "$ONE_G_BYTES"
    meta commit_1file_bytes "$ONE_F_BYTES"
    meta commit_xorriso "xorriso ${XORRISO_OPTS[*]} -dev IMG -update_r DIR /DIR -commit"
    meta reflink "$(cp --reflink=always "$CCORPUS/bench-4k/small-4k.bin" "$TMPD/reflink-probe" \
                    2>/dev/null && echo yes || echo no)"
    rm -f "$TMPD/reflink-probe"
fi
meta fio_runtime_s "$FIO_RUNTIME"
meta 7z_out "$XBASE ($(stat -f -c %T "$XBASE"))"
meta note "warm image (page cache checked with fincore), cold mount; medians over runs"

# ------------------------------------------------------------------ rows ---
# Each row: for run in 1..RUNS: for tool in TOOLS (A B A B ...), then the direct reference.

row_walk() {   # mount latency, cold find, warm find on small.iso
    local pin=$1 sfx r t n note
    sfx=$(suffix "$pin"); set_pin "$pin"
    echo "== walk$sfx: mount latency, find | wc -l cold and warm (small.iso)"
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${TOOLS[@]}"; do
            warm "$SMALL_ISO"
            if ! do_mount "$t" "$SMALL_ISO" "$pin"; then
                ((pin)) || rec mount_small "$t" "$r" NA "$M_ERR"
                rec "walk_cold$sfx" "$t" "$r" NA "$M_ERR"; rec "walk_warm$sfx" "$t" "$r" NA "$M_ERR"
                continue
            fi
            ((pin)) || rec mount_small "$t" "$r" "$M_MS"
            for pass in cold warm; do
                op_find "$MNT"
                n=$(tr -d ' ' <"$TMPD/op.out" 2>/dev/null)
                if ((RC)); then rec "walk_$pass$sfx" "$t" "$r" NA "$(errnote)"; continue; fi
                note=""
                [[ $n == "$EXPECT_ENTRIES" ]] || note="saw $n entries, expected $EXPECT_ENTRIES"
                rec "walk_$pass$sfx" "$t" "$r" "$EL_S" "$note"
            done
            unmount_one "$MNT"
        done
    done
}

row_lslR() {
    local pin=$1 sfx r t
    sfx=$(suffix "$pin"); set_pin "$pin"
    echo "== lslR$sfx: ls -lR >/dev/null on a fresh mount (small.iso)"
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${TOOLS[@]}"; do
            warm "$SMALL_ISO"
            if ! do_mount "$t" "$SMALL_ISO" "$pin"; then rec "lslR_cold$sfx" "$t" "$r" NA "$M_ERR"; continue; fi
            op_lslR "$MNT"
            if ((RC)); then rec "lslR_cold$sfx" "$t" "$r" NA "$(errnote)"
            else rec "lslR_cold$sfx" "$t" "$r" "$EL_S"; fi
            unmount_one "$MNT"
        done
    done
}

AM_TAR_DEAD=""
row_tar() {    # read every small file; daemon peak RSS afterwards; 7z x as the reference
    local pin=$1 sfx r t bytes hwm lim note ref_bytes="" ref_tool=""
    sfx=$(suffix "$pin"); set_pin "$pin"
    echo "== tar$sfx: tar cf - -C MNT . | wc -c on a fresh mount, vs 7z x small.iso"
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${TOOLS[@]}"; do
            if [[ $t == archivemount && -n $AM_TAR_DEAD ]]; then
                rec "tar_small$sfx" "$t" "$r" NA "$AM_TAR_DEAD"
                ((pin)) || rec rss_peak "$t" "$r" NA "$AM_TAR_DEAD"
                continue
            fi
            warm "$SMALL_ISO"
            if ! do_mount "$t" "$SMALL_ISO" "$pin"; then
                rec "tar_small$sfx" "$t" "$r" NA "$M_ERR"
                ((pin)) || rec rss_peak "$t" "$r" NA "$M_ERR"
                continue
            fi
            lim=$OP_TIMEOUT; [[ $t == archivemount ]] && lim=$AM_TIMEOUT
            op_tar "$MNT" "$lim"
            bytes=$(tr -d ' ' <"$TMPD/op.out" 2>/dev/null)
            note=""
            if ((RC)); then
                note="$(errnote)"; ((RC == 124)) && note="timed out after ${lim}s"
                rec "tar_small$sfx" "$t" "$r" NA "$note"
                [[ $t == archivemount ]] && AM_TAR_DEAD="skipped after: $note"
            else
                # Same names, sizes and owners give the same tar stream length.
                [[ -z $ref_bytes ]] && ref_bytes=$bytes ref_tool=$t
                rec "tar_small$sfx" "$t" "$r" "$EL_S" \
                    "$([[ $bytes == "$ref_bytes" ]] || echo "tar stream $bytes bytes, $ref_tool gave $ref_bytes")"
            fi
            if ((!pin)); then
                hwm=$(awk '/^VmHWM:/ { printf "%.2f", $2 / 1024 }' "/proc/$M_PID/status" 2>/dev/null)
                if [[ -z $hwm ]]; then rec rss_peak "$t" "$r" NA "daemon gone"
                elif [[ -n $note ]]; then rec rss_peak "$t" "$r" NA "read did not finish ($note); VmHWM then $hwm MiB"
                else rec rss_peak "$t" "$r" "$hwm"; fi
            fi
            unmount_one "$MNT"
        done
        warm "$SMALL_ISO"
        op_7z "$SMALL_ISO"
        if ((RC)); then rec "tar_small$sfx" direct "$r" NA "7z: $(errnote)"
        else rec "tar_small$sfx" direct "$r" "$EL_S"; fi
    done
}

# cold TOOL IMAGE: what the udf and sessions rows do before every "cold" mount.  Drops the
# kernel's page, dentry and inode caches (echo 3 > drop_caches), then reads the image back
# into the page cache (warm image, as everywhere here) and runs the daemon's binary and the
# client tools once, so that paging them back in from disk is not part of what is timed.
cold() {
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "warning: cannot drop caches" >&2
    warm "$2"
    case $1 in
        discfs) timeout 10 "$DISCFS" --version ;;
        fuseiso) timeout 10 fuseiso ;;
        archivemount) timeout 10 archivemount -V ;;
    esac >/dev/null 2>&1
    bash -c 'find / -maxdepth 0 | wc -l; tar --version; dd --version' >/dev/null 2>&1
}

AM_BIG_DEAD=""
big_limit() { [[ $1 == archivemount ]] && echo "$AM_TIMEOUT" || echo "$OP_TIMEOUT"; }

row_seq() {    # mount big.iso; dd first pass; dd re-read; fio warm; direct dd + fio on the image
    local r t lim note
    set_pin 0
    echo "== seq: dd of the big file (first pass, re-read), fio 4k randread warm (big.iso)"
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${TOOLS[@]}"; do
            if [[ $t == archivemount && -n $AM_BIG_DEAD ]]; then
                for row in seq_first seq_reread rand_warm; do rec $row "$t" "$r" NA "$AM_BIG_DEAD"; done
                continue
            fi
            warm "$BIG_ISO"
            if ! do_mount "$t" "$BIG_ISO" 0; then
                rec mount_big "$t" "$r" NA "$M_ERR"
                for row in seq_first seq_reread rand_warm; do rec $row "$t" "$r" NA "$M_ERR"; done
                continue
            fi
            rec mount_big "$t" "$r" "$M_MS"
            lim=$(big_limit "$t")
            for row in seq_first seq_reread; do
                if [[ $t == archivemount && -n $AM_BIG_DEAD ]]; then
                    rec $row "$t" "$r" NA "$AM_BIG_DEAD"; continue
                fi
                op_dd "$lim" "$MNT/big"
                if ((RC)); then
                    note="$(errnote)"; ((RC == 124)) && note="timed out after ${lim}s"
                    rec $row "$t" "$r" NA "$note"
                    [[ $t == archivemount ]] && AM_BIG_DEAD="skipped after: $note"
                    continue
                fi
                note=""
                ((DD_BYTES == BIG_SIZE)) ||
                    note="read $DD_BYTES of $BIG_SIZE bytes (file shows as $(stat -c %s "$MNT/big") bytes)"
                rec $row "$t" "$r" "$(rate "$DD_BYTES" "$EL_US")" "$note"
            done
            if [[ $t == archivemount && -n $AM_BIG_DEAD ]]; then
                rec rand_warm "$t" "$r" NA "$AM_BIG_DEAD"
            else
                op_fio "$lim" "$MNT/big"
                if ((RC)); then
                    note="$(errnote)"; ((RC == 124)) && note="timed out after ${lim}s"
                    rec rand_warm "$t" "$r" NA "$note"
                else
                    rec rand_warm "$t" "$r" "$FIO_IOPS" \
                        "$([[ $(stat -c %s "$MNT/big") == "$BIG_SIZE" ]] || echo "file shows as $(stat -c %s "$MNT/big") bytes")"
                fi
            fi
            unmount_one "$MNT"
        done
        warm "$BIG_ISO"
        op_dd "$OP_TIMEOUT" "$BIG_ISO" "$BIG_OFF" "$BIG_SIZE"
        if ((RC)); then rec seq_first direct "$r" NA "$(errnote)"; rec seq_reread direct "$r" NA "$(errnote)"
        else
            rec seq_first direct "$r" "$(rate "$DD_BYTES" "$EL_US")"
            rec seq_reread direct "$r" "$(rate "$DD_BYTES" "$EL_US")"
        fi
        op_fio "$OP_TIMEOUT" "$BIG_ISO" "$BIG_OFF" "$BIG_SIZE"
        if ((RC)); then rec rand_warm direct "$r" NA "$(errnote)"
        else rec rand_warm direct "$r" "$FIO_IOPS"; fi
    done
}

row_rand() {   # fio 4k randread right after a fresh mount of big.iso
    local pin=$1 sfx r t lim note
    sfx=$(suffix "$pin"); set_pin "$pin"
    echo "== rand$sfx: fio 4k randread on a fresh mount (big.iso)"
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${TOOLS[@]}"; do
            if [[ $t == archivemount && -n $AM_BIG_DEAD ]]; then
                rec "rand_fresh$sfx" "$t" "$r" NA "$AM_BIG_DEAD"; continue
            fi
            warm "$BIG_ISO"
            if ! do_mount "$t" "$BIG_ISO" "$pin"; then rec "rand_fresh$sfx" "$t" "$r" NA "$M_ERR"; continue; fi
            lim=$(big_limit "$t")
            op_fio "$lim" "$MNT/big"
            if ((RC)); then
                note="$(errnote)"; ((RC == 124)) && note="timed out after ${lim}s"
                rec "rand_fresh$sfx" "$t" "$r" NA "$note"
                [[ $t == archivemount ]] && AM_BIG_DEAD="skipped after: $note"
            else
                rec "rand_fresh$sfx" "$t" "$r" "$FIO_IOPS" \
                    "$([[ $(stat -c %s "$MNT/big") == "$BIG_SIZE" ]] || echo "file shows as $(stat -c %s "$MNT/big") bytes")"
            fi
            unmount_one "$MNT"
        done
        warm "$BIG_ISO"
        op_fio "$OP_TIMEOUT" "$BIG_ISO" "$BIG_OFF" "$BIG_SIZE"
        if ((RC)); then rec "rand_fresh$sfx" direct "$r" NA "$(errnote)"
        else rec "rand_fresh$sfx" direct "$r" "$FIO_IOPS"; fi
    done
}

udf_err() {  # the note for a failed mount of a UDF-only image (the log path varies per run)
    if [[ $1 == discfs ]]; then echo "$M_ERR"
    else echo "${M_ERR%%;*}: reads no UDF (no ISO 9660 volume in the image)"; fi
}

row_udf() {   # UDF-only images: mount, find cold/warm, tar of all files, dd of a 1 GiB file
    local pin=$1 sfx r t n note pass lim bytes ms ok ref_bytes="" ref_tool=""
    sfx=$(suffix "$pin"); set_pin "$pin"
    DOPTS=(--tree udf)
    if ((pin)); then echo "== udf$sfx: find cold/warm, tar | wc -c (udf-small.img) vs 7z x"
    else echo "== udf: mount, find cold/warm, tar | wc -c (udf-small.img), dd (udf-big.img); vs 7z x / dd"; fi
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${TOOLS[@]}"; do
            cold "$t" "$UDF_IMG"
            if ! do_mount "$t" "$UDF_IMG" "$pin"; then
                ((pin)) || rec udf_mount "$t" "$r" NA "$(udf_err "$t")"
                for row in "udf_walk_cold$sfx" "udf_walk_warm$sfx"; do rec "$row" "$t" "$r" NA "$(udf_err "$t")"; done
                continue
            fi
            ms=$M_MS; ok=1
            for pass in cold warm; do
                op_find "$MNT"
                n=$(tr -d ' ' <"$TMPD/op.out" 2>/dev/null)
                if ((RC)); then rec "udf_walk_$pass$sfx" "$t" "$r" NA "$(errnote)"; continue; fi
                if [[ $n == "$UDF_ENTRIES" ]]; then rec "udf_walk_$pass$sfx" "$t" "$r" "$EL_S"
                elif [[ $t == discfs ]]; then
                    rec "udf_walk_$pass$sfx" "$t" "$r" "$EL_S" "saw $n entries, expected $UDF_ENTRIES"
                else   # a peer that mounts but cannot read the UDF tree: no figure
                    ok=0
                    rec "udf_walk_$pass$sfx" "$t" "$r" NA "mounts, but shows $n entries of $UDF_ENTRIES: reads no UDF"
                fi
            done
            if ((pin)); then :
            elif ((ok)); then rec udf_mount "$t" "$r" "$ms"
            else rec udf_mount "$t" "$r" NA "mounts, but shows $n entries of $UDF_ENTRIES: reads no UDF"; fi
            unmount_one "$MNT"
        done
        for t in "${TOOLS[@]}"; do
            cold "$t" "$UDF_IMG"
            if ! do_mount "$t" "$UDF_IMG" "$pin"; then rec "udf_tar$sfx" "$t" "$r" NA "$(udf_err "$t")"; continue; fi
            lim=$OP_TIMEOUT; [[ $t == archivemount ]] && lim=$AM_TIMEOUT
            op_tar "$MNT" "$lim"
            bytes=$(tr -d ' ' <"$TMPD/op.out" 2>/dev/null)
            if ((RC)); then
                note="$(errnote)"; ((RC == 124)) && note="timed out after ${lim}s"
                rec "udf_tar$sfx" "$t" "$r" NA "$note"
            elif ((bytes < UDF_DATA)); then
                rec "udf_tar$sfx" "$t" "$r" NA "tar stream of $bytes bytes, less than the $UDF_DATA bytes of file data"
            else
                [[ -z $ref_bytes ]] && ref_bytes=$bytes ref_tool=$t
                rec "udf_tar$sfx" "$t" "$r" "$EL_S" \
                    "$([[ $bytes == "$ref_bytes" ]] || echo "tar stream $bytes bytes, $ref_tool gave $ref_bytes")"
            fi
            unmount_one "$MNT"
        done
        cold direct "$UDF_IMG"
        op_7z "$UDF_IMG" -tudf
        if ((RC)); then rec "udf_tar$sfx" direct "$r" NA "7z: $(errnote)"
        else rec "udf_tar$sfx" direct "$r" "$EL_S"; fi
        ((pin)) && continue     # the dd row is not round-trip bound: unpinned only
        for t in "${TOOLS[@]}"; do
            warm "$UDF_BIG"
            if ! do_mount "$t" "$UDF_BIG" 0; then rec udf_seq_first "$t" "$r" NA "$(udf_err "$t")"; continue; fi
            lim=$OP_TIMEOUT; [[ $t == archivemount ]] && lim=$AM_TIMEOUT
            op_dd "$lim" "$MNT/big"
            if ((RC)); then
                note="$(errnote)"; ((RC == 124)) && note="timed out after ${lim}s"
                rec udf_seq_first "$t" "$r" NA "$note"
            elif ((DD_BYTES != UDF_BIG_SIZE)); then
                rec udf_seq_first "$t" "$r" NA "read $DD_BYTES of $UDF_BIG_SIZE bytes"
            else
                rec udf_seq_first "$t" "$r" "$(rate "$DD_BYTES" "$EL_US")"
            fi
            unmount_one "$MNT"
        done
        warm "$UDF_BIG"
        op_dd "$OP_TIMEOUT" "$UDF_BIG" "$UDF_BIG_OFF" "$UDF_BIG_SIZE"
        if ((RC)); then rec udf_seq_first direct "$r" NA "$(errnote)"
        else rec udf_seq_first direct "$r" "$(rate "$DD_BYTES" "$EL_US")"; fi
    done
    DOPTS=()
}

row_sessions() {   # grown.iso: find over the newest session vs over every session (--sessions)
    local pin=$1 sfx r t n mode row want
    sfx=$(suffix "$pin"); set_pin "$pin"
    echo "== sessions$sfx: find cold on grown.iso ($SESS_N sessions): newest session; discfs --sessions"
    for ((r = 1; r <= RUNS; r++)); do
        for t in "${TOOLS[@]}"; do
            for mode in newest all; do
                [[ $mode == all && $t != discfs ]] && continue
                DOPTS=(); want=$SESS_NEWEST
                [[ $mode == all ]] && DOPTS=(--sessions) want=$SESS_ALL
                cold "$t" "$GROWN"
                if ! do_mount "$t" "$GROWN" "$pin"; then
                    ((pin)) || rec "sess_mount_$mode" "$t" "$r" NA "$M_ERR"
                    rec "sess_walk_$mode$sfx" "$t" "$r" NA "$M_ERR"
                    continue
                fi
                ((pin)) || rec "sess_mount_$mode" "$t" "$r" "$M_MS"
                op_find "$MNT"
                n=$(tr -d ' ' <"$TMPD/op.out" 2>/dev/null)
                if ((RC)); then rec "sess_walk_$mode$sfx" "$t" "$r" NA "$(errnote)"
                else
                    rec "sess_walk_$mode$sfx" "$t" "$r" "$EL_S" \
                        "$([[ $n == "$want" ]] || echo "saw $n entries, expected $want")"
                fi
                unmount_one "$MNT"
            done
        done
    done
    DOPTS=()
}

# ------------------------------------------------------- stage and commit ---
usecs() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
op_cp() { timed timeout -k 5 "$OP_TIMEOUT" cp -a "$1" "$2" 2>"$TMPD/op.err"; }
op_syncfs() { timed timeout -k 5 "$OP_TIMEOUT" sync -f "$1" 2>"$TMPD/op.err"; }
op_commit() { timed timeout -k 5 "$OP_TIMEOUT" "$DISCFS" commit "$1" >"$TMPD/op.out" 2>"$TMPD/op.err"; }
op_xorriso() {   # op_xorriso IMAGE DIR: adds DIR as /NAME-of-DIR in a new session
    timed timeout -k 5 "$OP_TIMEOUT" xorriso "${XORRISO_OPTS[@]}" -dev "$1" -update_r "$2" "/${2##*/}" -commit >"$TMPD/op.out" 2>"$TMPD/op.err"
}

# warm_tree DIR: make sure every file under DIR is in the page cache (like warm)
warm_tree() {
    local total res
    total=$(find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
    res=$(find "$1" -type f -print0 | xargs -0 -r fincore -b -n -r -o RES 2>/dev/null |
          awk '{ s += $1 } END { printf "%.0f", s }')
    if ((res < total - total / 100)); then
        find "$1" -type f -print0 | xargs -0 -r cat >/dev/null
        res=$(find "$1" -type f -print0 | xargs -0 -r fincore -b -n -r -o RES 2>/dev/null |
              awk '{ s += $1 } END { printf "%.0f", s }')
    fi
    WARM_PCT=$((total ? res * 100 / total : 100))
    ((WARM_PCT >= 95)) || echo "warning: only $WARM_PCT% of $1 stays in the page cache (RAM?)" >&2
}

# vol_end IMAGE: the volume space size (blocks) in the primary volume descriptor at LBA 16,
# which both discfs and xorriso rewrite last as the commit point: the end of the newest session
vol_end() {
    [[ $(dd if="$1" bs=1 skip=$((16 * 2048 + 1)) count=5 2>/dev/null) == CD001 ]] || return 1
    od -An -t u4 -j $((16 * 2048 + 80)) -N 4 "$1" | tr -d ' '
}

# base_nwa IMAGE -> B_NWA: where the next session of IMAGE starts (xorriso -toc "Media nwa")
base_nwa() {
    B_NWA=$(xorriso -indev "$1" -toc 2>/dev/null | sed -n 's/^Media nwa *: *\([0-9][0-9]*\)s.*/\1/p' |
            tail -n1)
}

# session_of IMAGE ISODIR -> S_BLOCKS (end of the newest session - B_NWA of the base: the
# blocks the commit added, padding between base and session included), S_TOC (xorriso -toc's
# view: sessions and the newest one's start and size), S_BYTES (bytes of the files under ISODIR
# in the newest session).  xorriso -toc alone cannot tell the new session's size when the
# base's session starts at LBA 0 (an image from xorriso -as mkisofs, like small.iso): its
# emulated table of contents then shows one session that grows with every commit.
session_of() {
    local out end
    out=$(timeout -k 5 "$OP_TIMEOUT" xorriso -indev "$1" -toc -find "$2" -type f \
              -exec report_lba 2>/dev/null)
    S_TOC=$(grep '^ISO session' <<<"$out" | awk -F, '{ gsub(/ /, ""); s = $2; z = $3; n++ }
            END { printf "%d session(s), newest at %s, %s", n, s, z }')
    S_BYTES=$(awk -F, '/^File data lba:/ { s += $4 } END { printf "%.0f", s }' <<<"$out")
    S_BLOCKS=""
    end=$(vol_end "$1") && [[ $end =~ ^[0-9]+$ && -n $B_NWA ]] && S_BLOCKS=$((end - B_NWA))
}

# stage_copy_into TOOL SRC: one copy of SRC, until durable, into a fresh staging mount
# (discfs: blank target, fresh store in WORK) or a fresh plain directory in WORK (plain):
# `cp -a SRC DST`, then `sync -f WORK` -> CP_US, SYNC_US, COPY_N and COPY_BYTES (what the
# copy holds), MOUNT_MS (discfs; empty when the mount failed).  Returns 1 with COPY_ERR set
# when the mount or the cp failed.
stage_copy_into() {
    local t=$1 src=$2 dst
    MOUNT_MS=""; COPY_ERR=""
    rm -rf "$TMPD/plain" "$TMPD/stage-store" "$TMPD/stage-target.iso"
    sync -f "$WORK"
    # On a disk mounted with -o discard (this machine's root is) the blocks freed by the
    # last copy are trimmed for a few seconds after the sync, and a copy started meanwhile
    # runs up to twice as slow; let that settle, for either tool.
    nap "$SETTLE"
    warm_tree "$src"
    if [[ $t == discfs ]]; then
        STAGE_STORE=$TMPD/stage-store
        if ! do_mount discfs-stage "$TMPD/stage-target.iso" 0; then
            COPY_ERR=$M_ERR
            return 1
        fi
        MOUNT_MS=$M_MS
        dst=$MNT
    else
        mkdir -p "$TMPD/plain"
        dst=$TMPD/plain
    fi
    op_cp "$src" "$dst"
    if ((RC)); then
        COPY_ERR=$(errnote); ((RC == 124)) && COPY_ERR="timed out after ${OP_TIMEOUT}s"
        [[ $t == discfs ]] && unmount_one "$MNT"
        return 1
    fi
    CP_US=$EL_US
    # the store and the plain directory are on WORK's filesystem: sync that one
    op_syncfs "$WORK"
    SYNC_US=$EL_US
    ((RC)) && echo "warning: sync -f $WORK: $(errnote)" >&2
    read -r COPY_N COPY_BYTES < <(tree_count "$dst/${src##*/}")
    [[ $t == discfs ]] && unmount_one "$MNT"
    return 0
}

frate() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.1f", n / us * 1e6 }'; }

# The stage rows, run by run (A B A B), each copy until durable:
#   stage_copy (+ _cp, _sync, stage_mount): the mixed tree (big and small files)
#   stage_copy_big: STAGE_BYTES in STAGE_BIG_N big files only (MiB/s)
#   stage_copy_small: the small/ part of the mixed tree alone (files/s)
row_stage() {
    local r t part src want_n want_bytes note row tools=(plain)
    ((HAVE_DISCFS)) && tools=(discfs plain)
    set_pin 0
    echo "== stage: cp -a into a fresh staging mount vs a plain directory in $WORK, then sync -f:"
    echo "   stage_copy: $(gib "$STAGE_BYTES") ($STAGE_FILES files);" \
         "stage_copy_big: $(gib "$STAGE_BIG_BYTES") in $STAGE_BIG_FILES files;" \
         "stage_copy_small: the $STAGE_SMALL_FILES small files of stage_copy" \
         "($(gib "$STAGE_SMALL_BYTES")) alone"
    for ((r = 1; r <= RUNS; r++)); do
        for part in mixed big small; do
            case $part in
                mixed) src=$STAGE_SRC want_n=$STAGE_FILES want_bytes=$STAGE_BYTES ;;
                big) src=$STAGE_BIG_SRC want_n=$STAGE_BIG_FILES want_bytes=$STAGE_BIG_BYTES ;;
                small) src=$STAGE_SMALL_SRC want_n=$STAGE_SMALL_FILES want_bytes=$STAGE_SMALL_BYTES ;;
            esac
            for t in "${tools[@]}"; do
                if ! stage_copy_into "$t" "$src"; then
                    if [[ $part == mixed ]]; then
                        if [[ $t == discfs ]]; then
                            if [[ -n $MOUNT_MS ]]; then rec stage_mount "$t" "$r" "$MOUNT_MS"
                            else rec stage_mount "$t" "$r" NA "$COPY_ERR"; fi
                        fi
                        for row in stage_copy stage_copy_cp stage_copy_sync; do
                            rec $row "$t" "$r" NA "$COPY_ERR"
                        done
                    else
                        rec "stage_copy_$part" "$t" "$r" NA "$COPY_ERR"
                    fi
                    continue
                fi
                note=""
                [[ $COPY_N == "$want_n" && $COPY_BYTES == "$want_bytes" ]] ||
                    note="the copy holds $COPY_N files, $COPY_BYTES bytes; expected $want_n, $want_bytes"
                case $part in
                    mixed)
                        [[ $t == discfs ]] && rec stage_mount "$t" "$r" "$MOUNT_MS"
                        rec stage_copy "$t" "$r" "$(rate "$STAGE_BYTES" $((CP_US + SYNC_US)))" "$note"
                        rec stage_copy_cp "$t" "$r" "$(rate "$STAGE_BYTES" "$CP_US")" "$note"
                        rec stage_copy_sync "$t" "$r" "$(usecs "$SYNC_US")" ;;
                    big)
                        rec stage_copy_big "$t" "$r" "$(rate "$want_bytes" $((CP_US + SYNC_US)))" "$note"
                        echo "    (cp $(usecs "$CP_US") s + sync -f $(usecs "$SYNC_US") s)" ;;
                    small)
                        rec stage_copy_small "$t" "$r" "$(frate "$want_n" $((CP_US + SYNC_US)))" "$note"
                        echo "    (cp $(usecs "$CP_US") s + sync -f $(usecs "$SYNC_US") s;" \
                             "$(rate "$want_bytes" $((CP_US + SYNC_US))) MiB/s)" ;;
                esac
            done
        done
    done
    rm -rf "$TMPD/plain" "$TMPD/stage-store" "$TMPD/stage-target.iso"
}

row_commit() {   # one new file (1 GiB, 4 KiB) committed on a copy of small.iso: discfs vs xorriso
    local kind r t img src srcdir want mount_us add_us note row rows tools=(xorriso)
    ((HAVE_DISCFS)) && tools=(discfs xorriso)
    set_pin 0
    base_nwa "$SMALL_ISO"
    meta commit_base_nwa "$B_NWA"
    for kind in 1g 1file; do
        if [[ $kind == 1g ]]; then srcdir=$ONE_G_DIR src=$ONE_G_DIR/big-1g.bin want=$ONE_G_BYTES
        else srcdir=$ONE_F_DIR src=$ONE_F_DIR/small-4k.bin want=$ONE_F_BYTES; fi
        rows=("commit_$kind" "commit_${kind}_all" "commit_${kind}_blocks")
        echo "== commit_$kind: /${srcdir##*/}/${src##*/} ($want bytes) added to a copy of" \
             "${SMALL_ISO##*/} ($COMMIT_FILES files): discfs stage + cp + commit vs xorriso -update_r"
        for ((r = 1; r <= RUNS; r++)); do
            for t in "${tools[@]}"; do
                img=$TMPD/commit-$t.iso
                rm -rf "$img" "$TMPD/commit-store"
                if ! cp --reflink=auto "$SMALL_ISO" "$img" 2>"$TMPD/op.err"; then
                    RC=1; note="copy of ${SMALL_ISO##*/}: $(errnote)"
                    for row in "${rows[@]}"; do rec "$row" "$t" "$r" NA "$note"; done
                    continue
                fi
                sync -f "$WORK"
                warm "$img"; warm "$src"
                if [[ $t == discfs ]]; then
                    STAGE_STORE=$TMPD/commit-store
                    if ! do_mount discfs-stage "$img" 0; then
                        for row in "${rows[@]}"; do rec "$row" "$t" "$r" NA "$M_ERR"; done
                        continue
                    fi
                    mount_us=$(awk -v ms="$M_MS" 'BEGIN { printf "%.0f", ms * 1000 }')
                    [[ $kind == 1g ]] && rec commit_stage_mount "$t" "$r" "$M_MS"
                    op_cp "$srcdir" "$MNT"
                    if ((RC)); then
                        note="cp into the staging mount: $(errnote)"
                        for row in "${rows[@]}" "commit_${kind}_add"; do rec "$row" "$t" "$r" NA "$note"; done
                        unmount_one "$MNT"
                        continue
                    fi
                    add_us=$EL_US
                    rec "commit_${kind}_add" "$t" "$r" "$EL_S"
                    op_commit "$MNT"
                    if ((RC)); then
                        note=$(errnote); ((RC == 124)) && note="timed out after ${OP_TIMEOUT}s"
                        for row in "${rows[@]}"; do rec "$row" "$t" "$r" NA "discfs commit: $note"; done
                        unmount_one "$MNT"
                        continue
                    fi
                    rec "commit_$kind" "$t" "$r" "$EL_S"
                    rec "commit_${kind}_all" "$t" "$r" "$(usecs $((mount_us + add_us + EL_US)))"
                    unmount_one "$MNT"
                else
                    op_xorriso "$img" "$srcdir"
                    if ((RC)); then
                        note=$(errnote); ((RC == 124)) && note="timed out after ${OP_TIMEOUT}s"
                        for row in "${rows[@]}"; do rec "$row" "$t" "$r" NA "xorriso: $note"; done
                        continue
                    fi
                    rec "commit_$kind" "$t" "$r" "$EL_S"
                    rec "commit_${kind}_all" "$t" "$r" "$EL_S"
                fi
                session_of "$img" "/${srcdir##*/}"
                echo "    $t: xorriso -toc: $S_TOC; volume end - base nwa $B_NWA = $S_BLOCKS blocks"
                note=""
                [[ $S_BYTES == "$want" ]] ||
                    note="the newest session's /${srcdir##*/} holds $S_BYTES bytes, not $want"
                if [[ $S_BLOCKS =~ ^[0-9]+$ ]]; then rec "commit_${kind}_blocks" "$t" "$r" "$S_BLOCKS" "$note"
                else rec "commit_${kind}_blocks" "$t" "$r" NA "no volume descriptor at LBA 16${note:+; $note}"; fi
            done
        done
    done
    rm -rf "$TMPD/commit-discfs.iso" "$TMPD/commit-xorriso.iso" "$TMPD/commit-store"
}

row_create() {   # master the small tree and the big file: discfs create vs xorriso -as mkisofs
    local kind r t src out note tools=(xorriso)
    ((HAVE_DISCFS)) && tools=(discfs xorriso)
    meta create_small_files "$(metaget "$CRCORPUS/create.meta" files)"
    meta create_big_gib "$(awk -v b="$BIG_BYTES" 'BEGIN { printf "%.0f", b / 1073741824 }')"
    meta create_xorriso "xorriso -as mkisofs -quiet -R -J -joliet-long --md5 -o IMG SRC; sync -d IMG"
    for kind in small big; do
        if [[ $kind == small ]]; then src=$CR_SMALL; else src=$CR_BIG; fi
        echo "== create_$kind: ${src##*/} -> image, durable (discfs fsyncs; xorriso + sync -d)"
        for ((r = 1; r <= RUNS; r++)); do
            for t in "${tools[@]}"; do
                out=$TMPD/create-$t.iso
                rm -f "$out" "$TMPD/rss"
                sync -f "$WORK"
                if [[ $t == discfs ]]; then
                    timed timeout -k 5 "$OP_TIMEOUT" /usr/bin/time -o "$TMPD/rss" -f %M \
                        "$DISCFS" create -q -o "$out" "$src" >"$TMPD/op.out" 2>"$TMPD/op.err"
                else
                    timed timeout -k 5 "$OP_TIMEOUT" /usr/bin/time -o "$TMPD/rss" -f %M \
                        sh -c 'xorriso -as mkisofs -quiet -R -J -joliet-long --md5 -o "$1" "$2" &&
                               sync -d "$1"' _ "$out" "$src" >"$TMPD/op.out" 2>"$TMPD/op.err"
                fi
                if ((RC)); then
                    note=$(errnote); ((RC == 124)) && note="timed out after ${OP_TIMEOUT}s"
                    rec "create_$kind" "$t" "$r" NA "$note"
                    rec "create_${kind}_rss" "$t" "$r" NA "$note"
                    continue
                fi
                rec "create_$kind" "$t" "$r" "$EL_S"
                rec "create_${kind}_rss" "$t" "$r" \
                    "$(awk '/^[0-9]+$/ { printf "%.1f", $1 / 1024 }' "$TMPD/rss")"
                rm -f "$out"
            done
        done
    done
}

echo "tools: ${TOOLS[*]}; runs: $RUNS; logs: $LOGDIR"
echo "warming the images (cat > /dev/null, checked with fincore) ..."
((USE_SMALL)) && { warm "$SMALL_ISO"; meta small_iso_resident_pct "$WARM_PCT"; }
((USE_BIG)) && { warm "$BIG_ISO"; meta big_iso_resident_pct "$WARM_PCT"; }

want_row walk && row_walk 0
want_row lslR && row_lslR 0
want_row tar && row_tar 0
want_row seq && row_seq
want_row rand && row_rand 0
want_row udf && row_udf 0
want_row sessions && row_sessions 0
want_row stage && row_stage
want_row commit && row_commit
want_row create && row_create
if ((PINNED)); then
    want_row walk && row_walk 1
    want_row lslR && row_lslR 1
    want_row tar && row_tar 1
    want_row rand && row_rand 1
    want_row udf && row_udf 1
    want_row sessions && row_sessions 1
fi

((USE_SMALL)) && { warm "$SMALL_ISO"; meta small_iso_resident_pct_end "$WARM_BEFORE"; }
((USE_BIG)) && { warm "$BIG_ISO"; meta big_iso_resident_pct_end "$WARM_BEFORE"; }
python3 "$LIB/report.py" "$SAMPLES" "$META" "$RESULTS"
