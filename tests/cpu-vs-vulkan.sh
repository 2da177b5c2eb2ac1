#!/bin/sh
# Differential test of the two backends: tests/cpu-vs-vulkan.sh BUILDDIR
# Every kernel of tests/golden/*.px and examples/*.px that compiles (no .err
# beside it, or one whose `exit:` line says 0: warnings only) runs under
# pxrun with --backend vulkan and with --backend cpu on the same inputs:
# every buffer is --fill NAME=random:SEED (outputs too, so elements a
# kernel leaves alone must also agree), every size symbol gets a fixed
# --size and every scalar a fixed --arg. Every
# buffer the kernel writes comes back with --out and must agree:
#   integers exactly; floats (and half) within the tolerance of docs/CPU.md:
#   |cpu - vk| <= rtol * |vk| + atol * max(1, max|vk| over the buffer),
#   rtol = atol = 1e-4 for float, 1e-2 for half; NaN where the other is
#   NaN, and infinities equal. At most 1 element in 1000 of a float buffer
#   may exceed it (ill-conditioned inputs, e.g. tan next to a pole, where
#   Vulkan's own precision rules allow large differences); each is printed
#   as a `note` line. Integer buffers get the same allowance only in files
#   whose IR converts a float to an integer (int(e) of a float e rounded
#   differently); elsewhere they must be exact.
# A kernel that fails only on Vulkan with a known device limit (DEVICE_LIMITS
# below, e.g. more than 16 buffers) is skipped and says why; any other
# failure, on one backend or both, is a failure, and so is a file expected
# to compile that does not. A kernel that writes no buffer must still run on
# both backends but has nothing to compare. If no buffer was compared at all
# (e.g. no usable Vulkan device) the suite fails rather than passing empty.
# Ends with `N passed, N failed`.
B=${1:-build}
cd "$(dirname "$0")/.." || exit 1
PXRUN="$B/pxrun"
PXCC="$B/pxcc"
T=$(mktemp -d /tmp/px_diff.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
if [ ! -x "$PXRUN" ] || [ ! -x "$PXCC" ]; then
    echo "cpu-vs-vulkan: $PXRUN or $PXCC is not built"
    echo "0 passed, 1 failed"
    exit 1
fi
# A list line is FILE<TAB>F2I<TAB>META, or FILE<TAB>error<TAB>WHY for a file
# expected to compile that does not (the Python part counts it as FAIL).
for px in tests/golden/*.px examples/*.px; do
    # A .err holds pxcc's diagnostics and then `exit: N` (tests/golden.sh):
    # exit 0 is a valid kernel with warnings and is compared like any other.
    if [ -f "${px%.px}.err" ]; then
        ex=$(sed -n 's/^exit: //p' "${px%.px}.err" | tail -n 1)
        if [ -z "$ex" ]; then
            printf '%s\terror\t%s\n' "$px" "${px%.px}.err has no exit: line"
            continue
        fi
        [ "$ex" != 0 ] && continue
    fi
    flags=""
    [ -f "${px%.px}.flags" ] && flags=$(cat "${px%.px}.flags")
    # shellcheck disable=SC2086
    if ! "$PXCC" --emit=meta $flags "$px" >"$T/meta.json" 2>"$T/err" ||
       ! "$PXCC" --emit=ir $flags "$px" >"$T/ir.txt" 2>"$T/err"; then
        printf '%s\terror\tpxcc: %s\n' "$px" "$(grep -m 1 'error' "$T/err" || head -n 1 "$T/err")"
        continue
    fi
    f2i=$(/usr/bin/python3 -c '
import re, sys
ty, f2i = {}, 0
for l in open(sys.argv[1]):
    m = re.match(r"\s*%(\d+) = (\w+) (?:%(\d+))?.*: (\w+)$", l)
    if not m: continue
    ty[m.group(1)] = m.group(4)
    if m.group(2) == "conv" and m.group(4) in ("int", "uint") and ty.get(m.group(3)) in ("float", "half"):
        f2i = 1
print(f2i)' "$T/ir.txt")
    # A PARALLEL_FOR that reads a buffer at another index than it writes it
    # has an unspecified result (contract section 3): nothing to compare.
    racy=$(/usr/bin/python3 -c '
import re, sys
racy, loads, stores = "", {}, {}
def check():
    global racy
    for b, st in stores.items():
        for ix in loads.get(b, ()):
            if ix not in st and not racy: racy = b
for l in open(sys.argv[1]):
    if re.match(r"  stage ", l):
        check(); loads.clear(); stores.clear()
    m = re.search(r"= load(?:\.checked)? (\w+)((?:\[%\d+\])+)", l)
    if m: loads.setdefault(m.group(1), set()).add(m.group(2))
    m = re.search(r"store(?:\.checked)? (\w+)((?:\[%\d+\])+)", l)
    if m: stores.setdefault(m.group(1), set()).add(m.group(2))
check()
print(racy)' "$T/ir.txt")
    if [ -n "$racy" ]; then
        echo "skip $px: a PARALLEL_FOR reads '$racy' at other indices than it writes it (unspecified result)" >&2
        continue
    fi
    printf '%s\t%s\t%s\n' "$px" "$f2i" "$(tr -d '\n' <"$T/meta.json")"
done >"$T/list"
PXRUN="$PXRUN" T="$T" exec /usr/bin/python3 - "$T/list" <<'EOF'
import json, os, subprocess, sys
import numpy as np

pxrun, tmp = os.environ["PXRUN"], os.environ["T"]

def nodriver():
    """With no Vulkan driver at all: auto (and the default) and cpu run on
    the CPU and give the right saxpy; vulkan is a plain error, exit 1."""
    env = dict(os.environ, VK_DRIVER_FILES="/nonexistent.json", VK_ICD_FILENAMES="/nonexistent.json")
    env.pop("PX_BACKEND", None)
    n = 1000
    x = (np.arange(n, dtype=np.float32) * np.float32(0.37)).astype(np.float32)
    y = np.linspace(-5, 5, n, dtype=np.float32)
    np.save(tmp + "/nd_x.npy", x)
    np.save(tmp + "/nd_y.npy", y)
    want = (np.float32(2.5) * x + y).astype(np.float32)
    res = []
    for be in (None, "auto", "cpu", "vulkan"):
        cmd = [pxrun, "tests/golden/saxpy.px", "--arg", "a=2.5", "--arg", "x=%s/nd_x.npy" % tmp,
               "--arg", "y=%s/nd_y.npy" % tmp, "--out", "y=%s/nd_out.npy" % tmp]
        if be:
            cmd += ["--backend", be]
        if os.path.exists(tmp + "/nd_out.npy"):
            os.remove(tmp + "/nd_out.npy")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        label = "no Vulkan driver, --backend %s" % (be or "(default)")
        if be == "vulkan":
            good = p.returncode == 1 and "no Vulkan driver" in p.stderr and "error" in p.stderr
            res.append((label, good, "exit %d: %s" % (p.returncode, p.stderr.strip())))
            continue
        got = np.load(tmp + "/nd_out.npy") if p.returncode == 0 else None
        # the CPU does a*x+y with one rounding (fma) or two: within 1 ulp
        good = got is not None and np.allclose(got, want, rtol=2e-7, atol=1e-6)
        if be != "cpu":
            good = good and "backend: cpu (no Vulkan device)" in p.stderr
        res.append((label, good, "exit %d: %s" % (p.returncode, p.stderr.strip())))
    # the device label names the CPU, not llvmpipe
    p = subprocess.run([pxrun, "tests/golden/saxpy.px", "--arg", "a=1", "--size", "N=10", "--backend", "cpu"],
                       capture_output=True, text=True, env=env, timeout=60)
    res.append(("no Vulkan driver: device label", p.returncode == 0 and " on CPU (LLVM JIT" in p.stdout
                and "llvmpipe" not in p.stdout, p.stdout.strip().splitlines()[:1]))
    return res
# Sizes: symbols only rank-1 buffers use get a size past one CPU reduce
# chunk (16384 elements) and not a multiple of anything, but below 32768:
# llvmpipe stops any shader loop after 65535 iterations, and a kernel
# looping over 2N elements per item would then give a wrong Vulkan result.
# The other symbols get small primes, so a matmul or a 3-D grid stays
# quick on lavapipe.
LONG = 20011
SMALL = [37, 19, 23, 29, 31, 41, 43, 47, 53, 59]
SCALAR = {"float": "0.75", "half": "0.75", "int": "3", "uint": "5"}
TOL = {"float": 1e-4, "half": 1e-2}
# Vulkan errors that are a limit of the device rather than a bug: a kernel
# that fails on Vulkan with one of these (and runs on the CPU) is skipped.
DEVICE_LIMITS = ("buffers (at most 16)",)

passed = failed = compared = 0
def ok(name):
    global passed
    passed += 1
    print("ok", name)
def bad(name, why):
    global failed
    failed += 1
    print("FAIL", name + ":", why)

for label, good, why in nodriver():
    if good:
        ok(label)
    else:
        bad(label, why)

def run(px, kernel, backend, args, outs):
    cmd = [pxrun, px, "--kernel", kernel, "--backend", backend] + args
    for n in outs:
        cmd += ["--out", "%s=%s/%s_%s.npy" % (n, tmp, backend, n)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p.returncode, (p.stderr.strip().splitlines() or [""])[-1]

def compare(name, dtype, cpu, vk, f2i):
    if cpu.shape != vk.shape or cpu.dtype != vk.dtype:
        return "shape/dtype %s %s vs %s %s" % (cpu.shape, cpu.dtype, vk.shape, vk.dtype)
    if dtype in ("int", "uint"):
        c, v = cpu.ravel(), vk.ravel()
        d = np.nonzero(c != v)[0]
        if len(d):
            i = int(d[0])
            what = "%d of %d elements differ, first at %d: cpu %s, vulkan %s" % (len(d), len(c), i, c[i], v[i])
            if not f2i or len(d) > len(c) // 1000:
                return what
            print("note %s: %s (float->int conversions)" % (name, what))
        return None
    c, v = cpu.astype(np.float64).ravel(), vk.astype(np.float64).ravel()
    cn, vn = np.isnan(c), np.isnan(v)
    if (cn != vn).any():
        i = int(np.nonzero(cn != vn)[0][0])
        return "NaN at %d on one backend only: cpu %r, vulkan %r" % (i, c[i], v[i])
    ci, vi = np.isinf(c), np.isinf(v)
    if (ci != vi).any() or (c[ci] != v[vi]).any():
        i = int(np.nonzero((ci != vi) | (ci & (c != v)))[0][0])
        return "infinity at %d differs: cpu %r, vulkan %r" % (i, c[i], v[i])
    fin = ~(vn | vi)
    if not fin.any():
        return None
    tol = TOL[dtype]
    scale = max(1.0, float(np.abs(v[fin]).max()))
    err = np.abs(c - v)
    lim = tol * np.abs(v) + tol * scale
    badm = fin & (err > lim)
    nb = int(badm.sum())
    if nb:
        i = int(np.nonzero(badm)[0][0])
        what = "%d of %d elements beyond tolerance, first at %d: cpu %r, vulkan %r (limit %.3g)" % (
            nb, len(c), i, c[i], v[i], lim[i])
        if nb > len(c) // 1000:
            return what
        print("note %s: %s" % (name, what))
    return None

for line in open(sys.argv[1]):
    px, f2i, meta = line.rstrip("\n").split("\t", 2)
    if f2i == "error":
        bad(px, meta)
        continue
    for k in json.loads(meta)["kernels"]:
        name = "%s:%s" % (px, k["name"])
        rank1 = {}
        for p in k["params"]:
            for d in p.get("dims") or []:
                rank1[d] = rank1.get(d, True) and len(p["dims"]) == 1
        args, small = [], iter(SMALL)
        for s in k["size_symbols"]:
            args += ["--size", "%s=%d" % (s, LONG if rank1.get(s, True) else next(small, 61))]
        written = {b["index"] for b in k["bindings"] if b["kind"] == "param" and not b["readonly"]}
        outs, types = [], {}
        for seed, p in enumerate(k["params"], 1):
            if p["kind"] == "buffer":
                args += ["--fill", "%s=random:%d" % (p["name"], seed)]
                if p["index"] in written:
                    outs.append(p["name"])
                    types[p["name"]] = p["type"]
            else:
                args += ["--arg", "%s=%s" % (p["name"], SCALAR[p["type"]])]
        rv, ev = run(px, k["name"], "vulkan", args, outs)
        rc, ec = run(px, k["name"], "cpu", args, outs)
        if rv or rc:
            if rv and not rc and any(m in ev for m in DEVICE_LIMITS):
                print("skip %s: vulkan device limit: %s" % (name, ev))
            else:
                bad(name, "vulkan exit %d (%s), cpu exit %d (%s)" % (rv, ev, rc, ec))
            continue
        if not outs:
            # e.g. empty_kernel.px: it ran on both, but writes nothing to compare
            print("skip %s: writes no buffer, nothing to compare (both backends ran it)" % name)
            continue
        compared += 1
        why = None
        for n in outs:
            why = compare(name + " " + n, types[n], np.load("%s/cpu_%s.npy" % (tmp, n)), np.load("%s/vulkan_%s.npy" % (tmp, n)), f2i == "1")
            if why:
                why = "%s: %s" % (n, why)
                break
        if why:
            bad(name, why)
        else:
            ok("%s (%s)" % (name, ", ".join(outs)))
if not compared:
    # every kernel skipped (e.g. no usable Vulkan device): nothing was tested
    bad("cpu-vs-vulkan", "no kernel was compared")
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF
