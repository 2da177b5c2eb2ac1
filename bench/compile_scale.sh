#!/bin/sh
# bench/compile_scale.sh BUILDDIR — compile time against statement count
# (make bench-compile; docs/PERFORMANCE.md, "Compile time"). For kernels
# of 1,000, 10,000 and 100,000 top-level `PARALLEL_ADD a b -> a` lines
# (100,000 is the default statement limit) it times pxcc, wall seconds and
# peak memory, at -O1 (no fusion: a stage per statement) and -O2 (fusion,
# about 128 statements a stage), for --emit=ir (front end and passes),
# --emit=cost (adds the cost analysis the library runs on every compile)
# and -O2 -o k.spv (SPIR-V, validated), which the stage or SPIR-V limits
# refuse from 10,000 statements on ("refused": the time to say so). Each
# figure is the best of REPEAT runs (default 3). Linear work shows as 10x
# per row.
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

# best N-run "seconds peak-MiB [refused]" of a pxcc command line (output
# discarded); a limit's error (exit 1) counts as a result for -o k.spv
measure() {
    best=""; mem=""; note=""
    r=0
    while [ $r -lt "$REPEAT" ]; do
        /usr/bin/time -f "%e %M" -o "$T/time" "$PXCC" "$@" >/dev/null 2>"$T/err"
        rc=$?
        # the last column expects the refusal (exit 1, a limit's error)
        case "$*" in
        *spirv*) [ $rc = 0 ] || { [ $rc = 1 ] && grep -q "error: .*(limit [0-9]*)" "$T/err" && note=refused; } ;;
        *) [ $rc = 0 ] ;;
        esac || { echo "FAILED: pxcc $*" >&2; sed -n 1,3p "$T/err" >&2; echo "- -"; return; }
        s=$(tail -n 1 "$T/time" | cut -d" " -f1); m=$(tail -n 1 "$T/time" | cut -d" " -f2)
        if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$s; mem=$m; fi
        r=$((r + 1))
    done
    echo "$best $((mem / 1024)) $note"
}

printf '%-11s %-9s | %-16s %-16s | %-16s %-16s | %-16s\n' statements "source" \
    "-O1 ir s (MiB)" "-O2 ir s (MiB)" "-O1 cost s (MiB)" "-O2 cost s (MiB)" "-O2 spv s (MiB)"
for n in 1000 10000 100000; do
    gen $n "$T/k$n.px"
    kb=$(( $(wc -c < "$T/k$n.px") / 1024 ))
    row=$(printf '%-11s %-9s |' "$n" "${kb} KiB")
    for args in "-O1 --emit=ir" "-O2 --emit=ir" "-O1 --emit=cost" "-O2 --emit=cost" "-O2 --emit=spirv -o $T/k.spv"; do
        # shellcheck disable=SC2086
        set -- $(measure $args "$T/k$n.px")
        row="$row $(printf '%-16s' "$1 ($2)${3:+ $3}")"
    done
    echo "$row"
done
