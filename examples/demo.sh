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
# saxpy first: on a device with no saved profile its run says that it
# calibrates the device once (the seed kernel's warnings are hidden)
show "$D/saxpy.px" --arg a=2.0 --arg x="$T/x.npy" --arg y="$T/y.npy"
show "$D/seed.px" --arg weights="$T/weights.npy" --arg inputs="$T/inputs.npy" 2>/dev/null
show "$D/softmax.px" --arg logits="$T/logits.npy" --arg temp=0.7
show "$D/blur.px" --arg img="$T/img.npy"
show "$D/norm.px" --arg x="$T/x.npy"
show "$D/scan.px" --arg x="$T/x.npy"
show "$D/matmul.px" --arg x="$T/weights.npy" --arg W="$T/inputs.npy" --fill b=random:2

# ---- many VMs share one device ------------------------------------------
# pxhvd with three VMs at shares 50/30/20 on device 0 (device 1 is the
# same GPU opened again, for the migration below; the auto-balancer is off
# so the shares stay on one device); three real guests (QEMU, booted
# from `make guest-image`) each run the train_model matmul through
# `pxrun --vm N` over virtio-serial, back to back for DEMO_SECS seconds;
# then the device time each VM got. Where QEMU cannot run, three local
# client processes do the same, and the demo says so. The dashboard and
# /metrics are served on a free loopback port meanwhile.
SECS=${DEMO_SECS:-12}
HVD="$T/hvd"
"$B/pxhvd" --listen "$HVD" --device 0 --device 0 --device-memory 1G --balance off --metrics 127.0.0.1:0 \
    --vm 1:mem=256M,share=50,name=alpha,device=0 --vm 2:mem=256M,share=30,name=beta,device=0 \
    --vm 3:mem=256M,share=20,name=gamma,device=0 >"$T/hvd.log" 2>&1 &
HPID=$!
trap 'kill $HPID 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 300); do [ -S "$HVD/vm3.sock" ] && break; sleep 0.1; done
grep -v "^pxhvd: metrics on" "$T/hvd.log"
PORT=$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$T/hvd.log")
echo "== dashboard: http://127.0.0.1:$PORT/ (Prometheus: /metrics), while the demo runs"
/usr/bin/python3 -c "
import numpy as np; r = np.random.default_rng(2)
np.save('$T/w.npy', r.standard_normal((384, 384)).astype(np.float32))
np.save('$T/in.npy', r.standard_normal((384, 384)).astype(np.float32))"
# the loop a tenant runs: the train_model matmul of the language contract
# (examples/seed.px), 20 launches a process (the data goes once), until
# the time is up; every tenant keeps the device busy, so the shares decide
LOOP='end=$(( $(cut -d. -f1 /proc/uptime) + SECS )); n=0
while [ $(cut -d. -f1 /proc/uptime) -lt $end ]; do
  pxrun --vm @ID HVD /seed.px --arg weights=/w.npy --arg inputs=/in.npy --repeat 20 >/dev/null 2>&1 || exit 1
  n=$((n + 20))
done; echo "vm @ID: $n launches"'
guests=0
pids=
if [ -f "$B/guest/vmlinuz" ] && command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "== three guest VMs (QEMU) at shares 50/30/20 run train_model through pxhvd for ${SECS} s"
    for n in 1 2 3; do
        cmd=$(printf '%s' "$LOOP" | sed "s|@ID|$n|g; s|HVD|--hvd-port /dev/vport0p1|; s|SECS|$SECS|")
        sh guest/run-vm.sh --name "vm$n" --socket "$HVD/vm$n.sock" --client "$B/guest/pxrun" --timeout $((SECS + 120)) \
            --file "$D/seed.px:/seed.px" --file "$T/w.npy:/w.npy" --file "$T/in.npy:/in.npy" --quiet \
            --cmd "$cmd" >"$T/g$n.out" 2>"$T/g$n.err" &
        pids="$pids $!"
    done
    wait $pids
    for n in 1 2 3; do cat "$T/g$n.out"; grep -v "^run-vm" "$T/g$n.err" | tail -3; done
    grep -q launches "$T/g1.out" && guests=1
fi
if [ "$guests" = 0 ]; then
    pids=
    echo "== QEMU guests could not run here: three local client processes instead (shares 50/30/20, ${SECS} s)"
    for n in 1 2 3; do
        cmd=$(printf '%s' "$LOOP" | sed "s|@ID|$n|g; s|HVD|--hvd $HVD|; s|SECS|$SECS|; s|/seed.px|$D/seed.px|; s|/w.npy|$T/w.npy|; s|/in.npy|$T/in.npy|; s|pxrun|$PXRUN|")
        sh -c "$cmd" &
        pids="$pids $!"
    done
    wait $pids
fi
"$B/pxctl" --hvd "$HVD" status --json >"$T/status.json"
/usr/bin/python3 - "$T/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
vms = s['vms']; tot = sum(v['gpu_ns'] for v in vms) or 1
print('VM  share  device time   achieved  launches  p99 latency')
for v in vms:
    print(f"{v['id']:<3} {v['share']:>4.0f}%  {v['gpu_ns'] / 1e9:8.2f} s   {100 * v['gpu_ns'] / tot:6.1f} %  {v['launches_done']:8d}  {v['latency_p99_us'] / 1e3:8.1f} ms")
PY

# ---- live migration ------------------------------------------------------
# VM 1 moves to device 1 while a client keeps launching train_model: the
# client sees no error and its last result equals NumPy's.
echo
echo "== live migration: VM 1 moves to device 1 while it runs train_model"
done1() { "$B/pxctl" --hvd "$HVD" status --json | /usr/bin/python3 -c \
    'import json, sys; print(next(v["launches_done"] for v in json.load(sys.stdin)["vms"] if v["id"] == 1))'; }
before=$(done1)
"$PXRUN" --vm 1 --hvd "$HVD" "$D/seed.px" --arg weights="$T/w.npy" --arg inputs="$T/in.npy" --repeat 300 \
    --out outputs="$T/out.npy" >/dev/null 2>"$T/client.err" &
CPID=$!
# move it once its launches are under way (a few done), not before
for i in $(seq 1 100); do [ "$(done1)" -ge $((before + 5)) ] && break; sleep 0.1; done
"$B/pxctl" --hvd "$HVD" vm migrate 1 --device 1
wait $CPID && echo "client: 300 launches, no error" || { echo "client failed:"; cat "$T/client.err"; }
/usr/bin/python3 - "$T" "$PORT" <<'PY'
import numpy as np, sys, urllib.request
t, port = sys.argv[1], sys.argv[2]
got, want = np.load(f'{t}/out.npy'), np.load(f'{t}/w.npy') @ np.load(f'{t}/in.npy')
print('result after the move equals NumPy:', bool(np.allclose(got, want, rtol=1e-4, atol=1e-3)))
for line in urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=5).read().decode().splitlines():
    if line.startswith('px_vm_migrations_total') or line.startswith('px_device_busy_seconds_total'):
        print('/metrics:', line)
PY
kill -TERM $HPID 2>/dev/null
