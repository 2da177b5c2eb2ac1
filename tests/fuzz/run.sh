#!/bin/sh
# tests/fuzz/run.sh BUILDDIR SECONDS — fuzz the front end (lexer, parser,
# sema) with libFuzzer under ASan and UBSan. Builds BUILDDIR/fuzz/fuzz_frontend
# from the sources directly (the generated lexer and parser come from
# BUILDDIR/gen, made first if missing), seeds BUILDDIR/fuzz/corpus from
# tests/golden/*.px and examples/*.px, runs for SECONDS and prints the number
# of runs. Exit status: non-zero on a crash (the reproducer is left in
# BUILDDIR/fuzz/ as crash-*), or when the target cannot be built.
set -u
B=${1:-build}
SECS=${2:-600}
CLANG=${CLANG:-clang-16}
cd "$(dirname "$0")/../.." || exit 2
make --no-print-directory B="$B" "$B/gen/lex.c" "$B/gen/parse.c" >/dev/null || exit 2
F="$B/fuzz"
mkdir -p "$F/corpus" || exit 2
# UBSan aborts, so undefined behaviour counts as a crash.
$CLANG -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Iinclude -I"$B/gen" \
    -Wno-unused-function -Wno-sign-compare \
    tests/fuzz/fuzz_frontend.c frontend/*.c ir/*.c "$B/gen/lex.c" "$B/gen/parse.c" -lm \
    -o "$F/fuzz_frontend" || { echo "fuzz: cannot build the target"; exit 2; }
for s in tests/golden/*.px examples/*.px tests/fuzz/seeds/*.px; do
    [ -f "$s" ] && cp "$s" "$F/corpus/seed_$(basename "$s")"
done
log="$F/fuzz.log"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
"$F/fuzz_frontend" "$F/corpus" -max_total_time="$SECS" -max_len=8192 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$F/" >"$log" 2>&1
rc=$?
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
[ -n "$runs" ] || runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -n 1)
echo "fuzz: ${runs:-0} runs in ${SECS}s"
if [ "$rc" != 0 ]; then
    tail -n 40 "$log"
    echo "fuzz: crash (exit $rc); reproducer: $(ls "$F"/crash-* "$F"/leak-* "$F"/timeout-* "$F"/oom-* 2>/dev/null | head -n 1)"
    exit 1
fi
exit 0
