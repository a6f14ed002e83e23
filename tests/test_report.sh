#!/usr/bin/env bash
# Description: what an operator reads of a pool: `ember events` with
# wall-clock times (RFC 3339, text and --json, the monotonic stamp kept in
# JSON); `ember call --receipt` (queue wait, run time, runner, node; exec's
# CPU and peak RSS; a handler's runner pid and RSS; a failed call's end);
# the log of `ember pool start` at its default level: runner deaths with
# their cause, a caller that died attached and what of its was reclaimed,
# each line with a time and a level, and no line for callers that detached; and
# EMBER_LOG=0 silencing it.
set -u
EMBER=$1
NAME=report-$$
work=$(mktemp -d)
failures=0
. "$(dirname "$0")/lib.sh" # fail, await, show
cleanup() {
    "$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
logged() { grep -qE -- "$1" "$work/pool.log"; }
ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}\+00:00'

"$EMBER" pool start "$NAME" --min 1 --max 1 --max_concurrency 2 --log-file "$work/pool.log" >/dev/null ||
    { echo "FAIL: start"; exit 1; }
"$EMBER" pool wait "$NAME" --ready 1 --timeout 10s || fail "pool wait"

# events: wall-clock times, within the hour of this clock (monotonic
# seconds since boot would read as 1970)
line=$("$EMBER" events "$NAME" | grep grow_end)
[[ $line =~ ^1\ ($ts)\ grow_end\ runner=0\ runners=1\ reason=min\ ok$ ]] ||
    fail "events: not 'SEQ TIME grow_end ...': $line"
t=${BASH_REMATCH[1]}
age=$(( $(date +%s) - $(date -d "$t" +%s) ))
[ "${age#-}" -lt 3600 ] || fail "events: $t is not a time of today ($age s off)"
json=$("$EMBER" events "$NAME" --json | grep grow_end)
[[ $json =~ ^\{\"seq\":1,\"time\":\"$ts\",\"mono_s\":[0-9]+\.[0-9]{6},\"event\":\"grow_end\",\"runner\":0,\"runners\":1,\"reason\":\"min\",\"ok\":true\}$ ]] ||
    fail "events --json: $json"

# receipts: stdout stays the result, the receipt is one JSON object on stderr
out=$("$EMBER" call "$NAME" echo hi --receipt 2>"$work/r") || fail "call --receipt: $(cat "$work/r")"
[ "$out" = hi ] || fail "call --receipt changed the result: $out"
pid=$("$EMBER" stats "$NAME" --json | grep -o '"pid":[0-9]*' | cut -d: -f2)
grep -qE "^\{\"handler\":\"echo\",\"end\":\"exit\",\"exit\":0,\"signal\":0,\"start\":[0-9.]+,\"queue_wait_s\":[0-9.]+,\"run_s\":[0-9.]+,\"runner_pid\":$pid,\"runner_rss_bytes\":[1-9][0-9]*,\"runner\":0,\"node\":-?[0-9]+\}$" "$work/r" ||
    fail "a handler's receipt: $(cat "$work/r")"
"$EMBER" call "$NAME" exec --receipt -- sh -c 'echo out; exit 3' >/dev/null 2>"$work/r"; st=$?
[ "$st" -eq 3 ] || fail "exec --receipt: status $st, not the job's 3"
grep -qE "^\{\"handler\":\"exec\",\"end\":\"exit\",\"exit\":3,\"signal\":0,.*\"run_s\":[0-9.]+,\"user_s\":[0-9.]+,\"sys_s\":[0-9.]+,\"max_rss_bytes\":[1-9][0-9]*,\"pid\":[0-9]+,\"runner_pid\":$pid,\"runner\":0,\"node\":-?[0-9]+\}$" "$work/r" ||
    fail "exec's receipt: $(cat "$work/r")"
"$EMBER" call "$NAME" sleep 400 --timeout 50ms --receipt >/dev/null 2>"$work/r"
grep -qE '^\{"handler":"sleep","end":"timeout","exit":-1,' "$work/r" || fail "a timed-out call's receipt: $(cat "$work/r")"
grep -q -- "--receipt" <<<"$("$EMBER" call --help)" || fail "call --help lacks --receipt"

# the log at its default level (1)
# a runner that dies, with its cause
"$EMBER" call "$NAME" exec -- true >/dev/null 2>&1
kill -SEGV "$pid"
await "a warning of the runner's death in the log" 10 \
    logged "warning ember\[[0-9]+\]: runner 0 \(pid $pid\) died: signal 11" || show "$work/pool.log"
"$EMBER" pool wait "$NAME" --ready 1 --timeout 10s >/dev/null || fail "no runner after the crash"
# a caller that dies attached, its running call cancelled
"$EMBER" call "$NAME" sleep 5000 >/dev/null 2>&1 &
caller=$!
await "the sleep runs" 10 eval '"$EMBER" stats "$NAME" --json | grep -q "\"running\":1"'
kill -KILL "$caller"; wait "$caller" 2>/dev/null
await "a line for the dead caller in the log" 10 \
    logged "info ember\[[0-9]+\]: caller [0-9]+ \(pid $caller\) died attached: 0 queued calls dropped, 1 running cancelled" ||
    show "$work/pool.log"
bad=$(grep -vE "^$ts (error|warning|notice|info|debug) ember\[[0-9]+\]: " "$work/pool.log")
[ -z "$bad" ] || fail "log lines without a time and a level: $bad"
grep -q "caller .* gone" "$work/pool.log" && fail "callers that detached cleanly are in the level 1 log"

# EMBER_LOG=0: nothing
"$EMBER" pool stop "$NAME" >/dev/null
EMBER_LOG=0 "$EMBER" pool start "$NAME" --min 1 --max 1 --log-file "$work/quiet.log" >/dev/null
"$EMBER" pool wait "$NAME" --ready 1 --timeout 10s >/dev/null
"$EMBER" pool stop "$NAME" >/dev/null
[ ! -s "$work/quiet.log" ] || fail "EMBER_LOG=0 still logs: $(cat "$work/quiet.log")"

[ "$failures" -eq 0 ] && echo "all passed"
exit $((failures > 0))
