# Shared by the shell tests: sourced after `set -u`, with `failures=0` set.
#
#   fail MESSAGE...                      count a failure and say what it was
#   check DESCRIPTION COMMAND...         the command must succeed
#   expect DESCRIPTION STATUS PATTERN COMMAND...
#                                        the command exits STATUS and its
#                                        output (both streams) matches PATTERN
#   await DESCRIPTION SECONDS COMMAND... wait until the command succeeds,
#                                        trying every 50 ms (its output
#                                        discarded); after SECONDS (a whole
#                                        number) without, a failure
#                                        "DESCRIPTION (not within SECONDS s)"
#                                        and status 1
#   show FILE...                         each file's lines, indented, under
#                                        its name (what a failure leaves)
#   free_port                            a free loopback TCP port
#   redis_up PORT DIR [OPTIONS...]       redis-server on 127.0.0.1:PORT in the
#                                        background, its files in DIR; sets
#                                        redis_pid; returns once it answers
#                                        (status 1 if it never does)
#   redis_test DIR [OPTIONS...]          the test's own redis-server: redis_up
#                                        on a free port; sets PORT, and URL
#                                        (redis://127.0.0.1:PORT); status 1 if
#                                        it never answers. The test's EXIT
#                                        trap stops it (redis_down)
#   redis_down                           stop (SIGKILL) and reap the server
#                                        redis_up started, if it still runs
#   R ARGS...                            redis-cli on the test's server

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

check() {
    local what=$1; shift
    "$@" || fail "$what"
}

expect() {
    local what=$1 want=$2 pat=$3; shift 3
    local out st
    out=$("$@" 2>&1); st=$?
    if [ "$st" -ne "$want" ] || ! grep -qE -- "$pat" <<<"$out"; then
        fail "$what (status $st, wanted $want; output: $out)"
    fi
}

await() {
    local what=$1 secs=$2; shift 2
    local now end
    now=${EPOCHREALTIME//[!0-9]/}; end=$((now + secs * 1000000)) # microseconds
    until "$@" >/dev/null 2>&1; do
        now=${EPOCHREALTIME//[!0-9]/}
        if ((now >= end)); then
            fail "$what (not within $secs s)"
            return 1
        fi
        sleep 0.05
    done
}

show() {
    local f
    for f; do echo "  $f:"; sed 's/^/    /' "$f"; done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

redis_pongs() { redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; }
redis_up() {
    local port=$1 dir=$2; shift 2
    redis-server --port "$port" --bind 127.0.0.1 --save '' --dir "$dir" --logfile "$dir/redis.log" "$@" &
    redis_pid=$!
    await "redis-server answers on port $port (see $dir/redis.log)" 10 redis_pongs "$port"
}

redis_test() {
    local dir=$1; shift
    PORT=$(free_port)
    URL=redis://127.0.0.1:$PORT
    redis_up "$PORT" "$dir" "$@"
}

redis_down() {
    [ -n "${redis_pid:-}" ] || return 0
    { kill -KILL "$redis_pid"; wait "$redis_pid"; } 2>/dev/null
    redis_pid=
}

R() { redis-cli -p "$PORT" "$@"; }
