#!/usr/bin/env bash
# The test runner behind `make test`: every unit test binary (cmocka, TAP
# output) and every end-to-end script (TAP lines "ok - ..." / "not ok - ...").
# Prints each test's output, then one closing line "N passed, N failed", and
# exits non-zero when anything failed or a test program died.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
export CMOCKA_MESSAGE_OUTPUT=TAP

passed=0
failed=0
failures=()

run_one() { # name, command...
    local name=$1; shift
    local out rc
    echo "# ---- $name"
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out"
    local p f s
    p=$(printf '%s\n' "$out" | grep -cE '^ok ')
    # cmocka reports a skipped test as "not ok N # SKIP": not a failure
    s=$(printf '%s\n' "$out" | grep -cE '^(not )?ok .*# *SKIP')
    f=$(printf '%s\n' "$out" | grep -E '^not ok ' | grep -vcE '# *SKIP')
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -gt 0 ] && failures+=("$name: $f failed")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1))
        failures+=("$name: exited with status $rc")
        echo "not ok - $name exited with status $rc"
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ] && [ "$rc" -eq 0 ]; then
        failed=$((failed + 1))
        failures+=("$name: ran no test")
        echo "not ok - $name ran no test"
    fi
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d|*.o) continue ;; esac
    run_one "$(basename "$t")" "$t"
done

for s in tests/e2e/*.sh; do
    [ -f "$s" ] || continue
    case "$(basename "$s")" in lib.sh) continue ;; esac
    if [ -n "${TEST_FILTER:-}" ] && [[ "$s" != *"$TEST_FILTER"* ]]; then continue; fi
    run_one "$(basename "$s" .sh)" bash "$s"
done

echo
if [ ${#failures[@]} -gt 0 ]; then
    echo "# failures:"
    printf '#   %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
