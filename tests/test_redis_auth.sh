#!/usr/bin/env bash
# Description: a Redis that requires a password (a real redis-server with
# --requirepass, started here on a free loopback port and on a unix socket,
# no persistence, stopped after), reached by `ember bridge`, `ember submit`
# and `ember run --redis`: a URL with no password says that the server
# requires one and how to give it, and exits non-zero (the bridge too, not
# retrying for ever), with or without a database; a wrong password says the
# password was refused, names the server, never prints the password; the
# right one works over TCP and over the unix socket
# (unix://[[USER]:PASSWORD@]/PATH[?db=N]), for the bridge and the producer; a
# Redis that is up but not serving yet (BUSY) is waited out by the bridge.
# Usage: test_redis_auth.sh EMBER
set -u
EMBER=$(realpath "${1:?usage: test_redis_auth.sh EMBER}")
unset EMBER_PLUGIN_PATH
failures=0
. "$(dirname "$0")/lib.sh" # fail, expect, await, show, free_port, redis_up

work=$(mktemp -d)
P=rauth-$$
redis_pid=
bridges=()
cleanup() {
    local p
    for p in "${bridges[@]}"; do { kill -KILL "$p"; wait "$p"; } 2>/dev/null; done
    "$EMBER" pool stop "$P" --shutdown_timeout 100ms >/dev/null 2>&1
    [ -n "$redis_pid" ] && { kill -KILL "$redis_pid"; wait "$redis_pid"; } 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

# the password holds '@' and '/', as they are in a URL (its credentials end
# at the last '@', or for unix: at the last '@' before the socket's path)
PW="s3@cr/t-$$"
WRONG="not-the-password-$$"
SOCK=$work/redis.sock
PORT=$(free_port)
export REDISCLI_AUTH=$PW # redis-cli's password, for redis_up's PING and R
R() { redis-cli -p "$PORT" "$@"; }
redis_up "$PORT" "$work" --appendonly no --requirepass "$PW" --unixsocket "$SOCK" --unixsocketperm 700 || exit 1
HP=127.0.0.1:$PORT
"$EMBER" pool start "$P" --max 2 --plugin sample --log 0 >/dev/null || { fail "the pool starts"; exit 1; }

# no_secret DESCRIPTION FILE: FILE does not hold either password
no_secret() {
    grep -qF -e "$PW" -e "$WRONG" "$2" && fail "$1: the password is printed: $(cat "$2")"
    return 0
}
# said DESCRIPTION STATUS PATTERN COMMAND...: expect's check, and no password in the output
said() {
    local what=$1 want=$2 pat=$3 st; shift 3
    "$@" >said.out 2>&1; st=$?
    if [ "$st" -ne "$want" ] || ! grep -qE -- "$pat" said.out; then
        fail "$what (status $st, wanted $want; output: $(cat said.out))"
    fi
    no_secret "$what" said.out
}
# bridge_fails DESCRIPTION PATTERN URL: a bridge on URL exits non-zero by
# itself (within 10 s) saying PATTERN, and no password
bridge_fails() {
    local what=$1 pat=$2 url=$3 st
    timeout 10 "$EMBER" bridge "$P" --redis "$url" --stream s --group g --stats-interval 0 >b.out 2>&1
    st=$?
    if [ "$st" = 0 ] || [ "$st" = 124 ] || ! grep -qE -- "$pat" b.out; then
        fail "bridge, $what: status $st (124: still running after 10 s), output:"
        show b.out
    fi
    no_secret "bridge, $what" b.out
}

# ---- no password in the URL: the server requires one, and how to give it
need="Redis at redis://$HP requires a password and the URL gives none: .*redis://:PASSWORD@$HP"
said "submit, no password" 1 "$need" "$EMBER" submit --redis "redis://$HP" --stream s echo x
said "submit exec, no password: 125" 125 "$need" "$EMBER" submit --redis "redis://$HP" --stream s exec true
said "submit, no password, a database: not a refused SELECT" 1 "$need/2" \
    "$EMBER" submit --redis "redis://$HP/2" --stream s echo x
said "run --redis, no password" 255 "$need" "$EMBER" run --redis "redis://$HP" --stream s echo ::: a
needu="Redis at unix://$SOCK requires a password and the URL gives none: .*unix://:PASSWORD@$SOCK"
said "submit over the socket, no password" 1 "$needu" "$EMBER" submit --redis "unix://$SOCK" --stream s echo x
said "submit over the socket, no password, a database" 1 "$needu\?db=4" \
    "$EMBER" submit --redis "unix://$SOCK?db=4" --stream s echo x
bridge_fails "no password" "$need" "redis://$HP"
bridge_fails "no password, a database" "$need/3" "redis://$HP/3"
bridge_fails "no password, the socket" "$needu" "unix://$SOCK"

# ---- a wrong password: refused, said so, never printed
wrong="Redis at redis://$HP refused the password.*(WRONGPASS|invalid password)"
said "submit, a wrong password" 1 "$wrong" "$EMBER" submit --redis "redis://:$WRONG@$HP" --stream s echo x
said "submit, a wrong user and password" 1 "Redis at redis://$HP refused user 'nobody' with the password in the URL: WRONGPASS" \
    "$EMBER" submit --redis "redis://nobody:$WRONG@$HP/1" --stream s echo x
said "run --redis, a wrong password" 255 "$wrong" "$EMBER" run --redis "redis://:$WRONG@$HP" --stream s echo ::: a
said "submit over the socket, a wrong password" 1 "Redis at unix://$SOCK refused the password" \
    "$EMBER" submit --redis "unix://:$WRONG@$SOCK" --stream s echo x
bridge_fails "a wrong password" "$wrong" "redis://:$WRONG@$HP"
bridge_fails "a wrong password, the socket" "Redis at unix://$SOCK refused the password" "unix://:$WRONG@$SOCK"

# ---- the right password: over TCP and over the socket, bridge and producer
"$EMBER" bridge "$P" --redis "redis://:$PW@$HP" --stream tcp --group g --consumer t --stats-interval 0 \
    >bt.log 2>&1 &
bridges+=($!)
"$EMBER" bridge "$P" --redis "unix://default:$PW@$SOCK?db=3" --stream unx --group g --consumer u \
    --stats-interval 0 >bu.log 2>&1 &
bridges+=($!)
expect "submit over TCP, through the bridge over TCP" 0 "^over-tcp$" \
    "$EMBER" submit --redis "redis://:$PW@$HP" --stream tcp --timeout 10s echo over-tcp
expect "submit over the socket, through the bridge over the socket (db 3)" 0 "^over-unix$" \
    "$EMBER" submit --redis "unix://:$PW@$SOCK?db=3" --stream unx --timeout 10s echo over-unix
expect "submit over TCP to db 3, through the bridge over the socket" 0 "^tcp-to-3$" \
    "$EMBER" submit --redis "redis://default:$PW@$HP/3" --stream unx --timeout 10s echo tcp-to-3
expect "submit over the socket to db 0, through the bridge over TCP" 0 "^unix-to-0$" \
    "$EMBER" submit --redis "unix://:$PW@$SOCK" --stream tcp --timeout 10s echo unix-to-0
"$EMBER" run --redis "unix://:$PW@$SOCK?db=3" --stream unx -k --timeout 10s 'echo {}' ::: 1 2 3 >run.out 2>run.err ||
    fail "run --redis over the socket: $(cat run.err)"
[ "$(cat run.out)" = $'1\n2\n3' ] || fail "run --redis over the socket: every job's output, got '$(cat run.out)'"
[ "$(R -n 3 hlen unx:results)" -ge 5 ] && [ "$(R hlen tcp:results)" -ge 2 ] ||
    fail "the results are in each stream's database"
kill -TERM "${bridges[@]}"
for p in "${bridges[@]}"; do wait "$p" || fail "a bridge with the right password drains and exits 0"; done
bridges=()
for f in bt.log bu.log; do
    no_secret "bridge log $f" $f
    grep -q "final stats: taken=[1-9]" $f || { fail "bridge $f took work"; show $f; }
done

# ---- an ACL user with no password (USER:@) logs in as that user, not as
# the default one (which requires the password)
R acl setuser "bob-$$" on nopass '~*' '&*' +@all >/dev/null
expect "submit as an ACL user with no password" 0 "^[0-9]+-[0-9]+$" \
    "$EMBER" submit --redis "redis://bob-$$:@$HP" --stream acl --no-wait echo as-bob
[ "$(R xlen acl)" = 1 ] || fail "the entry submitted as bob is in the stream"

# ---- up but not serving yet (BUSY with a script here; LOADING its dataset
# at boot is the same): an outage the bridge waits out, not a refusal
R config set busy-reply-threshold 50 >/dev/null
R eval "local function now() local t = redis.call('TIME') return t[1] * 1000000 + t[2] end
        local e = now() + 2500000 while now() < e do end return 1" 0 >/dev/null 2>&1 &
script=$!
busy() { R ping 2>&1 | grep -q BUSY; }
await "Redis busy with a script" 10 busy || fail "Redis never answered BUSY"
"$EMBER" bridge "$P" --redis "redis://:$PW@$HP" --stream busy --group g --stats-interval 0 >bb.log 2>&1 &
bridges+=($!)
wait "$script"
expect "submit through a bridge started while Redis was busy" 0 "^after-busy$" \
    "$EMBER" submit --redis "redis://:$PW@$HP" --stream busy --timeout 20s echo after-busy
kill -TERM "${bridges[@]}"
wait "${bridges[0]}" || { fail "the bridge started while Redis was busy drains and exits 0"; show bb.log; }
bridges=()
grep -qE "not serving yet.*BUSY" bb.log || { fail "the bridge says Redis is not serving yet"; show bb.log; }
no_secret "bridge log bb.log" bb.log
exit $((failures > 0))
