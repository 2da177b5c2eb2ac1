#!/bin/sh
# The suites that run threads, under ThreadSanitizer (make tsan builds
# $1 with -fsanitize=thread). Ends with `N passed, N failed`.
B=${1:-build/tsan}
p=0; f=0
run() {
    name=$1; shift
    out=$("$@" 2>&1); rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ "$rc" = 0 ] && [ -n "$line" ] && ! printf '%s\n' "$out" | grep -q "ThreadSanitizer"; then
        echo "[$name] $line"; p=$((p + 1))
    else
        printf '%s\n' "$out" | grep -v '^ok ' | tail -n 60
        echo "[$name] failed (exit $rc)"; f=$((f + 1))
    fi
}
run test_sched "$B/tests/test_sched"
run test_sched-cpu env PX_BACKEND=cpu "$B/tests/test_sched"
run test_cpu "$B/tests/test_cpu"
run test_embed "$B/tests/test_embed"
run test_hvd "$B/tests/test_hvd"
run test_oversub "$B/tests/test_oversub"
run test_oversub-cpu env PX_BACKEND=cpu "$B/tests/test_oversub"
run test_metrics "$B/tests/test_metrics"
run test_migrate "$B/tests/test_migrate"
echo "$p passed, $f failed"
[ "$f" = 0 ]
