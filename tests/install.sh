#!/bin/sh
# `make install` into a fresh prefix, then a program built only from the
# installed header and `pkg-config --cflags --libs libpx` runs saxpy on the
# default backend and on the CPU backend (which loads the LLVM plugin from
# the installed lib/). Ends with `N passed, N failed`.
B=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the same flags the tree was built with (make asan sets them), so nothing relinks
if ! make --no-print-directory -s B="$B" ${PX_TEST_OPT:+OPT="$PX_TEST_OPT"} ${PX_TEST_SAN:+SAN="$PX_TEST_SAN"} \
        install PREFIX="$tmp/usr" >"$tmp/log" 2>&1; then
    tail -20 "$tmp/log"; echo "0 passed, 1 failed"; exit 1
fi
export PKG_CONFIG_PATH="$tmp/usr/lib/pkgconfig"
# shellcheck disable=SC2046
if ! ${CC:-gcc} $PX_TEST_CFLAGS -std=c11 tests/install/hello.c $(pkg-config --cflags --libs libpx) -o "$tmp/hello" 2>"$tmp/cc"; then
    cat "$tmp/cc"; echo "0 passed, 1 failed"; exit 1
fi
p=0; f=0
for be in auto cpu; do
    if PX_BACKEND=$be LD_LIBRARY_PATH="$tmp/usr/lib" "$tmp/hello"; then p=$((p + 1)); else f=$((f + 1)); fi
done
# the program needs nothing of the build tree: libpx from the prefix
if LD_LIBRARY_PATH="$tmp/usr/lib" ldd "$tmp/hello" | grep -q "$tmp/usr/lib/libpx.so.0"; then p=$((p + 1)); else
    echo "hello does not load the installed libpx.so.0"; f=$((f + 1)); fi
echo "$p passed, $f failed"
[ "$f" = 0 ]
