#!/bin/sh
# tests/multidev.sh BUILDDIR — pxhvd over several devices (issue 15): the
# test device opened twice (two logical devices) and the CPU backend;
# best-fit placement of VMs without device= and the refusal naming what is
# free where; `pxctl vm migrate` while a client keeps launching (its
# launches see no error, the results are NumPy's, byte for byte); the
# status JSON's counters; auto-balance moving one of three busy VMs off a
# crowded device and then staying put. Ends with `N passed, N failed`.
B=${1:-build}
. tests/check_lib.sh
check_tmp px-multidev
up() { for i in $(seq 1 100); do [ -S "$1/control.sock" ] && return 0; sleep 0.1; done; return 1; }
json() { "$B/pxctl" --hvd "$1" status --json | $PY -c "import sys, json; j = json.load(sys.stdin); print($2)"; }

# an integer kernel: exact on every backend. Stage 0 is long and sliced,
# stage 1 a multi-pass prefix sum.
cat >"$T/two.px" <<'EOF'
GPU_KERNEL two
GPU_PARAM reps uint
GPU_PARAM a uint[N]
GPU_PARAM b uint[N]
GPU_PARAM c uint[N]
GPU_THREAD_CODE:
    PARALLEL_FOR i IN 0..N {
        var v = a[i]
        for r in 0u..reps {
            v = v * 1664525u + 1013904223u
        }
        b[i] = v
    }
    PARALLEL_SCAN SUM b -> c
GPU_END
EOF
$PY - "$T" <<'EOF'
import sys, numpy as np
t = sys.argv[1]
a = ((np.arange(1 << 16, dtype=np.uint64) * 40503 + 7) % (1 << 32)).astype('<u4')
np.save(t + '/a.npy', a)
v = a.copy()
for _ in range(300):
    v = v * np.uint32(1664525) + np.uint32(1013904223)
np.save(t + '/wb.npy', v)
np.save(t + '/wc.npy', np.cumsum(v, dtype=np.uint32))
EOF
same() { $PY -c "
import sys, numpy as np
sys.exit(0 if np.array_equal(np.load('$1'), np.load('$2')) else 1)"; }

"$B/pxhvd" --listen "$D" --device 0 --device 0 --device cpu --device-memory 1G --balance off \
    --vm 1:mem=64M,share=50,device=0 >"$T/hvd.log" 2>&1 &
DPID=$!
check "daemon with lavapipe twice and cpu up" up "$D"
check "three devices in status" test "$(json "$D" "len(j['devices'])")" = 3

# placement, best fit: 90 % fits on devices 1 and 2 (empty): the lower
# index; then 60 % fits only on device 2; then 70 % nowhere
"$B/pxctl" --hvd "$D" vm add 2 share=90,mem=1M >/dev/null 2>&1
check "VM 2 (90 %) placed on device 1" test "$(json "$D" "[v['device'] for v in j['vms'] if v['id'] == 2][0]")" = 1
"$B/pxctl" --hvd "$D" vm add 3 share=60,mem=1M >/dev/null 2>&1
check "VM 3 (60 %) placed on device 2" test "$(json "$D" "[v['device'] for v in j['vms'] if v['id'] == 3][0]")" = 2
"$B/pxctl" --hvd "$D" vm add 4 share=70,mem=1M >"$T/o4" 2>"$T/e4"
rc=$?
check "VM 4 (70 %) refused, exit 1" test $rc = 1
check "refusal says what is free where" grep -q "device 0 has 50% share.*device 1 has 10% share.*device 2 has 40% share" "$T/e4"
"$B/pxctl" --hvd "$D" vm rm 2 >/dev/null 2>&1
"$B/pxctl" --hvd "$D" vm rm 3 >/dev/null 2>&1

# a client keeps launching (30 launches in one session) while VM 1 moves
# 0 -> 1 -> 2 (cpu) -> 0
"$B/pxrun" --vm 1 --hvd "$D" "$T/two.px" --arg reps=300 --arg a="$T/a.npy" --out b="$T/b.npy" --out c="$T/c.npy" \
    --repeat 150 >"$T/run.out" 2>"$T/run.err" &
CPIDS=$!
mig_ok=0
for dev in 1 2 0; do
    sleep 0.3
    "$B/pxctl" --hvd "$D" vm migrate 1 --device $dev >"$T/m$dev" 2>&1 &&
        grep -q "^VM 1 moved to device $dev: [1-9][0-9]* bytes, [0-9]* launches continued there, downtime [0-9.]* ms, total [0-9.]* ms" "$T/m$dev" &&
        mig_ok=$((mig_ok + 1))
done
wait $CPIDS
rc=$?
CPIDS=
check "three migrations with the client running" test $mig_ok = 3
check "the client saw no error (exit 0)" test $rc = 0 -a ! -s "$T/run.err"
both_same() { same "$T/b.npy" "$T/wb.npy" && same "$T/c.npy" "$T/wc.npy"; }
check "its results are NumPy's, byte for byte" both_same
check "status: VM 1 on device 0, 3 migrations" test "$(json "$D" "[(v['device'], v['migrations']) for v in j['vms'] if v['id'] == 1][0]")" = "(0, 3)"
check "status: device counters" test "$(json "$D" "[(d['migrations_in'], d['migrations_out']) for d in j['devices']]")" = "[(1, 1), (1, 1), (1, 1)]"
"$B/pxctl" --hvd "$D" vm migrate 1 --device 7 >/dev/null 2>"$T/e7"
rc=$?
check "migrate to a missing device: exit 1, one line" test $rc = 1 -a "$(wc -l <"$T/e7")" = 1
"$B/pxctl" --hvd "$D" vm migrate 9 --device 1 >/dev/null 2>&1
check "migrate a missing VM: exit 1" test $? = 1
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=

# start-up: VMs placed in order; one that fits nowhere is a message and exit 2
"$B/pxhvd" --listen "$T/h2" --device 0 --device cpu --balance off --vm 1:share=60,mem=1M --vm 2:share=60,mem=1M \
    --vm 3:share=90,mem=1M >"$T/o3" 2>"$T/e3"
rc=$?
check "a VM that fits nowhere at start-up: exit 2" test $rc = 2
check "... saying what is free where" grep -q "VM 3 (share 90%, quota 1 MiB) fits on no device: device 0 has 40% share .*; device 1 has 40% share" "$T/e3"

# auto-balance: three VMs kept busy on device 0 of two; one moves within a
# few periods, then nothing moves while the load stays
"$B/pxhvd" --listen "$D" --device 0 --device 0 --device-memory 1G --balance 300ms \
    --vm 1:mem=16M,share=30,device=0 --vm 2:mem=16M,share=30,device=0 --vm 3:mem=16M,share=30,device=0 \
    >"$T/bal.log" 2>&1 &
DPID=$!
check "balancing daemon up" up "$D"
for v in 1 2 3; do
    "$B/pxrun" --vm $v --hvd "$D" "$T/two.px" --arg reps=2000 --arg a="$T/a.npy" --repeat 1000 >/dev/null 2>&1 &
    CPIDS="$CPIDS $!"
done
for i in $(seq 1 100); do grep -q "balance: VM" "$T/bal.log" && break; sleep 0.1; done
check "a busy VM moved to the idle device" grep -q "balance: VM [123] .* moved from device 0 .* to device 1" "$T/bal.log"
m1=$(json "$D" "j['balance_moves']")
sleep 2
m2=$(json "$D" "j['balance_moves']")
check "one move, then none while balanced ($m1 then $m2)" test "$m1" = 1 -a "$m2" = 1
check "status: balance counters per device" test "$(json "$D" "[(d['balance_out'], d['balance_in']) for d in j['devices']]")" = "[(1, 0), (0, 1)]"
for p in $CPIDS; do kill "$p" 2>/dev/null; done
CPIDS=
kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=

checks_done
