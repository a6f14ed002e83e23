#!/usr/bin/env bash
# Description: the libav plugin from the shell, as people transcode with it:
# `ember pool start --plugin libav`, sample clips made by its synth handler,
# `ember run --pool POOL --handler transcode in={} out=... height=...` over
# them (outputs probed: frames, size), thumbnails from a batch's own pool
# (`ember run --plugin libav`), receipts carrying each job's result, and
# what a user sees for a bad value and a missing file (the message naming
# it, a failed job, no output left). Exit 77 (skipped) when the plugin was
# not built.
# Usage: test_libav_cli.sh EMBER LIBAV_SO ('' when not built)
set -u
EMBER=$(realpath "$1")
if [ -z "${2:-}" ] || [ ! -e "$2" ]; then
    echo "SKIP: the libav plugin was not built (FFmpeg's -dev packages missing)"
    exit 77
fi
NAME=lavcli-$$
failures=0
. "$(dirname "$0")/lib.sh" # fail
work=$(mktemp -d)
cleanup() { "$EMBER" pool stop "$NAME" --shutdown_timeout 1s >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT
cd "$work" || exit 1

"$EMBER" pool start "$NAME" --plugin libav --min 2 --max 2 >start.out 2>&1 || { cat start.out; exit 1; }
"$EMBER" pool wait "$NAME" --ready 2 --timeout 30s >/dev/null || { echo "FAIL: the pool never got ready"; exit 1; }

# sample clips: 1 s, 320x240, 30 fps
"$EMBER" run --pool "$NAME" -j 2 --handler synth out=clips/c{}.mp4 seconds=1 width=320 height=240 fps=30 \
    ::: 1 2 3 >synth.out 2>synth.err || fail "synth batch: $(cat synth.err)"
[ "$(ls clips 2>/dev/null | wc -l)" = 3 ] || fail "synth: clips/ has $(ls clips 2>/dev/null | tr '\n' ' ')"

# the batch: relative paths are this directory's, outputs appear whole
"$EMBER" run --pool "$NAME" -j 2 -k --receipts r.jsonl --handler transcode in={} out=small/{/.}.mp4 height=120 \
    ::: clips/*.mp4 >run.out 2>run.err
st=$?
[ "$st" = 0 ] || fail "transcode batch: exit $st: $(cat run.err)"
for i in 1 2 3; do
    [ -s small/c$i.mp4 ] || { fail "no small/c$i.mp4"; continue; }
    p=$("$EMBER" call "$NAME" probe in=small/c$i.mp4 2>&1)
    echo "$p" | grep -q '"height":120' || fail "small/c$i.mp4 is not 120 lines: $p"
    echo "$p" | grep -q '"frames":30' || fail "small/c$i.mp4 has not 30 frames: $p"
done
ls -A small | grep -q part && fail "a temporary file was left in small/: $(ls -A small)"
[ "$(grep -c '"result":{.*"frames":30' r.jsonl)" = 3 ] || fail "receipts lack the results: $(cat r.jsonl)"
grep -q '"cpu_s":' r.jsonl || fail "receipts lack the jobs' CPU time"

# a batch's own pool with the plugin: thumbnails, one every 0.5 s of 1 s
"$EMBER" run -j 2 --plugin libav --handler thumbnails in={} out=th/{/.} every=0.5 ::: clips/c1.mp4 clips/c2.mp4 \
    >th.out 2>th.err || fail "thumbnails batch: $(cat th.err)"
[ "$(ls th/c1 2>/dev/null | wc -l)" = 2 ] || fail "th/c1 has $(ls th/c1 2>/dev/null | tr '\n' ' ')"

# a bad value and a missing file: the job fails, the message names it, nothing is left
"$EMBER" run --pool "$NAME" --handler transcode in={} out=bad/{/.}.mp4 height=abc ::: clips/c1.mp4 >bad.out 2>bad.err
st=$?
[ "$st" = 1 ] || fail "height=abc: exit $st, wanted 1 (one failed job)"
grep -q "height=abc" bad.out bad.err || fail "height=abc: not named: $(cat bad.out bad.err)"
# ember call: a bad value is a usage error (2) naming it
"$EMBER" call "$NAME" transcode in=clips/c1.mp4 out=bad/x.mp4 height=abc >call.out 2>call.err
st=$?
[ "$st" = 2 ] || fail "ember call height=abc: exit $st, wanted 2"
grep -q "height=abc" call.err || fail "ember call height=abc: not named: $(cat call.err)"
"$EMBER" run --pool "$NAME" --handler transcode in={} out=bad/{/.}.mp4 height=120 ::: clips/nosuch.mp4 >miss.out 2>miss.err
st=$?
[ "$st" = 1 ] || fail "missing file: exit $st, wanted 1"
grep -q "nosuch.mp4: No such file" miss.out miss.err || fail "missing file: not named: $(cat miss.out miss.err)"
[ -z "$(ls -A bad 2>/dev/null)" ] || fail "failed jobs left bad/$(ls -A bad)"

[ "$failures" = 0 ] && echo "all libav CLI checks passed"
exit $((failures > 0))
