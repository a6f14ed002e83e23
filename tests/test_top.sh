#!/usr/bin/env bash
# Description: `ember top` as a person sees it, driven in a tmux terminal
# of a fixed size: it shows the pool's name and its runners with their
# pids, calls per second and runners' calls moving while calls run, a busy
# runner as busy; a smaller window redraws at its size (lines cut, not
# wrapped; runners that do not fit summed up as "+N more") and a larger one
# shows them all again; a stopped pool is said to be stopped with its last
# figures kept, a pool started again under the name is shown live; q quits
# with status 0 and Ctrl-C too, the terminal left as it was (alternate
# screen off). Without tmux: no such pool, stdout not a terminal, a bad
# --interval (each before any screen), --once's plain-text frame in UTF-8
# and its ASCII fallback, and `ember top --help`.
# Usage: test_top.sh EMBER
set -u
EMBER=$1
NAME=top-$$
SOCK=ember-top-$$      # a tmux server of this test's own
failures=0
work=$(mktemp -d)
. "$(dirname "$0")/lib.sh" # fail, expect, await
tm() { tmux -L "$SOCK" "$@"; }
screen() { tm capture-pane -p -t "$1"; }
# on_screen SESSION PATTERN...: every PATTERN (grep -E) is on the pane; the
# screen is in $work/screen, the first pattern it lacks in $work/lacks
on_screen() {
    local s=$1 p; shift
    screen "$s" >"$work/screen" 2>/dev/null || return 1
    for p; do grep -qE -- "$p" "$work/screen" || { echo "$p" >"$work/lacks"; return 1; }; done
}
# await_screen DESCRIPTION SESSION PATTERN...: await on_screen (10 s at
# most); if it never is, show the screen and what it lacks
await_screen() {
    local what=$1; shift
    await "$what" 10 on_screen "$@" && return 0
    echo "    the screen lacks $(cat "$work/lacks" 2>/dev/null):"
    sed 's/^/    | /' "$work/screen"
    return 1
}
# await_exit DESCRIPTION SESSION: its `ember top` ends (10 s at most) with
# status 0 (the pane's shell writes it to $work/SESSION.status), the
# terminal out of the alternate screen
await_exit() {
    local what=$1 s=$2 st
    if await "$what: ember top ends" 10 test -s "$work/$s.status"; then
        st=$(cat "$work/$s.status")
        [ "$st" = 0 ] || fail "$what: exit status '$st', wanted 0"
    fi
    st=$(tm display -p -t "$s" '#{alternate_on}')
    [ "$st" = 0 ] || fail "$what: the terminal is left in the alternate screen"
}
# top SESSION COLUMNS ROWS: ember top in a new tmux session of that size
top() {
    tm -f "$work/tmux.conf" new-session -d -s "$1" -x "$2" -y "$3" \
        "env LANG=C.UTF-8 LC_ALL=C.UTF-8 '$EMBER' top '$NAME' --interval 100ms; echo \$? >'$work/$1.status'" ||
        { echo "FAIL: tmux could not start a session"; exit 1; }
}
cleanup() {
    [ -n "${loop:-}" ] && kill "$loop" 2>/dev/null
    tm kill-server 2>/dev/null
    "$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (apt-get install tmux)"; exit 1; }

# before any screen: what is wrong, and how to do it right
expect "no such pool" 1 "no pool '$NAME' is running" "$EMBER" top "$NAME"
expect "a bad interval" 2 "option --interval: give a duration from 10ms to 1h" "$EMBER" top "$NAME" --interval 0
expect "help" 0 "--interval DURATION.*--once|--once" "$EMBER" top --help

expect "start" 0 "started" "$EMBER" pool start "$NAME" --min 3 --max 3 --max_concurrency 1 --log 0
"$EMBER" pool wait "$NAME" --ready 3 --timeout 10s || fail "pool wait"
pids=$("$EMBER" stats "$NAME" --json | grep -oE '"pid":[0-9]+' | cut -d: -f2)
[ "$(wc -w <<<"$pids")" = 3 ] || fail "3 runner pids from stats: '$pids'"
expect "stdout not a terminal" 2 "standard output is not a terminal.*--once" "$EMBER" top "$NAME"
out=$(LANG=C.UTF-8 LC_ALL=C.UTF-8 "$EMBER" top "$NAME" --once --interval 50ms)
for pat in "^pool '$NAME'  running" "^latency no calls in the last interval" "^ +# +pid +node +state" $pids; do
    grep -qE -- "$pat" <<<"$out" || fail "--once lacks '$pat': $out"
done
# the ASCII fallback: nothing but ASCII when the locale is not UTF-8
out=$(LANG=C LC_ALL=C "$EMBER" top "$NAME" --once --interval 50ms)
LC_ALL=C grep -q '[^ -~]' <<<"$out" && fail "--once in the C locale wrote other than ASCII: $out"

# the live view, 100x30, refreshed every 100 ms
printf 'set -g remain-on-exit on\n' >"$work/tmux.conf"
top top 100 30
args=("pool '$NAME'  running" "^ +# +pid +node +state +load +calls +job +rss +up")
for p in $pids; do args+=("^ +[0-2] +$p +[-0-9]+ +ready +0/1 +0 "); done
await_screen "the pool and its runners" top "${args[@]}" "q: quit"
# calls: a stream of short ones, and one long one that keeps a runner busy
(while :; do "$EMBER" call "$NAME" sleep 10 >/dev/null 2>&1; done) &
loop=$!
"$EMBER" call "$NAME" sleep 1500 >/dev/null &
long=$!
# (the sparkline's highest block is its largest figure's: UTF-8 here)
await_screen "calls per second and calls moving" top "^calls/s [1-9][0-9.]*  " "^calls/s .*█" \
    "^ +[0-2] +[0-9]+ +[-0-9]+ +(ready|busy) +[01]/1 +[1-9][0-9]* "
# the latency of the last interval's calls (sleep 10: 10 ms, on the coarse clock)
await_screen "latency percentiles" top "^latency run p50 [0-9.]+(us|ms|s) p90 [0-9.]+(us|ms|s) p99 [0-9.]+(us|ms|s)  queue p50 .*\([1-9][0-9]* calls\)"
await_screen "a busy runner, its job's age" top "^ +[0-2] +[0-9]+ +[-0-9]+ +busy +1/1 +[0-9]+ +[0-9.]+s "
kill "$loop"; wait "$loop" 2>/dev/null; loop=
wait "$long"
# smaller: the layout is laid out again for 48x11: the title on the top
# row, how to quit on the bottom one, and above it the runners that do not
# fit, counted
tm resize-window -t top -x 48 -y 11
await_screen "after a resize to 48x11" top "^pool '$NAME'  running" "^\+3 more$" "^q: quit"
sed -n 1p "$work/screen" | grep -q "^pool '$NAME'  running" || fail "48x11: row 1 is not the title"
sed -n 10p "$work/screen" | grep -q "^+3 more$" || fail "48x11: row 10 is not '+3 more'"
sed -n 11p "$work/screen" | grep -q "^q: quit" || fail "48x11: row 11 is not 'q: quit'"
tm resize-window -t top -x 100 -y 30
args=()
for p in $pids; do args+=("^ +[0-2] +$p "); done
await_screen "back at 100x30: every runner" top "${args[@]}"
grep -q "more$" "$work/screen" && fail "'+N more' at 100x30"

# the pool stops: said so, last figures kept; started again: shown live
expect "stop" 0 "stopped" "$EMBER" pool stop "$NAME"
set -- $pids
await_screen "the pool stopped" top "^pool '$NAME'  stopped" "^pool stopped at [0-9:]+.*last figures kept" \
    "^ +[0-2] +$1 "
expect "start again" 0 "started" "$EMBER" pool start "$NAME" --min 1 --max 1 --log 0
sup=$("$EMBER" stats "$NAME" --json | grep -oE '"supervisor":[0-9]+' | cut -d: -f2)
await_screen "the new pool, live" top "^pool '$NAME'  running .* supervisor $sup " "^q: quit"
tm send-keys -t top q
await_exit "q" top

# Ctrl-C quits as q does
top intr 80 24
await_screen "a second view" intr "pool '$NAME'  running"
tm send-keys -t intr C-c
await_exit "Ctrl-C" intr

if [ "$failures" -ne 0 ]; then echo "$failures checks failed"; exit 1; fi
echo "all checks passed"
