#!/bin/sh
# scripts/fuzz.sh SECONDS TARGET... — runs each libFuzzer target for SECONDS on a scratch copy
# of its committed seed corpus (fuzz/corpus/<target>/); crashes land in build/fuzz/artifacts/.
set -u
secs=$1
shift
status=0
mkdir -p build/fuzz/artifacts
for bin in "$@"; do
    name=$(basename "$bin")
    work=build/fuzz/corpus/$name
    mkdir -p "$work"
    [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$work/"
    echo "fuzz: $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="build/fuzz/artifacts/$name-" "$work" >"build/fuzz/$name.log" 2>&1; then
        echo "fuzz: $name FAILED (see build/fuzz/$name.log)"
        tail -n 30 "build/fuzz/$name.log"
        status=1
    else
        grep -E '^#[0-9]+ *DONE' "build/fuzz/$name.log" | tail -n 1
    fi
done
exit $status
