#!/usr/bin/env bash
# Description: the public headers as other programs use them: a header-only
# client built as strict C11 (no _GNU_SOURCE) and as C++17 and C++20 calls a
# pool started by the ember command; each must exit 0.
set -u
EMBER=$1; shift
NAME=hdr-$$
"$EMBER" pool start "$NAME" --min 1 --max 1 >/dev/null || { echo "FAIL: pool start"; exit 1; }
trap '"$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1' EXIT
"$EMBER" pool wait "$NAME" --ready 1 --timeout 10s || { echo "FAIL: pool wait"; exit 1; }
failures=0
for prog in "$@"; do
    if ! "$prog" "$NAME"; then echo "FAIL: $(basename "$prog")"; failures=$((failures + 1)); fi
done
[ "$failures" -eq 0 ] && echo "all ${#} clients passed"
[ "$failures" -eq 0 ]
