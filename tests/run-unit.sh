#!/bin/sh
# tests/run-unit.sh LOG_DIR BINARY — runs one cmocka unit test binary with the sanitizers'
# reports on, killed after 10 minutes, into LOG_DIR/NAME.log, and writes its counts to
# LOG_DIR/NAME.count as "PASSED FAILED" (a crash, a kill or a non-zero exit is at least one
# failure). tests/run.sh runs every binary so, several at once.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 LOG_DIR BINARY" >&2
    exit 2
fi
log=$1 t=$2
name=$(basename "$t")
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 timeout -k 10 600 "$t" \
    >"$log/$name.log" 2>&1
rc=$?
[ "$rc" -eq 124 ] && echo "run-unit: $name killed after 600 s" >>"$log/$name.log"
p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log/$name.log" | tail -n 1)
f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log/$name.log" | tail -n 1)
p=${p:-0}; f=${f:-0}
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
echo "$p $f" >"$log/$name.count"
