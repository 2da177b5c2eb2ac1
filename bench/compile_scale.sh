#!/bin/sh
# bench/compile_scale.sh BUILDDIR — compile time against statement count
# (make bench-compile; docs/PERFORMANCE.md, "Compile time"). For kernels
# of 1,000, 10,000 and 100,000 top-level `PARALLEL_ADD a b -> a` lines
# (100,000 is the default statement limit) it times pxcc, wall seconds and
# peak memory, at -O1 (no fusion: a stage per statement) and -O2 (every
# statement fuses into one stage), for --emit=ir (front end and passes)
# and --emit=cost (adds the cost analysis the library runs on every
# compile). Code generation is not timed here: the stage and SPIR-V
# limits refuse these kernels before a backend would take them (the
# refusal is timed in the last column: -O2 -o k.spv). Each figure is the
# best of REPEAT runs (default 3). Linear work shows as 10x per row.
B=${1:-build/release}
REPEAT=${REPEAT:-3}
PXCC="$B/pxcc"
[ -x "$PXCC" ] || { echo "compile_scale: $PXCC is not built"; exit 1; }
T=$(mktemp -d /tmp/px_compile_scale.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT

gen() { # gen N FILE
    awk -v n="$1" 'BEGIN {
        print "GPU_KERNEL k\nGPU_PARAM a float[N]\nGPU_PARAM b float[N]\nGPU_THREAD_CODE:"
        for (i = 0; i < n; i++) print "    PARALLEL_ADD a b -> a"
        print "GPU_END" }' > "$2"
}

# best N-run "seconds peak-KB" of a pxcc command line (output discarded)
measure() {
    best=""; mem=""
    r=0
    while [ $r -lt "$REPEAT" ]; do
        /usr/bin/time -f "%e %M" -o "$T/time" "$PXCC" "$@" >/dev/null 2>"$T/err"
        rc=$?
        # the last column expects the refusal (exit 1, a limit's error)
        case "$*" in
        *spirv*) [ $rc = 1 ] && grep -q "error: generated SPIR-V" "$T/err" ;;
        *) [ $rc = 0 ] ;;
        esac || { echo "FAILED: pxcc $*" >&2; sed -n 1,3p "$T/err" >&2; echo "- -"; return; }
        s=$(tail -n 1 "$T/time" | cut -d" " -f1); m=$(tail -n 1 "$T/time" | cut -d" " -f2)
        if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$s; mem=$m; fi
        r=$((r + 1))
    done
    echo "$best $((mem / 1024))"
}

printf '%-11s %-9s | %-16s %-16s | %-16s %-16s | %-16s\n' statements "source" \
    "-O1 ir s (MiB)" "-O2 ir s (MiB)" "-O1 cost s (MiB)" "-O2 cost s (MiB)" "-O2 refused s (MiB)"
for n in 1000 10000 100000; do
    gen $n "$T/k$n.px"
    kb=$(( $(wc -c < "$T/k$n.px") / 1024 ))
    row=$(printf '%-11s %-9s |' "$n" "${kb} KiB")
    for args in "-O1 --emit=ir" "-O2 --emit=ir" "-O1 --emit=cost" "-O2 --emit=cost" "-O2 --emit=spirv -o $T/k.spv"; do
        # shellcheck disable=SC2086
        set -- $(measure $args "$T/k$n.px")
        row="$row $(printf '%-16s' "$1 ($2)")"
    done
    echo "$row"
done
