"""tests/checklib.py — the ok/FAIL lines of the Python checkers that
tests/http_lib.sh's run_checks counts (metrics_check.py, http_abuse.py,
dashboard_check.py)."""
import sys

failed = 0


def report(name, good, why=""):
    """`ok NAME`, or `FAIL NAME: why` counted in failed."""
    global failed
    if good:
        print("ok", name)
    else:
        failed += 1
        print("FAIL", name + (": " + why if why else ""))


def done():
    sys.exit(1 if failed else 0)
