#!/usr/bin/env bash
# discfs read-only mount benchmark: discfs side by side with fuseiso, archivemount
# and direct reads of the image file.  A tool a person runs by hand; it never
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
ROWS_WANTED=walk,lslR,tar,seq,rand
OP_TIMEOUT=900             # any single timed operation
AM_TIMEOUT=120             # archivemount reading file data (big file; tar of all small files)
FIO_RUNTIME=10
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
  --quick          20,000 small files and a 1 GiB big file (smoke run)
  --pinned         also run the round-trip-bound rows with daemon and client
                   pinned to CPU 0 (taskset -c 0)
  --tools LIST     subset of discfs,fuseiso,archivemount (default: all)
  --rows LIST      subset of walk,lslR,tar,seq,rand (default: all)
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
         df stat awk sha256sum; do
    command -v "$c" >/dev/null || die "needs '$c' (see tests/bench/README.md)"
done

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

# do_mount TOOL IMAGE PIN -> MNT, M_MS (mount latency ms), M_PID; returns 1 on failure
do_mount() {
    local tool=$1 img=$2 pin=$3 out cmd=() sup i line
    MNT=$MNTROOT/$tool
    is_mounted "$MNT" && unmount_one "$MNT"
    mkdir -p "$MNT"
    case $tool in
        discfs) cmd=("$DISCFS" mount -f "$img" "$MNT") ;;
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
op_7z() {
    rm -rf "$XOUT"; sync
    timed timeout -k 5 "$OP_TIMEOUT" "${PINPFX[@]}" 7z x -y -o"$XOUT" "$1" >"$TMPD/op.out" 2>"$TMPD/op.err"
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

small_need=0; big_need=0
[[ -s $SMALL_ISO && -s $CORPUS/small.meta ]] || small_need=1
[[ -s $BIG_ISO && -s $CORPUS/big.meta ]] || big_need=1
# Disk: a small file takes ~6.5 KiB in the source tree and ~5.7 KiB in the image;
# the big file exists twice while it is mastered; 7z x writes the small tree once more.
est_small_src=$((NSMALL * 6656)); est_small_iso=$((NSMALL * 5836))
need=$((est_small_src + (1 << 29)))
((small_need)) && need=$((need + est_small_src + est_small_iso))
((big_need)) && need=$((need + 2 * BIG_BYTES + (64 << 20)))
avail=$(df -B1 --output=avail "$WORK" | tail -n1 | tr -d ' ')
echo "corpus: $CORPUS ($((small_need + big_need)) of 2 images to build)"
echo "disk: this run needs about $(gib "$need") free in $WORK" \
     "(corpus when built: $(gib $((est_small_iso + BIG_BYTES))), plus 7z output" \
     "$(gib "$est_small_src"), plus sources while mastering); $(gib "$avail") available"
if [[ -z $XBASE ]]; then
    XBASE=$WORK
    if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] &&
       (($(df -B1 --output=avail /dev/shm | tail -n1) > est_small_src * 3 / 2)); then
        XBASE=/dev/shm
    fi
fi
[[ -d $XBASE ]] || die "--7z-out: no directory $XBASE"
XOUT=$XBASE/discfs-bench-7z-$STAMP
[[ $(stat -c %d "$XBASE") == $(stat -c %d "$WORK") ]] || need=$((need - est_small_src))
echo "7z x reference extracts to $XOUT ($(stat -f -c %T "$XBASE"))"
((avail >= need)) || die "not enough free disk space in $WORK"
((small_need)) && build_small
((big_need)) && build_big
[[ -s $CORPUS/big.meta ]] || big_layout >"$CORPUS/big.meta"
EXPECT_ENTRIES=$(metaget "$CORPUS/small.meta" entries)
BIG_OFF=$(metaget "$CORPUS/big.meta" offset)
BIG_SIZE=$(metaget "$CORPUS/big.meta" size)
BIG_CONTIG=$(metaget "$CORPUS/big.meta" contiguous)
if [[ $BIG_CONTIG != 1 ]]; then
    echo "note: /big is not stored contiguously; direct dd reads the whole image" >&2
    BIG_OFF=0; BIG_SIZE=$(stat -c %s "$BIG_ISO")
fi

img_bytes=$(($(stat -c %s "$SMALL_ISO") + $(stat -c %s "$BIG_ISO")))
memavail=$(($(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) * 1024))
if ((memavail < img_bytes + BIG_SIZE + (1 << 30))); then
    echo "warning: $(gib "$memavail") of available RAM is less than both images plus the big" \
         "file's FUSE page cache ($(gib $((img_bytes + BIG_SIZE)))); 'warm image' may not hold" >&2
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
meta small_iso "$SMALL_ISO"
meta small_iso_bytes "$(stat -c %s "$SMALL_ISO")"
meta small_files "$NSMALL"
meta small_entries_expected "$EXPECT_ENTRIES"
meta big_iso "$BIG_ISO"
meta big_iso_bytes "$(stat -c %s "$BIG_ISO")"
meta big_bytes "$BIG_SIZE"
meta big_offset "$BIG_OFF"
meta big_extents "$(metaget "$CORPUS/big.meta" extents)"
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

echo "tools: ${TOOLS[*]}; runs: $RUNS; logs: $LOGDIR"
echo "warming the images (cat > /dev/null, checked with fincore) ..."
warm "$SMALL_ISO"; meta small_iso_resident_pct "$WARM_PCT"
warm "$BIG_ISO"; meta big_iso_resident_pct "$WARM_PCT"

want_row walk && row_walk 0
want_row lslR && row_lslR 0
want_row tar && row_tar 0
want_row seq && row_seq
want_row rand && row_rand 0
if ((PINNED)); then
    want_row walk && row_walk 1
    want_row lslR && row_lslR 1
    want_row tar && row_tar 1
    want_row rand && row_rand 1
fi

warm "$SMALL_ISO"; meta small_iso_resident_pct_end "$WARM_BEFORE"
warm "$BIG_ISO"; meta big_iso_resident_pct_end "$WARM_BEFORE"
python3 "$LIB/report.py" "$SAMPLES" "$META" "$RESULTS"
