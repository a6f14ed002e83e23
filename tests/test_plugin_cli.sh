#!/usr/bin/env bash
# Description: handler plugins from the command line: `ember pool start
# --plugin sample` finds build/plugins/sample.so beside build/ember, and
# `ember call` runs its handlers (one init per runner, its context shared
# by the runner's two workers); `ember plugins` (text and JSON) lists what
# the search path holds, a plugin hidden by an earlier one of the same
# name, and a broken one with its reason; each kind of bad plugin stops
# `pool start` with exit 1 and its reason, and no pool runs; a failing
# init makes calls fail with the init's message.
# Usage: test_plugin_cli.sh EMBER BAD_PLUGIN_DIR
set -u
EMBER=$1 BAD=$2
NAME=plugcli-$$
unset EMBER_PLUGIN_PATH
failures=0
. "$(dirname "$0")/lib.sh" # fail, check, expect
work=$(mktemp -d)
cleanup() {
    "$EMBER" pool stop "$NAME" --shutdown_timeout 100ms >/dev/null 2>&1
    "$EMBER" pool stop "$NAME-init" --shutdown_timeout 100ms >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
build=$(cd "$(dirname "$EMBER")" && pwd)

# what is installed, and what it offers
expect "plugins lists sample" 0 "^sample 1.0: handlers for ember's tests" "$EMBER" plugins
expect "plugins: its file" 0 "^  $build/plugins/sample.so$" "$EMBER" plugins
expect "plugins: a handler with its usage" 0 "^  sample.count \[N\] +count calls" "$EMBER" plugins
expect "plugins: the search path" 0 "^search path: .*:$build/plugins$" "$EMBER" plugins
expect "plugins --json" 0 '"plugins":\[.*\{"file":"[^"]*/plugins/sample.so","hidden":false,"name":"sample","version":"1.0",.*"handlers":\[\{"name":"sample.count","usage":"\[N\]"' \
    "$EMBER" plugins --json
expect "plugins: a broken one and why" 0 "^bad_abi: cannot be used: plugin .*bad_abi.so: ABI 2, this ember speaks 1" \
    env EMBER_PLUGIN_PATH="$BAD" "$EMBER" plugins
expect "plugins: not an ember plugin" 0 "^bad_entry: cannot be used: .*no ember_plugin_v1" \
    env EMBER_PLUGIN_PATH="$BAD" "$EMBER" plugins
cp "$build/plugins/sample.so" "$work/"
expect "plugins: one hidden by an earlier one" 0 "^  hidden: --plugin sample loads the one found before it" \
    env EMBER_PLUGIN_PATH="$work" "$EMBER" plugins
expect "plugins --json: which is hidden" 0 "\"file\":\"$work/sample.so\",\"hidden\":false.*\"file\":\"$build/plugins/sample.so\",\"hidden\":true" \
    env EMBER_PLUGIN_PATH="$work" "$EMBER" plugins --json
expect "plugins takes no argument" 2 "unexpected argument 'x'" "$EMBER" plugins x
expect "help lists plugins" 0 "ember plugins \[--json\]" "$EMBER" help
expect "pool start --help: --plugin" 0 "--plugin NAME\|PATH" "$EMBER" pool start --help
expect "help: the plugins option" 0 "--plugins LIST +handler plugins to load.*\(default none\)" "$EMBER" help

# bad plugins: exit 1, the reason, no pool
expect "not found" 1 "plugin 'nope': not found \(looked in: .*$build/plugins\); 'ember plugins' lists" \
    "$EMBER" pool start "$NAME" --plugin nope
expect "no such file" 1 "plugin $work/nope.so: No such file" "$EMBER" pool start "$NAME" --plugin "$work/nope.so"
expect "no entry point" 1 "plugin $BAD/bad_entry.so: no ember_plugin_v1 \(not an ember plugin\)" \
    "$EMBER" pool start "$NAME" --plugin "$BAD/bad_entry.so"
expect "another ABI" 1 "plugin 'bad_abi' \($BAD/bad_abi.so\): ABI 2, this ember speaks 1" \
    env EMBER_PLUGIN_PATH="$BAD" "$EMBER" pool start "$NAME" --plugin bad_abi
expect "a clash" 1 "plugin $BAD/bad_clash.so: handler 'echo' is already registered" \
    "$EMBER" pool start "$NAME" --plugin sample --plugin "$BAD/bad_clash.so" --foreground
expect "in the list too" 1 "no ember_plugin_v1" "$EMBER" pool start "$NAME" --plugins "sample,$BAD/bad_entry.so"
expect "a plugin needs a name" 2 "option --plugin needs a plugin's NAME or PATH" "$EMBER" pool start "$NAME" --plugin=
expect "no pool after all that" 1 "no pool '$NAME' is running" "$EMBER" stats "$NAME"

# a pool with the sample plugin
expect "start with --plugin" 0 "started" "$EMBER" pool start "$NAME" --plugin sample --plugins sample \
    --min 1 --max 1 --max_concurrency 2
check "ready" "$EMBER" pool wait "$NAME" --ready 1 --timeout 10s
expect "a plugin handler" 0 "^pid [0-9]+ inits 1 calls 1$" "$EMBER" call "$NAME" sample.count
expect "a handler without init" 0 "^hi$" "$EMBER" call "$NAME" sample.echo hi
# two calls that end only when both run at once on the runner's one context
"$EMBER" call "$NAME" sample.count 2 --timeout 10s >"$work/a" 2>&1 &
a=$!
"$EMBER" call "$NAME" sample.count 2 --timeout 10s >"$work/b" 2>&1
st_b=$?
wait "$a"
st_a=$?
if [ "$st_a" -ne 0 ] || [ "$st_b" -ne 0 ]; then
    fail "two calls meeting on one context ($(cat "$work/a") / $(cat "$work/b"))"
else
    pa=$(grep -oE '^pid [0-9]+ inits 1' "$work/a") pb=$(grep -oE '^pid [0-9]+ inits 1' "$work/b")
    [ -n "$pa" ] && [ "$pa" = "$pb" ] ||
        fail "one runner, one init ($(cat "$work/a") / $(cat "$work/b"))"
fi
expect "the count goes on" 0 "inits 1 calls 4$" "$EMBER" call "$NAME" sample.count
check "stop" "$EMBER" pool stop "$NAME" --shutdown_timeout 5s

# a failing init: the pool starts, its runners do not boot, a call says why
expect "start with a failing init" 0 "started" "$EMBER" pool start "$NAME-init" --plugin "$BAD/bad_init.so" --max 1
expect "the init's failure" 1 "handler 'bad_init.x': its init returned 7" \
    "$EMBER" call "$NAME-init" bad_init.x --timeout 10s
check "stop" "$EMBER" pool stop "$NAME-init" --shutdown_timeout 1s

[ "$failures" -eq 0 ] && echo "all plugin command line checks passed"
exit $((failures > 0))
