#!/bin/sh
# Driver loop budgets (runtime/limits.c, docs/RUNTIME.md "Loop limits"):
# lavapipe stops every loop of an invocation after 65535 back-edges in
# total, so pxrun must refuse a launch whose loop bound (CgDispatch
# .loop_iters) exceeds it, exit 1 with a clear message, and run the same
# launch right on --backend cpu; launches under the bound must be right.
# Expected values are computed here (shell arithmetic or NumPy); bounds
# quoted in comments are worked out by hand from loops.c's counting model.
# On a device other than llvmpipe nothing is refused: the big cases must
# then simply be right. Ends with `N passed, N failed`.
B=${1:-build}
PXRUN="$B/pxrun"
PY=/usr/bin/python3
T=$(mktemp -d /tmp/px_looplimit.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "$2" ] && printf '%s\n' "$2" | tail -n 15; }

cat > "$T/longloop.px" <<'EOF'
GPU_KERNEL longloop
GPU_PARAM out float[4]
GPU_PARAM n int
GPU_THREAD_CODE:
    PARALLEL_FOR i IN 0..4 {
        var acc = 0.0
        for k IN 0..n {
            acc += 1.0
        }
        out[i] = acc
    }
GPU_END
EOF
cat > "$T/twoloops.px" <<'EOF'
GPU_KERNEL twoloops
GPU_PARAM out float[4]
GPU_PARAM n int
GPU_THREAD_CODE:
    PARALLEL_FOR i IN 0..4 {
        var acc = 0.0
        for k IN 0..n {
            acc += 1.0
        }
        for k IN 0..n {
            acc += 2.0
        }
        out[i] = acc
    }
GPU_END
EOF
cat > "$T/nest.px" <<'EOF'
GPU_KERNEL nest
GPU_PARAM out float[4]
GPU_PARAM m int
GPU_PARAM n int
GPU_THREAD_CODE:
    PARALLEL_FOR i IN 0..4 {
        var acc = 0.0
        for a IN 0..m {
            for b IN 0..n {
                acc += 1.0
            }
        }
        out[i] = acc + float(i)
    }
GPU_END
EOF
cat > "$T/rows.px" <<'EOF'
GPU_KERNEL rows
GPU_PARAM x float[M][N]
GPU_PARAM r float[M]
GPU_THREAD_CODE:
    PARALLEL_REDUCE SUM x → r
GPU_END
EOF
cat > "$T/big.px" <<'EOF'
GPU_KERNEL big
GPU_PARAM a float[N]
GPU_PARAM b float[N]
GPU_PARAM c float[N]
GPU_THREAD_CODE:
    PARALLEL_ADD a b → c
GPU_END
EOF

# Which device Vulkan runs on: refusals are expected on llvmpipe only.
dev=$("$PXRUN" "$T/longloop.px" --arg n=1 --backend vulkan 2>&1 | head -n 1)
case "$dev" in
*llvmpipe*) LVP=1 ;;
*) LVP=0 ;;
esac
echo "device: $dev (llvmpipe: $LVP)"

# right NAME WANT-PY PXRUN-ARGS...: runs, writes the output param named by
# $OUTP to out.npy, and checks np.load('out.npy') == the Python expression.
right() {
    name=$1; want=$2; shift 2
    rm -f "$T/out.npy"
    out=$("$PXRUN" "$@" --out "$OUTP=$T/out.npy" 2>&1); rc=$?
    if [ $rc != 0 ]; then bad "$name (exit $rc)" "$out"; return; fi
    res=$(cd "$T" && $PY -c "import numpy as np, sys
got = np.load('out.npy'); want = np.asarray($want, dtype=got.dtype)
sys.exit(0 if got.shape == want.shape and np.array_equal(got, want) else 1)" 2>&1)
    if [ $? = 0 ]; then ok "$name"; else bad "$name (wrong values)" "$res
$out"; fi
}
# refused NAME PXRUN-ARGS...: on llvmpipe pxrun must exit 1 naming the
# kernel, the stage and the limit; elsewhere the caller checks it is right.
refused() {
    name=$1; want=$2; shift 2
    out=$("$PXRUN" "$@" 2>&1); rc=$?
    if [ $rc = 1 ] && printf '%s' "$out" | grep -qF -- "$want" &&
        printf '%s' "$out" | grep -qF "but llvmpipe stops a shader's loops after 65535; run it on the CPU backend or at smaller sizes"
    then ok "$name"
    else bad "$name (exit $rc, wanted 1 and '$want')" "$out"; fi
}
# big NAME WANT-PY BACKEND PXRUN-ARGS...: refused on llvmpipe's Vulkan,
# right everywhere else
big() {
    name=$1; want=$2; msg=$3; be=$4; shift 4
    if [ "$be" = vulkan ] && [ $LVP = 1 ]; then refused "$name" "$msg" "$@" --backend vulkan
    else right "$name" "$want" "$@" --backend "$be"; fi
}

OUTP=out
for be in vulkan cpu; do
    # bound n + 3: one grid-stride step and its leaving pass, n + 1 for the loop
    right "longloop n=60000 $be" "[60000.0] * 4" "$T/longloop.px" --arg n=60000 --backend $be
    right "longloop n=65532 $be (bound 65535, the largest accepted)" "[65532.0] * 4" \
        "$T/longloop.px" --arg n=65532 --backend $be
    big "longloop n=65533 $be (bound 65536)" "[65533.0] * 4" \
        "kernel 'longloop' stage 0 (PARALLEL_FOR at 5:5): an invocation runs up to 65536 loop iterations" \
        $be "$T/longloop.px" --arg n=65533
    big "longloop n=100000 $be" "[100000.0] * 4" \
        "kernel 'longloop' stage 0 (PARALLEL_FOR at 5:5): an invocation runs up to 100003 loop iterations" \
        $be "$T/longloop.px" --arg n=100000
    # bound 2n + 4: the budget is shared by sequential loops
    right "twoloops n=32000 $be" "[96000.0] * 4" "$T/twoloops.px" --arg n=32000 --backend $be
    big "twoloops n=40000 $be" "[120000.0] * 4" \
        "kernel 'twoloops' stage 0 (PARALLEL_FOR at 5:5): an invocation runs up to 80004 loop iterations" \
        $be "$T/twoloops.px" --arg n=40000
    # bound m(n + 2) + 3: nested loops multiply (lavapipe is wrong from
    # n = 654 on with m = 100, measured)
    right "nest m=100 n=653 $be (bound 65503)" "[65300.0 + i for i in range(4)]" \
        "$T/nest.px" --arg m=100 --arg n=653 --backend $be
    big "nest m=100 n=654 $be (bound 65603)" "[65400.0 + i for i in range(4)]" \
        "kernel 'nest' stage 0 (PARALLEL_FOR at 6:5): an invocation runs up to 65603 loop iterations" \
        $be "$T/nest.px" --arg m=100 --arg n=654
done

# A library stage: REDUCE of rows, one group of 64 per row. With subgroups
# of 8 (lavapipe) the bound is ceildiv(N, 64) + 12; wrong on lavapipe past it
# (measured: 524280 instead of 4198400 for N = 4198400).
OUTP=r
right "reduce rows N=4193472 vulkan (bound 65535)" "[4193472.0] * 2" \
    "$T/rows.px" --size M=2 --size N=4193472 --fill x=ones --backend vulkan
big "reduce rows N=4198400 vulkan (bound 65612)" "[4198400.0] * 2" \
    "kernel 'rows' stage 0 (PARALLEL_REDUCE at 5:5): an invocation runs up to 65612 loop iterations" \
    vulkan "$T/rows.px" --size M=2 --size N=4198400 --fill x=ones
right "reduce rows N=4198400 cpu" "[4198400.0] * 2" \
    "$T/rows.px" --size M=2 --size N=4198400 --fill x=ones --backend cpu

# Grid-stride loops of a large elementwise launch stay far below the limit
# (2^25 floats: 4 steps per invocation); checked by min and max only.
out=$("$PXRUN" "$T/big.px" --size N=33554432 --fill a=ones --fill b=ones --backend vulkan 2>&1); rc=$?
if [ $rc = 0 ] && printf '%s' "$out" | grep -q "min 2 max 2 "; then ok "add N=2^25 vulkan"
else bad "add N=2^25 vulkan (exit $rc)" "$out"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
