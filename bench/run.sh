#!/bin/sh
# The Vulkan-path benchmark: PX kernels against hand-written GLSL twins, and
# pxrun's per-launch overhead against a raw submit-and-wait loop, in one run
# on one device.  `make bench` calls it as `sh bench/run.sh build/release`.
#
#   sh bench/run.sh BUILDDIR [--small]
#
# Environment: BENCH_RUNS (timed runs per kernel after one warm-up, default
# 9: a median of 5 landed in this machine's 2x-slow seconds too often),
# BENCH_ONLY (space-separated kernels to run, default all; e.g.
# BENCH_ONLY="scan saxpy"; the CPU comparison then is left out),
# BENCH_LAUNCH_ITERS (default 2000), BENCH_DEVICE (device index for both
# hosts; default: the first discrete GPU, else the first device).  The Vulkan
# driver is whatever VK_DRIVER_FILES selects (the Makefile defaults it to
# lavapipe); this script does not override it.
#
# Writes BUILDDIR/bench.json (both sides, medians, minima, ratios) and prints
# the table.  Exit status 1 when anything failed to build or run or gave a
# wrong result; missed performance goals are reported, not failed.
set -u
B=${1:?usage: sh bench/run.sh BUILDDIR [--small]}
SMALL=${2:-}
D=$B/bench
RUNS=${BENCH_RUNS:-9}
ITERS=${BENCH_LAUNCH_ITERS:-2000}
DEV=${BENCH_DEVICE:+--device $BENCH_DEVICE}
# Shaders are compiled at pipeline creation; no disk cache keeps runs alike.
MESA_SHADER_CACHE_DISABLE=${MESA_SHADER_CACHE_DISABLE:-true}
export MESA_SHADER_CACHE_DISABLE
mkdir -p "$D" || exit 1
status=0

echo "== building the GLSL twins and vkbench into $D"
for f in bench/glsl/*.comp; do
    n=$(basename "$f" .comp)
    glslangValidator -V --target-env vulkan1.1 -o "$D/$n.spv" "$f" >"$D/$n.glslang.log" 2>&1 || {
        cat "$D/$n.glslang.log"; echo "bench: glslangValidator failed on $f"; exit 1; }
done
CFLAGS="-std=c11 -Wall -Wextra -Werror -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
# shellcheck disable=SC2046
gcc $CFLAGS bench/vkbench.c -o "$D/vkbench" $(pkg-config --cflags --libs vulkan) -lm || {
    echo "bench: cannot build vkbench"; exit 1; }

echo "== building pxbench against $B/libpx.a $B/libpxc.a"
PX=""
LLVM_CONFIG=/usr/lib/llvm-16/bin/llvm-config
if [ ! -f "$B/libpx.a" ] || [ ! -f "$B/libpxc.a" ]; then
    echo "bench: PX side unavailable: $B/libpx.a or $B/libpxc.a is missing"
    status=1
elif gcc $CFLAGS -I. -Iinclude bench/pxbench.c "$B/libpx.a" "$B/libpxc.a" \
       $(pkg-config --libs SPIRV-Tools vulkan) \
       $($LLVM_CONFIG --ldflags --libs core orcjit native passes analysis target 2>/dev/null) \
       $($LLVM_CONFIG --system-libs 2>/dev/null) -ljansson -lmicrohttpd -lstdc++ -lm -lpthread -ldl \
       -o "$D/pxbench" >"$D/pxbench.build.log" 2>&1; then
    PX=1
else
    tail -n 5 "$D/pxbench.build.log"
    echo "bench: PX side unavailable: cannot build pxbench (see $D/pxbench.build.log)"
    status=1
fi

# One process per kernel, alternating raw Vulkan and PX, so that load that
# drifts during the run (2 shared cores) hits both sides of a ratio alike.
echo "== raw Vulkan + GLSL against PX, $RUNS runs each after a warm-up, $ITERS launches"
rm -f "$D"/vk.*.json "$D"/px.*.json
VKJ=""
PXJ=""
# gemm*: matmul at any size (bench/common.h, bench_gemms) against matmul_any.comp.
KERNELS=${BENCH_ONLY:-saxpy sum matmul softmax scan transpose gemm640 gemm700 gemm768 gemm1000 gemm1024 \
         gemm300x200x500 gemm256x200x512 launch}
for k in $KERNELS; do
    # shellcheck disable=SC2086
    "$D/vkbench" --spv "$D" --only $k --runs "$RUNS" --launch-iters "$ITERS" $DEV $SMALL \
        --json "$D/vk.$k.json" | sed "1d; s/^/GLSL  /" || status=1
    if [ -f "$D/vk.$k.json" ]; then VKJ="$VKJ $D/vk.$k.json"
    else echo "bench: vkbench gave no result for $k"; status=1; fi
    if [ -n "$PX" ]; then
        # shellcheck disable=SC2086
        "$D/pxbench" --px bench/px --only $k --runs "$RUNS" --launch-iters "$ITERS" $DEV \
            $SMALL --json "$D/px.$k.json" | sed "1d; s/^/PX    /" || status=1
        if [ -f "$D/px.$k.json" ]; then PXJ="$PXJ $D/px.$k.json"
        else echo "bench: pxbench gave no result for $k (crashed?)"; status=1; fi
    fi
done
[ -n "$VKJ" ] || { echo "bench: vkbench wrote no results"; exit 1; }

echo "== PX vs hand-written GLSL"
# shellcheck disable=SC2086
/usr/bin/python3 bench/report.py "$B/bench.json" --vk $VKJ ${PXJ:+--px $PXJ} || status=1
echo "results: $B/bench.json"
# BENCH_ONLY picks Vulkan-path kernels: the CPU comparison runs only in a full run
if [ -z "${BENCH_ONLY:-}" ]; then
    echo "== CPU backend vs clang -O3 C loops (bench/cpu)"
    sh bench/cpu/run.sh "$B" $SMALL || status=1
fi
exit $status
