#!/bin/sh
# Golden tests: tests/golden.sh BUILDDIR [--update]
# For each tests/golden/foo.px and each expected file beside it:
#   foo.ir      stdout of `pxcc --emit=ir`
#   foo.err     stderr of `pxcc --emit=ir`, then a line `exit: N`
#   foo.spvasm  stdout of `pxcc --emit=spvasm`
#   foo.meta    stdout of `pxcc --emit=meta`
#   foo.cost    stdout of `pxcc --emit=cost`
#   foo.llvm    stdout of `pxcc --emit=llvm`
# Extra flags come from foo.flags (one line). pxcc runs from the repository
# root on tests/golden/foo.px so paths in diagnostics are stable.
# With --update the expected files that exist are rewritten (`make golden`);
# review every changed line before committing.
B=${1:-build}
UPDATE=0
[ "$2" = "--update" ] && UPDATE=1
cd "$(dirname "$0")/.." || exit 1
PXCC="$B/pxcc"
pass=0; fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if [ ! -x "$PXCC" ]; then
    echo "golden: $PXCC is not built"
    echo "0 passed, 1 failed"
    exit 1
fi
for px in tests/golden/*.px; do
    [ -f "$px" ] || continue
    base=${px%.px}
    name=$(basename "$base")
    flags=""
    [ -f "$base.flags" ] && flags=$(cat "$base.flags")
    for ext in ir err spvasm meta cost llvm; do
        exp="$base.$ext"
        [ -f "$exp" ] || continue
        got="$tmp/$name.$ext"
        case $ext in
        err)
            # shellcheck disable=SC2086
            "$PXCC" --emit=ir $flags "$px" >/dev/null 2>"$got"
            echo "exit: $?" >>"$got"
            ;;
        *)
            # shellcheck disable=SC2086
            "$PXCC" --emit=$ext $flags "$px" >"$got" 2>"$tmp/stderr"
            rc=$?
            if [ $rc != 0 ]; then
                echo "exit: $rc" >>"$got"
                cat "$tmp/stderr" >>"$got"
            fi
            ;;
        esac
        if [ $UPDATE = 1 ]; then
            if ! cmp -s "$got" "$exp"; then
                cp "$got" "$exp"
                echo "updated $name.$ext"
            fi
            pass=$((pass + 1))
        elif cmp -s "$got" "$exp"; then
            echo "ok $name.$ext"
            pass=$((pass + 1))
        else
            echo "FAIL $name.$ext"
            diff -u "$exp" "$got" | head -n 60
            fail=$((fail + 1))
        fi
    done
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
