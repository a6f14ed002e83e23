#!/usr/bin/env bash
# Description: the producer's side of a Redis stream against a real
# redis-server (started here on a free loopback port, no persistence,
# stopped after) and a stand-in for `ember bridge` (redis_fake_bridge.c,
# two of them in one consumer group): `ember submit` prints a handler's
# output and an exec job's stdout, stderr and exit status as `ember call`
# does, with the submitter's directory and environment; --no-wait, then
# --wait ID; a handler's failure, a dead-lettered entry, an unreadable
# result, an entry past its deadline, an unknown id and no bridge at all
# give clear errors and ember call's statuses; a connection cut while
# waiting is made again and the result still comes; Redis unreachable, a
# bad URL and a key of another type are refused clearly; `ember run --redis`
# with 100 jobs: every job in the joblog once, with the host that ran it,
# -k's order, --bar, --retries, and the failures counted in the exit status.
# Usage: test_redis_submit.sh EMBER FAKE_BRIDGE
set -u
EMBER=$(realpath "${1:?usage: test_redis_submit.sh EMBER FAKE_BRIDGE}")
FAKE=$(realpath "${2:?usage: test_redis_submit.sh EMBER FAKE_BRIDGE}")
failures=0
. "$(dirname "$0")/lib.sh" # fail, expect, await, free_port, redis_test, R

work=$(mktemp -d)
fakes=()
bg=()
cleanup() {
    local p
    for p in "${fakes[@]}" "${bg[@]}"; do { kill -KILL "$p"; wait "$p"; } 2>/dev/null; done
    redis_down
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
export SHELL=/bin/bash

redis_test "$work" --appendonly no || exit 1
S=jobs
fake() { # fake STREAM NAME: a stand-in bridge in the background
    "$FAKE" 127.0.0.1 "$PORT" "$1" "$2" 2>>"$work/fake.log" &
    fakes+=($!)
}
fake $S f1
fake $S f2
sub() { "$EMBER" submit --redis "$URL" --stream "$S" "$@"; }

# ---- ember submit: results as ember call prints them
out=$(sub echo hello 2>err); st=$?
[ "$st" = 0 ] && [ "$out" = hello ] && [ ! -s err ] || fail "submit echo: status $st, out '$out', err '$(cat err)'"
mkdir -p sub/dir
out=$(cd sub/dir && FOO=bar sub exec sh -c 'pwd; echo "$FOO"; echo to-stderr >&2; exit 3' 2>"$work/err"); st=$?
[ "$st" = 3 ] || fail "submit exec: the job's exit status, got $st"
[ "$out" = "$work/sub/dir"$'\n'bar ] || fail "submit exec: stdout with the submitter's cwd and environment, got '$out'"
[ "$(cat err)" = to-stderr ] || fail "submit exec: stderr, got '$(cat err)'"
expect "submit exec: not found is 127" 127 "" sub exec /no/such/program
expect "submit a handler's failure: its message, status 1" 1 "it failed on purpose" sub fail
expect "submit a handler refusing its arguments: status 2" 2 "bad key 'x'" sub bad
expect "submit an unknown handler" 1 "ENOHANDLER|no handler" sub nosuch
expect "submit --receipt: the host's receipt" 0 '"host":"fakehost".*"receipt":\{"end":"exit"' sub --receipt echo r
expect "dead-lettered: the cause and where the entry went" 1 \
    "dead-lettered after 3 deliveries: crashed: signal 11; the entry is in stream $S:dead" sub poison
expect "an unreadable result: a clear error" 1 "cannot be read: the result says output_len 99 but carries 5" \
    sub garbage

# ---- --no-wait, then --wait ID
id=$(sub --no-wait echo later); st=$?
[[ "$st" = 0 && "$id" =~ ^[0-9]+-[0-9]+$ ]] || fail "--no-wait prints the entry's id: status $st, '$id'"
expect "--wait ID: the result" 0 "^later$" sub --wait "$id"
expect "--wait ID again: the same result" 0 "^later$" sub --wait "$id"
xid=$(cd sub && sub --no-wait exec sh -c 'echo x-out; exit 4')
expect "--wait ID of an exec job: its output and status" 4 "^x-out$" sub --wait "$xid"
expect "--wait on no such entry" 1 "stream $S has no entry 1-1" sub --wait 1-1
expect "--wait on a malformed id" 1 "not a stream entry's id" sub --wait nope
expect "--wait takes no handler" 2 "no HANDLER" sub --wait "$id" echo

# ---- deadlines, and no bridge at all
expect "no bridge, --timeout: gives up, says how to fetch it later" 1 \
    "no result for entry .* in time.*--wait" "$EMBER" submit --redis "$URL" --stream lonely --timeout 100ms echo x
expect "no bridge, exec: 124" 124 "no result" "$EMBER" submit --redis "$URL" --stream lonely --timeout 100ms exec true
"$EMBER" submit --redis "$URL" --stream lonely echo x >term.out 2>&1 &
bg+=($!)
waiter=$!
await "the submitter waits" 10 eval "R client list | grep -q 'cmd=xread '" || exit 1
kill -TERM "$waiter"
wait "$waiter"; st=$?
[ "$st" = 143 ] && grep -q "Terminated: entry [0-9-]* runs on; its result: ember submit .* --wait " term.out ||
    fail "SIGTERM while waiting: status $st, $(cat term.out)"
late=$("$EMBER" submit --redis "$URL" --stream late --timeout 1ms --no-wait echo x)
sleep 0.01 # the 1 ms deadline has passed when the bridge takes it (wall clock, as a bridge sees it)
fake late f3
expect "an entry past its deadline: ETIMEDOUT" 1 "deadline" "$EMBER" submit --redis "$URL" --stream late --wait "$late"

# ---- a connection cut while waiting: made again, nothing missed
"$EMBER" submit --redis "$URL" --stream cut exec sh -c 'echo after-the-cut' >cut.out 2>cut.err &
bg+=($!)
waiter=$!
xread_id() { R client list | grep 'cmd=xread ' | sed 's/^id=\([0-9]*\) .*/\1/'; }
await "the submitter blocks reading cut:done" 10 eval '[ -n "$(xread_id)" ]' || exit 1
before=$(xread_id)
R client kill type normal >/dev/null
await "the submitter connects again" 10 eval '[ -n "$(xread_id)" ] && [ "$(xread_id)" != "$before" ]' || exit 1
fake cut f4
wait "$waiter"; st=$?
[ "$st" = 0 ] && [ "$(cat cut.out)" = after-the-cut ] ||
    fail "after a cut connection: status $st, out '$(cat cut.out)', err '$(cat cut.err)'"

# ---- what cannot be reached or used
closed=$(free_port)
expect "Redis unreachable: clear, status 1" 1 "cannot reach Redis at redis://127.0.0.1:$closed: Connection refused" \
    "$EMBER" submit --redis "redis://127.0.0.1:$closed" --stream $S echo x
expect "Redis unreachable, exec: 125" 125 "cannot reach Redis" \
    "$EMBER" submit --redis "redis://127.0.0.1:$closed" --stream $S exec true
expect "a socket that is not there" 1 "cannot reach Redis at unix://$work/none.sock" \
    "$EMBER" submit --redis "unix://$work/none.sock" --stream $S echo x
expect "a bad URL: a usage error" 2 "not a Redis URL" "$EMBER" submit --redis "http://x" --stream $S echo x
expect "a bad port" 2 "port" "$EMBER" submit --redis "redis://127.0.0.1:99999" --stream $S echo x
expect "no --stream" 2 "--stream KEY is needed" "$EMBER" submit --redis "$URL" echo x
R set plain text >/dev/null
expect "a key of another type" 1 "key 'plain' .* holds a string, not a stream" \
    "$EMBER" submit --redis "$URL" --stream plain echo x
R set h:results text >/dev/null
expect "a results key of another type" 1 "key 'h:results' .* holds a string, not a hash" \
    "$EMBER" submit --redis "$URL" --stream h echo x

# ---- ember run --redis: 100 jobs through the stream
"$EMBER" run --redis "$URL" --stream $S -j 16 -k --bar --joblog jl \
    'echo {}; [ $(( {} % 10 )) -ne 0 ]' ::: $(seq 1 100) >run.out 2>run.err
st=$?
[ "$st" = 10 ] || fail "run --redis: the exit status counts the 10 failed jobs, got $st ($(tail -3 run.err))"
seq 1 100 | cmp -s - run.out || fail "run --redis -k: every job's output, in input order"
[ "$(wc -l <jl)" = 101 ] || fail "run --redis: the joblog has a line per job, got $(($(wc -l <jl) - 1))"
[ "$(tail -n +2 jl | cut -f1 | sort -n | uniq | wc -l)" = 100 ] || fail "run --redis: each job once in the joblog"
[ "$(tail -n +2 jl | awk -F'\t' '$7 != 0' | wc -l)" = 10 ] || fail "run --redis: 10 failures in the joblog"
[ "$(tail -n +2 jl | cut -f2 | sort -u)" = fakehost ] || fail "run --redis: the joblog's Host is the host that ran it"
"$EMBER" run --redis "$URL" --stream $S --receipts rc.jsonl 'echo {}' ::: a >/dev/null 2>&1 ||
    fail "run --redis --receipts"
grep -q '"seq":1,"command":"echo a",.*"host":"fakehost","host_receipt":{"end":"exit"' rc.jsonl ||
    fail "run --redis --receipts: the host and its receipt, got $(cat rc.jsonl)"
grep -q "100/100 done, 10 failed" run.err || fail "run --redis --bar: the progress line's end, got $(tail -1 run.err)"
mkdir tries
"$EMBER" run --redis "$URL" --stream $S --retries 2 --joblog jl2 \
    'if [ -e tries/{} ]; then echo ok {}; else touch tries/{}; exit 1; fi' ::: a b >run2.out 2>&1
st=$?
[ "$st" = 0 ] && [ "$(sort run2.out)" = $'ok a\nok b' ] || fail "run --redis --retries: status $st, $(cat run2.out)"
# connections cut mid-batch (the fakes' too: they serve their entries again):
# every job ends once, its result read once
"$EMBER" run --redis "$URL" --stream $S -j 8 -k --joblog jl3 'sleep 0.02; echo {}' ::: $(seq 1 80) \
    >run3.out 2>run3.err &
bg+=($!)
batch=$!
await "the batch is under way" 10 eval '[ "$(wc -l 2>/dev/null <jl3 || echo 0)" -ge 20 ]' || exit 1
R client kill type normal >/dev/null
wait "$batch"; st=$?
[ "$st" = 0 ] || fail "run --redis, connections cut: status $st ($(tail -3 run3.err))"
seq 1 80 | cmp -s - run3.out || fail "run --redis, connections cut: every job's output once, in order"
[ "$(tail -n +2 jl3 | cut -f1 | sort -n | uniq | wc -l)" = 80 ] && [ "$(wc -l <jl3)" = 81 ] ||
    fail "run --redis, connections cut: each job once in the joblog"
expect "run --redis --handler: a dead letter is a failure" 2 "job 1: dead-lettered after 3 deliveries on fakehost" \
    "$EMBER" run --redis "$URL" --stream $S --handler poison ::: a b
expect "run --redis, Redis unreachable" 255 "cannot reach Redis" \
    "$EMBER" run --redis "redis://127.0.0.1:$closed" --stream $S echo ::: a
expect "run --redis without --stream" 255 "go together" "$EMBER" run --redis "$URL" echo ::: a
expect "run --redis with --pool" 255 "no --pool" "$EMBER" run --redis "$URL" --stream $S --pool p echo ::: a

[ "$failures" -ne 0 ] && [ -s "$work/fake.log" ] && { echo "== the fake bridges said:"; cat "$work/fake.log"; }
exit $((failures > 0))
