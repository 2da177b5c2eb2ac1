#!/bin/sh
# Runs every test suite against the build in $1 (default build) and prints
# one closing line `N passed, N failed`. Each suite prints its own
# `N passed, N failed` line last; a suite that crashes counts as one failure.
B=${1:-build}
total_p=0; total_f=0
# No suite calibrates a device on first use (tools/first_calibration.h);
# tests/runtime.sh checks that path itself, in a cache of its own.
PX_AUTO_CALIBRATE=0; export PX_AUTO_CALIBRATE
run_suite() {
    name=$1; shift
    out=$("$@" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out" | tail -n 20
        echo "[$name] crashed or printed no result (exit $rc)"
        total_f=$((total_f + 1)); return
    fi
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    [ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
    [ "$f" != 0 ] && printf '%s\n' "$out" | grep -v '^ok ' | tail -n 40
    echo "[$name] $line"
    total_p=$((total_p + p)); total_f=$((total_f + f))
}
for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    run_suite "$(basename "$t")" "$t"
done
# A listed suite that is missing counts as a failure: a renamed or deleted
# suite must not silently stop running.
for s in tests/golden.sh tests/spirv-val.sh tests/runtime.sh tests/cpu-vs-vulkan.sh tests/loop-limit.sh tests/install.sh tests/hvd.sh tests/hvd-oversub.sh tests/multidev.sh tests/vm.sh tests/vm-hvd.sh tests/metrics.sh tests/dashboard.sh tests/python.sh; do
    if [ -f "$s" ]; then
        run_suite "$(basename "$s" .sh)" sh "$s" "$B"
    else
        echo "[$(basename "$s" .sh)] $s is missing"
        total_f=$((total_f + 1))
    fi
done
# the runtime suite and the scheduler again on the CPU backend
# (PX_BACKEND: px_config_default)
run_suite runtime-cpu env PX_BACKEND=cpu sh tests/runtime.sh "$B"
run_suite sched-cpu env PX_BACKEND=cpu "$B/tests/test_sched"
run_suite oversub-cpu env PX_BACKEND=cpu "$B/tests/test_oversub"
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
