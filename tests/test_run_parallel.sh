#!/bin/bash
# tests/test_run_parallel.sh EMBER - ember run composes jobs as GNU parallel does.
#
# For each invocation below, `ember run --dry-run ARGS` and
# `parallel --dry-run ARGS` (Debian's GNU parallel; tools/lib.sh installs it)
# must print the same command lines and exit with the same status: the
# options, input sources, replacement strings and quoting are parallel's.
# Every invocation uses -k (or one job at a time) since parallel's dry-run
# order and {%} otherwise depend on timing.
#
# Then a set of invocations is run for real by both: the same stdout (-k)
# and the same exit status (the jobs' failures, --halt's, not found...).
set -u
EMBER=$(realpath "${1:?usage: test_run_parallel.sh EMBER}") # the tests run in a scratch directory
# the command under test, given ARGS (it prints the jobs, runs nothing)
RUN_DRY=("$EMBER" run --dry-run)

if ! command -v parallel >/dev/null; then
    echo "FAIL: GNU parallel is not installed (apt-get install -y parallel; tools/test installs it)" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# parallel prints a citation notice unless told it was seen; it keeps state in HOME
export HOME=$work/home SHELL=/bin/bash
mkdir -p "$HOME/.parallel" && touch "$HOME/.parallel/will-cite"
cd "$work" || exit 1

failures=0 count=0 failed_at=0
fail() { # one failure per invocation, however many ways it differs
    echo "FAIL: $*" >&2
    [ "$failed_at" = "$count" ] || failures=$((failures + 1))
    failed_at=$count
}

# same NAME STDIN ARGS...: both print the same lines and exit alike, with
# STDIN (a file, or /dev/null) as their standard input
same() {
    local name=$1 input=$2
    shift 2
    count=$((count + 1))
    local want got want_rc got_rc
    parallel --will-cite --dry-run "$@" <"$input" >want.out 2>want.err
    want_rc=$?
    "${RUN_DRY[@]}" "$@" <"$input" >got.out 2>got.err
    got_rc=$?
    if ! cmp -s want.out got.out; then
        fail "$name: ember run's jobs differ from parallel's ($*):"
        diff want.out got.out | sed 's/^/    /' >&2
        sed 's/^/    ember: /' got.err >&2
    fi
    if [ "$want_rc" != "$got_rc" ]; then
        fail "$name: exit status $got_rc, parallel's $want_rc ($*)"
        sed 's/^/    ember: /' got.err >&2
    fi
}

# same_status NAME ARGS...: both exit alike (parallel's usage errors print its
# usage on stdout; ember's message goes to stderr and must name the problem)
same_status() {
    local name=$1
    shift
    count=$((count + 1))
    parallel --will-cite --dry-run "$@" </dev/null >want.out 2>&1
    local want_rc=$?
    "${RUN_DRY[@]}" "$@" </dev/null >got.out 2>got.err
    local got_rc=$?
    [ "$want_rc" = "$got_rc" ] || fail "$name: exit status $got_rc, parallel's $want_rc ($*)"
    [ -s got.err ] || fail "$name: ember run said nothing about the error ($*)"
}

printf 'a\nb\n' >ab.txt
printf 'x\ny\nz\n' >xyz.txt
printf 'one\n\nthree\n' >blank.txt
printf 'a b\tc\nd e\tf\n' >tabs.txt
printf 'a,,b,\n1,2\n' >commas.txt
printf 'a  b c\n' >spaces.txt
printf 'a1b22c\n' >digits.txt
printf 'x\ny\0it'"'"'s\0' >nul.txt
printf 'p,q,r' >delim.txt
printf 'echo 1\necho "2 3"\n' >cmds.txt

# inputs
same "values" /dev/null -k echo ::: a b c
same "product" /dev/null -k echo ::: a b ::: 1 2 ::: x y
same "linked" /dev/null -k echo {1}-{2} ::: a b c :::+ 1 2 3
same "linked, shorter second" /dev/null -k echo ::: a b c :::+ 1 2
same "linked, shorter first" /dev/null -k echo ::: a b :::+ 1 2 3
same "linked then product" /dev/null -k echo ::: a b :::+ 1 2 ::: x y
same "files" /dev/null -k echo :::: ab.txt xyz.txt
same "linked files" /dev/null -k echo :::: ab.txt ::::+ xyz.txt
same "-a twice" /dev/null -k -a ab.txt -a xyz.txt echo
same "-a then :::" /dev/null -k -a ab.txt echo ::: X Y
same "stdin lines" xyz.txt -k echo
same "stdin empty lines" blank.txt -k echo {}
same ":::: - with values" ab.txt -k echo {1} {2} :::: - ::: X Y
same "values split at newlines" /dev/null -k echo {#} {} ::: $'x\ny' z
same "an empty source among several" /dev/null -k echo ::: ::: a
same "no input" /dev/null -k echo
same "no values" /dev/null -k echo :::
same "-0" nul.txt -k -0 echo
same "-d" delim.txt -k -d , echo
same "-n 2" /dev/null -k -n 2 echo {1} {2} ::: a b c
same "-n 2 appended" /dev/null -k -n2 echo ::: a 'b c' d
same "-n 2 with two sources" /dev/null -k -n 2 echo {1} {2} {3} {4} ::: a b c ::: 1 2
same "-n 3 {}" /dev/null -k -n 3 echo '[{}]' '[{.}]' ::: 'a b.x' c.y d
same "--colsep tab" tabs.txt -k --colsep '\t' echo {2} {1}
same "--colsep appended" tabs.txt -k --colsep '\t' echo
same "--colsep keeps empty columns" commas.txt -k --colsep , echo
same "--colsep regex" spaces.txt -k --colsep ' +' echo {2}
same "--colsep class" digits.txt -k --colsep '[0-9]+' echo {3} {1}
same "--colsep splitting off characters" /dev/null -k --colsep '|' echo ::: 'x|y'
same "--colsep on linked values" /dev/null -k --colsep , echo {2} {3} ::: 'a,b' :::+ 'c,d'
# replacement strings and quoting
same "quoting" /dev/null -k echo ::: 'a b' "it's" '$x' 'a*' '' 'a"b' '~' 'a\b' "''" "'a" "a'" \
    'é' 'a;b' 'a|b' 'a%b' 'a,b' 'a:b' 'a@b' 'a^b' 'a]b' '`x`' '$(x)' 'a=b' '-x' '+./_' 'A9' '!' '#' 'a{b' $'a\tb'
same "newline quoted" nul.txt -k -0 echo {} '[{}]'
same "every replacement string" /dev/null -k echo {} {.} {/} {//} {/.} ::: /a/b.c/d.e.f x.y \
    's p/x y.z' .bashrc a/.b a. dir/ / a//b /a a.b/c .. a.tar.gz ./x
same "{#} and {%} one at a time" /dev/null -j1 echo {#} {%} ::: a b c
same "in a word" /dev/null -k echo '[{}]' 'x{.}y' '{/}{#}' ::: 'a b.c' d
same "in the template's quotes" /dev/null -k echo "'{/}'" '"{}"' ::: 'a b.c' "it's"
same "positional" /dev/null -k echo {2} {1} {1.} {2/} {1//} {2/.} ::: a/b.c x :::+ y/z.w q
same "positional past the values" /dev/null -k echo {3} {1} ::: a ::: b
same "negative positional" /dev/null -k echo {-1} {-2} ::: a ::: b
same "literal braces" /dev/null -k echo {foo} {1x} '{ }' {} ::: a
same "-q" /dev/null -k -q echo 'a b' {} ::: 'c d'
same "-q appended" /dev/null -k -q 'echo a' ::: "b c" d
same "-q several values in a word" /dev/null -k -q -n2 echo {} 'x{}y' ::: a 'b c'
same "no command" /dev/null -k ::: 'echo a' 'ls "x y"'
same "commands on stdin" cmds.txt -k
same "a template word with spaces" /dev/null -k 'echo "{}"; echo' done ::: a
same "--tag" /dev/null -k --tag echo ::: a 'b c' ::: 1
same "--tagstring" /dev/null -k --tagstring '{1}-x {#}' echo ::: a 'b c'
same "bundled short options" /dev/null -kj1 echo ::: a b
same "-j" /dev/null -k -j 3 echo ::: a b c d e
same "options with =" /dev/null --keep-order --max-args=2 echo ::: a b c
same "--" /dev/null -k -- echo ::: a
# --resume and --resume-failed skip what the joblog says
printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n' >jl
printf '1\t:\t1700000000.000\t     0.010\t0\t0\t0\t0\techo a\n' >>jl
printf '2\t:\t1700000000.010\t     0.010\t0\t0\t1\t0\techo b\n' >>jl
printf '3\t:\t1700000000.020\t     0.010\t0\t0\t0\t9\techo c\n' >>jl
same "--resume" /dev/null -k --joblog jl --resume echo ::: a b c d
same "--resume-failed" /dev/null -k --joblog jl --resume-failed echo ::: a b c d
same "--resume without a joblog yet" /dev/null -k --joblog nolog --resume echo ::: a b
# errors: parallel's exit status
same_status "unknown option" --bogus echo ::: a
same_status "bad -j" -j abc echo ::: a
same_status "bad --halt" --halt bogus echo ::: a
same_status "missing input file" -k echo :::: no-such-file
# --halt, --timeout, --delay, --retries do not change what runs
same "control options" /dev/null -k --halt now,fail=1 --timeout 10 --delay 0.1 --retries 2 echo ::: a

# ---- the same invocations run for real ----
# real NAME STDIN ARGS...: `ember run ARGS` and `parallel ARGS` print the
# same stdout and exit alike (their stderr differ: each says things its way)
real() {
    local name=$1 input=$2
    shift 2
    count=$((count + 1))
    parallel --will-cite "$@" <"$input" >want.out 2>want.err
    local want_rc=$?
    "$EMBER" run "$@" <"$input" >got.out 2>got.err
    local got_rc=$?
    if ! cmp -s want.out got.out; then
        fail "$name: ember run printed what parallel did not ($*):"
        diff want.out got.out | head -20 | sed 's/^/    /' >&2
        sed 's/^/    ember: /' got.err | head -10 >&2
    fi
    if [ "$want_rc" != "$got_rc" ]; then
        fail "$name: exit status $got_rc, parallel's $want_rc ($*)"
        sed 's/^/    ember: /' got.err | head -10 >&2
    fi
}
printf 'a,1\nb,2\n' >cols.txt
real "run: jobs' exit statuses" /dev/null -k 'echo {}; exit {}' ::: 0 1 2 0 3 128 255
real "run: more than 100 failed" /dev/null false ::: $(seq 103)
real "run: stdout and stderr" /dev/null -k 'echo out {}; echo err {} >&2' ::: 1 2
real "run: a job killed by a signal" /dev/null -k 'echo {}; kill -9 $$' ::: a
real "run: not found" /dev/null -k nonexistent-command-xyz ::: a b
real "run: not found in a shell line" /dev/null -k 'nonexistent-command-xyz {}; echo after {}' ::: a b
real "run: --halt now,fail=1" /dev/null -j1 -k --halt now,fail=1 'echo {}; exit {}' ::: 0 0 5 0
real "run: --halt now,fail=1 on a signal" /dev/null -j1 -k --halt now,fail=1 'echo {}; kill -{} $$' ::: 0 15 9
real "run: --halt soon,fail=2" /dev/null -j1 -k --halt soon,fail=2 'echo {}; exit {}' ::: 0 4 0 6 0 0
real "run: --halt soon,fail=50%" /dev/null -j1 -k --halt soon,fail=50% 'echo {}; exit {}' ::: 0 3 4 5 0 0
real "run: --halt now,success=1" /dev/null -j1 -k --halt now,success=1 'echo {}; exit {}' ::: 1 2 0 3
real "run: --halt soon,done=2" /dev/null -j1 -k --halt soon,done=2 'echo {}; exit {}' ::: 1 0 3
real "run: --timeout" /dev/null -k --timeout 0.5 'sleep {}; echo {}' ::: 0 5 0.1
real "run: --retries" /dev/null -k --retries 2 'echo {}; exit 1' ::: a
real "run: -n 2" /dev/null -k -n 2 echo ::: a b c d e
real "run: --colsep" cols.txt -k --colsep , echo {2} {1}
real "run: stdin" cols.txt -k echo
real "run: linked" /dev/null -k echo {2}{1} ::: a b c :::+ 1 2 3
real "run: --tag" /dev/null -k --tag 'echo {}; echo x' ::: a 'b c' ::: 1
real "run: odd values" /dev/null -k 'printf "<%s>\n" {}' ::: 'a b' "it's" '$HOME' 'a;b' '"q"' '*' '' \
    'a\b' '`id`' '$(id)' ' lead' 'x  y' $'t\tab' 'é'
real "run: odd values appended" /dev/null -k printf '<%s>\n' ::: 'a b' "it's" '$HOME' 'a;b'
real "run: -q" /dev/null -k -q printf '<%s>\n' {} ::: 'a b' '$x'
real "run: replacement strings" /dev/null -k -j1 echo {#} {%} {/.} {//} {.} {/} ::: /a/b.c x/y.z.w plain
real "run: PARALLEL_SEQ" /dev/null -k -j1 'echo $PARALLEL_SEQ {}' ::: a b
real "run: no command" /dev/null -k ::: 'echo a' 'echo "b c"' 'exit 3'

echo "$((count - failures)) of $count invocations compose and run as GNU parallel does"
[ "$failures" = 0 ]
