#!/usr/bin/env bash
# Description: the pool's metrics: `ember pool start --metrics-listen` serves
# /metrics on loopback, and promtool accepts it and `ember stats
# --openmetrics`; read with curl while calls run, /metrics shows them in
# flight and the runner busy, then the counts (accepted, done, failed by
# cause, per handler) and the run-time and queue-wait histograms moved by
# what ran; a bad address and a port in use are refused, naming the fix,
# and leave no pool running.
set -u
EMBER=$1
NAME=metrics-$$
failures=0
. "$(dirname "$0")/lib.sh" # fail, await, free_port
command -v promtool >/dev/null || { echo "FAIL: promtool is missing (Debian package prometheus)"; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is missing"; exit 1; }
cleanup() {
    "$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1
    "$EMBER" pool stop "$NAME-2" --shutdown_timeout 100ms >/dev/null 2>&1
}
trap cleanup EXIT

# a free loopback port: the kernel's pick, then ours (tried again if taken meanwhile)
for _ in 1 2 3 4 5; do
    PORT=$(free_port)
    out=$("$EMBER" pool start "$NAME" --min 1 --max 1 --metrics-listen "127.0.0.1:$PORT" 2>&1) && break
    grep -q "Address already in use" <<<"$out" || break
done
grep -q "started" <<<"$out" || { echo "FAIL: pool start: $out"; exit 1; }
"$EMBER" pool wait "$NAME" --ready 1 --timeout 10s || { echo "FAIL: pool wait"; exit 1; }
URL=http://127.0.0.1:$PORT/metrics
# VALUE SERIES: the value of one series ("name{labels}") in the last scrape
value() { grep -F "$1 " "$scrape" | awk '{print $NF}'; }
# SCRAPED SERIES VALUE...: scrape /metrics; each SERIES has its VALUE
scraped() {
    curl -sf "$URL" >"$scrape" || return 1
    while [ $# -ge 2 ]; do [ "$(value "$1")" = "$2" ] || return 1; shift 2; done
}
scrape=$(mktemp)
trap 'rm -f "$scrape"; cleanup' EXIT

curl -sf "$URL" >"$scrape" || fail "curl $URL"
promtool check metrics <"$scrape" || fail "promtool rejects /metrics"
tail -1 "$scrape" | grep -qx "# EOF" || fail "/metrics does not end with # EOF"
"$EMBER" stats "$NAME" --openmetrics | promtool check metrics || fail "promtool rejects ember stats --openmetrics"
P="{pool=\"$NAME\""
done0=$(value "ember_calls_completed_total$P}")
runs0=$(value "ember_call_run_seconds_count$P,handler=\"sleep\"}")
b0=$(value "ember_call_run_seconds_bucket$P,handler=\"sleep\",le=\"0.512\"}")
below0=$(value "ember_call_run_seconds_bucket$P,handler=\"sleep\",le=\"0.128\"}")
waits0=$(value "ember_call_queue_wait_seconds_count$P,handler=\"sleep\"}")
[ "$done0" = 0 ] && [ "$runs0" = 0 ] && [ "$b0" = 0 ] || fail "a fresh pool has counts: done $done0 runs $runs0"
# the supervisor's heartbeat: its loop comes round at least once a second
silent=$(value "ember_supervisor_silent_seconds$P}")
awk -v s="$silent" 'BEGIN { exit !(s != "" && s + 0 < 3) }' ||
    fail "ember_supervisor_silent_seconds of a working supervisor is '$silent', not below 3"

# on one runner: an 800 ms call runs, then two 300 ms calls queue behind
# it (seen queued while it runs: the second of them then waits behind the
# first's whole 300 ms, however late the two were queued)
pids=()
"$EMBER" call "$NAME" sleep 800 >/dev/null & pids+=($!)
await "/metrics shows a call in flight on a busy runner" 10 \
    scraped "ember_calls_in_flight$P}" 1 "ember_runners$P,state=\"busy\"}" 1 ||
    grep -E 'in_flight|state=' "$scrape"
for i in 1 2; do "$EMBER" call "$NAME" sleep 300 >/dev/null & pids+=($!); done
await "/metrics shows the two 300 ms calls queued behind the running one" 10 \
    scraped "ember_calls_queued$P}" 2 "ember_calls_in_flight$P}" 1 || grep -E 'queued|in_flight' "$scrape"
for p in "${pids[@]}"; do wait "$p" || fail "a sleep call failed"; done
"$EMBER" call "$NAME" nosuch >/dev/null 2>&1 # refused by the command: not a call
"$EMBER" call "$NAME" exec -- false >/dev/null 2>&1 # exit status 1: a result, done
"$EMBER" call "$NAME" sleep 1000 --timeout 100ms >/dev/null 2>&1 # ETIMEDOUT: failed

curl -sf "$URL" >"$scrape" || fail "curl $URL after the calls"
promtool check metrics <"$scrape" || fail "promtool rejects /metrics after the calls"
[ "$(value "ember_calls_accepted_total$P}")" = 5 ] || fail "accepted: $(value "ember_calls_accepted_total$P}"), wanted 5"
[ "$(value "ember_calls_completed_total$P}")" = 4 ] || fail "done: $(value "ember_calls_completed_total$P}"), wanted 4"
[ "$(value "ember_calls_failed_total$P,cause=\"ETIMEDOUT\"}")" = 1 ] || fail "failed by ETIMEDOUT: $(grep calls_failed "$scrape")"
[ "$(value "ember_handler_calls_completed_total$P,handler=\"sleep\"}")" = 3 ] || fail "sleep's completed calls"
[ "$(value "ember_handler_calls_failed_total$P,handler=\"sleep\"}")" = 1 ] || fail "sleep's failed calls"
[ "$(value "ember_handler_calls_completed_total$P,handler=\"exec\"}")" = 1 ] || fail "exec's completed calls"
# the run-time histogram: 4 sleeps ran, the two of 300 ms in (0.256,
# 0.512], the one of 800 ms above, the one cut at 100 ms at or below
# 0.128 s; the sum in seconds
runs=$(value "ember_call_run_seconds_count$P,handler=\"sleep\"}")
b512=$(value "ember_call_run_seconds_bucket$P,handler=\"sleep\",le=\"0.512\"}")
b256=$(value "ember_call_run_seconds_bucket$P,handler=\"sleep\",le=\"0.256\"}")
b128=$(value "ember_call_run_seconds_bucket$P,handler=\"sleep\",le=\"0.128\"}")
[ "$runs" = 4 ] || fail "run-time count $runs, wanted 4"
[ "$((b512 - b256))" = 2 ] || fail "run-time buckets: $b256 at 0.256 s, $b512 at 0.512 s (wanted 2 between)"
[ "$((runs - b512))" = 1 ] || fail "run-time buckets: $b512 at 0.512 s of $runs (wanted 1 above)"
[ "$((b128 - below0))" = 1 ] || fail "run-time bucket 0.128 s: $b128, wanted 1"
sum=$(value "ember_call_run_seconds_sum$P,handler=\"sleep\"}")
awk -v s="$sum" 'BEGIN { exit !(s >= 1.45 && s < 3) }' || fail "run-time sum $sum s for 0.8 s, 2 x 0.3 s and a cut 0.1 s"
# queue wait: every sleep a runner took was counted; the last of the two
# queued calls waited behind the other's 300 ms at least
waits=$(value "ember_call_queue_wait_seconds_count$P,handler=\"sleep\"}")
w256=$(value "ember_call_queue_wait_seconds_bucket$P,handler=\"sleep\",le=\"0.256\"}")
[ "$((waits - waits0))" = 4 ] || fail "queue-wait count $waits, wanted 4"
[ "$((waits - w256))" -ge 1 ] || fail "queue waits above 0.256 s: $((waits - w256)), wanted 1 or more"
[ "$(value "ember_runners$P,state=\"idle\"}")" = 1 ] || fail "the runner is not idle again"
"$EMBER" stats "$NAME" | grep -qE "5 accepted, 4 done, 1 failed" || fail "ember stats: $("$EMBER" stats "$NAME" | grep calls:)"
curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$PORT/other" | grep -qx 404 || fail "/other is not 404"

# refused: a port in use (ours), an address that is not one; no pool is left
out=$("$EMBER" pool start "$NAME-2" --metrics-listen "127.0.0.1:$PORT" 2>&1); st=$?
[ "$st" = 1 ] && grep -q "Address already in use.*choose another port" <<<"$out" || fail "port in use: $st $out"
out=$("$EMBER" pool start "$NAME-2" --metrics-listen "127.0.0.1:$PORT" --foreground 2>&1); st=$?
[ "$st" = 1 ] && grep -q "Address already in use" <<<"$out" || fail "port in use (foreground): $st $out"
"$EMBER" pool list | grep -q "$NAME-2" && fail "a pool whose --metrics-listen failed is left running"
out=$("$EMBER" pool start "$NAME-2" --metrics-listen localhost 2>&1); st=$?
[ "$st" = 2 ] && grep -q "is not ADDRESS:PORT" <<<"$out" || fail "no port: $st $out"
out=$("$EMBER" pool start "$NAME-2" --metrics-listen 127.0.0.1:99999 2>&1); st=$?
[ "$st" = 2 ] && grep -q "from 1 to 65535" <<<"$out" || fail "bad port: $st $out"
out=$("$EMBER" pool start "$NAME-2" --metrics-listen my.host:9464 2>&1); st=$?
[ "$st" = 2 ] && grep -q "not an IP address" <<<"$out" || fail "a name: $st $out"
"$EMBER" pool stop "$NAME" >/dev/null || fail "pool stop"
curl -s "$URL" >/dev/null && fail "/metrics still answers after the pool stopped"
[ "$failures" -eq 0 ] && echo "metrics: served, linted, and moved by the calls"
[ "$failures" -eq 0 ]
