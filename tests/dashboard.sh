#!/bin/sh
# tests/dashboard.sh BUILDDIR — pxhvd's dashboard (GET /) in headless
# Chromium (Debian's chromium): the page is loaded while and after VMs run
# work, a screenshot is taken (BUILDDIR/dashboard.png: docs/img/ is a copy
# of it), and the numbers on the page after its scripts ran (--dump-dom)
# are checked against /api/status and against what the test set up
# (tests/dashboard_check.py); with 64 VMs and with 1 VM the page shows a
# row for each. Ends with `N passed, N failed`.
B=${1:-build}
. tests/http_lib.sh
CHROME=/usr/bin/chromium

need "$CHROME"

# chrome MODE OUT [WIDTHxHEIGHT]: the dashboard at $URL after 3 s of its
# virtual time (3 refreshes); MODE dom (the page's DOM into OUT) or png
chrome() {
    flags="--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=$T/chrome --virtual-time-budget=3000"
    if [ "$1" = dom ]; then
        timeout 60 "$CHROME" $flags --window-size="${3:-1280,900}" --dump-dom "$URL/" >"$2" 2>>"$T/chrome.log"
    else
        timeout 60 "$CHROME" $flags --window-size="${3:-1280,900}" --screenshot="$2" "$URL/" >>"$T/chrome.log" 2>&1
    fi
}

# a PNG of the size asked for, not blank: its width and height from the
# header, and more than a few KiB (a blank page compresses to almost none)
png_ok() {
    $PY - "$1" "$2" "$3" <<'EOF'
import struct, sys, os
b = open(sys.argv[1], 'rb').read(32)
w, h = struct.unpack('>II', b[16:24])
sys.exit(0 if b[:8] == b'\x89PNG\r\n\x1a\n' and (w, h) == (int(sys.argv[2]), int(sys.argv[3]))
         and os.path.getsize(sys.argv[1]) > 20000 else 1)
EOF
}

# ---- four VMs sharing a device, three of them busy -------------------------
check "pxhvd --metrics up" start_hvd four --device-memory 2G --vm 1:mem=256M,share=40,name=web \
    --vm 2:mem=512M,share=30,name=train --vm 3:mem=128M,share=20,name=batch --vm 4:mem=64M,share=10,name=idle
# VM 4: exactly 7 launches, done before the others start
"$B/pxrun" --vm 4 --hvd "$D" examples/saxpy.px --fill x=ones --fill y=ones --arg a=1 --size N=1000 --repeat 7 >/dev/null
load 1 2 $MATMUL --repeat 1000000
load 2 2 $MATMUL --repeat 1000000
load 3 1 $MATMUL --repeat 1000000
sleep 4
chrome png "$B/dashboard.png"
check "screenshot under load: 1280x900 PNG, not blank" png_ok "$B/dashboard.png" 1280 900
stop_load
# idle now: the page and /api/status are read a moment apart
sleep 1
chrome dom "$T/dom.html"
get "$URL/api/status" >"$T/status.json"
run_checks $PY tests/dashboard_check.py "$T/dom.html" "$T/status.json" 4 \
    "1:mem_used_bytes=0.0 / 256.0 MiB" "2:share=30.0%" "3:name=batch" "4:launches_done=7" "4:launches_failed=0" \
    "4:queued=0"
# pxctl top / status: the same numbers in the terminal
"$B/pxctl" --hvd "$D" status >"$T/pxctl.txt"
check "pxctl status shows /api/status's numbers (memory, share, achieved, queue, p99, done, failed)" \
    $PY - "$T/pxctl.txt" "$T/status.json" <<'EOF'
import json, sys
st = {str(v['id']): v for v in json.load(open(sys.argv[2]))['vms']}
lines = [l.split() for l in open(sys.argv[1])]
head = [r[:2] for r in lines].index(['VM', 'name'])
rows = {r[0]: r for r in lines[head + 1:]}
def same(r, v):
    mem = '%.1f/%.1f' % (v['mem_used_bytes'] / 1048576, v['mem_quota_bytes'] / 1048576)
    return (r[1] == v['name'] and r[3] == mem and r[4] == '%.1f%%' % v['share']
            and abs(float(r[6].rstrip('%')) - v['achieved_60s']) <= 2 and r[7:] ==
            [str(v['queued']), '%.0f' % v['latency_p99_us'], str(v['launches_done']), str(v['launches_failed'])])
sys.exit(0 if sorted(rows) == sorted(st) and all(same(rows[k], st[k]) for k in st) else 1)
EOF
check "SIGTERM exit 0" stop_hvd

# ---- 64 VMs: a row each ------------------------------------------------------
vms=
for i in $(seq 1 64); do vms="$vms --vm $i:mem=8M,share=1.5,name=t$i"; done
check "pxhvd with 64 VMs up" start_hvd many --device-memory 1G $vms
for i in 1 17 64; do
    "$B/pxrun" --vm $i --hvd "$D" examples/saxpy.px --fill x=ones --fill y=ones --arg a=1 --size N=1000 --repeat $i >/dev/null
done
chrome dom "$T/dom64.html" 1280,2400
get "$URL/api/status" >"$T/status64.json"
run_checks $PY tests/dashboard_check.py "$T/dom64.html" "$T/status64.json" 64 "64:launches_done=64" \
    "17:launches_done=17" "1:launches_done=1" "2:launches_done=0" "33:mem_used_bytes=0.0 / 8.0 MiB"
chrome png "$B/dashboard-64.png" 1280,2400
check "screenshot with 64 VMs: 1280x2400 PNG" png_ok "$B/dashboard-64.png" 1280 2400
check "SIGTERM exit 0 (64 VMs)" stop_hvd

# ---- one VM -------------------------------------------------------------------
check "pxhvd with 1 VM up" start_hvd one --device-memory 1G --vm 9:mem=1M,share=100
chrome dom "$T/dom1.html"
get "$URL/api/status" >"$T/status1.json"
run_checks $PY tests/dashboard_check.py "$T/dom1.html" "$T/status1.json" 1 "9:launches_done=0" "9:achieved_10s=0.0%" \
    "9:share=100.0%"
check "SIGTERM exit 0 (1 VM)" stop_hvd
checks_done
