#!/usr/bin/python3
"""tests/dashboard_check.py DOM.html STATUS.json NVMS [VM:KEY=TEXT]... —
reads the dashboard's page as headless Chromium left it after its scripts
ran (--dump-dom; parsed with Python's html.parser) and checks the numbers
a person reads there against pxhvd's /api/status (fetched right after the
page) and against values the test knows on its own (VM:KEY=TEXT, e.g.
1:mem_used_bytes=0.0 / 256.0 MiB from the quota it gave). Prints
`ok NAME` / `FAIL NAME: why`; exit 1 when any failed."""
import json
import sys
from html.parser import HTMLParser

from checklib import done, report

dom, status_path, nvms = sys.argv[1], sys.argv[2], int(sys.argv[3])
expect = [a.split(":", 1) for a in sys.argv[4:]]


class Rows(HTMLParser):
    """The text of every data-key cell of the rows with data-vm or
    data-device: rows[("vm", "3")]["queued"] = "0"."""

    def __init__(self):
        super().__init__()
        self.rows, self.row, self.key, self.canvases = {}, None, None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and ("data-vm" in a or "data-device" in a):
            kind = "vm" if "data-vm" in a else "device"
            self.row = self.rows.setdefault((kind, a["data-" + kind]), {})
        elif tag == "td" and self.row is not None and "data-key" in a:
            self.key = a["data-key"]
            self.row[self.key] = ""
        elif tag == "canvas":
            self.canvases += 1

    def handle_endtag(self, tag):
        if tag == "td":
            self.key = None
        elif tag == "tr":
            self.row = None

    def handle_data(self, data):
        if self.row is not None and self.key:
            self.row[self.key] += data


# the page's formats (hv/dash/dash.js), from the JSON's numbers
def pct(v): return "%.1f%%" % v
def mib(b): return "%.1f" % (b / 1048576)


def lat(us):
    if us >= 1e6: return "%.2f s" % (us / 1e6)
    if us >= 1e3: return "%.2f ms" % (us / 1e3)
    return "%.0f µs" % us


def num(text):
    return float(text.strip().rstrip("%"))


p = Rows()
p.feed(open(dom, encoding="utf-8").read())
st = json.load(open(status_path))
vms = {str(v["id"]): v for v in st["vms"]}
page_vms = {k[1]: r for k, r in p.rows.items() if k[0] == "vm"}
page_devs = {k[1]: r for k, r in p.rows.items() if k[0] == "device"}

report("a row per VM (%d)" % nvms, sorted(page_vms) == sorted(vms) and len(page_vms) == nvms,
       "%s vs %s" % (sorted(page_vms), sorted(vms)))
report("a row and a chart per device (%d)" % len(st["devices"]),
       len(page_devs) == len(st["devices"]) and p.canvases == len(st["devices"]))
bad = []
for i, v in vms.items():
    r = page_vms.get(i, {})
    exact = {
        "name": v["name"], "device": str(v["device"]), "share": pct(v["share"]), "queued": str(v["queued"]),
        "mem_used_bytes": mib(v["mem_used_bytes"]) + " / " + mib(v["mem_quota_bytes"]) + " MiB",
        "latency_p99_us": lat(v["latency_p99_us"]), "launches_done": str(v["launches_done"]),
        "launches_failed": str(v["launches_failed"]),
    }
    for k, want in exact.items():
        if r.get(k, "").strip() != want:
            bad.append("vm %s %s: page %r, status %r" % (i, k, r.get(k), want))
    # the windows move on while the page and the JSON are read a moment
    # apart: within 2 points
    for k in ("achieved_10s", "achieved_60s"):
        try:
            if abs(num(r[k]) - v[k]) > 2:
                bad.append("vm %s %s: page %s, status %s" % (i, k, r[k], v[k]))
        except (KeyError, ValueError):
            bad.append("vm %s %s missing" % (i, k))
report("every VM's numbers on the page = /api/status", not bad, "; ".join(bad[:6]))
bad = []
for d in st["devices"]:
    r = page_devs.get(str(d["index"]), {})
    want = mib(d["memory_used_bytes"]) + " / " + mib(d["memory_bytes"]) + " MiB"
    if r.get("memory_used_bytes", "").strip() != want or r.get("share_used", "").strip() != pct(d["share_used"]):
        bad.append("device %d: %r" % (d["index"], r))
    try:
        if not all(0 <= num(r[k]) <= 100 for k in ("busy_10s", "busy_60s")):
            bad.append("device %d busy out of 0..100: %r" % (d["index"], r))
    except (KeyError, ValueError):
        bad.append("device %d busy missing" % d["index"])
report("every device's numbers on the page = /api/status, busy within 0..100 %", not bad, "; ".join(bad))
for vm, kv in expect:
    k, want = kv.split("=", 1)
    got = page_vms.get(vm, {}).get(k, "").strip()
    report("page shows VM %s %s = %s (set by the test)" % (vm, k, want), got == want, repr(got))
done()
