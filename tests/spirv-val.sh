#!/bin/sh
# SPIR-V validity: tests/spirv-val.sh BUILDDIR
# Compiles every tests/golden/*.px and examples/*.px that compiles without
# error (its .flags, if any, apply) to a .spv for each target environment
# and runs SPIRV-Tools' command-line `spirv-val` on it, independently of the
# validator pxcc runs in-process. A file that pxcc rejects is skipped only
# when its .err expects that (its `exit:` line, see tests/golden.sh, names
# the same non-zero status); any other pxcc failure or an invalid module
# fails. No module at all is right only when no kernel has a dispatch
# (`pxcc --emit=meta`), e.g. empty_kernel.px.
B=${1:-build}
cd "$(dirname "$0")/.." || exit 1
PXCC="$B/pxcc"
pass=0; fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if [ ! -x "$PXCC" ] || ! command -v spirv-val >/dev/null; then
    echo "spirv-val: $PXCC or spirv-val is missing"
    echo "0 passed, 1 failed"
    exit 1
fi
for px in tests/golden/*.px examples/*.px; do
    [ -f "$px" ] || continue
    base=${px%.px}
    flags=""
    [ -f "$base.flags" ] && flags=$(cat "$base.flags")
    want=0
    [ -f "$base.err" ] && want=$(sed -n 's/^exit: //p' "$base.err" | tail -n 1)
    for env in vulkan1.1 vulkan1.2 vulkan1.3; do
        spv="$tmp/out.spv"
        rm -f "$spv"
        # shellcheck disable=SC2086
        "$PXCC" $flags --target-env $env "$px" -o "$spv" 2>"$tmp/err"
        rc=$?
        if [ $rc != 0 ] && [ "$rc" = "$want" ]; then
            # rejected as its .err expects: nothing to validate
            continue
        fi
        if [ $rc != 0 ]; then
            echo "FAIL $px ($env): pxcc exit $rc (.err expects exit ${want:-?})"
            head -n 5 "$tmp/err"
            fail=$((fail + 1))
            continue
        fi
        if [ ! -s "$spv" ]; then
            # No kernel has a stage: no module (docs/DECISIONS.md, Runtime).
            # Only right if the launch metadata has no dispatch either; a
            # dispatch list line that is not `[]` means one is missing.
            # shellcheck disable=SC2086
            if "$PXCC" $flags --target-env $env --emit=meta "$px" >"$tmp/meta" 2>/dev/null &&
               grep -q '"dispatches": \[\]' "$tmp/meta" &&
               ! grep '"dispatches":' "$tmp/meta" | grep -vq '"dispatches": \[\]'; then
                echo "ok $px ($env): no module, no dispatches"
                pass=$((pass + 1))
            else
                echo "FAIL $px ($env): empty module, but the metadata has dispatches (or --emit=meta failed)"
                fail=$((fail + 1))
            fi
            continue
        fi
        if spirv-val --target-env $env "$spv" >"$tmp/val" 2>&1; then
            echo "ok $px ($env)"
            pass=$((pass + 1))
        else
            echo "FAIL $px ($env): spirv-val"
            head -n 5 "$tmp/val"
            fail=$((fail + 1))
        fi
    done
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
