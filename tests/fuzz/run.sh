#!/bin/sh
# tests/fuzz/run.sh BUILDDIR SECONDS — libFuzzer under ASan and UBSan on
# three targets, SECONDS split between them:
#   fuzz_frontend  the front end (lexer, parser, sema) and the -O2 pipeline;
#                  corpus seeded from tests/golden/*.px and examples/*.px
#   fuzz_pxrun     pxrun's command line (tools/pxrun_args.h), .npy parsing
#                  and reading, and the number parsers; corpus seeded from
#                  tests/fuzz/seeds_pxrun/
#   fuzz_hvproto   the hypervisor's wire decoder (hv/proto.c): a byte stream
#                  cut into frames and decoded; seeded with well-formed frames
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
$CLANG $FLAGS tests/fuzz/fuzz_frontend.c base/*.c frontend/*.c ir/*.c "$B/gen/lex.c" "$B/gen/parse.c" -ljansson -lm \
    -o "$F/fuzz_frontend" || { echo "fuzz: cannot build fuzz_frontend"; exit 2; }
# shellcheck disable=SC2086
$CLANG $FLAGS tests/fuzz/fuzz_pxrun.c runtime/npy.c runtime/dtype.c -lm \
    -o "$F/fuzz_pxrun" || { echo "fuzz: cannot build fuzz_pxrun"; exit 2; }
for s in tests/golden/*.px examples/*.px tests/fuzz/seeds/*.px; do
    [ -f "$s" ] && cp "$s" "$F/corpus/seed_$(basename "$s")"
done
for s in tests/fuzz/seeds_pxrun/*; do
    [ -f "$s" ] && cp "$s" "$F/corpus_pxrun/seed_$(basename "$s")"
done
half=$((SECS / 3)); [ "$half" -ge 1 ] || half=1
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
# the hypervisor's wire decoder: seeds are well-formed frames (fuzz_hvproto
# starts from them and from nothing)
HSECS=$half
$CLANG -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -D_GNU_SOURCE -I. -Iinclude \
    tests/fuzz/fuzz_hvproto.c hv/proto.c -o "$F/fuzz_hvproto" || { echo "fuzz: cannot build fuzz_hvproto"; exit 2; }
mkdir -p "$F/hvcorpus"
python3 - "$F/hvcorpus" <<'PY' || true
import struct, sys
def frame(t, payload, req=1):
    h = struct.pack('<IHHIII', 0x56485850, 1, t, len(payload), req, 0)
    x = 2166136261
    for b in h:
        x = ((x ^ b) * 16777619) & 0xffffffff
    return h + struct.pack('<I', x) + payload
def s(b): return struct.pack('<I', len(b)) + b
seeds = {
 'hello': frame(1, struct.pack('<QII', 7, 1, 1)),
 'compile': frame(1, struct.pack('<QII', 7, 1, 1)) + frame(2, s(b'k.px') + s(b'') + s(b'GPU_KERNEL k\nGPU_END\n'), 2),
 'bufs': frame(3, struct.pack('<IIq', 0, 1, 16)) + frame(4, struct.pack('<I', 1) + s(b'\0' * 64)) + frame(5, struct.pack('<I', 1)),
 'launch': frame(7, struct.pack('<I', 1) + s(b'') + struct.pack('<I', 2) + s(b'a') + struct.pack('<IIdq', 1, 0, 2.0, 0)
                 + s(b'x') + struct.pack('<IIdq', 0, 1, 0, 0)) + frame(8, struct.pack('<QI', 1, 1000)),
 'ctl': frame(33, struct.pack('<I', 4) + s(b'mem=1M,share=5')) + frame(36, struct.pack('<II', 4, 0)) + frame(32, b''),
}
for k, v in seeds.items():
    open(sys.argv[1] + '/seed_' + k, 'wb').write(v)
PY
hlog="$F/fuzz_hvproto.log"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
"$F/fuzz_hvproto" "$F/hvcorpus" -max_total_time="$HSECS" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$F/hv-" >"$hlog" 2>&1
rc=$?
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$hlog" | grep -o '[0-9]*$' | tail -n 1)
echo "fuzz_hvproto: ${runs:-0} runs in ${HSECS}s"
if [ "$rc" != 0 ]; then
    tail -n 40 "$hlog"
    echo "fuzz_hvproto: crash (exit $rc); reproducer: $(ls "$F"/hv-* 2>/dev/null | head -n 1)"
    status=1
fi
exit $status
