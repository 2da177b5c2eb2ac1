#!/bin/sh
# tests/vm-hvd.sh BUILDDIR — real VMs against pxhvd (issue 13, item 5): a
# daemon with VMs 1, 2, 3 at shares 50/30/20; three QEMU guests boot at
# once, each wired by virtio-serial to its VM's socket (DIR/vm<N>.sock),
# and run the static guest build of pxrun (`pxrun --vm N --hvd-port
# /dev/vport0p1`) on their own kernels and data at the same time. Every
# result comes back through the guest's stdout (base64 of the --out .npy)
# and is checked against NumPy (/usr/bin/python3), outside PX. Then the
# achieved shares are read with pxctl. Ends with `N passed, N failed`.
B=${1:-build}
. tests/check_lib.sh
check_tmp px-vm-hvd

make --no-print-directory -s B="$B" "$B/guest/pxrun" >/dev/null 2>&1 &&
    make --no-print-directory -s B="$B" guest-image >"$T/image.log" 2>&1 || {
    tail -5 "$T/image.log"; echo "FAIL guest image"; echo "0 passed, 1 failed"; exit 1; }

"$B/pxhvd" --listen "$D" --device-memory 1G --vm 1:mem=64M,share=50,name=vm-a \
    --vm 2:mem=64M,share=30,name=vm-b --vm 3:mem=64M,share=20,name=vm-c >"$T/hvd.log" 2>&1 &
DPID=$!
for i in $(seq 1 100); do [ -S "$D/vm3.sock" ] && break; sleep 0.1; done
[ -S "$D/vm3.sock" ] && ok "pxhvd up" || { bad "pxhvd up"; cat "$T/hvd.log"; checks_done; exit 1; }

# each VM its own kernel and data; the references from NumPy
$PY - "$T" <<'PY'
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(13)
x = rng.standard_normal(4099).astype('<f4'); y = rng.standard_normal(4099).astype('<f4')
np.save(t + '/x.npy', x); np.save(t + '/y.npy', y)
np.save(t + '/want1.npy', (np.float32(1.5) * x + y).astype('<f4'))
a = rng.standard_normal((70, 33)).astype('<f4'); b = rng.standard_normal((33, 45)).astype('<f4')
np.save(t + '/a.npy', a); np.save(t + '/b.npy', b)
np.save(t + '/want2.npy', (a.astype('<f8') @ b.astype('<f8')).astype('<f4'))
s = rng.integers(-50, 50, size=(9, 1000)).astype('<i4')
np.save(t + '/s.npy', s)
np.save(t + '/want3.npy', np.cumsum(s, axis=1, dtype=np.int64).astype('<i4'))
PY
cat >"$T/mm.px" <<'PX'
GPU_KERNEL mm
GPU_PARAM a float[M][K]
GPU_PARAM b float[K][N]
GPU_PARAM c float[M][N]
GPU_THREAD_CODE:
    PARALLEL_MATMUL a b -> c
GPU_END
PX
cat >"$T/scan.px" <<'PX'
GPU_KERNEL rows
GPU_PARAM s int[R][N]
GPU_PARAM t int[R][N]
GPU_THREAD_CODE:
    PARALLEL_SCAN SUM s -> t
GPU_END
PX

guest() { # N KERNEL OUTPARAM FILES... -- ARGS
    n=$1; k=$2; o=$3; shift 3
    files=""
    while [ "$1" != "--" ]; do files="$files --file $1"; shift; done
    shift
    # shellcheck disable=SC2086
    sh guest/run-vm.sh --name "vm$n" --socket "$D/vm$n.sock" --client "$B/guest/pxrun" --timeout 240 \
        --file "$k:/k.px" $files \
        --cmd "pxrun --vm $n --hvd-port /dev/vport0p1 /k.px $* --out $o=/tmp/o.npy >/tmp/log 2>&1 || { cat /tmp/log; exit 1; }; base64 /tmp/o.npy" \
        >"$T/g$n.b64" 2>"$T/g$n.err"
    echo $? >"$T/g$n.rc"
}
guest 1 examples/saxpy.px z "$T/x.npy:/x.npy" "$T/y.npy:/y.npy" -- --arg a=1.5 --arg x=/x.npy --arg y=/y.npy &
G1=$!
guest 2 "$T/mm.px" c "$T/a.npy:/a.npy" "$T/b.npy:/b.npy" -- --arg a=/a.npy --arg b=/b.npy &
G2=$!
guest 3 "$T/scan.px" t "$T/s.npy:/s.npy" -- --arg s=/s.npy &
G3=$!
wait "$G1" "$G2" "$G3" # not the daemon
for n in 1 2 3; do
    rc=$(cat "$T/g$n.rc")
    if [ "$rc" = 0 ]; then ok "guest $n ran pxrun --vm $n"; else
        bad "guest $n ran pxrun --vm $n (exit $rc)"; head -c 2000 "$T/g$n.b64"; tail -5 "$T/g$n.err"; continue; fi
    grep -o 'accel=[a-z]*' "$T/g$n.err" | head -n 1 | sed "s/^/  guest $n: /"
    if $PY - "$T/g$n.b64" "$T/want$n.npy" <<'PY'
import base64, io, sys, numpy as np
got = np.load(io.BytesIO(base64.b64decode(open(sys.argv[1], 'rb').read())))
want = np.load(sys.argv[2])
ok = got.dtype == want.dtype and got.shape == want.shape and (
    np.array_equal(got, want) if want.dtype.kind == 'i' else np.allclose(got, want, rtol=1e-5, atol=1e-5))
sys.exit(0 if ok else 1)
PY
    then ok "guest $n result = NumPy"; else bad "guest $n result = NumPy"; fi
done

# the daemon saw the three VMs' launches, each on its own VM
"$B/pxctl" --hvd "$D" status --json >"$T/status.json" 2>&1
if $PY - "$T/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
vms = {v['id']: v for v in s['vms']}
sys.exit(0 if all(vms[i]['launches_done'] >= 1 and vms[i]['launches_failed'] == 0 for i in (1, 2, 3)) else 1)
PY
then ok "pxctl: each VM's launch done, none failed"; else bad "pxctl status"; cat "$T/status.json"; fi

kill -TERM "$DPID"; wait "$DPID" 2>/dev/null; rc=$?; DPID=
[ "$rc" = 0 ] && ok "pxhvd stops on SIGTERM" || bad "pxhvd stops on SIGTERM (exit $rc)"
checks_done
