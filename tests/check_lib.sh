# tests/check_lib.sh — sourced by the shell suites around pxhvd (hvd.sh,
# hvd-oversub.sh, multidev.sh, vm-hvd.sh, and through tests/http_lib.sh
# metrics.sh and dashboard.sh), from the repository root, where
# tests/run.sh runs them: the ok/bad counters and check; checks_done, the
# closing `N passed, N failed` line that tests/run.sh reads; check_tmp, a
# temp dir that goes on every path out.
PY=/usr/bin/python3
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# the closing line; status 1 after any failure (the suite's own status)
checks_done() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; }

# check_tmp NAME: T, a new directory /tmp/NAME.XXXXXX, and D=$T/hvd for
# the daemon's sockets. On exit the processes whose ids the suite keeps in
# DPID (its daemon) and CPIDS (its clients) are killed, and T is removed
# unless KEEP is set (to look at it after a failure).
check_tmp() {
    T=$(mktemp -d "/tmp/$1.XXXXXX")
    D=$T/hvd
    trap check_cleanup EXIT
}
check_cleanup() {
    for p in $DPID $CPIDS; do kill "$p" 2>/dev/null; done
    [ -n "$KEEP" ] || rm -rf "$T"
}
