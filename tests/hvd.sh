#!/bin/sh
# tests/hvd.sh BUILDDIR — pxhvd, pxrun --vm and pxctl as programs, against
# the contract (px-hypervisor.md sections 3-5): a daemon with VMs 50/30/20,
# results checked against NumPy (/usr/bin/python3), --vm output against a
# local run's, the guest build (static), refusals as one line and exit 1,
# start-up errors and their statuses, pxctl, SIGTERM. Ends with
# `N passed, N failed`.
B=${1:-build}
. tests/check_lib.sh
check_tmp px-hvd-test

"$B/pxhvd" --listen "$D" --device-memory 1G --vm 1:mem=256M,share=50,name=alpha \
    --vm 2:mem=128M,share=30 --vm 3:mem=1M,share=20 >"$T/hvd.log" 2>&1 &
DPID=$!
for i in $(seq 1 100); do [ -S "$D/control.sock" ] && break; sleep 0.1; done
check "daemon up" test -S "$D/control.sock"

# the directory and sockets are private to the daemon's user
check "dir 0700" test "$(stat -c %a "$D")" = 700
check "sockets 0600" test "$(stat -c %a "$D/vm1.sock")" = 600 -a "$(stat -c %a "$D/control.sock")" = 600

# inputs and the expected result from NumPy
$PY - "$T" <<'EOF'
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(7)
x = rng.standard_normal(1000).astype('<f4'); y = rng.standard_normal(1000).astype('<f4')
np.save(t + '/x.npy', x); np.save(t + '/y.npy', y)
np.save(t + '/want.npy', (np.float32(2.5) * x + y).astype('<f4'))
EOF
"$B/pxrun" --vm 1 --hvd "$D" examples/saxpy.px --arg a=2.5 --arg x="$T/x.npy" --arg y="$T/y.npy" \
    --out z="$T/z.npy" >"$T/out1" 2>"$T/err1"
rc=$?
check "pxrun --vm 1 saxpy exit 0" test $rc = 0
check "pxrun --vm 1 result = NumPy" $PY -c "
import sys, numpy as np
z = np.load('$T/z.npy'); w = np.load('$T/want.npy')
sys.exit(0 if z.dtype == w.dtype and z.shape == w.shape and np.allclose(z, w, rtol=1e-6, atol=1e-6) else 1)"

# the guest build: static, no Vulkan/LLVM, the same answer over the socket
make --no-print-directory B="$B" "$B/guest/pxrun" >/dev/null 2>&1
check "guest client is static" sh -c "! ldd '$B/guest/pxrun' >/dev/null 2>&1"
check "guest client has no Vulkan or LLVM" sh -c "! grep -q -e vkCreateInstance -e LLVMContextCreate '$B/guest/pxrun'"
"$B/guest/pxrun" --vm 2 --hvd "$D" examples/saxpy.px --arg a=2.5 --arg x="$T/x.npy" --arg y="$T/y.npy" \
    --out z="$T/zg.npy" >/dev/null 2>&1
check "guest pxrun --vm 2 = NumPy" $PY -c "
import sys, numpy as np
sys.exit(0 if np.allclose(np.load('$T/zg.npy'), np.load('$T/want.npy'), rtol=1e-6, atol=1e-6) else 1)"

# a large buffer (4 MiB each way): the shared-memory path (memfd) on a Unix
# socket, for the host client and the guest build alike
$PY -c "
import numpy as np
x = (np.arange(1 << 20) % 1000).astype('<f4'); y = np.ones(1 << 20, dtype='<f4')
np.save('$T/bx.npy', x); np.save('$T/by.npy', y); np.save('$T/bwant.npy', (np.float32(3) * x + y).astype('<f4'))"
for c in "$B/pxrun" "$B/guest/pxrun"; do
    rm -f "$T/bz.npy"
    "$c" --vm 1 --hvd "$D" examples/saxpy.px --arg a=3 --arg x="$T/bx.npy" --arg y="$T/by.npy" --out z="$T/bz.npy" >/dev/null 2>&1
    check "4 MiB through shared memory ($(basename "$(dirname "$c")")/pxrun) = NumPy" $PY -c "
import sys, numpy as np
sys.exit(0 if np.array_equal(np.load('$T/bz.npy'), np.load('$T/bwant.npy')) else 1)"
done

# a serial port (a raw pty bridged to vm2.sock, as QEMU's virtio-serial
# port is): the guest build over --hvd-port; then a client that dies in the
# middle of a frame, and the next client on the same stream resynchronises
/usr/bin/python3 tests/hvd_pty.py "$D/vm2.sock" "$T/port" &
BPID=$!
for i in $(seq 1 50); do [ -e "$T/port" ] && break; sleep 0.1; done
rm -f "$T/zp.npy"
"$B/guest/pxrun" --vm 2 --hvd-port "$T/port" examples/saxpy.px --arg a=2.5 --arg x="$T/x.npy" --arg y="$T/y.npy" \
    --out z="$T/zp.npy" >/dev/null 2>"$T/ep"
check "guest pxrun over a serial port = NumPy" $PY -c "
import sys, numpy as np
sys.exit(0 if np.allclose(np.load('$T/zp.npy'), np.load('$T/want.npy'), rtol=1e-6, atol=1e-6) else 1)"
$PY -c "
import os, struct
h = struct.pack('<IHHIII', 0x56485850, 1, 2, 5000, 77, 0)
x = 2166136261
for b in h: x = ((x ^ b) * 16777619) & 0xffffffff
f = os.open('$T/port', os.O_RDWR | os.O_NOCTTY)
os.write(f, h + struct.pack('<I', x) + b'GPU_KERNEL half a frame, then the process dies')
os.close(f)"
rm -f "$T/zp.npy"
"$B/guest/pxrun" --vm 2 --hvd-port "$T/port" examples/saxpy.px --arg a=2.5 --arg x="$T/x.npy" --arg y="$T/y.npy" \
    --out z="$T/zp.npy" >/dev/null 2>"$T/ep"
check "a client dead mid-frame: the next one resynchronises" $PY -c "
import sys, numpy as np
sys.exit(0 if np.allclose(np.load('$T/zp.npy'), np.load('$T/want.npy'), rtol=1e-6, atol=1e-6) else 1)"
kill $BPID 2>/dev/null; wait $BPID 2>/dev/null

# the same output as a local run (the first line names the VM)
for flags in "--fill x=iota --fill y=ones --arg a=2 --size N=100" "--arg x=$T/x.npy --arg y=$T/y.npy --arg a=-1"; do
    # shellcheck disable=SC2086
    "$B/pxrun" examples/saxpy.px $flags >"$T/local" 2>&1
    # shellcheck disable=SC2086
    "$B/pxrun" --vm 2 --hvd "$D" examples/saxpy.px $flags >"$T/remote" 2>&1
    check "--vm output = local ($flags)" sh -c "
        head -n 1 '$T/remote' | grep -q ', vm 2\$' &&
        test \"\$(head -n 1 '$T/local')\" = \"\$(head -n 1 '$T/remote' | sed 's/, vm 2\$//')\" &&
        test \"\$(tail -n +2 '$T/local')\" = \"\$(tail -n +2 '$T/remote')\""
done
"$B/pxrun" examples/softmax.px --fill logits=random:3 --arg temp=0.5 --size B=4 --size C=33 --json >"$T/lj" 2>/dev/null
"$B/pxrun" --vm 1 --hvd "$D" examples/softmax.px --fill logits=random:3 --arg temp=0.5 --size B=4 --size C=33 --json >"$T/rj" 2>/dev/null
check "--vm --json: same keys and buffers as local" $PY -c "
import json, sys
l = json.load(open('$T/lj')); r = json.load(open('$T/rj'))
ok = set(l) - {'jit_ms'} == set(r) - {'jit_ms'} and l['buffers'] == r['buffers'] and r['vm'] == 1
ok = ok and l['kernel'] == r['kernel'] and l['class'] == r['class'] and l['sizes'] == r['sizes']
sys.exit(0 if ok else 1)"
"$B/pxrun" --vm 1 --hvd "$D" examples/saxpy.px --fill x=iota --fill y=ones --arg a=2 --size N=64 --stats --repeat 3 >"$T/st" 2>&1
check "--vm --stats prints the stage table" grep -q '^total ' "$T/st"

# the daemon's own memory after 200 clients (8 at a time) have come and
# gone: back near its baseline (VmRSS from /proc, 32 MiB of slack)
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$DPID/status"; }
before=$(rss)
pids=
for k in 1 2 3 4 5 6 7 8; do
    ( for i in $(seq 1 25); do
        "$B/pxrun" --vm $((k % 2 + 1)) --hvd "$D" examples/saxpy.px --fill x=iota --fill y=ones --arg a=$i --size N=64 \
            2>/dev/null | grep -q "sum $((i * 2016 + 64))\$" || echo bad
      done ) >"$T/burst$k" &
    pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids
after=$(rss)
check "200 clients, every result right" test "$(cat "$T"/burst* | wc -l)" = 0
# (not under sanitizers: make asan sets PX_TEST_SAN; their quarantine and
# shadow memory grow with the work)
if [ -z "$PX_TEST_SAN" ]; then
    check "daemon VmRSS back near baseline ($before -> $after kB)" test "$after" -lt $((before + 32768))
fi

# refusals: one line on stderr, exit 1
one_line_1() { # name, expected text, command...
    name=$1; want=$2; shift 2
    "$@" >/dev/null 2>"$T/e"; rc=$?
    if [ $rc = 1 ] && [ "$(wc -l <"$T/e")" = 1 ] && grep -q "$want" "$T/e"; then ok "$name"
    else bad "$name (exit $rc: $(cat "$T/e"))"; fi
}
$PY -c "import numpy as np; np.save('$T/big.npy', np.zeros(1 << 20, dtype='<f4'))"
one_line_1 "quota refusal" "quota" "$B/pxrun" --vm 3 --hvd "$D" examples/saxpy.px --arg x="$T/big.npy" --arg y="$T/big.npy" --arg a=1
one_line_1 "unknown VM" "no VM 9" "$B/pxrun" --vm 9 --hvd "$D" examples/saxpy.px --fill x=ones --size N=4
one_line_1 "no hypervisor" "no hypervisor" "$B/pxrun" --vm 1 --hvd "$T/nothing" examples/saxpy.px --size N=4
printf 'GPU_KERNEL k\nGPU_PARAM x float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP x -> x : x + nope\nGPU_END\n' >"$T/bad.px"
"$B/pxrun" --vm 1 --hvd "$D" "$T/bad.px" --size N=4 >/dev/null 2>"$T/e"; rc=$?
check "compile error: exit 1 with file:line:col" sh -c "test $rc = 1 && grep -q '^$T/bad.px:4:[0-9]*: error' '$T/e'"

# pxctl
"$B/pxctl" --hvd "$D" status --json >"$T/status"
check "status --json" $PY -c "
import json, sys
s = json.load(open('$T/status'))
v = {x['id']: x for x in s['vms']}
ok = sorted(v) == [1, 2, 3] and [v[i]['share'] for i in (1, 2, 3)] == [50, 30, 20] and v[1]['name'] == 'alpha'
ok = ok and v[1]['launches_done'] >= 1 and s['policy'] == 'fair' and len(s['devices']) == 1
ok = ok and all(k in v[1] for k in ('mem_quota_bytes','mem_used_bytes','gpu_ns','queued','latency_p99_us','slices'))
sys.exit(0 if ok else 1)"
check "vm add over 100% refused" sh -c "! '$B/pxctl' --hvd '$D' vm add 4 mem=1M,share=10 2>/dev/null"
check "vm rm 3" sh -c "'$B/pxctl' --hvd '$D' vm rm 3 >/dev/null"
check "vm 3 socket gone" sh -c "sleep 0.3; test ! -e '$D/vm3.sock'"
check "vm add 4" sh -c "'$B/pxctl' --hvd '$D' vm add 4 mem=16M,share=20 >/dev/null"
for i in $(seq 1 50); do [ -S "$D/vm4.sock" ] && break; sleep 0.1; done
check "vm 4 serves" sh -c "'$B/pxrun' --vm 4 --hvd '$D' examples/saxpy.px --fill x=ones --fill y=ones --arg a=1 --size N=8 | grep -q 'sum 16'"
check "vm set 4" sh -c "'$B/pxctl' --hvd '$D' vm set 4 mem=32M >/dev/null"
check "vm set applied" sh -c "'$B/pxctl' --hvd '$D' status --json | grep -q '\"id\": 4, .*\"mem_quota_bytes\": 33554432'"
one_line_1 "vm migrate to its own device refused" "on device 0 already" "$B/pxctl" --hvd "$D" vm migrate 4 --device 0
check "policy fixed, live" sh -c "'$B/pxctl' --hvd '$D' policy fixed --slice-us 500 >/dev/null"
check "policy applied" sh -c "'$B/pxctl' --hvd '$D' status --json | grep -q '\"policy\": \"fixed\", \"slice_us\": 500'"
check "a launch under the fixed policy" sh -c "'$B/pxrun' --vm 4 --hvd '$D' examples/saxpy.px --size N=1000 --fill x=ones --fill y=ones --arg a=2 | grep -q 'z: float (1000,) \[3, 3'"
check "policy fair again" sh -c "'$B/pxctl' --hvd '$D' policy fair >/dev/null && '$B/pxctl' --hvd '$D' status --json | grep -q '\"policy\": \"fair\", \"slice_us\": 500'"
check "policy: a bad name is a usage error (exit 2)" sh -c "'$B/pxctl' --hvd '$D' policy fast 2>/dev/null; test \$? = 2"
check "policy: a bad slice is a usage error (exit 2)" sh -c "'$B/pxctl' --hvd '$D' policy fair --slice-us 0 2>/dev/null; test \$? = 2"
check "pxctl top --once" sh -c "'$B/pxctl' --hvd '$D' top --once --interval-ms 100 | grep -q '^ *4 '"
check "pxctl bad usage exit 2" sh -c "'$B/pxctl' --hvd '$D' vm frob 2>/dev/null; test \$? = 2"

# SIGTERM: exit 0, sockets removed
kill -TERM "$DPID"; wait "$DPID"; rc=$?; DPID=
check "SIGTERM exit 0" test $rc = 0
check "sockets removed" sh -c "! ls '$D'/*.sock >/dev/null 2>&1"

# start-up errors
st() { "$B/pxhvd" "$@" >/dev/null 2>&1 & p=$!; sleep 3 & s=$!; wait $p; rc=$?; kill $s 2>/dev/null; echo $rc; }
check "bad command line: exit 2" test "$("$B/pxhvd" --listen "$T/x" --frob 2>/dev/null; echo $?)" = 2
check "shares over 100: exit 2" test "$("$B/pxhvd" --listen "$T/x" --device-memory 1G --vm 1:Q8 --vm 2:Q4 2>/dev/null; echo $?)" = 2
check "quotas over capacity: exit 2" test "$("$B/pxhvd" --listen "$T/x" --device-memory 1G --vm 1:mem=2G,share=10 2>/dev/null; echo $?)" = 2
touch "$T/file"
check "DIR a file: exit 1" test "$("$B/pxhvd" --listen "$T/file" --device-memory 1G 2>/dev/null; echo $?)" = 1
mkdir -m 755 "$T/open"
check "DIR not private: exit 1" test "$("$B/pxhvd" --listen "$T/open" --device-memory 1G 2>/dev/null; echo $?)" = 1

checks_done
