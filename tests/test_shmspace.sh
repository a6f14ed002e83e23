#!/usr/bin/env bash
# Description: a pool on a small /dev/shm (64 MiB, a container's default),
# in a private mount namespace. Start refuses, with EMBER_ENOSPC's message
# naming the sizes and the options to lower, a segment /dev/shm cannot hold
# (the default options: 256 MiB of payload space), and leaves nothing
# behind; `ember run`'s own pool fits itself in; a pool sized to fit
# starts. Once other data fills /dev/shm, a
# call whose argument (the caller's pages) or whose result (the runner's)
# cannot get its space fails with EMBER_ENOSPC saying so, no process dies
# (no SIGBUS), and the same pool serves the next calls: inline, paged ones
# in the space it has reserved already, and large ones again once
# /dev/shm has room. Needs root for unshare -m and mount: skipped (77)
# otherwise, saying why.
set -u
EMBER=$1
if [ -z "${EMBER_SHMSPACE_NS:-}" ]; then
    if ! why=$(unshare -m true 2>&1); then
        echo "SKIP: cannot make a private mount namespace (unshare -m: ${why:-not permitted})"
        exit 77
    fi
    EMBER_SHMSPACE_NS=1 exec unshare -m -- "$BASH" "$0" "$@"
fi
# in the namespace: its own /dev/shm, gone with it
if ! why=$(mount -t tmpfs -o size=64m,mode=1777 tmpfs /dev/shm 2>&1); then
    echo "SKIP: cannot mount a 64 MiB tmpfs on /dev/shm (mount: ${why:-not permitted})"
    exit 77
fi
NAME=shm-$$
MIB=$((1024 * 1024))
failures=0
. "$(dirname "$0")/lib.sh" # check, expect
cleanup() { "$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1; }
trap cleanup EXIT
# SIZE bytes of zeros as the call's argument (exec's --stdin -), counted
# by the runner: prints SIZE
arg_call() { head -c "$1" /dev/zero | "$EMBER" call "$NAME" exec --stdin - -- wc -c; }
# a result of SIZE bytes: prints SIZE
result_call() {
    local n
    n=$("$EMBER" call "$NAME" exec -- head -c "$1" /dev/zero | wc -c)
    [ "${PIPESTATUS[0]}" -eq 0 ] && echo "$n"
}
free_bytes() { df --output=avail -B1 /dev/shm | tail -1; }
# the stats the pool's processes would show a SIGBUS in
stats_json() { "$EMBER" stats "$NAME" --json; }

expect "the default options refused, naming sizes and options" 1 \
    "pool '$NAME': /dev/shm holds 64 MiB in all, less than the pool's [0-9]+ MiB segment \(256 MiB of payload_space\): lower payload_space, or max_payload" \
    "$EMBER" pool start "$NAME"
check "a refused start leaves no segment" [ -z "$(ls -A /dev/shm)" ]
expect "more than the free space refused too" 1 "/dev/shm has [0-9]+ MiB free of 64 MiB, less than the pool's" \
    bash -c "fallocate -l 40M /dev/shm/filler && '$EMBER' pool start '$NAME' --max_payload 16M --payload_space 32M"
rm -f /dev/shm/filler

# ember run's own pool takes what fits, rather than refusing the batch
expect "ember run on a small /dev/shm" 0 "^a b$" bash -c "'$EMBER' run -j 2 -k echo ::: a b | paste -sd ' '"
check "ember run leaves no segment" [ -z "$(ls -A /dev/shm)" ]

expect "a pool sized to fit starts" 0 "started" "$EMBER" pool start "$NAME" --max 1 \
    --max_payload 16M --payload_space 40M --queue_capacity 64
check "its segment's payload pages are not allocated yet" [ "$(free_bytes)" -gt $((60 * MIB)) ]
expect "inline call" 0 "^hi$" "$EMBER" call "$NAME" echo hi
expect "paged argument" 0 "^4194304$" arg_call $((4 * MIB))
expect "paged result" 0 "^4194304$" result_call $((4 * MIB))

# other data fills /dev/shm but 4 MiB
free=$(free_bytes)
check "fill /dev/shm" fallocate -l $((free - 4 * MIB)) /dev/shm/filler
expect "an argument that cannot get its space fails with EMBER_ENOSPC" 125 \
    "pool '$NAME': /dev/shm has [0-4] MiB free of 64 MiB, and the pages of a 12.0 MiB payload need [0-9]+ MiB more" \
    arg_call $((12 * MIB))
expect "a result that cannot get its space fails its call with EMBER_ENOSPC" 125 \
    "pool '$NAME': /dev/shm had no room for the call's 12.0 MiB result" \
    "$EMBER" call "$NAME" exec -- head -c $((12 * MIB)) /dev/zero
expect "inline calls after them" 0 "^hi$" "$EMBER" call "$NAME" echo hi
expect "paged calls in the space reserved before" 0 "^4194304$" arg_call $((4 * MIB))
expect "paged results in the space reserved before" 0 "^4194304$" result_call $((4 * MIB))
rm -f /dev/shm/filler
expect "large arguments once /dev/shm has room" 0 "^12582912$" arg_call $((12 * MIB))
expect "large results once /dev/shm has room" 0 "^12582912$" result_call $((12 * MIB))
expect "nobody died: one runner started, none crashed" 0 \
    '"state":"running".*"runners_started":1,"runners_died":0,"boot_failures":0,"calls_crashed":0' stats_json
expect "stop" 0 "stopped" "$EMBER" pool stop "$NAME"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all shared-memory space checks passed"
