#!/usr/bin/python3
"""Merges vkbench's and pxbench's JSON results into one table and one file.

usage: report.py OUT.json --vk VKBENCH.json... [--px PXBENCH.json...] [--markdown]

Several files per side are merged (run.sh runs one kernel per process,
alternating the sides, so that load drifting during the run hits both alike).

Prints, per kernel, the PX and GLSL medians and minima (ms of GPU time from
timestamps) and the PX/GLSL ratios, then the per-launch overhead (us per
submit + wait) against the raw Vulkan loop.  Ratios below 1 mean PX is
faster.  The goals (kernels within 1.10x; matmul at any size, transpose and
scan within 1.00x; launch within 1.20x) are judged on the medians.  For
matmul sizes that are not multiples of the 128x128x8 tile it also prints
PX's time per flop against the nearest multiple in the run (goal 1.30).
Both sides must report the same shape, else the row fails.  Exit status 1 when a result is missing, failed or wrong.
"""
import json
import sys

KERNEL_GOAL = 1.10
LAUNCH_GOAL = 1.20
# issue 18: matmul at any size, transpose and scan at (or below) their twins
STRICT_GOAL = 1.00
CLIFF_GOAL = 1.30   # time per flop at an odd size / at the nearest tile multiple


def kernel_goal(name):
    return STRICT_GOAL if name.startswith("gemm") or name in ("transpose", "scan") else KERNEL_GOAL


def gemm_dims(shape):
    """(M, K, N) of a gemm row's "MxKxN" shape."""
    m, k, n = (int(x) for x in shape.split("x"))
    return m, k, n


def cliffs(rows):
    """For each gemm size that is not a multiple of the 128x128x8 tile: PX
    time per flop there over PX time per flop at the nearest size in the
    run that is (sum of |dM|, |dK|, |dN|)."""
    g = [r for r in rows if r["kernel"].startswith("gemm") and r["px_median_ms"]]
    fit = [r for r in g if (lambda d: d[0] % 128 == 0 and d[2] % 128 == 0 and d[1] % 8 == 0)
           (gemm_dims(r["shape"]))]
    out = []
    for r in g:
        if r in fit or not fit:
            continue
        d = gemm_dims(r["shape"])
        near = min(fit, key=lambda f: sum(abs(a - b) for a, b in zip(d, gemm_dims(f["shape"]))))
        dn = gemm_dims(near["shape"])
        flops, flops_near = d[0] * d[1] * d[2], dn[0] * dn[1] * dn[2]
        ratio = (r["px_median_ms"] / flops) / (near["px_median_ms"] / flops_near)
        # the two sizes run in different processes seconds apart, so a slow
        # second of this machine can take one side's median: the minima
        # say what each size costs when nothing else runs
        ratio_min = (r["px_min_ms"] / flops) / (near["px_min_ms"] / flops_near) \
            if r.get("px_min_ms") and near.get("px_min_ms") else None
        out.append({"kernel": r["kernel"], "shape": r["shape"], "nearest": near["kernel"],
                    "nearest_shape": near["shape"], "ratio": ratio, "ratio_min": ratio_min,
                    "goal": CLIFF_GOAL, "goal_met": ratio <= CLIFF_GOAL})
    return out


def load(paths):
    """Merges the results of several runs of one host; None when none load."""
    merged = None
    for path in paths:
        try:
            with open(path) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            print("report: cannot read %s: %s" % (path, e), file=sys.stderr)
            continue
        if merged is None:
            merged = d
            continue
        merged["kernels"].update(d.get("kernels", {}))
        if d.get("launch"):
            merged["launch"] = d["launch"]
    return merged


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(v, spec, unit=""):
    return format(v, spec) + unit if v is not None else "-"


def main(argv):
    md = "--markdown" in argv
    files = {"--vk": [], "--px": []}
    side = None
    out = None
    for a in argv:
        if a == "--markdown":
            continue
        if a in files:
            side = a
        elif side:
            files[side].append(a)
        elif out is None:
            out = a
        else:
            side = "bad"
    if out is None or side == "bad" or not files["--vk"]:
        print(__doc__, file=sys.stderr)
        return 2
    vk, px = load(files["--vk"]), load(files["--px"])
    if vk is None:
        return 1
    ok = True
    rows = []
    for name, g in vk["kernels"].items():
        p = (px or {}).get("kernels", {}).get(name)
        row = {"kernel": name, "shape": g["shape"],
               "glsl_median_ms": g.get("median_ms"), "glsl_min_ms": g.get("min_ms"),
               "glsl_verified": g.get("verified", False),
               "px_median_ms": None, "px_min_ms": None, "px_verified": False}
        if not row["glsl_verified"]:
            ok = False
        if p is None:
            row["px_error"] = "PX side not run"
        elif "error" in p:
            row["px_error"] = p["error"]
        elif p["shape"] != g["shape"]:
            row["px_error"] = "PX ran %s, GLSL %s: not the same shape" % (p["shape"], g["shape"])
        else:
            row.update(px_median_ms=p["median_ms"], px_min_ms=p["min_ms"],
                       px_verified=p["verified"])
            if not p["verified"]:
                row["px_error"] = "PX result WRONG"
        if "px_error" in row:
            ok = False
        row["ratio_median"] = ratio(row["px_median_ms"], row["glsl_median_ms"])
        row["ratio_min"] = ratio(row["px_min_ms"], row["glsl_min_ms"])
        row["goal"] = kernel_goal(name)
        row["goal_met"] = row["ratio_median"] is not None and row["ratio_median"] <= row["goal"]
        rows.append(row)

    launch = None
    gl = vk.get("launch")
    if gl:
        pl = (px or {}).get("launch") or {"error": "PX side not run"}
        launch = {"iters": gl["iters"], "raw_median_us": gl.get("median_us"),
                  "raw_min_us": gl.get("min_us"), "raw_verified": gl.get("verified", False),
                  "px_median_us": pl.get("median_us"), "px_min_us": pl.get("min_us"),
                  "px_verified": pl.get("verified", False)}
        if "error" in pl:
            launch["px_error"] = pl["error"]
        elif not pl.get("verified"):
            launch["px_error"] = "PX result WRONG"
        if "px_error" in launch or not launch["raw_verified"]:
            ok = False
        launch["ratio_median"] = ratio(launch["px_median_us"], launch["raw_median_us"])
        launch["ratio_min"] = ratio(launch["px_min_us"], launch["raw_min_us"])
        launch["goal"] = LAUNCH_GOAL
        launch["goal_met"] = (launch["ratio_median"] is not None
                              and launch["ratio_median"] <= LAUNCH_GOAL)

    result = {"device": vk["device"], "px_device": (px or {}).get("device"),
              "runs": vk["runs"], "kernels": rows, "cliffs": cliffs(rows), "launch": launch,
              "all_verified": ok,
              "raw": {"vkbench": vk, "pxbench": px}}
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")

    print_table(result, md)
    return 0 if ok else 1


def print_table(r, md):
    dev = r["device"]
    if r["px_device"] and r["px_device"] != dev:
        dev += " (PX ran on %s!)" % r["px_device"]
    head = ["kernel", "shape", "PX median", "GLSL median", "PX/GLSL", "PX min", "GLSL min",
            "PX/GLSL (min)", "goal"]
    lines = []
    for k in r["kernels"]:
        goal = ("met" if k["goal_met"] else "missed") if k["ratio_median"] else "-"
        lines.append([k["kernel"], k["shape"], fmt(k["px_median_ms"], ".2f", " ms"),
                      fmt(k["glsl_median_ms"], ".2f", " ms"), fmt(k["ratio_median"], ".2f"),
                      fmt(k["px_min_ms"], ".2f", " ms"), fmt(k["glsl_min_ms"], ".2f", " ms"),
                      fmt(k["ratio_min"], ".2f"), "<= %.2f %s" % (k["goal"], goal)])
    l = r["launch"]
    if l:
        goal = ("met" if l["goal_met"] else "missed") if l["ratio_median"] else "-"
        lines.append(["launch", "%d submit+wait" % l["iters"], fmt(l["px_median_us"], ".1f", " us"),
                      fmt(l["raw_median_us"], ".1f", " us"), fmt(l["ratio_median"], ".2f"),
                      fmt(l["px_min_us"], ".1f", " us"), fmt(l["raw_min_us"], ".1f", " us"),
                      fmt(l["ratio_min"], ".2f"), "<= %.2f %s" % (l["goal"], goal)])
    notes = ["%s: %s" % (k["kernel"], k["px_error"]) for k in r["kernels"] if "px_error" in k]
    notes += ["%s: GLSL baseline WRONG" % k["kernel"] for k in r["kernels"]
              if not k["glsl_verified"]]
    if l and "px_error" in l:
        notes.append("launch: %s" % l["px_error"])
    chead = ["odd size", "shape", "nearest tile multiple", "PX time per flop, odd / multiple",
             "(minima)", "goal"]
    clines = [[c["kernel"], c["shape"], "%s (%s)" % (c["nearest"], c["nearest_shape"]),
               "%.2f" % c["ratio"], "%.2f" % c["ratio_min"] if c.get("ratio_min") else "-",
               "<= %.2f %s" % (c["goal"], "met" if c["goal_met"] else "missed")]
              for c in r.get("cliffs", [])]
    if md:
        print("Device: %s; medians and minima of %d runs after a warm-up.\n" % (dev, r["runs"]))
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for ln in lines:
            print("| " + " | ".join(ln) + " |")
        if clines:
            print("\n| " + " | ".join(chead) + " |")
            print("|" + "---|" * len(chead))
            for ln in clines:
                print("| " + " | ".join(ln) + " |")
        for n in notes:
            print("\n- " + n)
        return
    print("device: %s; %d runs after a warm-up; GPU time from timestamps "
          "(launch: host time per submit+wait)" % (dev, r["runs"]))
    w = [max(len(str(x[i])) for x in [head] + lines) for i in range(len(head))]
    for ln in [head] + lines:
        print("  ".join(str(c).ljust(w[i]) if i < 2 else str(c).rjust(w[i])
                        for i, c in enumerate(ln)))
    if clines:
        print("matmul per flop at odd sizes against the nearest multiple of the tile (PX medians; minima beside):")
        w = [max(len(str(x[i])) for x in [chead] + clines) for i in range(len(chead))]
        for ln in [chead] + clines:
            print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(ln)))
    for n in notes:
        print("note: " + n)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
