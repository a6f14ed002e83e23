#!/usr/bin/env bash
# Description: `ember pool start --foreground` as a systemd Type=notify
# service, driven through systemd's notify protocol by this test (it is the
# listener of NOTIFY_SOCKET, an AF_UNIX datagram socket): READY=1 with a
# STATUS= naming the pool's runners once its min runners are up,
# WATCHDOG=1 again and again under WATCHDOG_USEC, and none while the
# supervisor is stuck (SIGSTOP) but with a STATUS= that says so, then on SIGTERM
# STOPPING=1, a drain (a running call still gets its result) and exit
# status 0; its stderr lines carry an RFC 3339 time and a level, or the
# journal's <N> priority when JOURNAL_STREAM names stderr. Exits 77 when
# ember was built without libsystemd (argument 2: "false").
set -u
EMBER=$1
[ "${2:-true}" = true ] || { echo "ember was built without libsystemd: nothing to test"; exit 77; }
NAME=svc-$$
work=$(mktemp -d)
failures=0
. "$(dirname "$0")/lib.sh" # fail, await, show
listener= pool=
cleanup() {
    [ -n "$pool" ] && kill -KILL "$pool" 2>/dev/null
    "$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1
    "$EMBER" pool stop "$NAME-j" --shutdown_timeout 100ms >/dev/null 2>&1
    [ -n "$listener" ] && kill "$listener" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
seen() { grep -qE -- "$2" "$1"; } # seen FILE PATTERN
watchdog_pings() { # at least two WATCHDOG=1 after READY=1
    awk '/READY=1/ { r = 1; next } r && /WATCHDOG=1/ { n++ } END { exit !(n >= 2) }' "$work/notify.log"
}
running() { "$EMBER" stats "$NAME" --json | grep -q '"running":1'; }

# the listener: each datagram on one line of notify.log, its lines joined by '|'
sock=$work/notify.sock
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode().replace("\n", "|") + "\n")
' "$sock" "$work/notify.log" &
listener=$!
await "the listener's socket" 10 test -S "$sock" || exit 1
: >"$work/notify.log"

# a watchdog of 400 ms: WATCHDOG=1 every 200 ms
NOTIFY_SOCKET=$sock WATCHDOG_USEC=400000 "$EMBER" pool start "$NAME" --foreground --min 1 --max 2 \
    2>"$work/err" &
pool=$!
await "READY=1" 10 seen "$work/notify.log" "READY=1" || show "$work/notify.log" "$work/err"
grep -E "READY=1" "$work/notify.log" | grep -qE "STATUS=1 runners serving \(1 ready; min 1, max 2\)" ||
    fail "READY=1 without the pool's runners in STATUS=: $(cat "$work/notify.log")"
out=$("$EMBER" call "$NAME" echo ready 2>&1) && [ "$out" = ready ] ||
    fail "a call right after READY=1: $out"
# two more pings after READY: the watchdog is fed
await "WATCHDOG=1 twice after READY=1" 10 watchdog_pings || show "$work/notify.log"

# a supervisor that lives but is stuck (stopped here): the watchdog is no
# longer fed, STATUS= says why, `ember stats` too; fed again once it runs
sup=$("$EMBER" stats "$NAME" --json | sed -n 's/.*"supervisor":\([0-9]*\).*/\1/p')
[ -n "$sup" ] || fail "no supervisor pid in ember stats --json"
kill -STOP "$sup"
await "STATUS= saying the supervisor is stuck" 15 seen "$work/notify.log" "has not come round" ||
    show "$work/notify.log"
grep "has not come round" "$work/notify.log" | grep -q "WATCHDOG=1" &&
    fail "the watchdog was fed with the supervisor stuck: $(cat "$work/notify.log")"
"$EMBER" stats "$NAME" | grep -q "has not come round for [0-9]* s: it is stuck" ||
    fail "ember stats does not say the supervisor is stuck: $("$EMBER" stats "$NAME" 2>&1)"
kill -CONT "$sup"
fed_again() { awk '/has not come round/ { s = 1; next } s && /WATCHDOG=1/ { n++ } END { exit !n }' "$work/notify.log"; }
await "WATCHDOG=1 once the supervisor runs again" 10 fed_again || show "$work/notify.log"

# SIGTERM: a drain, as systemctl stop does it
"$EMBER" call "$NAME" sleep 600 >"$work/call" 2>&1 &
caller=$!
await "the sleep runs" 10 running
kill -TERM "$pool"
await "STOPPING=1 after SIGTERM" 10 seen "$work/notify.log" "STOPPING=1" || show "$work/notify.log"
wait "$pool"; st=$?
pool=
[ "$st" -eq 0 ] || fail "the pool's exit status after SIGTERM is $st, not 0: $(cat "$work/err")"
wait "$caller" || fail "the call running at SIGTERM did not finish: $(cat "$work/call")"
grep -q "STOPPING=1|STATUS=draining" "$work/notify.log" ||
    fail "STOPPING=1 without a STATUS= saying so: $(cat "$work/notify.log")"

# stderr: every line a log line, RFC 3339 time (UTC, ms) and level; at the
# default level the pool's events, the signal and the stop are there
ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}\+00:00'
bad=$(grep -vE "^$ts (error|warning|notice|info|debug) ember\[[0-9]+\]: " "$work/err")
[ -z "$bad" ] || fail "stderr lines that are not log lines: $bad"
for want in "grow start, runner 0 \(min\)" "Terminated: draining" \
            "pool '$NAME' stopped: 1 running calls finished"; do
    grep -qE "$want" "$work/err" || fail "stderr lacks '$want': $(cat "$work/err")"
done

# stderr as the journal (systemd sets JOURNAL_STREAM to its device:inode):
# sd-daemon's <N> prefixes instead of the time
: >"$work/journal"
JOURNAL_STREAM=$(stat -c '%d:%i' "$work/journal") \
    "$EMBER" pool start "$NAME-j" --foreground --min 1 --max 1 2>>"$work/journal" &
pool=$!
await "a log in journal mode" 10 seen "$work/journal" "grow end" || show "$work/journal"
kill -TERM "$pool"; wait "$pool"; pool=
bad=$(grep -vE "^<[3-7]>(error|warning|notice|info|debug) ember\[[0-9]+\]: " "$work/journal")
[ -z "$bad" ] || fail "journal lines without their <N> priority: $bad"
grep -qE "^<6>info ember\[[0-9]+\]: pool '$NAME-j': grow end" "$work/journal" ||
    fail "an info line is not <6>: $(cat "$work/journal")"

[ "$failures" -eq 0 ] && echo "all passed"
exit $((failures > 0))
