#!/usr/bin/env bash
# Description: `ember call NAME exec` and the exec handler behind it, as a
# job runner uses them: argv passed verbatim without a shell, --shell, the
# caller's directory and environment, stdin as bytes (larger than a pipe's
# buffer) and from a file, stderr apart from stdout, the job's exit status,
# a signal as 128+N, not found (127) and not executable (126) named, output
# truncation reported, CPU time and peak RSS reported, a deadline killing
# the whole process group (SIGKILL for one that ignores SIGTERM, in time to
# spare its runner), a background child holding the pipes not keeping
# the call open, outputs published on success and removed on failure,
# cancel and a missing write, a runner killed mid-job taking its job's
# group with it, and --retries (a job whose runner died runs again; one that
# kills every runner is quarantined).
# Usage: test_exec.sh EMBER
set -u
EMBER=$(realpath "$1")
NAME=exec-$$
M=$$ # marks this run's sleeps (sleep 31.$M...), so that pgrep finds only ours
failures=0
. "$(dirname "$0")/lib.sh" # fail, await
work=$(mktemp -d)
cleanup() {
    "$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1
    pkill -f "sleep 3[0-9]\.$M" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

# run WANT_STATUS COMMAND...: runs it with stdout in $work/out and stderr in
# $work/err; a status other than WANT_STATUS fails (the caller names the check)
run() {
    local want=$1; shift
    "$@" >"$work/out" 2>"$work/err"
    local st=$?
    if [ "$st" -ne "$want" ]; then
        echo "  (status $st, wanted $want; stdout: $(head -c 300 "$work/out"); stderr: $(head -c 300 "$work/err"))"
        return 1
    fi
}
running() { pgrep -f "$1" >/dev/null; } # running PATTERN: a process matches it
left() { echo "    still running: $(pgrep -af "$1")"; }
call() { "$EMBER" call "$NAME" exec "$@"; }

"$EMBER" pool start "$NAME" --min 1 --max 2 --max_concurrency 2 --kill_grace 1s >/dev/null ||
    { echo "FAIL: pool start"; exit 1; }
"$EMBER" pool wait "$NAME" --ready 1 --timeout 10s || { echo "FAIL: pool wait"; exit 1; }

# argv verbatim, no shell: spaces, quotes, an empty argument, shell syntax
run 0 call -- printf '[%s]\n' "two words" "it's \"quoted\"" "" '$HOME;*' &&
    printf '[two words]\n[it'"'"'s "quoted"]\n[]\n[$HOME;*]\n' | cmp -s - "$work/out" ||
    fail "argv passed verbatim: $(cat "$work/out")"
# the program's own options after it are its, not ember's
run 0 call printf '%s\n' --timeout && [ "$(cat "$work/out")" = "--timeout" ] ||
    fail "options after the program are the program's"
run 0 call --shell 'echo "$((6 * 7))" | tr 4 x' && [ "$(cat "$work/out")" = "x2" ] ||
    fail "--shell runs a shell string"

# the caller's working directory (a relative name) and environment
mkdir sub && echo "relative content" >sub/rel.txt
(cd sub && run 0 call cat rel.txt) && [ "$(cat "$work/out")" = "relative content" ] ||
    fail "runs in the caller's directory"
EMBER_EXEC_ONLY_HERE="caller's value" run 0 call printenv EMBER_EXEC_ONLY_HERE &&
    [ "$(cat "$work/out")" = "caller's value" ] || fail "gets the caller's environment"
# PATH is the caller's too: a program found only there
mkdir bin && printf '#!/bin/sh\necho mine "$@"\n' >bin/only-in-my-path && chmod +x bin/only-in-my-path
PATH="$work/bin:$PATH" run 0 call only-in-my-path a && [ "$(cat "$work/out")" = "mine a" ] ||
    fail "the program is searched in the caller's PATH"
PATH="bin:$PATH" run 0 call only-in-my-path b && [ "$(cat "$work/out")" = "mine b" ] ||
    fail "a relative PATH entry is relative to the caller's directory"

# stdin: bytes (more than a pipe holds, binary), a file, /dev/null
head -c 300000 /dev/urandom >blob
run 0 call --stdin - cat <blob && cmp -s blob "$work/out" || fail "stdin bytes come back intact"
run 0 call --stdin sub/rel.txt cat && [ "$(cat "$work/out")" = "relative content" ] ||
    fail "stdin from a file"
run 0 call wc -c && [ "$(tr -d ' ' <"$work/out")" = "0" ] || fail "no --stdin: /dev/null"
run 126 call --stdin no-such-file cat && grep -q "cannot open stdin file 'no-such-file'" "$work/err" ||
    fail "a missing stdin file is named"

# stdout and stderr apart; exit status; signal
run 3 call sh -c 'echo to-out; echo to-err >&2; exit 3' || fail "exit status 3 propagated"
[ "$(cat "$work/out")" = "to-out" ] && [ "$(cat "$work/err")" = "to-err" ] ||
    fail "stdout and stderr apart: out '$(cat "$work/out")', err '$(cat "$work/err")'"
run 143 call sh -c 'kill -TERM $$' || fail "a signal is 128 + its number"

# not found, not executable
run 127 call ffmpg-$M -i in.mp4 && grep -q "cannot run 'ffmpg-$M': not found in PATH (" "$work/err" ||
    fail "not found: 127, named"
printf 'echo hi\n' >noexec.sh
run 126 call ./noexec.sh && grep -q "cannot run './noexec.sh'" "$work/err" ||
    fail "not executable: 126, named"
run 127 call ./no-such-program && grep -q "no such file" "$work/err" || fail "a missing path: 127"

# truncation: kept up to the limit, the rest counted and said
run 0 call --max-output 10 head -c 100000 /dev/zero && [ "$(wc -c <"$work/out")" -eq 10 ] &&
    grep -q "stdout truncated: 10 of 100000 bytes kept" "$work/err" || fail "stdout truncation reported"

# CPU time and peak RSS: awk doubles a string to 64 MiB, then counts
run 0 call --verbose awk 'BEGIN { s = "x"; while (length(s) < 50000000) s = s s; for (i = 0; i < 2000000; i++) n += i; print length(s) }' ||
    fail "--verbose"
line=$(grep "max rss" "$work/err")
rss=$(sed -n 's/.*(\([0-9]*\) bytes).*/\1/p' <<<"$line")
cpu=$(sed -n 's/.*user \([0-9.]*\)s, sys \([0-9.]*\)s.*/\1 \2/p' <<<"$line")
[ -n "$rss" ] && [ "$rss" -ge 60000000 ] || fail "peak RSS of 64 MiB reported: $line"
[ -n "$cpu" ] && awk -v c="$cpu" 'BEGIN { split(c, a, " "); exit !(a[1] + a[2] > 0) }' ||
    fail "CPU time reported: $line"

# the deadline kills the whole group: the shell, its child and its background child
run 124 call --timeout 300ms sh -c "sleep 31.$M & sleep 32.$M; touch after-sleep" ||
    fail "a deadline: 124"
await "the deadline ends the job's group" 5 eval '! running "sleep 3[12]\.$M"' || left "sleep 3[12]\.$M"
[ ! -e after-sleep ] || fail "the command ran on after its deadline"

# a group that ignores SIGTERM gets SIGKILL within the pool's kill_grace,
# from the handler: its runner is not killed for it
run 124 call --timeout 300ms sh -c "trap '' TERM; sleep 37.$M; sleep 38.$M" || fail "SIGTERM ignored: 124"
await "a group ignoring SIGTERM is killed" 5 eval '! running "sleep 3[78]\.$M"' || left "sleep 3[78]\.$M"
"$EMBER" stats "$NAME" --json | grep -q '"runners_died":0,' ||
    fail "a runner died: the handler did not end its cancelled jobs within kill_grace"

# a background child holding stdout does not hold the call
run 0 call --timeout 10s sh -c "sleep 33.$M & echo done" && [ "$(cat "$work/out")" = "done" ] ||
    fail "a background child holding the pipes held the call"
pgrep -f "sleep 33\.$M" >/dev/null || fail "the background child should still run"
pkill -f "sleep 33\.$M"

# atomic outputs
run 0 call --output o.tmp:o.txt sh -c 'echo complete >o.tmp' && [ "$(cat o.txt)" = "complete" ] &&
    [ ! -e o.tmp ] || fail "an output is published on success"
run 1 call --output sub/f.tmp:sub/f.txt sh -c 'echo partial >sub/f.tmp; exit 1' &&
    [ ! -e sub/f.tmp ] && [ ! -e sub/f.txt ] || fail "a failed job's output is removed"
run 126 call --output n.tmp:n.txt true && grep -q "without writing its output 'n.txt'" "$work/err" &&
    [ ! -e n.txt ] || fail "exit 0 without the output is a failure, named"
run 124 call --timeout 300ms --output c.tmp:c.txt sh -c "echo partial >c.tmp; sleep 34.$M" ||
    fail "a cancelled job with an output: 124"
await "a cancelled job's output is removed" 5 eval '[ ! -e c.tmp ] && [ ! -e c.txt ]'

# ember's own failures: 125
run 125 "$EMBER" call "no-pool-$M" exec true || fail "no pool: 125"
run 125 call --max-output lots true || fail "a usage error of exec: 125"
run 2 "$EMBER" call "$NAME" sleep abc && grep -q "sleep takes a number of milliseconds, not 'abc'" "$work/err" ||
    fail "sleep abc is a usage error"

# the runner killed mid-job: its job's group dies with it
"$EMBER" call "$NAME" exec --timeout never sh -c "sleep 35.$M & sleep 36.$M" >/dev/null 2>"$work/killed.err" &
caller=$!
# (the sleep itself: the caller's own command line holds its words too)
await "the job starts" 5 running "^sleep 36\.$M"
runner=$("$EMBER" stats "$NAME" --json | grep -oE '"pid":[0-9]+,"state":"[a-z]+","node":-?[0-9]+,"cpus":"[^"]*","busy":[1-9]' |
         head -1 | sed 's/"pid":\([0-9]*\).*/\1/')
if [ -n "$runner" ]; then
    kill -9 "$runner"
    await "a killed runner's job's group ends with it" 5 eval '! running "sleep 3[56]\.$M"' ||
        left "sleep 3[56]\.$M"
    wait "$caller"
    st=$?
    [ "$st" -eq 125 ] || fail "the call of a killed runner exits 125, not $st ($(cat "$work/killed.err"))"
else
    fail "no busy runner in the stats"
    kill "$caller"
fi

# --retries: a job whose runner dies runs again on another runner (work
# that can be repeated); without it the call fails; a job that kills every
# runner it runs on is quarantined after the pool's poison_after (2)
kill_once='if [ -e mark ]; then echo again; else touch mark; kill -9 $PPID; fi'
rm -f mark runs
{ run 0 call --retries 2 --shell "$kill_once" && [ "$(cat "$work/out")" = again ]; } ||
    fail "a job whose runner died did not run again with --retries"
rm -f mark
{ run 125 call --shell "$kill_once" && grep -q "killed by SIGKILL" "$work/err" && [ ! -s "$work/out" ]; } ||
    fail "a job whose runner died without --retries: $(cat "$work/err")"
{ run 125 call --retries 5 --shell 'echo x >> runs; kill -9 $PPID' && grep -q "quarantined" "$work/err" &&
    [ "$(wc -l < runs)" -eq 2 ]; } || fail "a job that kills every runner was not quarantined after 2: $(cat "$work/err")"
{ run 125 call --retries 16 true && grep -q "'16' is not a number of retries from 0 to 15" "$work/err"; } ||
    fail "--retries 16 was not refused clearly: $(cat "$work/err")"

if [ "$failures" -ne 0 ]; then echo "$failures checks failed"; exit 1; fi
echo "all checks passed"
