#!/bin/sh
# tests/run.sh — runs every unit test binary and the integration suite, then prints the one
# summary line "N passed, N failed". Exit status is non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
log=build/test-logs
mkdir -p "$log"

for t in build/asan/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$t" >"$log/$name.log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log/$name.log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log/$name.log" | tail -n 1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then echo "FAIL unit $name (see $log/$name.log)"; cat "$log/$name.log"; else echo "ok   unit $name: $p"; fi
done

CLEARMTA_BIN=$(pwd)/build/asan/clearmta
export CLEARMTA_BIN
python3 tests/integration/runner.py >"$log/integration.log" 2>&1
rc=$?
cat "$log/integration.log" | grep -v '^RESULT ' | tail -n 200
p=$(sed -n 's/^RESULT \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log/integration.log")
f=$(sed -n 's/^RESULT \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log/integration.log")
p=${p:-0}; f=${f:-1}
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
passed=$((passed + p)); failed=$((failed + f))

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
