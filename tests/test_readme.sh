#!/usr/bin/env bash
# Description: what the README promises, checked against what was built:
#   - its pool option table lists exactly the options `ember help` prints
#     (both from pool.h's EMBER_POOL_OPTIONS);
#   - `meson install` into a DESTDIR gives headers, libember.so.0 exporting
#     only ember_* symbols, libember.a, ember.pc, LICENSE, the command and
#     the example systemd unit naming it; libember-redis beside it;
#   - the man page ember(1) is installed, lists every pool option and
#     command `ember help` prints, and mandoc -T lint and groff find nothing
#     to warn about;
#   - a libember-redis program builds with `pkg-config ember-redis` alone, shared and
#     static, and runs;
#   - every C example in the README compiles as written against that install
#     with only `pkg-config --cflags --libs ember` (and with --static, against
#     libember.a alone), and the first runs a call.
# Usage: test_readme.sh README EMBER BUILDDIR
#   EXAMPLE_CFLAGS: extra flags for building the examples (a sanitizer's)
set -u
README=$1 EMBER=$2 BUILD=$3
read -r -a xflags <<<"${EXAMPLE_CFLAGS:-}"
failures=0
. "$(dirname "$0")/lib.sh" # fail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the option table
sed -n '/<!-- pool options/,/<!-- end of pool options/p' "$README" | grep -oE '^\| `--[a-z_]+' |
    sed 's/^| `--//' | sort >"$work/readme.opts"
"$EMBER" help | sed -n '/^pool options/,/^DURATION/p' | grep -oE '^  --[a-z_]+' | sed 's/^  --//' |
    sort >"$work/help.opts"
[ -s "$work/help.opts" ] || fail "ember help lists no pool options"
diff -u "$work/help.opts" "$work/readme.opts" >"$work/opts.diff" ||
    fail "README option table and ember help differ: $(tr '\n' ' ' <"$work/opts.diff")"

# the install
dest=$work/dest
meson install -C "$BUILD" --destdir "$dest" --no-rebuild --quiet >"$work/install.log" 2>&1 ||
    fail "meson install: $(tail -3 "$work/install.log")"
pc=$(find "$dest" -name ember.pc | head -1)
lib=$(find "$dest" -name 'libember.so.0' | head -1)
for f in include/ember/client.h include/ember/pool.h include/ember/abi.h include/ember/detail/ring.h \
         bin/ember share/doc/ember/LICENSE share/doc/ember/ember-pool@.service; do
    [ -e "$(find "$dest" -path "*/$f" | head -1)" ] || fail "not installed: $f"
done
# the example unit runs the installed command, as a Type=notify service
unit=$(find "$dest" -name 'ember-pool@.service' | head -1)
if [ -n "$unit" ]; then
    bin=$(find "$dest" -path '*/bin/ember' | head -1)
    grep -qx "ExecStart=${bin#"$dest"} pool start %i --foreground \$EMBER_POOL_OPTIONS" "$unit" ||
        fail "the unit's ExecStart is not the installed ember's: $(grep ExecStart "$unit")"
    grep -qx "Type=notify" "$unit" || fail "the unit is not Type=notify"
fi
[ -n "$pc" ] || fail "no ember.pc installed"
[ -n "$(find "$dest" -name libember.a)" ] || fail "no libember.a installed"
if [ -n "$lib" ]; then
    bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -vE '^ember_[a-z]')
    [ -z "$bad" ] || fail "libember.so exports more than ember_*: $bad"
    readelf -d "$lib" | grep -q 'SONAME.*libember.so.0' || fail "libember.so has no soname libember.so.0"
else
    fail "no libember.so.0 installed"
fi

# libember-redis: its header, library (only ember_redis_* exported) and pkg-config file
rlib=$(find "$dest" -name 'libember-redis.so.0' | head -1)
for f in include/ember/redis.h ember-redis.pc libember-redis.a; do
    [ -e "$(find "$dest" -path "*/$f" | head -1)" ] || fail "not installed: $f"
done
if [ -n "$rlib" ]; then
    bad=$(nm -D --defined-only "$rlib" | awk '{print $3}' | grep -vE '^ember_redis_[a-z]')
    [ -z "$bad" ] || fail "libember-redis.so exports more than ember_redis_*: $bad"
else
    fail "no libember-redis.so.0 installed"
fi

# the man page
man=$(find "$dest" -path '*/man1/ember.1' | head -1)
if [ -z "$man" ]; then
    fail "not installed: share/man/man1/ember.1"
else
    for o in $(cat "$work/help.opts"); do
        grep -qF -- "\\-\\-$o" "$man" || fail "the man page lacks --$o"
    done
    "$EMBER" help | sed -n 's/^  ember \([a-z]*\( [a-z]*\)\?\).*/\1/p' | while read -r cmd; do
        grep -qE "^\.SY \"ember $cmd\"|^\.SY \"ember ${cmd%% *}\"" "$man" || echo "$cmd"
    done >"$work/man.missing"
    [ -s "$work/man.missing" ] && fail "the man page lacks: $(tr '\n' ' ' <"$work/man.missing")"
    if command -v mandoc >/dev/null; then
        mandoc -T lint -W warning "$man" >"$work/mandoc.log" 2>&1 ||
            fail "mandoc -T lint: $(head -5 "$work/mandoc.log")"
    else
        fail "mandoc is not installed (apt-get install mandoc): the man page is not checked"
    fi
    groff -man -Tutf8 -ww -z "$man" >"$work/groff.log" 2>&1
    [ -s "$work/groff.log" ] && fail "groff warns about the man page: $(head -5 "$work/groff.log")"
fi

# the README's C examples, built from the install
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
awk '/^```c$/{n++; f=sprintf("'"$work"'/example%d.c", n); next} /^```$/{f=""} f{print > f}' "$README"
ls "$work"/example*.c >/dev/null 2>&1 || fail "no C example in the README"
static=$work/static
cp -a "$dest" "$static"
find "$static" -name 'libember.so*' -delete
for src in "$work"/example*.c; do
    exe=${src%.c}
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Wextra -Werror "${xflags[@]}" -o "$exe" "$src" $(pkg-config --cflags --libs ember) 2>"$work/cc.log" ||
        fail "$(basename "$src") does not build: $(head -5 "$work/cc.log")"
    # shellcheck disable=SC2046
    PKG_CONFIG_SYSROOT_DIR=$static cc -std=c11 -Wall -Wextra -Werror "${xflags[@]}" -o "$exe-static" "$src" \
        $(PKG_CONFIG_SYSROOT_DIR=$static pkg-config --cflags --libs --static ember) 2>"$work/cc.log" ||
        fail "$(basename "$src") does not build statically: $(head -5 "$work/cc.log")"
done
if [ -x "$work/example1" ]; then
    out=$(LD_LIBRARY_PATH=$(dirname "$lib") timeout 20 "$work/example1" 2>&1)
    [ "$out" = "HI" ] || fail "the first README example printed '$out', not HI"
    ldd "$work/example1" | grep -q libember.so.0 || fail "the shared build does not use libember.so.0"
fi
if [ -x "$work/example1-static" ]; then
    ! ldd "$work/example1-static" | grep -q libember || fail "the static build needs libember.so"
    out=$(timeout 20 "$work/example1-static" 2>&1)
    [ "$out" = "HI" ] || fail "the first README example, static, printed '$out', not HI"
fi
# a program of libember-redis's, built from the install with pkg-config ember-redis alone,
# shared and static: a URL read, and a Redis that is not there refused with words
cat >"$work/redis_api.c" <<'EOF'
#include <stdio.h>
#include <ember/client.h>
#include <ember/redis.h>
int main(void)
{
    struct ember_redis_url u;
    char err[256];
    if (ember_redis_url_parse("redis://127.0.0.1:1/2", &u, err, sizeof err) != 0) return 1;
    ember_redis *r;
    int rc = ember_redis_open("redis://127.0.0.1:1", "jobs", &r);
    printf("%s %d %d %s\n", u.host, u.db, rc == -EMBER_REDIS_ECONN, ember_redis_errmsg(NULL));
    return 0;
}
EOF
find "$static" -name 'libember-redis.so*' -delete
for how in shared static; do
    root=$dest flags=()
    [ "$how" = static ] && root=$static flags=(--static)
    # shellcheck disable=SC2046
    if cc -std=c11 -Wall -Wextra -Werror "${xflags[@]}" -o "$work/redis_api_$how" "$work/redis_api.c" \
        $(PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs "${flags[@]}" ember-redis) 2>"$work/cc.log"; then
        out=$(LD_LIBRARY_PATH=$(dirname "${rlib:-/}") timeout 20 "$work/redis_api_$how" 2>&1)
        grep -q "^127.0.0.1 2 1 cannot reach Redis at redis://127.0.0.1:1" <<<"$out" ||
            fail "a libember-redis program ($how) printed '$out'"
    else
        fail "a libember-redis program does not build ($how): $(head -5 "$work/cc.log")"
    fi
done
! ldd "$work/redis_api_static" 2>/dev/null | grep -q libember-redis || fail "the static build needs libember-redis.so"

[ "$failures" -eq 0 ] && echo "README options, install and examples: all good"
[ "$failures" -eq 0 ]
