#!/bin/sh
# tests/fuzz/run.sh BUILDDIR SECONDS — libFuzzer under ASan and UBSan on
# two targets, SECONDS split between them:
#   fuzz_frontend  the front end (lexer, parser, sema) and the -O2 pipeline;
#                  corpus seeded from tests/golden/*.px and examples/*.px
#   fuzz_pxrun     pxrun's command line (tools/pxrun_args.h), .npy parsing
#                  and reading, and the number parsers; corpus seeded from
#                  tests/fuzz/seeds_pxrun/
# Each is built into BUILDDIR/fuzz/ from the sources directly (the generated
# lexer and parser come from BUILDDIR/gen, made first if missing); prints
# each target's number of runs. Exit status: non-zero on a crash (the
# reproducer is left in BUILDDIR/fuzz/ as crash-*), or when a target cannot
# be built.
set -u
B=${1:-build}
SECS=${2:-600}
CLANG=${CLANG:-clang-16}
cd "$(dirname "$0")/../.." || exit 2
make --no-print-directory B="$B" "$B/gen/lex.c" "$B/gen/parse.c" >/dev/null || exit 2
F="$B/fuzz"
mkdir -p "$F/corpus" "$F/corpus_pxrun" || exit 2
# UBSan aborts, so undefined behaviour counts as a crash.
FLAGS="-std=c11 -g -O1 -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Iinclude -I$B/gen -Wno-unused-function -Wno-sign-compare"
# shellcheck disable=SC2086
$CLANG $FLAGS tests/fuzz/fuzz_frontend.c base/*.c frontend/*.c ir/*.c "$B/gen/lex.c" "$B/gen/parse.c" -lm \
    -o "$F/fuzz_frontend" || { echo "fuzz: cannot build fuzz_frontend"; exit 2; }
# shellcheck disable=SC2086
$CLANG $FLAGS tests/fuzz/fuzz_pxrun.c runtime/npy.c -lm \
    -o "$F/fuzz_pxrun" || { echo "fuzz: cannot build fuzz_pxrun"; exit 2; }
for s in tests/golden/*.px examples/*.px tests/fuzz/seeds/*.px; do
    [ -f "$s" ] && cp "$s" "$F/corpus/seed_$(basename "$s")"
done
for s in tests/fuzz/seeds_pxrun/*; do
    [ -f "$s" ] && cp "$s" "$F/corpus_pxrun/seed_$(basename "$s")"
done
half=$((SECS / 2)); [ "$half" -ge 1 ] || half=1
status=0
for t in frontend pxrun; do
    corpus="$F/corpus"; [ $t = pxrun ] && corpus="$F/corpus_pxrun"
    log="$F/fuzz_$t.log"
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "$F/fuzz_$t" "$corpus" -max_total_time="$half" -max_len=8192 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$F/" >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    [ -n "$runs" ] || runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -n 1)
    echo "fuzz_$t: ${runs:-0} runs in ${half}s"
    if [ "$rc" != 0 ]; then
        tail -n 40 "$log"
        echo "fuzz_$t: crash (exit $rc); reproducer: $(ls "$F"/crash-* "$F"/leak-* "$F"/timeout-* "$F"/oom-* 2>/dev/null | head -n 1)"
        status=1
    fi
done
exit $status
