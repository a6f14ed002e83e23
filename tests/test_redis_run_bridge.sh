#!/usr/bin/env bash
# Description: the producer and `ember bridge` together, against a real
# redis-server (a free loopback port, no persistence, stopped after): two
# pools with a bridge each serve one stream; `ember run --redis` spreads 200
# jobs over both (both take some), every job once in the joblog, -k's order,
# the failures counted in the exit status; `ember submit` of an exec job
# prints its output and status as `ember call` does, --no-wait then --wait
# ID; a job that crashes its runner every time comes back dead-lettered with
# its cause.
# Usage: test_redis_run_bridge.sh EMBER
set -u
EMBER=$(realpath "${1:?usage: test_redis_run_bridge.sh EMBER}")
unset EMBER_PLUGIN_PATH
failures=0
. "$(dirname "$0")/lib.sh" # fail, expect, redis_test, R

work=$(mktemp -d)
PA=rbA-$$ PB=rbB-$$
ba= bb=
cleanup() {
    local p
    for p in $ba $bb; do { kill -KILL "$p"; wait "$p"; } 2>/dev/null; done
    "$EMBER" pool stop "$PA" --shutdown_timeout 100ms >/dev/null 2>&1
    "$EMBER" pool stop "$PB" --shutdown_timeout 100ms >/dev/null 2>&1
    redis_down
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
export SHELL=/bin/bash

redis_test "$work" --appendonly no || exit 1
S=jobs
"$EMBER" pool start "$PA" --max 2 --plugin sample --log 0 >/dev/null || fail "pool A starts"
"$EMBER" pool start "$PB" --max 2 --plugin sample --log 0 >/dev/null || fail "pool B starts"
"$EMBER" bridge "$PA" --redis "$URL" --stream $S --group hosts --consumer a --stats-interval 0 \
    --max-deliveries 2 >a.log 2>&1 &
ba=$!
"$EMBER" bridge "$PB" --redis "$URL" --stream $S --group hosts --consumer b --stats-interval 0 \
    --max-deliveries 2 >b.log 2>&1 &
bb=$!

# ember run --redis over both pools
"$EMBER" run --redis "$URL" --stream $S -j 16 -k --joblog jl \
    'sleep 0.02; echo {}; [ $(( {} % 20 )) -ne 0 ]' ::: $(seq 1 200) >run.out 2>run.err
st=$?
[ "$st" = 10 ] || fail "run --redis over two bridges: the exit status counts the 10 failed jobs, got $st ($(tail -3 run.err))"
seq 1 200 | cmp -s - run.out || fail "run --redis -k: every job's output, in input order"
[ "$(tail -n +2 jl | cut -f1 | sort -n | uniq | wc -l)" = 200 ] && [ "$(wc -l <jl)" = 201 ] ||
    fail "run --redis: each job once in the joblog"
[ "$(R hlen $S:results)" -ge 200 ] || fail "run --redis: a result per entry in $S:results"

# ember submit through the bridges
out=$(mkdir -p d && cd d && FOO=bar "$EMBER" submit --redis "$URL" --stream $S exec sh -c 'pwd; echo "$FOO"; exit 3')
st=$?
[ "$st" = 3 ] && [ "$out" = "$work/d"$'\n'bar ] || fail "submit exec through a bridge: status $st, out '$out'"
id=$("$EMBER" submit --redis "$URL" --stream $S --no-wait echo later)
expect "--wait ID through a bridge" 0 "^later$" "$EMBER" submit --redis "$URL" --stream $S --wait "$id"
expect "a job crashing its runner every time: dead-lettered, with its cause" 1 \
    "dead-lettered after [0-9]+ deliveries: crashed: signal 11" \
    "$EMBER" submit --redis "$URL" --stream $S sample.crash 11

# both bridges took work (their final stats, once drained)
kill -TERM $ba $bb
wait $ba $bb
for c in a b; do
    taken=$(sed -n 's/.*final stats: taken=\([0-9]*\).*/\1/p' $c.log)
    [ "${taken:-0}" -gt 0 ] || fail "bridge $c took none of the jobs: $(tail -2 $c.log)"
done
ba= bb=
exit $((failures > 0))
