#!/bin/sh
# The Python package's suite (python/tests, pytest): every primitive
# against NumPy, the error paths, the Hypervisor with three VMs, px.connect
# against a pxhvd it starts, threads, a real offline `pip install` into a
# venv, and docs/PYTHON.md's example. Against the build in $1 (default
# build); prints pytest's tail, then `N passed, N failed` last.
B=${1:-build}
cd "$(dirname "$0")/.." || exit 1
B=$(cd "$B" && pwd) || exit 1
# Debian's Python with python3-numpy, -cffi, -pytest (tools/install-deps.sh);
# never the python3 first on PATH, which may lack NumPy
PY=/usr/bin/python3
if [ -n "$PX_TEST_SAN" ]; then
    # make asan: an instrumented libpx in an uninstrumented interpreter
    # needs the sanitizer runtime first; Python's own allocations are not
    # leak-checked
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    ASAN_OPTIONS=detect_leaks=0
    export LD_PRELOAD ASAN_OPTIONS
fi
out=$(PYTHONPATH=python PX_LIBRARY="$B/libpx.so.0" PX_TEST_BUILD="$B" PYTHONDONTWRITEBYTECODE=1 \
      "$PY" -m pytest -q -rs -p no:cacheprovider -o faulthandler_timeout=120 python/tests 2>&1)
rc=$?
printf '%s\n' "$out" | tail -n 60
# pytest's summary ("3 failed, 40 passed, 1 skipped in 9.1s") as run.sh's line
sum=$(printf '%s\n' "$out" | grep -E '^(=+ )?[0-9]+ (passed|failed|error)' | tail -n 1)
[ -n "$sum" ] || { echo "pytest printed no summary (exit $rc)"; exit 1; }
count() { printf '%s\n' "$sum" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
p=$(count passed); f=$(count failed); e=$(count error)
f=$((f + e))
[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
echo "$p passed, $f failed"
[ "$f" = 0 ]
