#!/bin/sh
# make demo: compiles and runs every example on the default device with
# generated data, showing results and predicted versus measured times
# (measured: best of 5 runs, so the first run's shader compilation does
# not count).
B=${1:-build}
PXRUN="$B/pxrun"
D=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/px_demo.XXXXXX)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T" <<'PY' || exit 1
import sys, numpy as np
t = sys.argv[1]; r = np.random.default_rng(1)
np.save(f'{t}/weights.npy', r.standard_normal((256, 512)).astype(np.float32))
np.save(f'{t}/inputs.npy', r.standard_normal((512, 128)).astype(np.float32))
np.save(f'{t}/x.npy', r.standard_normal(1 << 20).astype(np.float32))
np.save(f'{t}/y.npy', r.standard_normal(1 << 20).astype(np.float32))
np.save(f'{t}/logits.npy', r.standard_normal((64, 1000)).astype(np.float32))
np.save(f'{t}/img.npy', r.random((480, 640)).astype(np.float32))
PY
show() {
    echo "== $*"
    "$PXRUN" "$@" --repeat 5 --stats || echo "(failed)"
    echo
}
show "$D/seed.px" --arg weights="$T/weights.npy" --arg inputs="$T/inputs.npy" 2>/dev/null
show "$D/saxpy.px" --arg a=2.0 --arg x="$T/x.npy" --arg y="$T/y.npy"
show "$D/softmax.px" --arg logits="$T/logits.npy" --arg temp=0.7
show "$D/blur.px" --arg img="$T/img.npy"
show "$D/norm.px" --arg x="$T/x.npy"
show "$D/scan.px" --arg x="$T/x.npy"
show "$D/matmul.px" --arg x="$T/weights.npy" --arg W="$T/inputs.npy" --fill b=random:2
