#!/bin/sh
# tests/drive/guest-test.sh - runs INSIDE the drive-emulation guest (tests/drive/run.sh).
# /mnt/host/discfs is a Release discfs. On an emulated blank CD-R in CDEmu's drive 0 (libburn
# over SG_IO on /dev/srN) it checks, against xorriso as the independent reader:
#   drives lists the drive and the blank medium; info on the blank disc says so in one line;
#   burn --multi of session 1; drives' next writable address equals xorriso's Media nwa;
#   a session 2 made by xorriso -indev /dev/srN -outdev FILE -grow_blindly NWA (xorriso -as
#   mkisofs -M would read /dev/srN through the kernel, whose view of the disc is stale after a
#   burn: blank), burned --multi --verify;
#   xorriso -toc lists 2 sessions and -osirrox extracts every file of both, byte for byte;
#   refusals before anything is written (an image too big for the disc, an image made for
#   LBA 0 as session 3), the TOC unchanged; a closing session 3, after which burn is refused;
#   on a DVD+R: burn --multi twice, read back with xorriso;
#   Ctrl-C during a burn on a fresh disc exits 130 and leaves the drive usable.
# Prints PASS/FAIL lines; exit code = number of failures.
D=/mnt/host/discfs; T="timeout 300"
fails=0
ok()  { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["drives"][0]; print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null; }
SR=$(cdemu device-mapping | awk '$1=="0"{print $2}')
[ -b "$SR" ] || { bad "no CDEmu drive"; echo "failures: $fails"; exit 1; }
ok "CDEmu drive 0 is $SR"
W=/tmp/w; mkdir -p $W/s1/d $W/s2 $W/s3 $W/x
dd if=/dev/urandom of=$W/s1/d/a.bin bs=1M count=2 2>/dev/null; echo one > $W/s1/one.txt
dd if=/dev/urandom of=$W/s2/b.bin bs=1M count=1 2>/dev/null; echo two > $W/s2/two.txt
echo three > $W/s3/three.txt
xorriso -as mkisofs -quiet -R -V SESSION1 -o $W/s1.iso $W/s1 2>/dev/null
toc() { $T xorriso -indev $SR -toc 2>&1 | grep -E '^(ISO session|Media nwa|Media status)'; }

cdemu create-blank --writer-id=WRITER-TOC --medium-type=cdr80 0 /tmp/disc-cdr80 >/dev/null ||
  bad "create-blank cdr80"

# drives: the listing finds /dev/srN (sysfs), its identity, and the blank CD-R.
$T $D drives --json > $W/drives0.json 2>$W/err; echo "    drives: $(cat $W/drives0.json | head -c 600)"
check "drives lists $SR with a blank CD-R" \
  "python3 -c \"import json; ds=json.load(open('$W/drives0.json'))['drives']; d=[x for x in ds if x['path']=='$SR'][0]; assert d['medium']['state']=='blank' and d['medium']['profile']=='CD-R', d; assert 'CD-R' in d['writes'], d\""
$T $D drives > $W/drives0.txt 2>&1; sed 's/^/    /' $W/drives0.txt
check "drives (text) names the medium" "grep -q 'medium: CD-R, blank' $W/drives0.txt"

# info on the blank disc: no crash, one sentence.
$T $D info $SR > $W/info0.txt 2>&1; r=$?; echo "    info rc=$r: $(head -3 $W/info0.txt)"
check "info on a blank disc exits with one line (rc=$r)" "[ $r -ge 3 ] && [ $r -le 5 ] && [ \$(wc -l < $W/info0.txt) = 1 ]"

# Session 1.
$T $D burn --multi $W/s1.iso $SR > $W/b1.txt 2>&1; r=$?; sed 's/^/    /' $W/b1.txt
check "burn --multi session 1 (rc=$r)" "[ $r = 0 ]"
$T $D drives --json $SR > $W/d1.json 2>&1
NWA=$(jget $W/d1.json "d['medium']['next_writable']"); MSC1=$(jget $W/d1.json "d['medium']['last_session']")
XNWA=$(toc | sed -n 's/^Media nwa *: *\([0-9]*\)s.*/\1/p')
echo "    discfs: msc1 $MSC1 nwa $NWA; xorriso nwa $XNWA; state $(jget $W/d1.json "d['medium']['state']")"
check "drives: appendable, next writable address = xorriso's Media nwa" \
  "[ \"$(jget $W/d1.json "d['medium']['state']")\" = appendable ] && [ \"$NWA\" = \"$XNWA\" ]"

# Session 2, made for the address drives reported.
$T xorriso -indev $SR -outdev $W/s2.iso -grow_blindly $NWA -volid SESSION2 -map $W/s2 / -commit > $W/m2.log 2>&1 || tail -5 $W/m2.log | sed 's/^/    /'
$T $D burn --multi --verify $W/s2.iso $SR > $W/b2.txt 2>&1; r=$?; sed 's/^/    /' $W/b2.txt
check "burn --multi --verify session 2 at LBA $NWA (rc=$r)" "[ $r = 0 ] && grep -q 'at LBA $NWA' $W/b2.txt && grep -q verified $W/b2.txt"
toc | tee $W/toc2.txt | sed 's/^/    /'
check "xorriso -toc lists 2 sessions" "grep -q '^ISO session *: *2 ,' $W/toc2.txt && ! grep -q '^ISO session *: *3 ,' $W/toc2.txt"
$T xorriso -osirrox on -indev $SR -extract / $W/x > $W/x.log 2>&1 || tail -5 $W/x.log | sed 's/^/    /'
ls -lR $W/x | head -20 | sed 's/^/    /'
check "xorriso -osirrox reads both sessions' files" \
  "cmp -s $W/x/d/a.bin $W/s1/d/a.bin && cmp -s $W/x/one.txt $W/s1/one.txt && cmp -s $W/x/b.bin $W/s2/b.bin && cmp -s $W/x/two.txt $W/s2/two.txt"

# Refusals, before anything is written.
truncate -s 900M $W/big.img
$T $D burn --multi $W/big.img $SR > $W/r1.txt 2>&1; r=$?; sed 's/^/    /' $W/r1.txt
check "an image bigger than the disc is refused (rc=$r)" "[ $r = 10 ] && grep -q 'needs 944.0 MB but the CD-R has only' $W/r1.txt"
xorriso -as mkisofs -quiet -R -o $W/s3-at-0.iso $W/s3 2>/dev/null
$T $D burn --multi $W/s3-at-0.iso $SR > $W/r2.txt 2>&1; r=$?; sed 's/^/    /' $W/r2.txt
check "an image made for LBA 0 is refused as session 3 (rc=$r)" "[ $r = 10 ] && grep -q -- '-C ' $W/r2.txt"
toc > $W/toc3.txt
check "the refusals wrote nothing (TOC unchanged)" "cmp -s $W/toc3.txt $W/toc2.txt"

# Session 3 closes the disc; then it is refused.
$T $D drives --json $SR > $W/d2.json 2>&1
NWA=$(jget $W/d2.json "d['medium']['next_writable']"); MSC1=$(jget $W/d2.json "d['medium']['last_session']")
echo "    session 3 for $MSC1,$NWA"
$T xorriso -indev $SR -outdev $W/s3.iso -grow_blindly $NWA -volid SESSION3 -map $W/s3 / -commit > $W/m3.log 2>&1 || tail -5 $W/m3.log | sed 's/^/    /'
$T $D burn $W/s3.iso $SR > $W/b3.txt 2>&1; r=$?; sed 's/^/    /' $W/b3.txt
check "burn session 3 without --multi closes the disc (rc=$r)" "[ $r = 0 ] && grep -q 'the medium is closed' $W/b3.txt"
toc | tee $W/toc4.txt | sed 's/^/    /'
check "xorriso: 3 sessions, disc closed" "grep -q '^ISO session *: *3 ,' $W/toc4.txt && grep -q 'is written , is closed' $W/toc4.txt"
$T $D burn --multi $W/s3.iso $SR > $W/r3.txt 2>&1; r=$?; sed 's/^/    /' $W/r3.txt
check "burn onto the closed disc is refused (rc=$r)" "[ $r = 10 ] && grep -q closed $W/r3.txt"
$T $D drives --json $SR > $W/d3.json 2>&1
check "drives: closed, 3 sessions" "[ \"$(jget $W/d3.json "d['medium']['state']")\" = closed ] && [ \"$(jget $W/d3.json "len(d['medium']['sessions'])")\" = 3 ]"
cdemu unload 0 >/dev/null 2>&1

# DVD+R: the same two sessions through libburn's DVD path (the emulator's WRITER-ISO).
cdemu create-blank --writer-id=WRITER-ISO --medium-type=dvd+r 0 /tmp/disc-dvdr >/dev/null ||
  bad "create-blank dvd+r"
$T $D drives --json $SR > $W/v0.json 2>&1
check "DVD+R: drives shows a blank DVD+R" "[ \"$(jget $W/v0.json "d['medium']['profile']")\" = DVD+R ] && [ \"$(jget $W/v0.json "d['medium']['state']")\" = blank ]"
$T $D burn --multi $W/s1.iso $SR > $W/v1.txt 2>&1; r=$?; sed 's/^/    /' $W/v1.txt
check "DVD+R: burn --multi session 1 (rc=$r)" "[ $r = 0 ]"
$T $D drives --json $SR > $W/v1.json 2>&1
NWA=$(jget $W/v1.json "d['medium']['next_writable']")
XNWA=$(toc | sed -n 's/^Media nwa *: *\([0-9]*\)s.*/\1/p')
check "DVD+R: next writable address $NWA = xorriso's $XNWA" "[ -n \"$NWA\" ] && [ \"$NWA\" = \"$XNWA\" ]"
rm -f $W/v2.iso; rm -rf $W/vx; mkdir -p $W/vx
$T xorriso -indev $SR -outdev $W/v2.iso -grow_blindly $NWA -volid SESSION2 -map $W/s2 / -commit > $W/mv2.log 2>&1 || tail -5 $W/mv2.log | sed 's/^/    /'
$T $D burn --multi --verify $W/v2.iso $SR > $W/v2.txt 2>&1; r=$?; sed 's/^/    /' $W/v2.txt
check "DVD+R: burn --multi --verify session 2 (rc=$r)" "[ $r = 0 ] && grep -q verified $W/v2.txt"
toc | tee $W/vtoc.txt | sed 's/^/    /'
$T xorriso -osirrox on -indev $SR -extract / $W/vx > $W/vx.log 2>&1 || tail -5 $W/vx.log | sed 's/^/    /'
check "DVD+R: 2 sessions, both sessions' files read back" \
  "grep -q '^ISO session *: *2 ,' $W/vtoc.txt && cmp -s $W/vx/d/a.bin $W/s1/d/a.bin && cmp -s $W/vx/b.bin $W/s2/b.bin"
cdemu unload 0 >/dev/null 2>&1

# Ctrl-C in the middle of a burn on a fresh disc: exit 130, the drive released and usable.
cdemu create-blank --writer-id=WRITER-TOC --medium-type=cdr80 0 /tmp/disc-cdr80b >/dev/null
dd if=/dev/urandom of=$W/big40.img bs=1M count=40 2>/dev/null
$D burn --json $W/big40.img $SR > $W/c.json 2>$W/c.err &
pid=$!
for i in $(seq 1 600); do grep -q '"event":"progress"' $W/c.json 2>/dev/null && break; sleep 0.2; done
kill -INT $pid; wait $pid; r=$?
echo "    $(tail -1 $W/c.err)"
check "Ctrl-C during a burn exits 130 (rc=$r)" "[ $r = 130 ]"
$T $D drives --json $SR > $W/d4.json 2>&1
check "the drive is released and usable after Ctrl-C" "[ \"$(jget $W/d4.json "d['busy']")\" = False ] && [ \"$(jget $W/d4.json "d['medium'] is not None")\" = True ]"
echo "    after Ctrl-C: $(jget $W/d4.json "d['medium']['state']")"
cdemu unload 0 >/dev/null 2>&1

echo "failures: $fails"; exit $fails
