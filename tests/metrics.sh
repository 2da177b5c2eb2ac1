#!/bin/sh
# tests/metrics.sh BUILDDIR — pxhvd --metrics against a real Prometheus
# server (Debian's prometheus): it scrapes pxhvd every second while VMs
# run work, and queries through its HTTP API check the series
# (tests/metrics_check.py: zeros from creation, GPU rates in the shares'
# proportions, idle device 0, ratios <= 1, no counter going backwards, the
# latency histogram, a re-created VM as a new series); then malformed HTTP
# (tests/http_abuse.py) leaves pxhvd serving. Ends with `N passed, N failed`.
B=${1:-build}
. tests/http_lib.sh
PROM=/usr/bin/prometheus

need "$PROM"

# device 0 for VMs 1-3 (50/30/20), device 1 (the same GPU again) for VM 4,
# which stays idle: the auto-balancer is off, or it would move a busy VM
# to the idle device (tests/multidev.sh tests that)
check "pxhvd --metrics up" start_hvd hvd --device 0 --device 0 --device-memory 1G --balance off \
    --vm 1:mem=256M,share=50,name=alpha,device=0 --vm 2:mem=128M,share=30,device=0 \
    --vm 3:mem=64M,share=20,device=0 --vm 4:mem=16M,share=10,device=1

PP=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/prom.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pxhvd
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOF
"$PROM" --config.file="$T/prom.yml" --storage.tsdb.path="$T/prom" --web.listen-address="127.0.0.1:$PP" \
    --log.level=warn >"$T/prom.log" 2>&1 &
PIDS="$PIDS $!"
PURL=http://127.0.0.1:$PP
for i in $(seq 1 300); do get "$PURL/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done
check "prometheus ready" get "$PURL/-/ready"

run_checks $PY tests/metrics_check.py zeros "$PURL" "$URL"

# VM 5 on device 1, removed and added again: a new incarnation
"$B/pxctl" --hvd "$D" vm add 5 mem=1M,share=5,device=1 >/dev/null
load 1 3 $MATMUL --repeat 1000000
load 2 3 $MATMUL --repeat 1000000
load 3 3 $MATMUL --repeat 1000000
sleep 2
"$B/pxctl" --hvd "$D" vm rm 5 >/dev/null
for i in $(seq 1 50); do "$B/pxctl" --hvd "$D" vm add 5 mem=1M,share=5,device=1 >/dev/null 2>&1 && break; sleep 0.1; done
run_checks $PY tests/metrics_check.py steady "$PURL" "$URL"
# past the longest window the checks read (the 10 s achieved share)
sleep 10
run_checks $PY tests/metrics_check.py load "$PURL" "$URL"
run_checks $PY tests/metrics_check.py reinc "$PURL" "$URL"
# hostile HTTP while the VMs still run
run_checks $PY tests/http_abuse.py "$PORT"
run_checks $PY tests/metrics_check.py abuse "$PURL" "$URL"
stop_load

check "pxhvd stops on SIGTERM with the endpoint open (exit 0)" stop_hvd
check "a bad --metrics address is a usage error (exit 2)" sh -c "'$B/pxhvd' --listen '$T/x' --metrics nonsense >/dev/null 2>&1; test \$? = 2"
checks_done
