#!/usr/bin/env bash
# Description: bench/report turns a benchmark run's JSON lines (a small
# canned run, tests/bench_report.jsonl) into bench's results: the table of
# the empty call per system with each one's ratio to ember and to the
# busy-poll limit, a skipped peer shown with its reason and never as a
# number, ember against each limit, the acceptance figures with their
# targets (met or not, one not measured said so), the caller and payload
# tables, the machine line; and the three PNG plots (gnuplot-nox is one of
# tools/lib.sh's packages). A line that is not JSON is refused with its
# line number.
# Usage: test_bench_report.sh REPORT CANNED
set -u
REPORT=$1 CANNED=$2
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh" # fail
has() { grep -qF -- "$2" "$work/out/results.md" || fail "$1: no '$2' in results.md"; }
if ! "$REPORT" "$CANNED" "$work/out" 2>"$work/err"; then
    fail "bench/report failed: $(cat "$work/err")"
fi
has "machine" "Machine: Test CPU, 2 CPUs, kernel 6.0-test"
has "ember's row" "| ember | ember_call, warm (1 runner) | 0.2 | 0.4 | 1.50 | 1.00 | 2.00 |"
has "the limit's row" "| spin | limit: busy-poll ping-pong | 0.1 | — | — | 0.5 | 1.00 |"
has "a peer's ratios" "| prefork | prefork pool over pipes (C) | 40.0 | — | — | 200 | 400 |"
has "a skipped peer" "| beam | BEAM: spawn on a 2nd node + reply | skipped: the Debian package erlang-base could not be installed |"
has "cold against futex" "| cold call p50, µs (both sides asleep 2 ms) | 60.0 | futex ping-pong, asleep 2 ms | 50.0 | 1.20 |"
has "async against the bare ring" "| 3.00 M | bare ring with slots, 2 spinning processes | 20.00 M | 0.15 |"
has "zero against fork" "| first call on a pool scaled to zero, µs | 3000 | fork + wait | 1000 | 3.00 |"
has "a target not met" "| async_vs_bare | 0.15 | >= 0.4 | no |"
has "a target met" "| supervisor_rss_kib | 3000 | <= 4096 | yes |"
has "a figure not measured" "| zero_over_fork | not measured | <= 2 | — |"
has "callers" "| 16 | 1.00 M | 9.00 | 0.5 |"
has "payloads" "| 16777216 | 4000 | — | 8.40 | 11.2 | 0.75 |"
has "batch tools" "| xargs | xargs -P 2, per job | 900 | 9.00 |"
for p in cdf callers payload; do
    if ! head -c 8 "$work/out/$p.png" 2>/dev/null | grep -q PNG; then
        fail "$p.png is not a PNG image"
    fi
done
grep -q '"beam"' "$work/out/cdf.dat" && fail "the skipped peer has a CDF"
printf '{"metric":"x","value":1}\nnot json\n' >"$work/bad.jsonl"
out=$("$REPORT" "$work/bad.jsonl" "$work/out2" 2>&1) && fail "a line that is not JSON was accepted"
grep -q "bad.jsonl:2: not JSON" <<<"$out" || fail "the bad line is not named: $out"
[ "$failures" -eq 0 ] && echo "all bench/report checks passed"
exit $((failures > 0))
