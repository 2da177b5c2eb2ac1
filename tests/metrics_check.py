#!/usr/bin/python3
"""tests/metrics_check.py STAGE PROM_URL HVD_URL — the checks of
tests/metrics.sh, asked of a real Prometheus server that scrapes pxhvd
(queries through its HTTP API, /api/v1/query) and of pxhvd's /api/status.
Prints `ok NAME` or `FAIL NAME: why` per check. Expected values come from
the test's own set-up (the VMs' shares and quotas on the command line),
never from pxhvd. Stages:

  zeros   before any launch: every VM's series exist and read 0
  load    VMs 1-3 (shares 50/30/20) busy on device 0, VM 4 idle on device 1
  reinc   VM 5 was added, removed and added again
  abuse   pxhvd's HTTP endpoint still answers after tests/http_abuse.py
"""
import json
import math
import sys
import time
import urllib.parse
import urllib.request

from checklib import done, report

stage, PROM, HVD = sys.argv[1], sys.argv[2], sys.argv[3]
SHARES = {"1": 0.5, "2": 0.3, "3": 0.2}
QUOTAS = {"1": 256 << 20, "2": 128 << 20, "3": 64 << 20, "4": 16 << 20}


def query(expr):
    """The instant vector of expr now: [(labels, value)]."""
    url = PROM + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    body = json.load(urllib.request.urlopen(url, timeout=10))
    if body.get("status") != "success":
        raise RuntimeError(expr + ": " + json.dumps(body))
    return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]


def by_vm(expr):
    return {m.get("vm"): v for m, v in query(expr)}


def status():
    return json.load(urllib.request.urlopen(HVD + "/api/status", timeout=10))


def wait_for(expr, pred, seconds):
    """Polls expr until pred(result) holds (Prometheus scrapes every 1 s)."""
    res = []
    for _ in range(int(seconds * 4)):
        res = query(expr)
        if pred(res):
            return res
        time.sleep(0.25)
    return res


def zeros():
    up = wait_for('up{job="pxhvd"}', lambda r: r and r[0][1] == 1, 30)
    report("prometheus scrapes pxhvd (up == 1)", bool(up) and up[0][1] == 1, str(up))
    for name in ("px_vm_gpu_seconds_total", "px_vm_memory_used_bytes", "px_vm_queue_depth",
                 "px_vm_launch_latency_seconds_count"):
        got = by_vm(name)
        report(name + ": every VM from its creation, all 0",
               sorted(got) == ["1", "2", "3", "4"] and all(v == 0 for v in got.values()), str(got))
    got = by_vm("px_vm_share_achieved_ratio")
    report("share achieved of idle VMs is 0", len(got) == 4 and all(v == 0 for v in got.values()), str(got))
    got = by_vm("px_vm_memory_quota_bytes")
    report("px_vm_memory_quota_bytes = the quotas given",
           {k: int(v) for k, v in got.items()} == QUOTAS, str(got))
    got = by_vm("px_vm_share_ratio")
    want = dict(SHARES, **{"4": 0.1})
    report("px_vm_share_ratio = the shares given",
           sorted(got) == sorted(want) and all(abs(got[k] - want[k]) < 1e-9 for k in want), str(got))
    busy = query("px_device_busy_ratio")
    report("idle devices read 0 busy", len(busy) == 4 and all(v == 0 for _, v in busy), str(busy))
    n = query('sum(px_vm_launches_total)')
    report("launches_total present with zeros (4 classes x 2 results per VM)",
           len(query("px_vm_launches_total")) == 32 and n and n[0][1] == 0, str(n))


def steady():
    """Waits until every busy VM's clients have started and launched (9
    clients compile under load before their first launch): the load
    checks' windows (5 s and 10 s) must not hold a VM's start-up."""
    done = {}
    for _ in range(600):
        done = {str(v["id"]): v["launches_done"] for v in status()["vms"]}
        if all(done.get(k, 0) >= 20 for k in SHARES):
            break
        time.sleep(0.1)
    report("every busy VM has 20 launches done before the window", all(done.get(k, 0) >= 20 for k in SHARES),
           str(done))


def load():
    rate = by_vm('rate(px_vm_gpu_seconds_total{device="0"}[5s])')
    total = sum(rate.values())
    report("three busy VMs have a GPU rate", sorted(rate) == ["1", "2", "3"] and total > 0, str(rate))
    if total > 0:
        frac = {k: v / total for k, v in rate.items()}
        got = " ".join("%.3f" % frac.get(k, 0) for k in sorted(SHARES))
        report("rate(px_vm_gpu_seconds_total[5s]) in the shares' proportions 0.5:0.3:0.2 (within 0.08): " + got,
               all(abs(frac.get(k, 0) - s) <= 0.08 for k, s in SHARES.items()))
    # the counters of one scrape, not their rates: rate() extrapolates
    # each series to its window's edges on its own (to its zero point when
    # it started inside the window), so two rates of counters that agree
    # may differ by a few per mille
    dev = query('px_device_busy_seconds_total{device="0"}')
    vms = query('sum(px_vm_gpu_seconds_total{device="0"})')
    report("the VMs' GPU seconds sum to the device's busy seconds (one scrape, within one slice)",
           bool(dev) and bool(vms) and vms[0][1] > 0 and abs(dev[0][1] - vms[0][1]) <= 0.02,
           "%s vs %s" % (dev, vms))
    ach = by_vm('px_vm_share_achieved_ratio{device="0",window="10s"}')
    report("px_vm_share_achieved_ratio (10 s) near the shares (within 0.1)",
           all(abs(ach.get(k, -1) - s) <= 0.1 for k, s in SHARES.items()), str(ach))
    idle = query('max_over_time(px_device_busy_ratio{device="1"}[1m])') + \
        query('rate(px_device_busy_seconds_total{device="1"}[1m])') + \
        query('max_over_time(px_vm_share_achieved_ratio{vm="4"}[1m])')
    report("the idle device and its idle VM read 0 all along", len(idle) == 5 and all(v == 0 for _, v in idle),
           str(idle))
    over = query("max_over_time(px_vm_share_achieved_ratio[1m]) > 1") + \
        query("max_over_time(px_device_busy_ratio[1m]) > 1") + \
        query("max_over_time(px_device_share_allocated_ratio[1m]) > 1")
    report("no ratio ever exceeded 1", not over, str(over))
    resets = query("resets(px_vm_gpu_seconds_total[1m]) > 0") + query("resets(px_vm_launches_total[1m]) > 0") + \
        query("resets(px_device_busy_seconds_total[1m]) > 0") + \
        query("resets(px_vm_launch_latency_seconds_bucket[1m]) > 0")
    report("no counter ever went backwards", not resets, str(resets))
    p99 = by_vm('histogram_quantile(0.99, rate(px_vm_launch_latency_seconds_bucket{device="0"}[5s]))')
    report("histogram_quantile(0.99) of the latency histogram is a latency (0, 10 s]",
           sorted(p99) == ["1", "2", "3"] and all(0 < v <= 10 and not math.isnan(v) for v in p99.values()), str(p99))
    diff = query('sum by (vm) (px_vm_launches_total{result="done"}) != on (vm) '
                 'sum by (vm) (px_vm_launch_latency_seconds_count)')
    report("histogram count = launches done, per VM", not diff, str(diff))
    mono = query('px_vm_launch_latency_seconds_bucket{vm="1",le="0.001"} > on (vm) '
                 'px_vm_launch_latency_seconds_bucket{vm="1",le="0.01"}')
    report("latency buckets are cumulative", not mono, str(mono))
    # the scrape and the status JSON agree (the JSON is read after the
    # scrape and counters only grow)
    prom = by_vm('sum by (vm) (px_vm_launches_total{result="done"})')
    st = {str(v["id"]): v for v in status()["vms"]}
    report("/api/status launches_done >= the last scrape's, per VM",
           all(st[k]["launches_done"] >= prom.get(k, 0) and prom.get(k, 0) > 0 for k in SHARES),
           "%s vs %s" % ({k: st[k]["launches_done"] for k in SHARES}, prom))


def reinc():
    inc = query('count by (incarnation) (count_over_time(px_vm_info{vm="5"}[1m]))')
    report("VM 5 removed and added again: two incarnations, two series", len(inc) == 2, str(inc))
    now = query('px_vm_gpu_seconds_total{vm="5"}')
    st = {v["id"]: v for v in status()["vms"]}
    report("the new incarnation's series is the one live, at 0",
           len(now) == 1 and now[0][1] == 0 and 5 in st and now[0][0]["incarnation"] == str(st[5]["incarnation"]),
           str(now))


def abuse():
    st = status()
    report("pxhvd still serves /api/status after the abuse", len(st["vms"]) >= 4)
    up = wait_for('up{job="pxhvd"}', lambda r: r and r[0][1] == 1, 5)
    report("and Prometheus still scrapes it", bool(up) and up[0][1] == 1, str(up))


try:
    {"zeros": zeros, "steady": steady, "load": load, "reinc": reinc, "abuse": abuse}[stage]()
except Exception as e:  # a failed query is a failed check, never a crash
    report("stage " + stage, False, repr(e))
done()
