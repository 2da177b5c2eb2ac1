#!/bin/sh
# tests/hvd-oversub.sh BUILDDIR — pxhvd's --oversubscribe and device loss
# (docs/HYPERVISOR.md): quotas past the capacity refused without the flag
# and accepted with it; two VMs whose buffers pass the capacity running at
# once, results against NumPy; with --test-faults, SIGUSR1 loses the
# device: the next launch fails with a one-line error naming it, the
# daemon stays up and the following launches succeed. Ends with
# `N passed, N failed`.
B=${1:-build}
. tests/check_lib.sh
check_tmp px-hvd-over

VMS="--vm 1:mem=3M,share=40 --vm 2:mem=3M,share=40"
check "quotas past capacity without --oversubscribe: exit 2" \
    test "$("$B/pxhvd" --listen "$T/x" --device-memory 4M $VMS 2>/dev/null; echo $?)" = 2
check "--oversubscribe 0.5: exit 2" \
    test "$("$B/pxhvd" --listen "$T/x" --oversubscribe 0.5 2>/dev/null; echo $?)" = 2

"$B/pxhvd" --listen "$D" --device-memory 4M --oversubscribe 1.5 --test-faults $VMS >"$T/hvd.log" 2>&1 &
DPID=$!
for i in $(seq 1 100); do [ -S "$D/control.sock" ] && break; sleep 0.1; done
check "daemon up with 6M of quotas on 4M" test -S "$D/control.sock"

# x, y and the output z: 3 x 900 KiB per VM, 5.3 MiB for both on 4 MiB
$PY - "$T" <<'EOF'
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(3)
for v in (1, 2):
    x = rng.standard_normal(230400).astype('<f4'); y = rng.standard_normal(230400).astype('<f4')
    np.save(f'{t}/x{v}.npy', x); np.save(f'{t}/y{v}.npy', y)
    np.save(f'{t}/want{v}.npy', (np.float32(2.5) * x + y).astype('<f4'))
EOF
run() { # VM N: saxpy into z<N>.npy
    "$B/pxrun" --vm "$1" --hvd "$D" examples/saxpy.px --arg a=2.5 --arg x="$T/x$1.npy" --arg y="$T/y$1.npy" \
        --out z="$T/z$1.npy" >"$T/out$1" 2>"$T/err$1"
}
same() { $PY -c "
import sys, numpy as np
sys.exit(0 if np.allclose(np.load('$T/z$1.npy'), np.load('$T/want$1.npy'), rtol=1e-6, atol=1e-6) else 1)"; }
for k in 1 2 3; do
    run 1 & a=$!; run 2 & b=$!
    wait $a; ra=$?; wait $b; rb=$?
    check "round $k: both VMs exit 0" test "$ra$rb" = 00
    check "round $k: VM 1 = NumPy" same 1
    check "round $k: VM 2 = NumPy" same 2
done
"$B/pxctl" --hvd "$D" status --json >"$T/status"
check "status: oversubscribe 1.5, resident within capacity, counters present" $PY -c "
import json, sys
d = json.load(open('$T/status'))['devices'][0]
sys.exit(0 if d['oversubscribe'] == 1.5 and d['memory_resident_bytes'] <= d['memory_bytes'] and 'bytes_restored' in d else 1)"

# device loss (test fault): the next launch fails, naming the device
kill -USR1 "$DPID"
sleep 0.2
run 1; rc=$?
check "launch during the loss: exit 1" test $rc = 1
check "one-line error naming device 0 and the loss" sh -c "test \$(wc -l <'$T/err1') = 1 && grep -q 'device 0 .*lost' '$T/err1'"
check "daemon still up" kill -0 "$DPID"
rm -f "$T/z1.npy"
run 1; rc=$?
check "next launch on the recreated device: exit 0" test $rc = 0
check "next launch = NumPy" same 1
"$B/pxctl" --hvd "$D" status --json >"$T/status"
check "status: one loss, one launch lost" $PY -c "
import json, sys
s = json.load(open('$T/status'))
d = s['devices'][0]; v = {x['id']: x for x in s['vms']}
sys.exit(0 if d['device_losses'] == 1 and d['launches_lost'] == 1 and v[1]['launches_lost'] == 1 and v[2]['launches_lost'] == 0 else 1)"

kill -TERM "$DPID"; wait "$DPID"; rc=$?; DPID=
check "SIGTERM exit 0" test $rc = 0
checks_done
