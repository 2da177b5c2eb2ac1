#!/bin/sh
# tests/vm.sh — real guests: boots QEMU virtual machines from the image of
# `make guest-image` (BUILD/guest) through guest/run-vm.sh and checks what
# comes back, byte by byte. Ends with one `N passed, N failed` line.
#   sh tests/vm.sh [BUILD]
# Phase 1: three guests at the same time, each wired to its own host socket
# (guest/relay.py stands in for pxhvd's DIR/vm<ID>.sock): each sends a
# payload generated from its own seed through /dev/vport0p1, the host checks
# every byte and answers with a transform of it, the guest checks every byte
# of the answer. Phase 2, again at the same time: a control whose answer has
# one bit flipped (the guest's check must fail), a control that sends the
# wrong seed's payload (the host's check must fail), a failing command whose status,
# stdout, stderr and a file copied in must come back exactly, a hanging
# command that --cmd-timeout must kill, and a guest that --timeout kills
# while it boots. Plus the errors for a missing socket
# and for one nobody listens on.
B=${1:-build}
IMG=$B/guest
# how long the hanging command may run (counted from its start, so a slow
# boot on a loaded host does not matter)
HANG_TIMEOUT=${PX_VM_HANG_TIMEOUT:-3}
pass=0 fail=0
ok() { echo "ok $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
now() { date +%s.%N; }
secs() { awk "BEGIN{printf \"%.1f\", $1}"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }

if [ ! -f "$IMG/vmlinuz" ] || [ ! -f "$IMG/initramfs.cpio.gz" ]; then
    # a build tree of its own (make asan): its image, built the usual way
    make --no-print-directory -s B="$B" guest-image >/dev/null 2>&1
fi
if [ ! -f "$IMG/vmlinuz" ] || [ ! -f "$IMG/initramfs.cpio.gz" ]; then
    bad "no guest image in $IMG: run make guest-image"
    finish
fi
for p in qemu-system-x86_64 python3 busybox; do
    command -v $p >/dev/null 2>&1 || { bad "$p not found: sh guest/install-deps.sh"; finish; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/px-vmtest.XXXXXX")
relay_pid=
cleanup() { [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
RUN="sh guest/run-vm.sh --image $IMG"

t_all=$(now)
# decided once here, so the guests below do not each wait for the probe
$RUN --probe

# name:seed:bytes[:corrupt]; sizes from a few KiB to 64 KiB, so the port's
# buffers fill and the transfer goes in many pieces
# vm5 expects seed 56 but its guest sends seed 55: a control that the host's
# check finds a guest on the wrong socket
GUESTS="vm1:11:3000 vm2:22:8192 vm3:33:65536 vm4:44:4096:corrupt vm5:56:1024"
specs=
for g in $GUESTS; do specs="$specs $T/${g%%:*}.sock:${g#*:}"; done
python3 guest/relay.py --ready "$T/ready" --timeout 120 $specs >"$T/relay.out" 2>&1 &
relay_pid=$!
n=0
while [ ! -f "$T/ready" ]; do
    n=$((n + 1))
    if [ $n -gt 200 ] || ! kill -0 $relay_pid 2>/dev/null; then
        cat "$T/relay.out"; bad "relay did not start"; finish
    fi
    sleep 0.05
done

# start_guest NAME ARGS...: runs one guest in the background, its stdout,
# stderr and status to $T/NAME.{out,err,rc}
start_guest() {
    g=$1; shift
    ( $RUN --name "$g" --console "$T/$g.console" "$@" >"$T/$g.out" 2>"$T/$g.err"
      echo $? >"$T/$g.rc" ) &
    eval "pid_$g=$!"
}
show() { sed 's/^/    /' "$T/$1.err" "$T/$1.out"; }

# ---- phase 1: three guests at once ----------------------------------------
t1=$(now)
for g in vm1 vm2 vm3; do
    spec=$(echo "$GUESTS" | tr ' ' '\n' | grep "^$g:")
    seed=$(echo "$spec" | cut -d: -f2); bytes=$(echo "$spec" | cut -d: -f3)
    start_guest $g --socket "$T/$g.sock" --cmd "pxecho --port /dev/vport0p1 --seed $seed --bytes $bytes"
done
# a socket nobody listens on: a clear error, no boot
$RUN --socket "$T/nobody.sock" --cmd true >"$T/nosock.out" 2>"$T/nosock.err"
rc=$?
if [ $rc = 2 ] && grep -q 'not a listening Unix socket' "$T/nosock.err"; then
    ok "missing socket: exit 2 with a clear error"
else
    bad "missing socket: exit $rc"; sed 's/^/    /' "$T/nosock.err"
fi
# a socket file whose server is gone: QEMU cannot connect, the same error
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
$RUN --socket "$T/stale.sock" --cmd true >"$T/stale.out" 2>"$T/stale.err"
rc=$?
if [ $rc = 2 ] && grep -q 'nobody listens on' "$T/stale.err"; then
    ok "stale socket: exit 2 with a clear error"
else
    bad "stale socket: exit $rc"; sed 's/^/    /' "$T/stale.err"
fi
wait $pid_vm1 $pid_vm2 $pid_vm3
t1e=$(now)
echo "three guests in parallel: $(secs "$t1e - $t1") s"
for g in vm1 vm2 vm3; do grep '^run-vm' "$T/$g.err" | sed 's/^/    /'; done

# ---- phase 2: control, failing command, hanging command at once ------------
head -c 200000 /dev/urandom >"$T/blob.bin"
t2=$(now)
start_guest vm4 --socket "$T/vm4.sock" --cmd "pxecho --port /dev/vport0p1 --seed 44 --bytes 4096"
start_guest vm5 --socket "$T/vm5.sock" --cmd-timeout 20 --cmd "pxecho --port /dev/vport0p1 --seed 55 --bytes 1024"
start_guest fail --file "$T/blob.bin:/data/blob.bin" \
    --cmd 'md5sum /data/blob.bin; echo to-stderr >&2; exit 7'
start_guest hang --timeout 120 --cmd-timeout "$HANG_TIMEOUT" --cmd 'echo started; sleep 1000'
# the wall-clock timeout, boot included: 1 s is too short for any boot
start_guest slow --timeout 1 --cmd 'echo started'
wait $pid_vm4 $pid_vm5 $pid_fail $pid_hang $pid_slow
echo "phase 2 (5 guests in parallel, one killed ${HANG_TIMEOUT}s into its command): $(secs "$(now) - $t2") s"
# every guest has ended, so every connection is closed: the relay ends at
# once unless a QEMU never connected (then it would wait for its timeout)
n=0
while kill -0 $relay_pid 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
kill $relay_pid 2>/dev/null && echo "relay still waiting after every guest ended: stopped"
wait $relay_pid
relay_pid=

# ---- checks -----------------------------------------------------------------
for g in vm1 vm2 vm3; do
    spec=$(echo "$GUESTS" | tr ' ' '\n' | grep "^$g:")
    seed=$(echo "$spec" | cut -d: -f2); bytes=$(echo "$spec" | cut -d: -f3)
    rc=$(cat "$T/$g.rc")
    want="pxecho: ok seed $seed, $bytes bytes sent and $bytes checked"
    rl=$(grep "^relay $g: " "$T/relay.out")
    if [ "$rc" = 0 ] && [ "$(cat "$T/$g.out")" = "$want" ] && [ "${rl#relay $g: ok }" != "$rl" ]; then
        ok "$g: $bytes bytes each way, every byte checked by host and guest"
    else
        bad "$g: exit $rc; relay: ${rl:-no line}"; show $g
        tr -d '\r' <"$T/$g.console" | tail -n 10 | sed 's/^/    | /'
    fi
done

rc=$(cat "$T/vm4.rc")
rl=$(grep "^relay vm4: " "$T/relay.out")
if [ "$rc" = 1 ] && grep -q '^pxecho: MISMATCH seed 44: 1 of 4096 bytes wrong, first at 2048 ' "$T/vm4.out" &&
   [ "${rl#relay vm4: ok }" != "$rl" ]; then
    ok "control: one flipped bit in the answer is found by the guest (exit 1)"
else
    bad "control: exit $rc (want 1 and a MISMATCH at byte 2048); relay: ${rl:-no line}"; show vm4
fi

rc=$(cat "$T/vm5.rc")
rl=$(grep "^relay vm5: " "$T/relay.out")
if [ "$rl" = "relay vm5: FAIL request for seed 55, 1024 bytes; this socket expects seed 56, 1024 bytes" ] &&
   [ "$rc" = 1 ] && grep -q '^pxecho: short answer: 0 of 1024 bytes' "$T/vm5.out"; then
    ok "control: the host finds a guest sending another guest's payload; the guest sees no answer (exit 1)"
else
    bad "control vm5: exit $rc; relay: ${rl:-no line}"; show vm5
fi

rc=$(cat "$T/fail.rc")
want_md5=$(md5sum <"$T/blob.bin" | cut -d' ' -f1)
got_md5=$(cut -d' ' -f1 "$T/fail.out")
if [ "$rc" = 7 ]; then ok "failing command: its status 7 comes back"
else bad "failing command: exit $rc, want 7"; show fail; fi
if [ "$got_md5" = "$want_md5" ] && [ "$(awk '{print $2}' "$T/fail.out")" = "/data/blob.bin" ]; then
    ok "--file: 200000 bytes copied in intact (md5 $want_md5), stdout back"
else
    bad "--file: guest md5 '$got_md5', host $want_md5"; show fail
fi
if grep -qx 'to-stderr' "$T/fail.err" && ! grep -q 'to-stderr' "$T/fail.out"; then
    ok "stderr comes back apart from stdout"
else
    bad "stderr not separate"; show fail
fi

rc=$(cat "$T/hang.rc")
if [ "$rc" = 124 ] && grep -q "timeout: command killed after running ${HANG_TIMEOUT}s" "$T/hang.err" &&
   [ "$(cat "$T/hang.out")" = started ]; then
    ok "hanging command: killed ${HANG_TIMEOUT}s into it (--cmd-timeout) and reported (exit 124)"
else
    bad "hanging command: exit $rc, want 124 and the timeout message"; show hang
fi
rc=$(cat "$T/slow.rc")
if [ "$rc" = 124 ] && grep -q "timeout: guest killed after 1s" "$T/slow.err" && [ ! -s "$T/slow.out" ]; then
    ok "wall-clock timeout: a guest still booting after 1 s is killed and reported (exit 124)"
else
    bad "wall-clock timeout: exit $rc, want 124"; show slow
fi

echo "relay:"; sed 's/^/    /' "$T/relay.out"
echo "vm-test: $(secs "$(now) - $t_all") s in all"
finish
