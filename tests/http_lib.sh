# tests/http_lib.sh — sourced by tests/metrics.sh and tests/dashboard.sh:
# the counters of tests/check_lib.sh, a temp dir, pxhvd with --metrics on a
# free loopback port, background load by VM, and a cleanup that ends every
# process the test started (by its id) on every path out. Needs B set.
. tests/check_lib.sh
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in tests/
T=$(mktemp -d /tmp/px-http-test.XXXXXX)
PIDS=; LOAD=

# need PROGRAM: the suite ends with one failure when PROGRAM (a path) is
# not installed
need() {
    [ -x "$1" ] && return 0
    bad "$(basename "$1") is not installed (tools/install-deps.sh installs it)"
    checks_done; exit 1
}
# run_checks CMD...: runs a checker that prints ok/FAIL lines and counts them
run_checks() {
    out=$("$@" 2>&1)
    printf '%s\n' "$out"
    pass=$((pass + $(printf '%s\n' "$out" | grep -c '^ok ')))
    fail=$((fail + $(printf '%s\n' "$out" | grep -c '^FAIL ')))
    printf '%s\n' "$out" | grep -q -e '^ok ' -e '^FAIL ' || bad "$* printed no result"
}
cleanup() {
    for p in $LOAD $PIDS; do kill "$p" 2>/dev/null; done
    for p in $LOAD $PIDS; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# start_hvd NAME ARGS...: pxhvd with its sockets in $T/NAME and its
# metrics port in $PORT ($URL); 0 when it answers within 20 s.
start_hvd() {
    D=$T/$1; shift
    "$B/pxhvd" --listen "$D" --metrics 127.0.0.1:0 "$@" >"$D.log" 2>&1 &
    DPID=$!; PIDS="$PIDS $DPID"
    PORT=
    for i in $(seq 1 200); do
        PORT=$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$D.log")
        [ -n "$PORT" ] && [ -S "$D/control.sock" ] && break
        sleep 0.1
    done
    URL=http://127.0.0.1:$PORT
    [ -n "$PORT" ]
}

# stop_hvd: SIGTERM, and its exit status back
stop_hvd() {
    kill -TERM "$DPID"; wait "$DPID"; rc=$?
    PIDS=$(echo "$PIDS" | sed "s/ $DPID//")
    return $rc
}

# get URL: the body on stdout; exit 1 on an HTTP error or after 10 s
get() {
    $PY -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"
}

# load VM N ARGS...: N clients of VM each running a kernel ARGS many times
# (until stop_load), so the VM always has a launch queued.
load() {
    vm=$1; n=$2; shift 2
    for i in $(seq 1 "$n"); do
        "$B/pxrun" --vm "$vm" --hvd "$D" "$@" >/dev/null 2>&1 &
        LOAD="$LOAD $!"
    done
}
stop_load() {
    for p in $LOAD; do kill "$p" 2>/dev/null; done
    for p in $LOAD; do wait "$p" 2>/dev/null; done
    LOAD=
}
# a launch of a few ms on lavapipe
MATMUL="examples/matmul.px --fill x=ones --fill W=ones --fill b=ones --size B=256 --size K=256 --size N=256"
