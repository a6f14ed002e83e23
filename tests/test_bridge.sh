#!/usr/bin/env bash
# Description: `ember bridge` against a real redis-server (started here on a
# free loopback port, with an append-only file so that a restart keeps the
# stream, and stopped after): two pools with a bridge each share one
# stream; 1,000 jobs end with exactly one result each; a bridge SIGKILLed
# mid-batch has its entries finished by the other within --claim-after;
# Redis stopped and restarted mid-batch loses nothing (the bridges keep
# their results until it is back); a job that crashes its runner every time
# ends in KEY:dead with its cause after --max-deliveries; an entry past its
# deadline, a bad field and an unknown handler get error results; SIGTERM
# drains (running calls finish and are posted); a bridge takes only the
# room local callers leave in its pool; bad options are usage
# errors.
# Usage: test_bridge.sh EMBER
set -u
EMBER=$1
unset EMBER_PLUGIN_PATH
failures=0
. "$(dirname "$0")/lib.sh" # fail, check, expect, await, redis_test, redis_up, R
# must DESCRIPTION SECONDS COMMAND...: await it; what follows depends on it,
# so if it never comes, stop there, with the bridges' logs
must() {
    await "$@" && return 0
    for f in "$work"/b*.log; do echo "== $f"; tail -40 "$f"; done
    exit 1
}

work=$(mktemp -d)
PA=bridgeA-$$ PB=bridgeB-$$
S=jobs G=hosts
declare -A BPID=()
cleanup() {
    local n
    for n in "${!BPID[@]}"; do { kill -KILL "${BPID[$n]}"; wait "${BPID[$n]}"; } 2>/dev/null; done
    "$EMBER" pool stop "$PA" --shutdown_timeout 100ms >/dev/null 2>&1
    "$EMBER" pool stop "$PB" --shutdown_timeout 100ms >/dev/null 2>&1
    redis_down
    rm -f /dev/shm/ember-bridge."$(id -u)".{"$PA","$PB"}.* # the SIGKILLed bridge's figures
    if [ "$failures" -ne 0 ] && [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Redis on a free loopback port, append-only, every write synced (started
# again on the same port below)
aof=(--appendonly yes --appendfsync always)
redis_test "$work" "${aof[@]}" || exit 1

# bridge_start NAME POOL [OPTIONS...]: a bridge in the background, consumer NAME
bridge_start() {
    local name=$1 pool=$2; shift 2
    "$EMBER" bridge "$pool" --redis "$URL" --stream $S --group $G --consumer "$name" \
        --claim-after 2s --max-deliveries 3 --stats-interval 200ms "$@" >>"$work/$name.log" 2>&1 &
    BPID[$name]=$!
}
results() { R hlen $S:results; }
pending() { R xpending $S $G | head -1; }
# xadd_many N HANDLER ARGS [FIELD VALUE]...: N entries in one pipeline, an @
# in ARGS replaced by the entry's number
xadd_many() {
    local n=$1 h=$2 a=$3; shift 3
    local i
    for ((i = 0; i < n; i++)); do echo "XADD $S * handler $h args ${a//@/$i} $*"; done | R >/dev/null
}

check "pool A starts" "$EMBER" pool start "$PA" --max 2 --max_concurrency 4 --plugin sample --log 0
check "pool B starts" "$EMBER" pool start "$PB" --max 2 --max_concurrency 4 --plugin sample --log 0

# usage errors
expect "no --redis" 2 "--redis URL is needed" "$EMBER" bridge "$PA" --stream s --group g
expect "no --group" 2 "--group NAME is needed" "$EMBER" bridge "$PA" --redis "$URL" --stream s
expect "bad URL" 2 "is not a Redis URL" "$EMBER" bridge "$PA" --redis http://x --stream s --group g
expect "bad port" 2 "is not a number from 1 to 65535" "$EMBER" bridge "$PA" --redis redis://h:99999 --stream s --group g
expect "bad --max-deliveries" 2 "max-deliveries: '0'" "$EMBER" bridge "$PA" --redis "$URL" --stream s --group g --max-deliveries 0
expect "no such pool" 1 "no pool .* is running" "$EMBER" bridge nopool-$$ --redis "$URL" --stream s --group g

# entries added before any bridge runs are served (the group starts at 0)
xadd_many 1000 echo job-@
bridge_start bA "$PA"
bridge_start bB "$PB"

# 1. 1,000 jobs over two bridges: exactly one result each
must "1000 results" 30 eval '[ "$(results)" = 1000 ]'
must "nothing pending" 5 eval '[ "$(pending)" = 0 ]'
outs=$(R --raw hvals $S:results | grep -c '^job-')
uniq=$(R --raw hvals $S:results | grep '^job-' | sort -u | wc -l)
[ "$outs" = 1000 ] && [ "$uniq" = 1000 ] || fail "1000 distinct outputs (got $outs, $uniq distinct)"
byA=$(R --raw hvals $S:results | grep -c '"consumer":"bA"')
byB=$(R --raw hvals $S:results | grep -c '"consumer":"bB"')
[ "$byA" -gt 0 ] && [ "$byB" -gt 0 ] || fail "both bridges served (bA $byA, bB $byB)"
check "every result says status 0" eval '[ "$(R --raw hvals $S:results | grep -c "^{\"status\":0,\"error\":\"\",")" = 1000 ]'
check "a result carries its receipt" eval 'R --raw hvals $S:results | grep -q "\"receipt\":{\"handler\":\"echo\",\"end\":\"exit\""'
check "KEY:done lists every id" eval '[ "$(R --raw xrange $S:done - + | grep -cE "^[0-9]+-[0-9]+$")" -ge 1000 ]'
echo "1000 jobs: bA $byA, bB $byB"
# the bridge's figures in its pool's metrics (written once a second)
must "pool B's metrics count bB's answers" 5 eval '"$EMBER" stats "$PB" --openmetrics | grep -qx "ember_bridge_entries_acknowledged_total{pool=\"$PB\",consumer=\"bB\"} $byB"'
check "pool B's metrics: Redis up, round trips" eval '"$EMBER" stats "$PB" --openmetrics | grep -q "^ember_bridge_redis_up{pool=\"$PB\",consumer=\"bB\"} 1$"'
check "promtool accepts the metrics with a bridge's" eval '"$EMBER" stats "$PB" --openmetrics | promtool check metrics'

# 2. a bridge SIGKILLed mid-batch: the other finishes its entries after --claim-after
xadd_many 100 sleep 100 # 100 ms each
must "bA holds entries" 10 eval '[ "$(R xpending $S $G - + 100 bA | grep -c .)" -gt 0 ]'
{ kill -KILL "${BPID[bA]}"; wait "${BPID[bA]}"; } 2>/dev/null; unset 'BPID[bA]'
t0=$(date +%s%N)
must "1100 results after the kill" 20 eval '[ "$(results)" = 1100 ]'
t1=$(date +%s%N)
must "nothing pending after the kill" 5 eval '[ "$(pending)" = 0 ]'
check "bB took over entries (delivered twice)" eval 'R --raw hvals $S:results | grep -q "\"consumer\":\"bB\",\"deliveries\":2"'
check "bB says it took them over" grep -q "taken over after 2000 ms idle" "$work/bB.log"
echo "kill: the rest done $(( (t1 - t0) / 1000000 )) ms after the SIGKILL (claim-after 2 s)"

# 3. Redis stopped and restarted mid-batch: nothing lost
bridge_start bA "$PA"
xadd_many 200 sleep 100
must "some of the batch done" 10 eval '[ "$(results)" -gt 1110 ]'
R shutdown >/dev/null 2>&1
wait "$redis_pid" 2>/dev/null; redis_pid=
must "bA saw Redis fail" 5 grep -q "Redis failed" "$work/bA.log"
must "bB saw Redis fail" 5 grep -q "Redis failed" "$work/bB.log"
# the calls end meanwhile and their results wait in the bridges
must "bB holds results while Redis is down" 10 grep -qE "running=0 unposted=[1-9][0-9]* redis=down" "$work/bB.log"
redis_up "$PORT" "$work" "${aof[@]}" || exit 1
must "1300 results after the restart" 30 eval '[ "$(results)" = 1300 ]'
must "nothing pending after the restart" 10 eval '[ "$(pending)" = 0 ]'
must "bB reconnected (backoff up to 5 s)" 15 grep -q "connected to Redis again" "$work/bB.log"
must "bA reconnected" 15 grep -q "connected to Redis again" "$work/bA.log"
check "the stream kept every entry" eval '[ "$(R xlen $S)" = 1300 ]'

# 4. a job that crashes its runner every time: KEY:dead with its cause
id=$(R xadd $S '*' handler sample.crash args 11)
must "the crash is dead-lettered" 20 eval 'R --raw xrange $S:dead - + | grep -qx "$id"'
dead=$(R --raw xrange $S:dead - + | tr '\n' ' ')
check "dead letter: its cause" grep -q "cause crashed: signal 11 deliveries 3 " <<<"$dead"
check "dead letter: handler" grep -q "handler sample.crash args 11 " <<<"$dead"
check "its result says EPOISON with the cause" eval 'R --raw hget $S:results "$id" | grep -q "\"status\":-1022,\"error\":\"EMBER_EPOISON\",\"detail\":11,.*\"deliveries\":3,.*\"cause\":\"crashed: signal 11\""'
check "KEY:causes is cleared" eval '[ "$(R hexists $S:causes "$id")" = 0 ]'

# 5. errors as results: past the deadline (never run), a bad field, no such handler
id1=$(R xadd $S '*' handler sleep args 10 deadline_ms 1)
id2=$(R xadd $S '*' handler echo args x retries 99)
id3=$(R xadd $S '*' handler nosuch args x)
id4=$(R xadd $S '*' handler echo args late deadline_ms $(( $(date +%s%3N) + 60000 )))
must "four more results" 10 eval '[ "$(results)" = 1305 ]'
check "past its deadline: ETIMEDOUT" eval 'R --raw hget $S:results $id1 | grep -q "\"status\":-110,\"error\":\"EMBER_ETIMEDOUT\""'
check "bad retries: EINVAL with the reason" eval 'R --raw hget $S:results $id2 | grep -q "retries .99. is not a number from 0 to 15"'
check "no such handler: ENOHANDLER" eval 'R --raw hget $S:results $id3 | grep -q "\"error\":\"EMBER_ENOHANDLER\""'
check "within its deadline: run" eval 'R --raw hget $S:results $id4 | grep -qx late'

# 7. the bridge takes only the room local callers leave: 6 of pool A's 8
# places held by local calls, bA never holds more than 2 entries
locals=()
for i in 1 2 3 4 5 6; do "$EMBER" call "$PA" sleep 1500 >/dev/null & locals+=($!); done
must "6 local calls run on pool A" 10 eval '"$EMBER" stats "$PA" --json | grep -q "\"running\":6,"'
xadd_many 24 sleep 150
most=0
for ((k = 0; k < 40; k++)); do
    held=$(R xpending $S $G - + 100 bA | grep -c .)
    held=$((held / 4)) # four lines an entry: id, consumer, idle, deliveries
    [ "$held" -gt "$most" ] && most=$held
    sleep 0.025
done
wait "${locals[@]}"
must "1329 results" 10 eval '[ "$(results)" = 1329 ]'
[ "$most" -le 2 ] || fail "bA held $most entries beside 6 local calls (room for 2)"
[ "$most" -ge 1 ] || fail "bA took none of the room left"
echo "beside 6 local calls on pool A's 8 places, bA held at most $most entries"
check "bridges never had more calls running than their pool's places" eval \
    '! grep -ohE "running=[0-9]+" "$work"/b*.log | grep -qvE "running=[0-8]$"'

# 6. SIGTERM drains: running calls finish and are posted, then exit 0
xadd_many 16 sleep 400
must "bA runs calls" 10 eval '[ "$(R xpending $S $G - + 100 bA | grep -c .)" -gt 0 ]'
kill -TERM "${BPID[bA]}"
wait "${BPID[bA]}"; st=$?; unset 'BPID[bA]'
[ "$st" = 0 ] || fail "a drained bridge exits 0 (status $st)"
check "the drained bridge left nothing pending" eval '[ -z "$(R xpending $S $G - + 100 bA)" ]'
check "it logged its final stats" grep -q "final stats: taken=.* acknowledged=" "$work/bA.log"
must "1345 results" 10 eval '[ "$(results)" = 1345 ]'
grep "final stats" "$work/bA.log" | tail -1
kill -TERM "${BPID[bB]}"
wait "${BPID[bB]}"; st=$?; unset 'BPID[bB]'
[ "$st" = 0 ] || fail "bB drained exits 0 (status $st)"
# the bridges' own logs: no sanitizer's report (the ASan build runs this too)
check "no sanitizer report in the bridges' logs" eval '! grep -lE "Sanitizer|runtime error" "$work"/b*.log'

if [ "$failures" -ne 0 ]; then
    for f in "$work"/b*.log; do echo "== $f"; tail -30 "$f"; done
    exit 1
fi
echo "all bridge checks passed"
