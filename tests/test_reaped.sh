#!/usr/bin/env bash
# Description: callers_reaped counts the callers that died attached and no
# other: `ember call` processes that attach, call, detach and exit leave it
# at 0, also when the supervisor learns of a detach and of that process's
# exit at once (it used to count those); a caller SIGKILLed while its call
# runs makes it 1, and its call is cancelled (the runner is free again).
set -u
EMBER=$1
NAME=reaped-$$
failures=0
. "$(dirname "$0")/lib.sh" # fail, await
reaped() { "$EMBER" stats "$NAME" --json | grep -oE '"callers_reaped":[0-9]+' | cut -d: -f2; }
running() { "$EMBER" stats "$NAME" --json | grep -oE '"running":[0-9]+' | cut -d: -f2; }
"$EMBER" pool start "$NAME" --min 1 --max 1 >/dev/null || { echo "FAIL: pool start"; exit 1; }
trap '"$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1' EXIT
"$EMBER" pool wait "$NAME" --ready 1 --timeout 10s || { echo "FAIL: pool wait"; exit 1; }

# each attached long enough for the supervisor to watch it
for i in 1 2 3 4 5 6 7 8; do "$EMBER" call "$NAME" sleep 50 >/dev/null || fail "call $i"; done

# clean callers whose exit the supervisor learns together with their
# detach (a busy machine delays it): stopped while each one detaches and
# exits, it finds both at once when it goes on
sup=$("$EMBER" stats "$NAME" --json | grep -oE '"supervisor":[0-9]+' | cut -d: -f2)
for i in 1 2 3; do
    "$EMBER" call "$NAME" sleep 400 >/dev/null &
    caller=$!
    await "batched call $i runs" 10 eval '[ "$(running)" = 1 ]'
    kill -STOP "$sup"
    wait "$caller" || fail "batched call $i"
    kill -CONT "$sup"
done

# a caller killed while its call runs: await its call on the runner, kill it
"$EMBER" call "$NAME" sleep 20000 >/dev/null 2>&1 &
victim=$!
await "the victim's call runs" 10 eval '[ "$(running)" = 1 ]'
kill -KILL "$victim"
wait "$victim" 2>/dev/null
# the supervisor reaps it: callers_reaped turns 1 and the call is cancelled
if ! await "callers_reaped 1 and no call running after the kill" 10 \
        eval '[ "$(reaped)" = 1 ] && [ "$(running)" = 0 ]'; then
    # the clean exits came before the kill, so the supervisor saw them
    # first: counted, they would show here too
    got=$(reaped)
    [ "$got" = 1 ] || echo "    callers_reaped is $got after 11 clean callers and 1 killed one (wanted 1)"
    [ "$(running)" = 0 ] || echo "    the killed caller's call still runs"
fi
[ "$failures" -eq 0 ] && echo "callers_reaped counts only the killed caller"
[ "$failures" -eq 0 ]
