#!/bin/sh
# The cost-model accuracy benchmark (`make bench-cost`): predicted against
# measured device time for PX kernels from examples/ and tests/golden/ at a
# sweep of sizes, before calibration (default profile), after calibration,
# and after the online correction (docs/COST.md; bench/cost_driver.c says
# what each figure is fitted on).
#
#   sh bench/cost.sh BUILDDIR [--no-doc]
#
# Environment: COST_RUNS (measured runs per point after a cold one, default
# 5), COST_SETTLE (seconds of idle before calibrating, default 15). Writes BUILDDIR/bench-cost.json (every point, every figure) and, unless
# --no-doc, the "Cost model accuracy" section of docs/PERFORMANCE.md; prints
# the table. Calibration goes to a temporary cache directory, never the
# user's. Exit status 1 when something fails to build or run; missed accuracy
# goals are reported, not failed.
set -u
B=${1:?usage: sh bench/cost.sh BUILDDIR [--no-doc]}
DOC=docs/PERFORMANCE.md
[ "${2:-}" = "--no-doc" ] && DOC=
RUNS=${COST_RUNS:-5}
D=$B/bench-cost
MESA_SHADER_CACHE_DISABLE=${MESA_SHADER_CACHE_DISABLE:-true}
export MESA_SHADER_CACHE_DISABLE
rm -rf "$D" && mkdir -p "$D/default" "$D/calibrated" || exit 1
LLVM_CONFIG=/usr/lib/llvm-16/bin/llvm-config
CFLAGS="-std=c11 -Wall -Wextra -Werror -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
start=$(date +%s)

echo "== building cost_driver against $B/libpx.a $B/libpxc.a"
# shellcheck disable=SC2046
gcc $CFLAGS -I. -Iinclude bench/cost_driver.c "$B/libpx.a" "$B/libpxc.a" \
    $(pkg-config --libs SPIRV-Tools vulkan) \
    $($LLVM_CONFIG --ldflags --libs core orcjit native passes analysis target 2>/dev/null) \
    $($LLVM_CONFIG --system-libs 2>/dev/null) -lstdc++ -lm -lpthread -ldl \
    -o "$D/cost_driver" || { echo "bench-cost: cannot build cost_driver"; exit 1; }

# The build just above kept both vCPUs busy, and for some seconds after such
# load the host places them so that lavapipe runs up to 2x faster than it
# will during the sweep (measured right after a build: 10.8 GB/s; 10 s
# later: 6.0 GB/s). Calibrating then would measure another machine than the
# one the sweep runs on, so the machine settles first.
echo "== settling ${COST_SETTLE:-15} s after the build"
sleep "${COST_SETTLE:-15}"
echo "== calibrating (pxrun --calibrate, XDG_CACHE_HOME=$D/calibrated)"
XDG_CACHE_HOME="$PWD/$D/calibrated" "$B/pxrun" --calibrate --repeat 9 --backend vulkan \
    || { echo "bench-cost: calibration failed"; exit 1; }

echo "== measuring (median of $RUNS runs per point)"
/usr/bin/python3 bench/cost.py cases >"$D/cases.txt" || exit 1

"$D/cost_driver" "$PWD/$D/default" "$PWD/$D/calibrated" "$RUNS" <"$D/cases.txt" >"$D/points.jsonl" \
    || { echo "bench-cost: cost_driver failed"; tail -n 3 "$D/points.jsonl"; exit 1; }

end=$(date +%s)
/usr/bin/python3 bench/cost.py report "$D/points.jsonl" "$B/bench-cost.json" "$((end - start))" $DOC
