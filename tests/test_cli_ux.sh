#!/usr/bin/env bash
# Description: the ember command as people expect a command line to behave:
# `--version`, `-V` and `version`; `--help`/`-h` on every command and
# subcommand (usage on stdout, exit 0); the documented exit statuses (0 ok,
# 1 ember failed, 2 usage error); bad handler arguments refused before any
# call (`sleep abc`); a bad `--log-file` refused at start, naming the path;
# `pool start` inside $(...) or a pipe returns at once, whatever descriptors
# of the caller it inherits (the daemon, the supervisor and the runners let
# go of them all); `pool stop` of a pool that is not running; and a stop
# that drains: a running call finishes and its `ember call` succeeds while
# the stop waits, a queued one fails saying it never ran, and with a short
# --shutdown_timeout the running call is killed and its `ember call` fails.
# Usage: test_cli_ux.sh EMBER VERSION
set -u
EMBER=$1 VERSION=$2
NAME=ux-$$
failures=0
work=$(mktemp -d)
. "$(dirname "$0")/lib.sh" # fail, expect, await
running_calls() { "$EMBER" stats "$1" --json | grep -q "\"running\":$2,"; }
queued_calls() { "$EMBER" stats "$1" --json | grep -q "\"queued\":$2,"; }
cleanup() {
    for p in "$NAME" "$NAME-sub" "$NAME-pipe" "$NAME-fd" "$NAME-log" "$NAME-badlog"; do
        "$EMBER" pool stop "$p" --shutdown_timeout 100ms >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT

# the version
for v in --version -V version; do
    expect "ember $v" 0 "^ember $VERSION\$" "$EMBER" "$v"
done

# help: every command and subcommand, on stdout, exit 0
commands=("pool start" "pool stop" "pool resize" "pool wait" "pool list" "stats" "events" "top" "call"
          "submit" "pool" "help" "version")
for cmd in "${commands[@]}"; do
    for h in --help -h; do
        # shellcheck disable=SC2086
        out=$("$EMBER" $cmd $h 2>"$work/err"); st=$?
        [ "$st" -eq 0 ] || fail "ember $cmd $h: status $st"
        [ -s "$work/err" ] && fail "ember $cmd $h wrote to stderr: $(cat "$work/err")"
        grep -q "^usage: ember $cmd" <<<"$out" || fail "ember $cmd $h: no usage line: $out"
    done
done
out=$("$EMBER" pool start --help)
for o in --foreground --log-file --max_concurrency --shutdown_timeout --timeout; do
    grep -q -- "$o" <<<"$out" || fail "ember pool start --help lacks $o"
done
grep -q -- "--timeout DURATION.*default never" <<<"$out" ||
    fail "ember pool start --help does not say calls have no default deadline"
grep -q -- "--shutdown_timeout" <<<"$("$EMBER" pool stop --help)" || fail "pool stop --help lacks its option"
grep -q -- "--unlinked" <<<"$("$EMBER" call --help)" || fail "call --help lacks --unlinked"
for sub in start stop resize wait list; do
    grep -q "ember pool $sub" <<<"$("$EMBER" pool --help)" || fail "pool --help lacks pool $sub"
done
out=$("$EMBER" help); st=$?
[ "$st" -eq 0 ] || fail "ember help: status $st"
for cmd in "${commands[@]}"; do
    [ "$cmd" = pool ] && continue
    grep -q "ember $cmd" <<<"$out" || fail "ember help lacks ember $cmd"
done
grep -qE "^exit status" <<<"$out" || fail "ember help does not document exit statuses"
grep -qE "2 +.*usage" <<<"$out" || fail "ember help does not say 2 is a usage error"
# an argument after -- is the handler's, not a request for help
expect "-- ends options, --help included" 1 "no pool '$NAME' is running" "$EMBER" call "$NAME" echo -- --help

# exit statuses: usage errors 2, ember failures 1
expect "no command" 2 "usage" "$EMBER"
expect "unknown command" 2 "unknown command 'frob'" "$EMBER" frob
expect "unknown pool subcommand" 2 "unknown command 'pool frob'" "$EMBER" pool frob
expect "unknown option" 2 "unknown option --frob" "$EMBER" stats "$NAME" --frob
expect "missing name" 2 "NAME" "$EMBER" stats
expect "no such pool" 1 "no pool '$NAME' is running \(start it with: ember pool start $NAME\)" \
    "$EMBER" stats "$NAME"
expect "call to no such pool" 1 "no pool '$NAME' is running" "$EMBER" call "$NAME" echo hi
expect "stop of a pool that is not running" 0 "pool '$NAME' is not running" "$EMBER" pool stop "$NAME"

# handler arguments the command can check: usage errors, before any call
expect "sleep abc" 2 "sleep takes a number of milliseconds, not 'abc'" "$EMBER" call "$NAME" sleep abc
expect "spin -5" 2 "spin takes a number of milliseconds, not '-5'" "$EMBER" call "$NAME" spin -5
expect "sleep without its argument" 2 "sleep takes a number of milliseconds" "$EMBER" call "$NAME" sleep

# --log-file is opened by the command before the daemon starts: a bad path
# fails at once, naming it, and leaves no pool
timeout 10 bash -c 'out=$("$0" pool start "$1" --log-file "$2" 2>&1); st=$?; printf "%s\n" "$out"; exit $st' \
    "$EMBER" "$NAME-badlog" /nonexistent-dir/ember.log >"$work/badlog" 2>&1; st=$?
[ "$st" -eq 1 ] || fail "bad --log-file: status $st, wanted 1 (124: it hung): $(cat "$work/badlog")"
grep -q "/nonexistent-dir/ember.log: No such file or directory" "$work/badlog" ||
    fail "bad --log-file: the message does not name the path and the cause: $(cat "$work/badlog")"
expect "no pool after a bad --log-file" 1 "no pool" "$EMBER" stats "$NAME-badlog"
# a good one gets the log, appended
echo "earlier line" >"$work/pool.log"
expect "start with a log file" 0 "started" "$EMBER" pool start "$NAME-log" --log 1 --log-file "$work/pool.log"
expect "stop with a log file" 0 "stopped" "$EMBER" pool stop "$NAME-log"
grep -q "earlier line" "$work/pool.log" || fail "--log-file was truncated, not appended to"
grep -q "pool '$NAME-log' stopped" "$work/pool.log" || fail "the supervisor's log is not in --log-file"

# pool start returns at once inside $(...) and in a pipe, and lets go of
# every descriptor of the caller (here a copy of the pipe as fd 3 too)
timeout 10 bash -c 'out=$("$0" pool start "$1" --min 1); printf "%s\n" "$out"' "$EMBER" "$NAME-sub" \
    >"$work/sub" 2>&1; st=$?
[ "$st" -eq 0 ] || fail "start in \$(...): status $st (124: it hung)"
grep -q "pool '$NAME-sub' started" "$work/sub" || fail "start in \$(...) printed: $(cat "$work/sub")"
timeout 10 bash -c '"$0" pool start "$1" --min 1 | cat' "$EMBER" "$NAME-pipe" >"$work/pipe" 2>&1; st=$?
[ "$st" -eq 0 ] || fail "start in a pipe: status $st (124: it hung)"
grep -q "pool '$NAME-pipe' started" "$work/pipe" || fail "start in a pipe printed: $(cat "$work/pipe")"
timeout 10 bash -c 'out=$("$0" pool start "$1" --min 1 3>&1 2>&1); printf "%s\n" "$out"' "$EMBER" \
    "$NAME-fd" >"$work/fd" 2>&1; st=$?
[ "$st" -eq 0 ] || fail "start with the caller's pipe as fd 3: status $st (124: it hung)"
grep -q "pool '$NAME-fd' started" "$work/fd" || fail "start with fd 3 printed: $(cat "$work/fd")"
for p in "$NAME-sub" "$NAME-pipe" "$NAME-fd"; do
    expect "stop $p" 0 "stopped" "$EMBER" pool stop "$p"
done

# the drain: a running call finishes while the stop waits; a queued one
# never runs
expect "start" 0 "started" "$EMBER" pool start "$NAME" --min 1 --max 1
"$EMBER" pool wait "$NAME" --ready 1 --timeout 10s >/dev/null || fail "pool wait"
"$EMBER" call "$NAME" sleep 5000 >"$work/run.out" 2>&1 &
running=$!
await "the call runs" 10 running_calls "$NAME" 1
"$EMBER" call "$NAME" echo queued >"$work/queued.out" 2>&1 &
queued=$!
await "the second call is queued" 10 queued_calls "$NAME" 1
expect "stop drains" 0 "pool '$NAME' stopped: 1 running call finished, 0 killed, 1 queued call never ran" \
    "$EMBER" pool stop "$NAME" --shutdown_timeout 20s
wait "$running"; st=$?
[ "$st" -eq 0 ] || fail "the running call failed while the pool stopped (status $st): $(cat "$work/run.out")"
wait "$queued"; st=$?
[ "$st" -eq 1 ] || fail "the queued call: status $st, wanted 1"
grep -q "stopped while the call was queued; it never ran" "$work/queued.out" ||
    fail "the queued call's message: $(cat "$work/queued.out")"
expect "stop of the stopped pool" 0 "pool '$NAME' is not running" "$EMBER" pool stop "$NAME"

# a running call past --shutdown_timeout is killed, and says so
expect "start again" 0 "started" "$EMBER" pool start "$NAME" --min 1 --max 1
"$EMBER" call "$NAME" sleep 1500 >"$work/run.out" 2>&1 &
running=$!
await "the call runs" 10 running_calls "$NAME" 1
expect "stop kills at its timeout" 0 "pool '$NAME' stopped: 0 running calls finished, 1 killed" \
    "$EMBER" pool stop "$NAME" --shutdown_timeout 200ms
wait "$running"; st=$?
[ "$st" -eq 1 ] || fail "the killed call: status $st, wanted 1"
grep -q "runner was killed" "$work/run.out" || fail "the killed call's message: $(cat "$work/run.out")"

if [ "$failures" -ne 0 ]; then echo "$failures checks failed"; exit 1; fi
echo "all checks passed"
