# tools/lib.sh - what tools/demo, tools/test and bench/run share.
# Installs the Debian packages ember needs, only those missing.
EMBER_PACKAGES=(meson ninja-build pkg-config gcc g++ liburing-dev libhwloc-dev libjemalloc-dev libcmocka-dev libsystemd-dev valgrind
    mandoc groff-base parallel clang python3 libmicrohttpd-dev prometheus curl
    libavformat-dev libavcodec-dev libswscale-dev libswresample-dev libavutil-dev
    libncurses-dev tmux  # ember top's screen, and the terminal its test drives it in
    gnuplot-nox  # bench/report's plots
    libhiredis-dev redis-server redis-tools)  # ember bridge, and its tests' Redis

ember_ensure_packages() {
    local missing=() p
    for p in "${EMBER_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}" >&2
        apt-get update -qq >&2 || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || return 1
    fi
}

# ember_build DIR [meson options...]: configure once, then build.
ember_build() {
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null || return 1
    fi
    ninja -C "$dir" >/dev/null || ninja -C "$dir"
}
