#!/bin/sh
# tests/run.sh — runs the whole test suite and prints the one summary line "N passed, N failed"
# last. The unit test binaries (build/asan/tests/test_*, as many at once as there are cores,
# each through tests/run-unit.sh) run in the background while the integration suite runs in
# the foreground (tests/integration/runner.py: several modules at once, $TEST_JOBS); the
# integration output streams as each module finishes, then come the unit results, one line per
# binary and the whole log of each that failed. Logs are kept in build/test-logs. Exit status
# is non-zero when anything failed.
set -u
cd "$(dirname "$0")/.." || exit 1
passed=0
failed=0
log=build/test-logs
mkdir -p "$log"
rm -f "$log"/*.count "$log/integration.rc"

for t in build/asan/tests/test_*; do
    [ -x "$t" ] && echo "$t"
done | xargs -r -n 1 -P "$(nproc)" sh tests/run-unit.sh "$log" &
unit_pid=$!

CLEARMTA_BIN=$(pwd)/build/asan/clearmta
export CLEARMTA_BIN
{ python3 tests/integration/runner.py; echo $? >"$log/integration.rc"; } 2>&1 |
    tee "$log/integration.log" | grep -v '^RESULT '
rc=$(cat "$log/integration.rc" 2>/dev/null || echo 1)
p=$(sed -n 's/^RESULT \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log/integration.log")
f=$(sed -n 's/^RESULT \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log/integration.log")
p=${p:-0}; f=${f:-1}
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
passed=$((passed + p)); failed=$((failed + f))

wait "$unit_pid"
for t in build/asan/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    read -r p f 2>/dev/null <"$log/$name.count" || { p=0; f=1; }
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then echo "FAIL unit $name (see $log/$name.log)"; cat "$log/$name.log"; else echo "ok   unit $name: $p"; fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
