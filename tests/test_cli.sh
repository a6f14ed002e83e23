#!/usr/bin/env bash
# Description: the ember command line: `pool start` takes the pool options by
# their struct names (bad ones are refused and named, exit 2; invalid
# combinations exit 1 naming the option), `pool wait`, `stats` (text and
# JSON), `call` with the built-in and command-line handlers (the result
# printed as it is, no newline added, but a receipt in a terminal on a line
# of its own; exec: output, exit status, cancel on
# timeout, more in test_exec.sh; sleep's argument),
# `pool resize` up and down, `events`, `pool list`, `pool stop`, and what
# every command says about a pool that is not running; a runner killed by
# SIGXCPU past --runner_rlimit_cpu, as `call` and `run`'s receipts say it.
set -u
EMBER=$1
NAME=cli-$$
failures=0
. "$(dirname "$0")/lib.sh" # fail, check, expect, await
cleanup() {
    "$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1
    "$EMBER" pool stop "$NAME-2n" --shutdown_timeout 100ms >/dev/null 2>&1
    "$EMBER" pool stop "$NAME-cpu" --shutdown_timeout 100ms >/dev/null 2>&1
}
trap cleanup EXIT

expect "unknown option named" 2 "unknown option --maxx" "$EMBER" pool start "$NAME" --maxx 3
expect "bad duration named" 2 "option --timeout: '5parsecs'" "$EMBER" pool start "$NAME" --timeout 5parsecs
expect "bad number named" 2 "option --max: 'lots'" "$EMBER" pool start "$NAME" --max lots
expect "min above max refused" 1 "option min: 5 is above max 2" "$EMBER" pool start "$NAME" --min 5 --max 2
expect "zero timeout refused" 1 "option timeout" "$EMBER" pool start "$NAME" --timeout 0
expect "bad placement named" 2 "option --placement: 'spread'" "$EMBER" pool start "$NAME" --placement spread
expect "unknown node refused" 1 "option nodes: '7'" "$EMBER" pool start "$NAME" --nodes 7
expect "no pool: stats" 1 "no pool '$NAME' is running" "$EMBER" stats "$NAME"
expect "no pool: call" 1 "no pool '$NAME' is running" "$EMBER" call "$NAME" echo x
expect "unknown command" 2 "unknown command 'frobnicate'" "$EMBER" frobnicate

expect "start" 0 "started" "$EMBER" pool start "$NAME" --min 1 --max 3 --max_concurrency 2 \
    --idle-shutdown-after 300ms --timeout 20s --kill_grace 200ms --queue_capacity 100 --log 0
expect "a second start of the same name" 1 "already running" "$EMBER" pool start "$NAME"
check "wait for min" "$EMBER" pool wait "$NAME" --ready 1 --timeout 10s
expect "stats json: options" 0 '"min":1,"max":3,"max_limit":[0-9]+,"max_concurrency":2' "$EMBER" stats "$NAME" --json
expect "stats json: queue rounded up" 0 '"queue_capacity":128' "$EMBER" stats "$NAME" --json
expect "stats text" 0 "runners: 1 serving \(1 ready\), min 1, max 3" "$EMBER" stats "$NAME"
expect "echo" 0 "^hello$" "$EMBER" call "$NAME" echo hello
expect "an argument that starts with -" 0 "^-x$" "$EMBER" call "$NAME" echo -x
expect "an argument after --" 0 "^--timeout$" "$EMBER" call "$NAME" echo -- --timeout
# the result byte for byte, as ember run and ember submit print it: a
# newline only where the result ends with one (exec's stdout likewise)
check "a result without a newline is printed without one" \
    cmp -s <("$EMBER" call "$NAME" echo hello) <(printf 'hello')
check "a result's own newlines are printed as they are" \
    cmp -s <("$EMBER" call "$NAME" echo $'two\nlines\n') <(printf 'two\nlines\n')
check "exec's stdout is printed as it is" \
    cmp -s <("$EMBER" call "$NAME" exec printf 'a\nb') <(printf 'a\nb')
# in a terminal (script(1) gives one), a receipt after a result that does
# not end its line starts on a line of its own; through a pipe the bytes
# stay exactly the result's
tty_out=$(script -qec "'$EMBER' call '$NAME' echo hello --receipt" /dev/null | tr -d '\r')
check "in a terminal, the result's line ends before the receipt" \
    [ "$(printf '%s\n' "$tty_out" | head -1)" = hello ]
expect "in a terminal, the receipt on a line of its own" 0 '^\{"handler":"echo"' \
    sed -n 2p <<<"$tty_out"
check "through a pipe, the result as it is before the receipt" \
    cmp -s <("$EMBER" call "$NAME" echo hello --receipt 2>/dev/null) <(printf 'hello')
# words: each ending in NUL; KEY=VALUE words with this directory first (cwd=)
check "several words, NUL-terminated" \
    [ "$("$EMBER" call "$NAME" echo hello world | od -An -c | tr -s ' ')" = " h e l l o \0 w o r l d \0" ]
check "KEY=VALUE words carry cwd=" [ "$("$EMBER" call "$NAME" echo in=a.mp4 height=240 | tr '\0' '|')" = \
    "cwd=$PWD|in=a.mp4|height=240|" ]
check "KEY=VALUE words in one string too" [ "$("$EMBER" call "$NAME" echo 'in=a.mp4  height=240' | tr '\0' '|')" = \
    "cwd=$PWD|in=a.mp4|height=240|" ]
check "one string of other words as it is" [ "$("$EMBER" call "$NAME" echo 'in=a b.mp4' | tr '\0' '|')" = "in=a b.mp4" ]
check "a cwd= given is kept" [ "$("$EMBER" call "$NAME" echo cwd=/x in=a | tr '\0' '|')" = "cwd=/x|in=a|" ]
check "ember run --handler: KEY=VALUE words carry cwd=" \
    [ "$("$EMBER" run --pool "$NAME" --handler echo in={} ::: a.mp4 | tr '\0' '|')" = "cwd=$PWD|in=a.mp4|" ]
expect "a flag given a value" 2 "option --json takes no value" "$EMBER" stats "$NAME" --json=yes
expect "a count out of range" 2 "option --ready: '70000' is not a whole number up to 65536" \
    "$EMBER" pool wait "$NAME" --ready 70000
expect "exec output" 0 "^out 42$" "$EMBER" call "$NAME" exec --shell 'echo out $((6 * 7))'
expect "exec exit status" 3 "^err$" "$EMBER" call "$NAME" exec --shell 'echo err >&2; exit 3'
expect "exec without a program" 125 "exec needs a PROGRAM" "$EMBER" call "$NAME" exec
expect "sleep without a number" 2 "sleep takes a number of milliseconds, not 'abc'" "$EMBER" call "$NAME" sleep abc
expect "unknown handler" 1 "no handler 'nope'" "$EMBER" call "$NAME" nope
# a command past its deadline is stopped: the call times out, the command is gone
marker=/tmp/ember-cli-$$.marker
expect "exec cancelled at its deadline" 124 "deadline" "$EMBER" call "$NAME" exec --timeout 100ms --shell "sleep 0.3; touch $marker"
await "the timed-out command is gone" 5 eval '! pgrep -f "touch $marker" >/dev/null'
if [ -e "$marker" ]; then fail "the timed-out command ran on"; rm -f "$marker"; fi
check "a call after it" "$EMBER" call "$NAME" echo after
expect "the handler stopped it: its runner lives" 0 '"runners_died":0' "$EMBER" stats "$NAME" --json

expect "resize" 0 "min 2, max 4" "$EMBER" pool resize "$NAME" --min 2 --max 4
check "wait for the new min" "$EMBER" pool wait "$NAME" --ready 2 --timeout 10s
expect "stats after resize" 0 '"min":2,"max":4,.*"ready":2' "$EMBER" stats "$NAME" --json
expect "resize beyond max_limit refused" 1 "max 100000 is not in 1..max_limit" "$EMBER" pool resize "$NAME" --max 100000
expect "resize min above max refused" 1 "min 5 is above max 4" "$EMBER" pool resize "$NAME" --min 5
expect "resize down" 0 "min 1, max 1" "$EMBER" pool resize "$NAME" --min 1 --max 1
expect "events: min boots" 0 "grow_end runner=[0-9]+ runners=2 reason=min ok" "$EMBER" events "$NAME"
check "wait for the drain" "$EMBER" pool wait "$NAME" --runners 1 --timeout 10s
expect "events: resize drains" 0 "shrink runner=[0-9]+ runners=1 reason=resize" "$EMBER" events "$NAME"
# a pool on a synthetic 2-node topology: one runner per node, each with its node's CPUs
expect "2-node start" 0 "started" env HWLOC_SYNTHETIC="node:2 core:2 pu:1" "$EMBER" pool start "$NAME-2n" --min 2 --max 2
check "2-node wait" "$EMBER" pool wait "$NAME-2n" --ready 2
expect "2-node stats" 0 '"placement":"numa","nodes":2,.*"node":0,"cpus":"0-1".*"node":1,"cpus":"2-3"|"node":1,"cpus":"2-3".*"node":0,"cpus":"0-1"' "$EMBER" stats "$NAME-2n" --json
expect "2-node stop" 0 "stopped" "$EMBER" pool stop "$NAME-2n"
# a runner's end, readably: spinning past --runner_rlimit_cpu kills it by SIGXCPU
expect "rlimit option" 0 "started" "$EMBER" pool start "$NAME-cpu" --min 1 --max 1 --runner-rlimit-cpu 1
expect "call killed by SIGXCPU" 1 "runner 0 died during the call: killed by SIGXCPU" "$EMBER" call "$NAME-cpu" spin 600000
receipts=/tmp/ember-cli-$$.receipts
"$EMBER" run --pool "$NAME-cpu" --handler spin --receipts "$receipts" ::: 600000 >/dev/null 2>&1
expect "receipt of a crashed job" 0 '"end":"crashed","exit":255,"signal":24' cat "$receipts"
rm -f "$receipts"
expect "bad rlimit named" 2 "option --runner_rlimit_nofile: 'many'" "$EMBER" pool start "$NAME-cpu2" --runner_rlimit_nofile many
expect "cpu pool stop" 0 "stopped" "$EMBER" pool stop "$NAME-cpu"
expect "list" 0 "^$NAME +supervisor" "$EMBER" pool list
# a stop that drains a long call is no hang: the supervisor's heartbeat goes
# on (sampled while it drains: `ember stats` reports the age of the beat)
"$EMBER" call "$NAME" sleep 4500 >/dev/null 2>&1 &
drained=$!
sleeping() { "$EMBER" stats "$NAME" --json | grep -q '"running":1'; }
await "the long call runs" 10 sleeping || fail "the 4.5 s call never ran"
"$EMBER" pool stop "$NAME" --shutdown_timeout 10s >"/tmp/ember-cli-$$.stop" 2>&1 &
stopper=$!
worst=0 seen=0
while kill -0 "$stopper" 2>/dev/null; do
    j=$("$EMBER" stats "$NAME" --json 2>/dev/null) || break
    case $j in *'"state":"stopping"'*) seen=$((seen + 1)) ;; *) continue ;; esac
    s=$(printf '%s' "$j" | sed -n 's/.*"supervisor_silent_s":\([0-9.]*\).*/\1/p')
    worst=$(awk -v a="$worst" -v b="$s" 'BEGIN { print (b > a ? b : a) }')
    "$EMBER" stats "$NAME" | grep -q "it is stuck" && fail "ember stats calls a draining supervisor stuck"
done
wait "$stopper" || fail "the stop of a pool draining a call: $(cat "/tmp/ember-cli-$$.stop")"
wait "$drained" || fail "the call the stop drained did not finish"
rm -f "/tmp/ember-cli-$$.stop"
[ "$seen" -ge 2 ] || fail "the drain was never seen (looks: $seen)"
awk -v w="$worst" 'BEGIN { exit !(w < 2) }' ||
    fail "the heartbeat stopped while the supervisor drained: $worst s silent"
expect "stopped pool" 1 "no pool '$NAME' is running" "$EMBER" stats "$NAME"

if [ "$failures" -ne 0 ]; then echo "$failures checks failed"; exit 1; fi
echo "all checks passed"
