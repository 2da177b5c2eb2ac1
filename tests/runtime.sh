#!/bin/sh
# pxrun end to end on the default Vulkan device (lavapipe in make check):
# inputs and NumPy references are made in a temp dir by /usr/bin/python3,
# results come back through --out and are compared there; error paths are
# checked for exit status 1 and their message. Runs the runtime unit test
# binaries first. Ends with `N passed, N failed`.
B=${1:-build}
PXRUN="$B/pxrun"
PY=/usr/bin/python3
T=$(mktemp -d /tmp/px_runtime.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "$2" ] && printf '%s\n' "$2" | tail -n 15; }

for t in "$B"/tests/test_runtime*; do
    [ -x "$t" ] || continue
    line=$("$t" 2>&1 | tail -n 1)
    case "$line" in
    *" passed, 0 failed") ok "$(basename "$t"): $line" ;;
    *) bad "$(basename "$t"): $line" ;;
    esac
done

# run NAME PYCHECK PXRUN-ARGS...: runs pxrun, then the Python check in $T
# (exit 0 = right). The check sees numpy as np and the files in $T.
run() {
    name=$1; check=$2; shift 2
    out=$("$PXRUN" "$@" 2>&1); rc=$?
    if [ $rc != 0 ]; then bad "$name (exit $rc)" "$out"; return; fi
    res=$(cd "$T" && $PY -c "import numpy as np, sys
$check" 2>&1)
    if [ $? = 0 ]; then ok "$name"; else bad "$name" "$res
$out"; fi
}
# fails NAME WANT PXRUN-ARGS...: pxrun must exit 1 with WANT in its output.
fails() {
    name=$1; want=$2; shift 2
    out=$("$PXRUN" "$@" 2>&1); rc=$?
    if [ $rc = 1 ] && printf '%s' "$out" | grep -qF -- "$want"; then ok "$name"
    else bad "$name (exit $rc, wanted 1 and '$want')" "$out"; fi
}

cat > "$T/gen.py" <<'EOF'
import numpy as np
r = np.random.default_rng(7)
np.save('w.npy', r.integers(-3, 4, (37, 29)).astype(np.float32))
np.save('in.npy', r.integers(-3, 4, (29, 41)).astype(np.float32))
n = (1 << 20) + 3
# quarter multiples whose sums stay below 2^22: every partial sum is exact
np.save('x.npy', (r.integers(0, 16, n) * 0.25).astype(np.float32))
np.save('y.npy', (r.integers(-50, 50, n) * 0.5).astype(np.float32))
np.save('y999.npy', np.zeros(999, np.float32))
np.save('x1000.npy', np.zeros(1000, np.float32))
np.save('xi.npy', np.zeros(1000, np.int32))
np.save('xd.npy', np.zeros(10, np.float64))
np.save('logits.npy', r.normal(0, 3, (7, 1000)).astype(np.float32))
np.save('img.npy', r.random((61, 83)).astype(np.float32))
np.save('a2.npy', r.integers(-9, 9, (255, 257)).astype(np.float32))
np.save('h.npy', (r.integers(-64, 64, 4099) * 0.125).astype(np.float16))
np.save('xf.npy', np.asfortranarray(np.zeros((3, 4), np.float32)))
with open('trunc.npy', 'wb') as f:
    f.write(open('x1000.npy', 'rb').read()[:-4])
EOF
(cd "$T" && $PY gen.py) || { echo "could not make test data"; echo "0 passed, 1 failed"; exit 1; }

cat > "$T/map.px" <<'EOF'
GPU_KERNEL sax
GPU_PARAM a float
GPU_PARAM x float[N]
GPU_PARAM y float[N]
GPU_PARAM z float[N]
GPU_THREAD_CODE:
    PARALLEL_MAP x y → z : a * x + y
GPU_END
EOF
cat > "$T/half.px" <<'EOF'
GPU_KERNEL hm
GPU_PARAM s half
GPU_PARAM h half[N]
GPU_PARAM o half[N]
GPU_THREAD_CODE:
    PARALLEL_MAP h → o : h * s + 1.0h
GPU_END
EOF
cat > "$T/tr.px" <<'EOF'
GPU_KERNEL tr
GPU_PARAM a float[M][N]
GPU_THREAD_CODE:
    PARALLEL_TRANSPOSE a → b
GPU_END
EOF
cat > "$T/sym.px" <<'EOF'
GPU_KERNEL k
GPU_PARAM x float[N]
GPU_PARAM y float[N]
GPU_PARAM n int
GPU_THREAD_CODE:
    PARALLEL_ADD x y → z
GPU_END
EOF
printf 'GPU_KERNEL k\nGPU_PARAM x float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP x → y : x + q\nGPU_END\n' > "$T/bad.px"

E=examples
run "seed kernel on .npy (matmul 37x29x41, outputs shaped MxN)" \
    "o = np.load('o.npy'); assert o.shape == (37, 41), o.shape; assert (o == np.load('w.npy') @ np.load('in.npy')).all()" \
    $E/seed.px --arg weights="$T/w.npy" --arg inputs="$T/in.npy" --out outputs="$T/o.npy"
run "saxpy 1M+3 elements" \
    "z = np.load('z.npy'); ref = np.float32(2.5) * np.load('x.npy') + np.load('y.npy'); assert np.allclose(z, ref, rtol=1e-6, atol=0)" \
    $E/saxpy.px --arg a=2.5 --arg x="$T/x.npy" --arg y="$T/y.npy" --out z="$T/z.npy"
run "reductions 1M+3 (sum exact on quarter multiples, max)" \
    "x = np.load('x.npy').astype(np.float64); assert np.load('t.npy')[0] == x.sum(), (np.load('t.npy'), x.sum()); assert np.load('p.npy')[0] == x.max(); s = np.load('s2.npy')[0]; assert abs(s - (x*x).sum()) <= 1e-5 * (x*x).sum()" \
    $E/norm.px --arg x="$T/x.npy" --out total="$T/t.npy" --out peak="$T/p.npy" --out sumsq="$T/s2.npy"
run "scan 1M+3" \
    "y = np.load('cs.npy').astype(np.float64); ref = np.cumsum(np.load('x.npy').astype(np.float64)); assert (y == ref).all(), np.nonzero(y != ref)[0][:5]" \
    $E/scan.px --arg x="$T/x.npy" --out y="$T/cs.npy"
run "softmax 7x1000 with temperature" \
    "l = np.load('logits.npy').astype(np.float64) / 0.5; e = np.exp(l - l.max(axis=1, keepdims=True)); ref = e / e.sum(axis=1, keepdims=True); assert np.allclose(np.load('sm.npy'), ref, rtol=1e-4, atol=1e-7)" \
    $E/softmax.px --arg logits="$T/logits.npy" --arg temp=0.5 --out probs="$T/sm.npy"
run "blur 61x83 zero-padded" \
    "i = np.pad(np.load('img.npy').astype(np.float64), 1); H, W = 61, 83; ref = sum(i[a:a+H, b:b+W] for a in range(3) for b in range(3)) / 9; assert np.allclose(np.load('bl.npy'), ref, rtol=1e-5, atol=1e-6)" \
    $E/blur.px --arg img="$T/img.npy" --out out="$T/bl.npy"
run "dense layer matmul + thread code" \
    "x = np.load('w.npy'); W = np.load('in.npy'); b = np.arange(41, dtype=np.float32); ref = np.maximum(x @ W + b, 0); assert (np.load('dy.npy') == ref).all()" \
    $E/matmul.px --arg x="$T/w.npy" --arg W="$T/in.npy" --fill b=iota --out y="$T/dy.npy"
run "transpose 255x257 (implicit output)" \
    "b = np.load('tb.npy'); assert b.shape == (257, 255); assert (b == np.load('a2.npy').T).all()" \
    "$T/tr.px" --arg a="$T/a2.npy" --out b="$T/tb.npy"
run "half map 4099 elements" \
    "o = np.load('ho.npy'); assert o.dtype == np.float16; ref = (np.load('h.npy') * np.float16(0.5) + np.float16(1)).astype(np.float16); assert (o == ref).all()" \
    "$T/half.px" --arg s=0.5 --arg h="$T/h.npy" --out o="$T/ho.npy"
# A kernel with no statements: every emit mode works (no SPIR-V module, no
# dispatches), and pxrun runs it as a no-op on either backend; its output
# buffer is created and stays zero.
EK=tests/golden/empty_kernel.px
for mode in $("$B/pxcc" --help 2>&1 | sed -n 's/^      \([a-z-]*\)  .*/\1/p'); do
    out=$("$B/pxcc" --emit="$mode" "$EK" -o "$T/ek.$mode" 2>&1); rc=$?
    if [ $rc = 0 ]; then ok "empty kernel: pxcc --emit=$mode"; else bad "empty kernel: pxcc --emit=$mode (exit $rc)" "$out"; fi
done
# -o FILE.SUFFIX picks the mode when no --emit is given (pxcc's table)
for sx in "ll:define " "spvasm:OpEntryPoint" "spv:"; do
    suf=${sx%%:*}; want=${sx#*:}
    rm -f "$T/sx.$suf"
    "$B/pxcc" $E/saxpy.px -o "$T/sx.$suf" 2>/dev/null
    case $suf in
    spv) magic=$(od -An -tx4 -N4 "$T/sx.$suf" 2>/dev/null | tr -d ' ')
         if [ "$magic" = 07230203 ]; then ok "pxcc -o x.$suf writes SPIR-V"; else bad "pxcc -o x.$suf writes SPIR-V" "magic '$magic'"; fi ;;
    *) if grep -q "$want" "$T/sx.$suf" 2>/dev/null; then ok "pxcc -o x.$suf picks its mode"
       else bad "pxcc -o x.$suf picks its mode" "no '$want' in $(head -c 200 "$T/sx.$suf" 2>/dev/null)"; fi ;;
    esac
done
if [ -f "$T/ek.spirv" ] && [ ! -s "$T/ek.spirv" ]; then ok "empty kernel: no SPIR-V module"
else bad "empty kernel: no SPIR-V module (want an empty --emit=spirv)"; fi
for be in vulkan cpu; do
    run "empty kernel runs as a no-op ($be)" \
        "o = np.load('ek_$be.npy'); assert o.shape == (5,) and (o == 0).all(), o" \
        "$EK" --backend $be --size N=5 --arg a=1 --repeat 2 --out o="$T/ek_$be.npy"
done
# --json goes to standard output alone (warnings go to standard error)
"$PXRUN" "$T/sym.px" --fill x=iota --fill y=iota --size N=5 --arg n=1 --json --repeat 3 > "$T/j.json" 2>/dev/null
run "fill iota + size, --repeat, --json" \
    "import json; j = json.load(open('j.json')); assert j['sizes'] == {'N': 5}, j; b = j['buffers'][0]; assert b['name'] == 'z' and b['first'] == [0, 2, 4, 6, 8] and b['sum'] == 20; assert j['vm'] is None and j['repeat'] == 3; assert j['stages'][0]['name'] == 'add' and j['total']['flops'] == 5" \
    "$T/sym.px" --fill x=ones --fill y=ones --size N=5 --arg n=1
# the --json schema of docs/RUNTIME.md: keys in order, their types, and
# values known here (sizes, buffer summary from NumPy, vm, repeat, flops)
"$PXRUN" $E/saxpy.px --arg a=2 --arg x="$T/x1000.npy" --fill y=iota --json --repeat 2 --backend vulkan > "$T/js.json" 2>/dev/null
"$PXRUN" $E/saxpy.px --arg a=2 --arg x="$T/x1000.npy" --fill y=iota --json --backend cpu > "$T/jc.json" 2>/dev/null
cat > "$T/schema.py" <<'EOF'
import json, numpy as np
num = (int, float)
def opt(v): return v is None or (isinstance(v, num) and not isinstance(v, bool) and v >= 0)
def check(path, cpu):
    j = json.load(open(path))
    keys = ['kernel', 'class', 'device'] + (['jit_ms'] if cpu else []) + \
           ['vm', 'repeat', 'profile', 'correction', 'sizes', 'buffers', 'stages', 'total']
    assert list(j) == keys, list(j)
    assert j['kernel'] == 'saxpy' and isinstance(j['class'], str) and isinstance(j['device'], str)
    assert j['device'].startswith('CPU') == cpu, j['device']
    assert not cpu or (isinstance(j['jit_ms'], num) and j['jit_ms'] >= 0)
    assert j['vm'] is None and j['repeat'] == (1 if cpu else 2)  # a local run: --vm goes to pxhvd (tests/hvd.sh)
    assert list(j['profile']) == ['calibrated', 'source'] and isinstance(j['profile']['calibrated'], bool)
    assert isinstance(j['profile']['source'], str)
    assert isinstance(j['correction'], num) and j['correction'] > 0
    assert j['sizes'] == {'N': 1000}, j['sizes']
    ref = np.float32(2) * np.zeros(1000, np.float32) + np.arange(1000, dtype=np.float32)
    assert len(j['buffers']) == 1
    b = j['buffers'][0]
    assert list(b) == ['name', 'dtype', 'shape', 'first', 'min', 'max', 'sum'], list(b)
    assert b['name'] == 'z' and b['dtype'] == '<f4' and b['shape'] == [1000]
    assert b['first'] == list(ref[:8]) and b['min'] == ref.min() and b['max'] == ref.max(), b
    assert b['sum'] == ref.astype(np.float64).sum(), b
    st = j['stages'] + [j['total']]
    assert len(st) == 2 and j['total']['name'] == 'total'
    for s in st:
        assert list(s) == ['name', 'predicted_ns', 'measured_ns', 'flops', 'bytes', 'gb_per_s', 'gflop_per_s'], list(s)
        assert isinstance(s['name'], str) and all(opt(s[k]) for k in list(s)[1:]), s
        assert s['flops'] == 2000 and s['bytes'] == 12000, s
check('js.json', False)
check('jc.json', True)
EOF
res=$(cd "$T" && $PY schema.py 2>&1)
if [ $? = 0 ]; then ok "--json schema (vulkan and cpu)"; else bad "--json schema (vulkan and cpu)" "$res"; fi
out=$("$PXRUN" "$T/sym.px" --fill x=ones --fill y=iota --size N=4 --arg n=1 --stats 2>&1)
case "$out" in
*"z: float (4,) [1, 2, 3, 4] min 1 max 4 sum 10"*"predicted"*"total"*) ok "summary and --stats" ;;
*) bad "summary and --stats" "$out" ;;
esac

fails "missing .npy file" "cannot open" $E/saxpy.px --arg a=1 --arg x="$T/nope.npy" --arg y="$T/y.npy"
fails "wrong dtype" "has dtype <i4 (int) but parameter x is float[N]" $E/saxpy.px --arg a=1 --arg x="$T/xi.npy" --arg y="$T/x1000.npy"
fails "unsupported dtype" "dtype '<f8' is not supported" $E/saxpy.px --arg a=1 --arg x="$T/xd.npy" --arg y="$T/x1000.npy"
fails "shape clash" "size N is 1000 from --arg x=$T/x1000.npy (dim 0) but 999 from --arg y=$T/y999.npy (dim 0)" \
    $E/saxpy.px --arg a=1 --arg x="$T/x1000.npy" --arg y="$T/y999.npy"
fails "unbound size" "size N is not bound: x, y, z need it" "$T/sym.px" --arg n=1
fails "unbound scalar" "scalar parameter a (float) has no value" $E/saxpy.px --arg x="$T/x1000.npy" --arg y="$T/x1000.npy"
fails "bad scalar text" "scalar n is int but '1.5' is not an integer" "$T/sym.px" --arg n=1.5 --size N=3
fails "truncated .npy" "truncated" $E/saxpy.px --arg a=1 --arg x="$T/trunc.npy" --arg y="$T/x1000.npy"
fails "fortran-order .npy" "Fortran" "$T/tr.px" --arg a="$T/xf.npy"
fails "rank mismatch" "parameter a is 2-D" "$T/tr.px" --arg a="$T/x1000.npy"
fails "unknown parameter" "has no parameter named q" $E/saxpy.px --arg q=1
fails "unknown size symbol" "no size symbol named Q" "$T/sym.px" --size Q=3
fails "compile error" "bad.px:4:" "$T/bad.px"
fails "missing kernel file" "cannot open" "$T/none.px"
fails "no kernel file" "no kernel file given"
fails "unknown option" "unknown option --frobnicate" $E/saxpy.px --frobnicate
fails "bad --fill" "expected zeros, ones, iota" "$T/sym.px" --fill x=lots --size N=3 --arg n=1
fails "bad --repeat" "--repeat 0" "$T/sym.px" --repeat 0
fails "--out of a scalar" "is a scalar" "$T/sym.px" --size N=3 --arg n=1 --out n="$T/n.npy"
fails "no such kernel" "no kernel named zz" $E/saxpy.px --kernel zz
fails "no such device" "device 99 requested" $E/saxpy.px --device 99

# ---- issue 16: hostile and careless input ----
# unbounded inputs fail after a few bytes, not gigabytes (the check is
# the error itself; memory is bounded by the source limit)
fails "source /dev/zero" "source is larger than the limit of 16777216 bytes" /dev/zero
fails "--arg from /dev/zero" "not a .npy file (no \x93NUMPY magic)" $E/saxpy.px --arg a=1 --arg x=/dev/zero
fails "kernel file a directory" "$T: cannot read: Is a directory" "$T"
mkdir -p "$T/d.npy"
fails "--arg a directory" "is a directory, not a .npy file" $E/saxpy.px --arg a=1 --arg x="$T/d.npy"
# a source of exactly the limit is not "larger" (it fails later, in the parser)
head -c 16777216 /dev/zero | tr '\0' '#' > "$T/big.px"
fails "source at the limit" "no GPU_KERNEL in file" "$T/big.px"
printf '#' >> "$T/big.px"
fails "source past the limit" "big.px:1:1: error: source is larger than the limit of 16777216 bytes" "$T/big.px"
# pxcc: a source of exactly the limit is read whole, one byte more is refused
head -c 16777216 /dev/zero | tr '\0' '#' > "$T/big.px"
out=$("$B/pxcc" "$T/big.px" 2>&1); rc=$?
case "$rc:$out" in
1:*"big.px:1:1: error: no GPU_KERNEL in file"*) ok "pxcc: source at the limit" ;;
*) bad "pxcc: source at the limit" "$out" ;;
esac
printf '#' >> "$T/big.px"
out=$("$B/pxcc" "$T/big.px" 2>&1); rc=$?
case "$rc:$out" in
1:*"big.px:1:1: error: source is larger than the limit of 16777216 bytes"*) ok "pxcc: source past the limit" ;;
*) bad "pxcc: source past the limit" "$out" ;;
esac
out=$(timeout 60 "$B/pxcc" /dev/zero 2>&1); rc=$?
case "$rc:$out" in
1:*"/dev/zero:1:1: error: source is larger than the limit"*) ok "pxcc: /dev/zero" ;;
*) bad "pxcc: /dev/zero (exit $rc)" "$out" ;;
esac
rm -f "$T/big.px"
# a header claiming more data than the file has fails before reading it
$PY -c "
import struct
h = b\"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }\"
h += b' ' * (118 - len(h)) + b'\n'
open('$T/huge.npy', 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(h)) + h + b'\0' * 16)"
fails "header bigger than the file" "truncated: header says 1099511627776 elements" $E/saxpy.px --arg a=1 --arg x="$T/huge.npy"
# the launch budget (--budget MS) refuses before running; 0 lifts it
printf 'GPU_KERNEL spin\nGPU_PARAM t uint\nGPU_PARAM y uint[1]\nGPU_THREAD_CODE:\n    PARALLEL_FOR i IN 0..1 {\n        var s = 0u\n        for j in 0u..t {\n            s = s + 1u\n        }\n        y[i] = s\n    }\nGPU_END\n' > "$T/spin.px"
fails "--budget refuses a costly launch" "kernel 'spin': predicted " "$T/spin.px" --arg t=4294967295 --budget 1 --backend cpu
fails "--budget needs whole ms" "--budget 1.5: expected a whole number from 0 to 86400000" "$T/spin.px" --budget 1.5
run "--budget 0: no budget" "y = np.load('spin.npy'); sys.exit(0 if y[0] == 1000 else 1)" \
    "$T/spin.px" --arg t=1000 --budget 0 --backend cpu --out y="$T/spin.npy"
# numbers: one reading for --arg, --fill and --size
printf 'GPU_KERNEL k\nGPU_PARAM x int[N]\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP x -> y : float(x)\nGPU_END\n' > "$T/ik.px"
fails "--fill int out of range" "--fill x=3000000000: 3000000000 is beyond the range of int" "$T/ik.px" --fill x=3000000000 --size N=2
fails "--fill int from 1e30" "x is int, so the value must be a whole number" "$T/ik.px" --fill x=1e30 --size N=2
fails "--fill float out of range" "1e39 is beyond the range of float" "$T/ik.px" --fill x=1 --fill y=1e39 --size N=2
fails "--arg float out of range" "scalar a is float but 1e39 is beyond its range" $E/saxpy.px --arg a=1e39 --fill x=ones --fill y=ones --size N=2
fails "--size twice" "--size N=9: N is already given by --size N=8" "$T/ik.px" --fill x=1 --size N=8 --size N=9
fails "--fill twice" "--fill x=2: x is already given by --fill x=1" "$T/ik.px" --fill x=1 --fill x=2 --size N=2
fails "--out twice" "--out y=$T/b.npy: y is already given by --out y=$T/a.npy" "$T/ik.px" --fill x=1 --size N=2 --out y="$T/a.npy" --out y="$T/b.npy"
fails "--arg twice" "--arg a=2: a is already given by --arg a=1" $E/saxpy.px --arg a=1 --arg a=2 --size N=2
fails "--out file twice" "the file is also given by --out y=$T/same.npy" "$T/ik.px" --fill x=1 --size N=2 --out y="$T/same.npy" --out x="$T/same.npy"
fails "--fill of an --arg" "--fill x=1: x is already given by --arg x=$T/x1000.npy" $E/saxpy.px --arg a=1 --arg x="$T/x1000.npy" --fill x=1
fails "--size negative" "--size N=-1: expected a whole number >= 0" "$T/ik.px" --fill x=1 --size N=-1
run "--size and --fill: decimal 010 is ten, 0x hex" \
    "y = np.load('y10.npy'); sys.exit(0 if y.shape == (10,) and (y == 16).all() else 1)" \
    "$T/ik.px" --fill x=0x10 --size N=010 --out y="$T/y10.npy"
run "--fill int -5, uint range" "y = np.load('yn.npy'); sys.exit(0 if (y == -5).all() else 1)" \
    "$T/ik.px" --fill x=-5 --size N=3 --out y="$T/yn.npy"
printf 'GPU_KERNEL k\nGPU_PARAM y float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP y -> y : y * 2.0\nGPU_END\n' > "$T/nk.px"
out=$("$PXRUN" "$T/nk.px" --fill y=nan --size N=3 2>&1)
case "$out" in
*"y: float (3,) [nan, nan, nan] min nan max nan sum nan"*) ok "all-NaN summary" ;;
*) bad "all-NaN summary" "$out" ;;
esac
# --out: nothing is written unless every output is (a failing one is in a
# directory that does not exist, or on a full file system when root)
rm -f "$T/o1.npy"
fails "--out set fails as a whole" "--out x=$T/nodir/x.npy: $T/nodir/x.npy: cannot create" \
    "$T/ik.px" --fill x=1 --size N=4 --out y="$T/o1.npy" --out x="$T/nodir/x.npy"
if [ -e "$T/o1.npy" ] || ls "$T"/o1.npy.pxrun-* >/dev/null 2>&1; then bad "--out leaves no file"; else ok "--out leaves no file"; fi
if [ "$(id -u)" = 0 ] && mkdir -p "$T/full" && mount -t tmpfs -o size=64k tmpfs "$T/full" 2>/dev/null; then
    fails "--out on a full disk" "$T/full/x.npy: write failed: No space left on device" \
        "$T/ik.px" --fill x=1 --size N=100000 --out y="$T/o2.npy" --out x="$T/full/x.npy"
    if [ -e "$T/o2.npy" ] || [ -n "$(ls -A "$T/full")" ]; then bad "full disk leaves no file" "$(ls -la "$T/full")"
    else ok "full disk leaves no file"; fi
    umount "$T/full"
else
    ok "--out on a full disk (skipped: needs root and tmpfs)"
fi
(umask 027; "$PXRUN" "$T/ik.px" --fill x=1 --size N=2 --out y="$T/om.npy" >/dev/null 2>&1)
if [ "$(stat -c %a "$T/om.npy" 2>/dev/null)" = 640 ]; then ok "--out mode follows the umask"
else bad "--out mode follows the umask" "$(ls -la "$T/om.npy" 2>&1)"; fi

# calibration on first use (tools/first_calibration.h): with no saved
# profile and PX_AUTO_CALIBRATE unset, the first run calibrates the device
# once, says so on stderr and predicts from the profile it saved; the
# second run finds it. (Everything else here runs with PX_AUTO_CALIBRATE=0,
# set by tests/run.sh.)
mkdir -p "$T/cache"
first=$(env -u PX_AUTO_CALIBRATE XDG_CACHE_HOME="$T/cache" "$PXRUN" $E/saxpy.px --arg a=2 --fill x=ones --fill y=ones \
        --size N=1000 --json 2>"$T/first.err")
second=$(env -u PX_AUTO_CALIBRATE XDG_CACHE_HOME="$T/cache" "$PXRUN" $E/saxpy.px --arg a=2 --fill x=ones --fill y=ones \
        --size N=1000 --json 2>"$T/second.err")
prof=$(ls "$T"/cache/px/*.profile 2>/dev/null | head -n 1)
if grep -q "calibrating it once" "$T/first.err" && grep -qF "profile saved to $prof" "$T/first.err" && [ -n "$prof" ] &&
   ! grep -q calibrat "$T/second.err" &&
   printf '%s' "$first" | $PY -c "import json,sys; j=json.load(sys.stdin); assert j['profile']['calibrated'] and j['profile']['source'] == sys.argv[1]" "$prof" &&
   printf '%s' "$second" | $PY -c "import json,sys; j=json.load(sys.stdin); assert j['profile']['calibrated'] and j['profile']['source'] == sys.argv[1]" "$prof"
then ok "calibration on first use, once"
else bad "calibration on first use, once" "$(cat "$T/first.err" "$T/second.err"; ls -la "$T/cache/px" 2>&1)"; fi
out=$(PX_AUTO_CALIBRATE=0 XDG_CACHE_HOME="$T/cache0" "$PXRUN" $E/saxpy.px --arg a=2 --fill x=ones --fill y=ones --size N=10 2>&1)
if [ ! -e "$T/cache0/px" ] && ! printf '%s' "$out" | grep -q calibrat; then ok "PX_AUTO_CALIBRATE=0 skips it"
else bad "PX_AUTO_CALIBRATE=0 skips it" "$out"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
