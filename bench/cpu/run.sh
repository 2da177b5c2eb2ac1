#!/bin/sh
# The CPU-backend benchmark: PX kernels (bench/px/*.px, backend cpu) against
# the same kernels as plain C loops (bench/cpu/cloops.c, clang-16 -O3
# -march=native, pthreads), on the same number of threads.
#
#   sh bench/cpu/run.sh BUILDDIR [--small]
#
# Environment: BENCH_RUNS (timed runs per process after one warm-up,
# default 5), BENCH_ROUNDS (processes per side, alternating C and PX so
# that drifting load hits both alike, default 3), PX_CPU_THREADS (default:
# the online cores). Reports medians over all timed runs and the ratio
# PX/C (below 1: PX is faster); checks that both sides agree. Writes
# BUILDDIR/bench/cpu.txt. Exit status 1 when something failed to build or
# run or the sides disagree; missed goals (1.15x) are reported, not failed.
set -u
B=${1:?usage: sh bench/cpu/run.sh BUILDDIR [--small]}
SMALL=${2:-}
D=$B/bench
RUNS=${BENCH_RUNS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
T=${PX_CPU_THREADS:-$(getconf _NPROCESSORS_ONLN)}
mkdir -p "$D" || exit 1
LLVM_CONFIG=/usr/lib/llvm-16/bin/llvm-config
clang-16 -O3 -march=native -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -pthread \
    bench/cpu/cloops.c -o "$D/cloops" || { echo "bench/cpu: cannot build cloops"; exit 1; }
# The LLVM backend is a plugin that takes the compiler's symbols from the
# program (as the Makefile links the tools): -rdynamic, whole archives.
# shellcheck disable=SC2046
gcc -std=c11 -Wall -Wextra -Werror -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Iinclude -rdynamic \
    bench/cpu/pxcpu.c -Wl,--whole-archive "$B/libpx.a" "$B/libpxc.a" -Wl,--no-whole-archive $(pkg-config --libs SPIRV-Tools vulkan) \
    $($LLVM_CONFIG --ldflags --libs core orcjit native passes analysis target) \
    $($LLVM_CONFIG --system-libs) -ljansson -lmicrohttpd -lstdc++ -lm -lpthread -ldl -o "$D/pxcpu" ||
    { echo "bench/cpu: cannot build pxcpu against $B"; exit 1; }
if [ "$SMALL" = "--small" ]; then
    NV=1048576; MM="256 256 256"
else
    NV=16777216; MM="1024 1024 1024"
fi
status=0
: >"$D/cpu.raw"
for r in $(seq "$ROUNDS"); do
    for k in saxpy sum matmul; do
        # shellcheck disable=SC2086
        case $k in matmul) sz=$MM ;; *) sz=$NV ;; esac
        # shellcheck disable=SC2086
        { "$D/cloops" "$k" "$T" "$RUNS" $sz | sed 's/^/c /' &&
          { [ "$k" != sum ] || "$D/cloops" sumr "$T" "$RUNS" $sz | sed 's/^/c /'; } &&
          PX_CPU_THREADS=$T "$D/pxcpu" "$k" "$T" "$RUNS" $sz | sed 's/^/px /'; } >>"$D/cpu.raw" ||
            { echo "bench/cpu: $k failed (round $r)"; status=1; }
    done
done
/usr/bin/python3 - "$D/cpu.raw" "$T" "$NV" "$MM" >"$D/cpu.txt" <<'PY' || status=1
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = lambda side, k: statistics.median(float(r[2]) for r in rows if r[0] == side and r[1] == k)
best = lambda side, k: min(float(r[3]) for r in rows if r[0] == side and r[1] == k)
chk = lambda side, k: [float(r[4]) for r in rows if r[0] == side and r[1] == k][-1]
jit = {r[1]: float(r[5]) for r in rows if r[0] == "px"}
print("CPU backend vs clang-16 -O3 -march=native C loops, %s threads (median ms; sizes: "
      "saxpy/sum N=%s, matmul %s)" % (sys.argv[2], sys.argv[3], sys.argv[4].replace(" ", "x")))
print("| kernel | C median (ms) | PX cpu median (ms) | PX/C median | C min | PX min | PX/C min | goal <= 1.15 | PX JIT (ms) |")
print("|---|---|---|---|---|---|---|---|---|")
bad = 0
for k, ck in (("saxpy", "saxpy"), ("sum", "sum"), ("sum", "sumr"), ("matmul", "matmul")):
    c, p = med("c", ck), med("px", k)
    cb, pb = best("c", ck), best("px", k)
    label = k if ck == k else "sum (C with fp reassociate)"
    print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.1f |" % (
        label, c, p, p / c, cb, pb, pb / cb, "met" if p / c <= 1.15 else "missed", jit[k]))
    a, b = chk("c", ck), chk("px", k)
    if abs(a - b) > 1e-4 * max(1.0, abs(a)) * (1 if k != "sum" else 10):
        print("MISMATCH %s: C %r, PX %r" % (k, a, b))
        bad = 1
sys.exit(bad)
PY
cat "$D/cpu.txt"
exit $status
