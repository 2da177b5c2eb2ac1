#!/bin/sh
# Whole-process time of `pxcc kernel.px -o k.spv` against
# `glslangValidator -V` on an equivalent GLSL compute shader, in one run,
# interleaved: RUNS runs of each (default 41), medians and their ratio.
# Usage: sh bench/startup.sh [BUILD_DIR]
B=${1:-build}
RUNS=${RUNS:-41}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/saxpy.comp" <<'GLSL'
#version 450
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform P { float a; uint n; };
void main() { uint i = gl_GlobalInvocationID.x; if (i < n) y[i] = a * x[i] + y[i]; }
GLSL
"$B/pxcc" examples/saxpy.px -o "$tmp/px.spv" || exit 1
glslangValidator -V "$tmp/saxpy.comp" -o "$tmp/gl.spv" >/dev/null || exit 1
/usr/bin/python3 - "$B/pxcc" "$tmp" "$RUNS" <<'PY'
import statistics, subprocess, sys, time
pxcc, tmp, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
cmds = {"pxcc": [pxcc, "examples/saxpy.px", "-o", tmp + "/px.spv"],
        "glslangValidator": ["glslangValidator", "-V", tmp + "/saxpy.comp", "-o", tmp + "/gl.spv"],
        "pxcc --help": [pxcc, "--help"]}
t = {k: [] for k in cmds}
for _ in range(runs):
    for k, c in cmds.items():
        t0 = time.perf_counter()
        subprocess.run(c, stdout=subprocess.DEVNULL, check=True)
        t[k].append(time.perf_counter() - t0)
med = {k: statistics.median(v) * 1e3 for k, v in t.items()}
for k in cmds:
    print(f"{k:18s} median {med[k]:7.2f} ms  min {min(t[k]) * 1e3:7.2f} ms  ({runs} runs)")
print(f"pxcc / glslangValidator = {med['pxcc'] / med['glslangValidator']:.3f} (goal <= 0.05)")
PY
