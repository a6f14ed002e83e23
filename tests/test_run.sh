#!/bin/bash
# tests/test_run.sh EMBER - `ember run` running jobs for real, as a user of
# GNU parallel relies on it: each job's stdout and stderr whole and never
# mixed with another's, -k's order, --tag, --line-buffer; every kind of input
# (:::, ::::, :::+, stdin, -a, --colsep, -n) running; -j N jobs at once and
# no more; --pool NAME and --handler; --timeout killing the job's process
# group; --retries; --halt now/soon on failures, successes and a share of
# the jobs; --delay; --dry-run; the joblog's columns, --resume and
# --resume-failed; --receipts; --bar and --eta on a pipe; the exit statuses;
# Ctrl-C (and SIGTERM) cancelling the running jobs, a second Ctrl-C exiting
# at once; --output publishing only whole outputs, under a timeout and when
# `ember run` itself is killed, and the next run cleaning up after a dead one.
#
# Jobs that must overlap or wait for each other synchronise through files
# (the helpers await, await_count and await_lines below, bounded at 10 s);
# sleeps that stand for "a long job" carry this run's pid as a marker
# (sleep 3N.PID), so that pgrep finds only ours.
set -u
EMBER=$(realpath "${1:?usage: test_run.sh EMBER}")
M=$$                 # marks this run's long sleeps: sleep 3N.$M
POOL=runtest-$$      # a pool started with `ember pool start`
POOL2=runtest2-$$    # one with a long kill_grace (the second Ctrl-C)
LONG="^sleep 3[0-9]\.$M"
work=$(mktemp -d)
bg=()                # ember runs started in the background
failures=0
LIB=$(realpath "$(dirname "$0")/lib.sh")
. "$LIB" # fail, await (the jobs' await is bin/await, below)
cleanup() {
    local p
    for p in "${bg[@]}"; do kill -KILL "$p" 2>/dev/null; done
    "$EMBER" pool stop "$POOL" --shutdown_timeout 100ms >/dev/null 2>&1
    "$EMBER" pool stop "$POOL2" --shutdown_timeout 100ms >/dev/null 2>&1
    for p in $(pgrep -f "$LONG"); do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
export SHELL=/bin/bash

# Helpers the jobs run (in $work/bin): lib.sh's await, 10 s at most; when
# the condition does not come, a line on stderr and status 1.
mkdir bin
cat >bin/await <<'EOF'
#!/bin/bash
# await FILE...: until every FILE exists
failures=0; . @LIB@
all() { local f; for f; do [ -e "$f" ] || return 1; done; }
await "await: every one of $* exists" 10 all "$@" >&2
EOF
cat >bin/await_count <<'EOF'
#!/bin/bash
# await_count DIR N: until DIR has N entries or more
failures=0; . @LIB@
dir=$1 n=$2
await "await_count: $dir has $n entries" 10 eval '[ "$(ls -A "$dir" | wc -l)" -ge "$n" ]' >&2
EOF
cat >bin/await_lines <<'EOF'
#!/bin/bash
# await_lines FILE N: until FILE has N lines or more
failures=0; . @LIB@
file=$1 n=$2
await "await_lines: $file has $n lines" 10 eval '[ -e "$file" ] && [ "$(wc -l <"$file")" -ge "$n" ]' >&2
EOF
sed -i "s|@LIB@|'$LIB'|" bin/*
chmod +x bin/*
B=$work/bin
PATH=$B:$PATH

# er WANT NAME ARGS...: `ember run ARGS` with stdout in out, stderr in err;
# an exit status other than WANT fails NAME. Returns 0 when it matched.
er() {
    local want=$1 name=$2
    shift 2
    "$EMBER" run "$@" >out 2>err
    local st=$?
    if [ "$st" != "$want" ]; then
        fail "$name: exit status $st, wanted $want"
        sed 's/^/    stdout: /' out | head -20
        sed 's/^/    stderr: /' err | head -20
        return 1
    fi
}
# same NAME FILE TEXT: FILE holds exactly TEXT (printf's %s, a newline added
# unless TEXT is empty)
same() {
    local want
    if [ -n "$3" ]; then want=$(printf '%s\n' "$3"); else want=; fi
    if [ "$(cat "$2")" != "$want" ] || { [ -n "$3" ] && [ "$(tail -c1 "$2" | od -An -c | tr -d ' ')" != '\n' ]; }; then
        fail "$1: $2 is not as expected"
        echo "    wanted: $(printf '%s' "$3" | head -c 400 | tr '\n' '|')"
        echo "    got:    $(head -c 400 "$2" | tr '\n' '|')"
    fi
}
# has NAME FILE REGEX: a line of FILE matches REGEX (grep -E)
has() { grep -Eq -- "$3" "$2" || { fail "$1: no line of $2 matches '$3'"; sed 's/^/    /' "$2" | head -10; }; }
# hasnt NAME FILE REGEX: no line of FILE matches REGEX
hasnt() { ! grep -Eq -- "$3" "$2" || { fail "$1: a line of $2 matches '$3'"; sed 's/^/    /' "$2" | head -10; }; }
long_gone() { ! pgrep -f "$LONG" >/dev/null; }
nlong_is() { [ "$(pgrep -fc "$LONG")" = "$1" ]; }
# a fresh directory for one test's files
fresh() { rm -rf "$work/t" && mkdir "$work/t" && cd "$work/t" || exit 1; }

# ---- output ----
fresh
# two jobs at once (each waits for the other to start), each writing 40
# lines with small sleeps between to stdout and to stderr: each job's lines
# come out together and in order, on the stream it wrote them to
if er 0 "grouped" -j 2 'touch st.{}; await st.A st.B || exit 9
    for i in $(seq 40); do echo {}-$i; echo {}-err-$i >&2; sleep 0.003; done' ::: A B; then
    for j in A B; do
        seq 40 | sed "s/^/$j-/" >want.$j
        seq 40 | sed "s/^/$j-err-/" >want.err.$j
    done
    cat want.A want.B >want.AB; cat want.B want.A >want.BA
    cat want.err.A want.err.B >want.err.AB; cat want.err.B want.err.A >want.err.BA
    cmp -s out want.AB || cmp -s out want.BA || { fail "grouped: two jobs' stdout interleaved"; head -5 out; }
    cmp -s err want.err.AB || cmp -s err want.err.BA || { fail "grouped: two jobs' stderr interleaved"; head -5 err; }
fi

# jobs that end in the opposite order of their input (job N ends once job
# N+1 has): -k prints them in input order, without it as they end
fresh
touch done.4
er 0 "-k" -j 3 -k 'await done.$(({} + 1)) && echo {} && touch done.{}' ::: 1 2 3 && same "-k: input order" out $'1\n2\n3'
fresh
touch done.4
er 0 "no -k" -j 3 'await done.$(({} + 1)) && echo {} && touch done.{}' ::: 1 2 3 && same "no -k: as they end" out $'3\n2\n1'

fresh
if er 0 "--tag" -k --tag 'echo one; echo two >&2; echo three; : {}' ::: a 'b c'; then
    same "--tag: each stdout line after the values and a TAB" out $'a\tone\na\tthree\nb c\tone\nb c\tthree'
    same "--tag: stderr too" err $'a\ttwo\nb c\ttwo'
fi
er 0 "--tagstring" -k --tagstring '{#}:{}' echo x ::: a b && same "--tagstring" out $'1:a\tx a\n2:b\tx b'

# --line-buffer: every line whole, none lost, each job's lines in order
fresh
if er 0 "--line-buffer" -j 2 --line-buffer 'touch st.{}; await st.A st.B || exit 9
    for i in $(seq 30); do echo {}-line-$i; sleep 0.003; done' ::: A B; then
    [ "$(wc -l <out)" = 60 ] || fail "--line-buffer: $(wc -l <out) lines, wanted 60"
    for j in A B; do
        grep "^$j-" out >got.$j
        seq 30 | sed "s/^/$j-line-/" >want.$j
        cmp -s got.$j want.$j || fail "--line-buffer: job $j's lines cut, lost or out of order"
    done
fi

# ---- inputs, running for real ----
fresh
printf 'a\nb\n' >ab.txt
printf 'x\ny\n' >xy.txt
printf 'one,1\ntwo,2\n' >cols.txt
er 0 ":::" -k echo ::: a b ::: 1 2 && same "::: product" out $'a 1\na 2\nb 1\nb 2'
er 0 "::::" -k echo {2}{1} :::: ab.txt xy.txt && same ":::: files" out $'xa\nya\nxb\nyb'
er 0 ":::+" -k echo {1}-{2} ::: a b c :::+ 1 2 3 && same ":::+ linked" out $'a-1\nb-2\nc-3'
er 0 "stdin" -k echo in: <ab.txt && same "stdin's lines" out $'in: a\nin: b'
# a slow producer: the first job's output is printed while stdin still
# waits for the next line (the producer sends it only once it has seen that)
{ echo a; await_lines slow.out 1 || echo timeout >>slow.out; echo b; } | "$EMBER" run -k 'echo got {}' >slow.out 2>slow.err
same "a slow stdin does not hold up finished jobs' output" slow.out $'got a\ngot b'
er 0 "-a" -k -a ab.txt -a xy.txt echo && same "-a twice" out $'a x\na y\nb x\nb y'
er 0 "--colsep" -k --colsep , 'echo {2}={1}' <cols.txt && same "--colsep" out $'1=one\n2=two'
er 0 "-n" -k -n 2 'echo [{1}] [{2}]' ::: a b c && same "-n 2" out $'[a] [b]\n[c] []'
er 0 "odd values" -k 'printf "%s|\n" {}' ::: 'a b' "it's" '$HOME' 'a;b' '' '*' && \
    same "values reach the job as they are" out $'a b|\nit\'s|\n$HOME|\na;b|\n|\n*|'
er 0 "{#} and PARALLEL_SEQ" -k 'echo {#} $PARALLEL_SEQ {/.} {//}' ::: /x/a.c b/c.d.e && \
    same "{#}, PARALLEL_SEQ, {/.}, {//}" out $'1 1 a /x\n2 2 c.d b'
# jobs run in the caller's directory, with its environment
mkdir sub && cd sub || exit 1
RUNTEST_VAR="v a l" er 0 "cwd and env" 'echo $(pwd) "$RUNTEST_VAR" {}' ::: x && same "cwd and env" out "$work/t/sub v a l x"
cd "$work/t" || exit 1

# ---- -j N: at most N at once, and N reached ----
# each job puts a file in conc/ while it runs and notes how many are there
# when it starts and before it ends; the first three wait until three are
# there (they would wait in vain, and the count stay below 3, if fewer ran)
fresh
mkdir conc
if er 0 "-j 3" -j 3 'touch conc/{}; ls conc | wc -l >>seen; if [ {} -le 3 ]; then await_count conc 3 || exit 9; fi
    sleep 0.05; ls conc | wc -l >>seen; rm conc/{}' ::: $(seq 9); then
    max=$(sort -n seen | tail -1)
    [ "$max" = 3 ] || fail "-j 3: at most $max jobs seen at once, wanted 3"
    [ "$(wc -l <seen)" = 18 ] || fail "-j 3: $(($(wc -l <seen) / 2)) of 9 jobs ran"
fi
rm -f seen
er 0 "-j 1" -j 1 'touch conc/{}; ls conc | wc -l >>seen; sleep 0.02; rm conc/{}' ::: $(seq 5) &&
    same "-j 1: one at a time" seen $'1\n1\n1\n1\n1'

# ---- --pool NAME, --handler ----
fresh
if "$EMBER" pool start "$POOL" --min 2 --max 2 >started 2>&1 && "$EMBER" pool wait "$POOL" --ready 2 --timeout 10s; then
    sup=$(sed -n 's/.*supervisor pid \([0-9]*\).*/\1/p' started)
    # a job's parent is a runner of that pool: its parent is the pool's supervisor
    er 0 "--pool" --pool "$POOL" -k 'echo {} $(ps -o ppid= -p $PPID)' ::: a b c &&
        same "--pool: jobs run in the pool's runners" out "a $sup
b $sup
c $sup"
    "$EMBER" pool list >list 2>&1
    has "--pool: the pool runs on after the batch" list "^$POOL "
    # the echo handler returns its argument: the job's words, each ending in NUL
    er 0 "--handler echo" --pool "$POOL" -k --handler echo 'x{}y' {} ::: 'a b' c &&
        { printf 'xa by\0a b\0xcy\0c\0' >want; cmp -s out want || fail "--handler echo: got $(od -An -c out)"; }
    er 255 "--handler unknown" --pool "$POOL" --handler nosuch ::: a && has "--handler unknown: said" err "no handler 'nosuch'"
    "$EMBER" pool stop "$POOL" >/dev/null 2>&1 || fail "pool stop"
else
    fail "pool start: $(cat started)"
fi
# a pool stopped under a batch drains: the running job finishes and is
# printed, the queued ones fail with the reason, the status says an error
fresh
if "$EMBER" pool start "$POOL" --min 1 --max 1 >started 2>&1 && "$EMBER" pool wait "$POOL" --ready 1 --timeout 10s; then
    "$EMBER" run --pool "$POOL" -j 3 -k --joblog jl 'touch st.{}; if [ {} = 1 ]; then await release; fi; echo {}' ::: 1 2 3 4 >out 2>err &
    pid=$!
    bg+=("$pid")
    await "pool stopped under a batch: job 1 runs" 10 test -e st.1
    "$EMBER" pool stop "$POOL" --shutdown_timeout 10s >stopped 2>&1 &
    await "pool stopped under a batch: the stop began" 10 eval '"$EMBER" stats "$POOL" --json | grep -q "\"state\":\"stopping\""'
    touch release
    wait "$pid"
    st=$?
    wait
    [ "$st" = 255 ] || fail "pool stopped under a batch: exit status $st, wanted 255"
    same "pool stopped under a batch: the running job's output" out 1
    has "pool stopped under a batch: why the others did not run" err "was stopped while the call was queued"
    has "pool stopped under a batch: joblog" jl $'^1\t.*\t0\t0\ttouch'
else
    fail "pool start: $(cat started)"
fi
# its supervisor killed under a -k batch: what finished is printed all the same
fresh
rm -f release
if "$EMBER" pool start "$POOL" --min 2 --max 2 >started 2>&1 && "$EMBER" pool wait "$POOL" --ready 2 --timeout 10s; then
    sup=$(sed -n 's/.*supervisor pid \([0-9]*\).*/\1/p' started)
    "$EMBER" run --pool "$POOL" -j 2 -k --joblog jl 'touch st.{}; if [ {} = 1 ]; then await release; fi; echo {}' ::: 1 2 3 >out 2>err &
    pid=$!
    bg+=("$pid")
    # jobs 2 and 3 are done (in the joblog) while job 1 waits
    await_lines jl 3 || fail "supervisor killed: jobs 2 and 3 not done"
    kill -KILL "$sup"
    wait "$pid"
    st=$?
    touch release
    [ "$st" = 255 ] || fail "supervisor killed: exit status $st, wanted 255"
    same "supervisor killed: the finished jobs' output, in order" out $'2\n3'
    has "supervisor killed: said" err "died"
    "$EMBER" pool stop "$POOL" --shutdown_timeout 100ms >/dev/null 2>&1
else
    fail "pool start: $(cat started)"
fi
er 255 "--pool not running" --pool "$POOL" echo ::: a && has "--pool not running: said" err "no pool '$POOL' is running"
# the batch's own pool has the same handlers
er 0 "--handler echo, own pool" -k --handler echo ::: a b &&
    { printf 'a\0b\0' >want; cmp -s out want || fail "--handler echo, own pool: got $(od -An -c out)"; }
# a handler's refusal counts as a failed job
er 1 "--handler failing" -k --handler sleep ::: abc

# ---- --timeout ----
fresh
if er 1 "--timeout" --timeout 1 --joblog jl 'sleep 30.'$M' & sleep 31.'$M'; echo never {}' ::: a; then
    has "--timeout: said" err "job 1 timed out"
    hasnt "--timeout: the job did not go on" out never
    has "--timeout: joblog says killed" jl $'^1\t:\t[0-9.]+\t +[0-9.]+\t0\t0\t-1\t15\t'
    await "--timeout: the job's process group is gone (its background child too)" 10 long_gone
fi
er 0 "--timeout not reached" --timeout 10 'sleep 0.1; echo fine {}' ::: a && same "--timeout not reached" out "fine a"
# --plugin: the batch's own pool loads a handler plugin (the sample one, found
# beside the ember binary) and --handler calls it with each job's words
er 0 "--plugin" -k -j 2 --plugin sample --handler sample.echo ::: a b &&
    [ "$(od -An -c out | tr -d ' \n')" = 'a\0b\0' ] || fail "--plugin: got '$(od -An -c out)'"
er 255 "--plugin, not found" --plugin nosuch.$M --handler x ::: a && has "--plugin, not found" err "not found"
er 255 "--plugin with --pool" --pool "$POOL" --plugin sample --handler x ::: a &&
    has "--plugin with --pool" err "start pool"
# what a job wrote before its time ran out is printed, as GNU parallel does
er 1 "--timeout, output kept" --timeout 1 'echo begun {}; sleep 30.'$M ::: a && same "--timeout, output kept" out "begun a"
# the time a job waits in a busy pool's queue is not its run time: three jobs
# of 1 s each on one runner, under a 1.5 s limit, all finish
fresh
if "$EMBER" pool start "$POOL" --min 1 --max 1 >started 2>&1 && "$EMBER" pool wait "$POOL" --ready 1 --timeout 10s; then
    er 0 "--timeout on a busy --pool" --pool "$POOL" -j 3 -k --timeout 1.5 'sleep 1; echo {}' ::: 1 2 3 &&
        same "--timeout on a busy --pool" out $'1\n2\n3'
    "$EMBER" pool stop "$POOL" --shutdown_timeout 100ms >/dev/null 2>&1
else
    fail "pool start: $(cat started)"
fi

# ---- --retries ----
# the job fails until its third try (a counter file)
fresh
try='n=$(cat count.{} 2>/dev/null || echo 0); n=$((n + 1)); echo $n >count.{}; echo try $n; [ $n -ge 3 ]'
if er 0 "--retries 3" --retries 3 --joblog jl --receipts rc "$try" ::: a; then
    same "--retries 3: three tries" count.a 3
    same "--retries 3: the last try's output" out "try 3"
    [ "$(grep -c $'^1\t' jl)" = 1 ] || fail "--retries 3: the joblog has $(grep -c $'^1\t' jl) lines for the job, wanted 1"
    has "--retries 3: the joblog has its success" jl $'^1\t:\t.*\t0\t0\tn='
    has "--retries 3: the receipt counts the tries" rc '"tries":3[,}]'
fi
fresh
er 1 "--retries 2" --retries 2 "$try" ::: a && same "--retries 2: tried twice" count.a 2
fresh
er 0 "--retries 3, success at once" --retries 3 'echo {} >>ran' ::: a && same "no retry of a success" ran a

# ---- --halt ----
# now,fail=1: job 1 fails once 2 and 3 run; those are cancelled, 4 and 5 never start
fresh
if er 7 "--halt now,fail=1" -j 3 --halt now,fail=1 --joblog jl \
    'touch st.{}; if [ {} = 1 ]; then await st.2 st.3; exit 7; fi; sleep 3{}.'$M ::: 1 2 3 4 5; then
    [ ! -e st.4 ] && [ ! -e st.5 ] || fail "--halt now,fail=1: jobs started after the failure"
    await "--halt now,fail=1: the running jobs were killed" 10 long_gone
    has "--halt now,fail=1: joblog has the failure" jl $'^1\t.*\t7\t0\t'
    [ "$(tail -n +2 jl | wc -l)" = 3 ] || fail "--halt now,fail=1: $(tail -n +2 jl | wc -l) joblog lines, wanted 3"
    has "--halt: said" err "halt"
fi
# soon,fail=1: 2 and 3 finish (they wait until the joblog has job 1), 4 and 5 never start
fresh
if er 7 "--halt soon,fail=1" -j 3 --halt soon,fail=1 --joblog jl \
    'touch st.{}; if [ {} = 1 ]; then await st.2 st.3; exit 7; fi; await_lines jl 2 && echo done {}' ::: 1 2 3 4 5; then
    [ "$(sort out)" = $'done 2\ndone 3' ] || fail "--halt soon,fail=1: the running jobs did not finish: $(cat out)"
    [ ! -e st.4 ] && [ ! -e st.5 ] || fail "--halt soon,fail=1: jobs started after the failure"
fi
# now,success=1: the first success stops the rest
fresh
if er 0 "--halt now,success=1" -j 3 --halt now,success=1 \
    'touch st.{}; if [ {} = 1 ]; then await st.2 st.3; exit 0; fi; sleep 3{}.'$M ::: 1 2 3 4 5; then
    [ ! -e st.4 ] && [ ! -e st.5 ] || fail "--halt now,success=1: jobs started after the success"
    await "--halt now,success=1: the running jobs were killed" 10 long_gone
fi
# fail=50%: 3 of 6 jobs failed, then no more start; the status is the share failed
fresh
if er 50 "--halt soon,fail=50%" -j 1 --halt soon,fail=50% --joblog jl 'exit {}' ::: 0 3 4 5 0 0; then
    [ "$(cut -f1 jl | tail -n +2 | tr '\n' ' ')" = "1 2 3 4 " ] || fail "--halt soon,fail=50%: jobs run: $(cut -f1 jl | tail -n +2 | tr '\n' ' ')"
fi
er 255 "--halt without when" --halt fail=50% 'exit {}' ::: 0 1

# ---- --delay: start times spaced (the joblog's Starttime) ----
fresh
if er 0 "--delay" -j 3 --delay 0.3 --joblog jl true ::: 1 2 3 4; then
    tail -n +2 jl | cut -f3 | sort -n | awk 'NR > 1 && $1 - prev < 0.29 { print "starts " prev " and " $1 " closer than 0.3 s"; bad = 1 }
        { prev = $1 } END { exit bad }' || fail "--delay 0.3: starts not spaced"
    [ "$(tail -n +2 jl | wc -l)" = 4 ] || fail "--delay: not every job ran"
fi

# ---- --dry-run ----
fresh
er 0 "--dry-run" --dry-run -k 'touch ran.{}' ::: a 'b c' && same "--dry-run prints" out $'touch ran.a\ntouch ran.\'b c\''
[ ! -e ran.a ] || fail "--dry-run ran a job"

# ---- --joblog, --resume, --resume-failed ----
fresh
if er 2 "--joblog" -k --joblog jl 'echo {}; exit $(({} % 2))' ::: 1 2 3 4; then
    head -1 jl >header
    same "--joblog: GNU parallel's header" header $'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand'
    awk -F'\t' 'NF != 9 { print "line " NR " has " NF " columns"; bad = 1 } END { exit bad }' jl || fail "--joblog: 9 columns"
    # Seq, Host, Starttime, JobRuntime, Send, Receive (bytes of stdout), Exitval, Signal, Command
    has "--joblog: job 1's line" jl $'^1\t:\t[0-9]{10}\\.[0-9]{3}\t +[0-9]+\\.[0-9]{3}\t0\t2\t1\t0\techo 1; exit \\$\\(\\(1 % 2\\)\\)$'
    has "--joblog: job 4's line" jl $'^4\t:\t[0-9.]+\t +[0-9.]+\t0\t2\t0\t0\t'
    [ "$(tail -n +2 jl | cut -f1 | sort | tr '\n' ' ')" = "1 2 3 4 " ] || fail "--joblog: not a line per job"
fi
# --resume: only the jobs not in the log run (5 and 6)
er 1 "--resume" -k --joblog jl --resume 'echo {}; exit $(({} % 2))' ::: 1 2 3 4 5 6 && same "--resume ran" out $'5\n6'
# --resume-failed: the failed ones (1, 3, 5) again, and those never run (7)
er 0 "--resume-failed" -k --joblog jl --resume-failed 'echo {}; exit 0' ::: 1 2 3 4 5 6 7 &&
    same "--resume-failed ran" out $'1\n3\n5\n7'
[ "$(grep -c '^Seq' jl)" = 1 ] || fail "--resume: the header written again"
er 0 "--resume, all done" -k --joblog jl --resume-failed 'echo {}; exit 0' ::: 1 2 3 4 5 6 7 && same "--resume, all done" out ""
er 255 "--resume without --joblog" --resume echo ::: a

# ---- --receipts ----
fresh
if er 1 "--receipts" -k --receipts rc 'exit {}' ::: 0 3 && er 1 "--receipts, a signal" --receipts rc2 'kill -9 $$' ::: a; then
    python3 - rc rc2 <<'EOF' || fail "--receipts: not one JSON line per job with its keys"
import json, sys
keys = {"seq", "command", "end", "exit", "signal", "start", "queue_wait_s", "run_s", "user_s",
        "sys_s", "max_rss_bytes", "pid", "runner_pid", "node", "tries"}
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = []
if sorted(r["seq"] for r in rows) != [1, 2]: bad.append("seqs %r" % [r["seq"] for r in rows])
for r in rows:
    if keys - r.keys(): bad.append("job %d lacks %s" % (r["seq"], sorted(keys - r.keys())))
    want = 0 if r["seq"] == 1 else 3
    if r["exit"] != want or r["end"] != "exit" or r["signal"] != 0: bad.append("job %d: %r" % (r["seq"], r))
    if r["command"] != "exit %d" % want or r["tries"] != 1: bad.append("job %d: %r" % (r["seq"], r))
    if r["pid"] <= 0 or r["runner_pid"] <= 0 or r["max_rss_bytes"] <= 0: bad.append("job %d: %r" % (r["seq"], r))
(k,) = [json.loads(l) for l in open(sys.argv[2])]
if k["signal"] != 9 or k["end"] != "signal": bad.append("killed job: %r" % k)
for b in bad: print("   ", b)
sys.exit(1 if bad else 0)
EOF
fi

# ---- --bar, --eta: progress on a pipe only when asked ----
fresh
er 0 "--bar" --bar true ::: 1 2 3 && has "--bar: a progress line" err '^ember run: 3/3 done, 0 failed'
er 0 "--eta" --eta true ::: 1 2 3 && has "--eta: a progress line" err '^ember run: 3/3 done'
er 0 "no --bar" true ::: 1 2 3 && same "no progress unless asked" err ""

# ---- exit statuses ----
fresh
er 0 "all succeed" true ::: 1 2 3
er 3 "3 failed" 'exit {}' ::: 0 1 2 0 7
er 100 "100 failed" false ::: $(seq 100)
er 101 "more than 100 failed" false ::: $(seq 105)
er 255 "usage error" --bogus echo ::: a && has "usage error: said" err "unknown option '--bogus'"
er 255 "missing :::: file" echo :::: no-such-file && has "missing file: said" err "no-such-file"
er 2 "not found" nonexistent-command-$M ::: a b && has "not found: said" err "not found"

# ---- Ctrl-C, SIGTERM ----
# interrupt (SIG) a batch of 4 long jobs, 2 at a time, once both run: exit
# 128+SIG, the running jobs' groups killed, nothing more started, the joblog
# complete for what ran
interrupt() {
    local sig=$1 want=$2
    fresh
    "$EMBER" run -j 2 --joblog jl 'touch st.{}; sleep 3{}.'$M ::: 1 2 3 4 >out 2>err &
    local pid=$!
    bg+=("$pid")
    await "SIG$sig: two jobs run" 10 nlong_is 2 || return
    kill -"$sig" "$pid"
    wait "$pid"
    local st=$?
    [ "$st" = "$want" ] || fail "SIG$sig: exit status $st, wanted $want"
    has "SIG$sig: said" err "cancelling 2 running"
    await "SIG$sig: the running jobs' process groups are gone" 10 long_gone
    [ ! -e st.3 ] && [ ! -e st.4 ] || fail "SIG$sig: a job started after the signal"
    [ "$(tail -n +2 jl | cut -f1 | sort | tr '\n' ' ')" = "1 2 " ] || fail "SIG$sig: joblog: $(cat jl)"
    has "SIG$sig: joblog says killed" jl $'^1\t.*\t-1\t15\t'
}
interrupt INT 130
interrupt TERM 143
# a second Ctrl-C exits at once: the job ignores SIGTERM and the pool gives
# it 30 s before SIGKILL, which the first Ctrl-C's cancel would wait for
fresh
if "$EMBER" pool start "$POOL2" --min 1 --max 1 --kill_grace 60s >started 2>&1; then
    "$EMBER" run --pool "$POOL2" 'trap "" TERM; touch st.{}; sleep 3{}.'$M ::: 1 >out 2>err &
    pid=$!
    bg+=("$pid")
    if await "second Ctrl-C: the job runs" 10 nlong_is 1; then
        kill -INT "$pid"
        await "second Ctrl-C: the first one was taken" 10 grep -q "Interrupt" err
        kill -INT "$pid"
        await "second Ctrl-C: ember run exits at once" 10 eval '! kill -0 '"$pid"' 2>/dev/null'
        wait "$pid"
        st=$?
        [ "$st" = 130 ] || fail "second Ctrl-C: exit status $st, wanted 130"
    fi
    "$EMBER" pool stop "$POOL2" --shutdown_timeout 100ms >/dev/null 2>&1
    await "second Ctrl-C: the job is gone once its pool stopped" 10 long_gone
else
    fail "pool start $POOL2: $(cat started)"
fi

# ---- --output: only complete outputs ----
fresh
if er 1 "--output" --output 'res/{/.}.txt' 'echo data {} >{out}; [ {/.} != bad ]' ::: x/good.c y/bad.c z/ok.c; then
    [ "$(ls -A res | tr '\n' ' ')" = "good.txt ok.txt " ] || fail "--output: res/ has $(ls -A res | tr '\n' ' ')"
    same "--output: published" res/good.txt "data x/good.c"
fi
er 0 "{out} in --dry-run" --dry-run --output 'o/{}.txt' 'cp {} {out}' ::: a && same "{out} in --dry-run" out "cp a o/a.txt"
# a job killed by --timeout leaves neither its temporary nor a final file
fresh
er 1 "--output, timeout" --timeout 1 --output 'res/{}.txt' 'echo half >{out}; sleep 30.'$M'; echo rest >>{out}' ::: slow &&
    { [ -z "$(ls -A res)" ] || fail "--output, timeout: res/ has $(ls -A res | tr '\n' ' ')"; }
# `ember run` SIGKILLed mid-batch: no final file is partial; a later run in
# that directory removes what dead runs left (and not a live run's), and
# --resume completes the batch
fresh
touch slow
job='echo first half >{out}; touch st.{}; if [ -e slow ]; then sleep 3{}.'$M'; fi; echo second half >>{out}'
"$EMBER" run -j 2 --joblog jl --output 'res/{}.txt' "$job" ::: 1 2 3 4 >/dev/null 2>err &
pid=$!
bg+=("$pid")
if await "killed run: its jobs have written half" 10 test -e st.1 -a -e st.2; then
    [ -e "res/.1.txt.ember-$pid-1.part" ] || fail "killed run: no temporary named .1.txt.ember-$pid-1.part: $(ls -A res)"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    await "killed run: its jobs are gone" 10 long_gone
    for f in res/*.txt; do
        [ -e "$f" ] || continue
        [ "$(cat "$f")" = $'first half\nsecond half' ] || fail "killed run: $f is partial"
    done
    rm -f slow
    ( : ) &
    dead=$!
    wait "$dead"
    echo stale >"res/.9.txt.ember-$dead-9.part"   # a dead run's
    echo live >"res/.8.txt.ember-$$-8.part"       # a live one's (this shell)
    if er 0 "killed run: --resume" -j 2 --joblog jl --resume --output 'res/{}.txt' "$job" ::: 1 2 3 4; then
        for i in 1 2 3 4; do same "killed run: --resume made $i" "res/$i.txt" $'first half\nsecond half'; done
        [ ! -e "res/.9.txt.ember-$dead-9.part" ] || fail "the next run left a dead run's temporary"
        [ -e "res/.8.txt.ember-$$-8.part" ] || fail "the next run removed a live run's temporary"
        ls -A res | grep -q "ember-$pid-" && fail "the killed run's temporaries are left: $(ls -A res)"
        rm -f "res/.8.txt.ember-$$-8.part"
    fi
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures checks failed"
    exit 1
fi
echo "all checks passed"
