# Shared by the shell tests: sourced after `set -u`, with `failures=0` set.
#
#   fail MESSAGE...                      count a failure and say what it was
#   check DESCRIPTION COMMAND...         the command must succeed
#   expect DESCRIPTION STATUS PATTERN COMMAND...
#                                        the command exits STATUS and its
#                                        output (both streams) matches PATTERN
#   free_port                            a free loopback TCP port
#   redis_up PORT DIR [OPTIONS...]       redis-server on 127.0.0.1:PORT in the
#                                        background, its files in DIR; sets
#                                        redis_pid; returns once it answers
#                                        (status 1 if it never does)

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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

redis_up() {
    local port=$1 dir=$2 i; shift 2
    redis-server --port "$port" --bind 127.0.0.1 --save '' --dir "$dir" --logfile "$dir/redis.log" "$@" &
    redis_pid=$!
    for ((i = 0; i < 200; i++)); do # every 50 ms, 10 s at most
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    fail "redis-server does not answer on port $port (see $dir/redis.log)"
    return 1
}
