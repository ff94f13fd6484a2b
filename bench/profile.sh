#!/bin/sh
# bench/profile.sh [LABEL] — where clearmta's time goes per message: starts build/clearmta on the
# test contract in a scratch directory, sends BENCH_PROFILE_MSGS messages of BENCH_PROFILE_SIZE
# octets (default 2048; 20 sessions, smtp-source; many per session, or one per connection with
# BENCH_PROFILE_PER_CONN=1) once under `perf record -g` and once under `strace -c -f`, and
# writes bench/results/profile-LABEL.folded (folded stacks: one line per stack, its sample
# count last), profile-LABEL.top (the hottest functions, self and with children) and
# profile-LABEL.syscalls (system calls per message). Needs perf (linux-perf), strace and
# smtp-source (scripts/deps.sh bench). Loopback only; stops the server it started.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
label=${1:-latest}
msgs=${BENCH_PROFILE_MSGS:-20000}
size=${BENCH_PROFILE_SIZE:-2048}
per_session=-d
load_name="many per session"
if [ "${BENCH_PROFILE_PER_CONN:-0}" = 1 ]; then
    per_session=""
    load_name="one per connection"
fi
out=$here/results
work=$(mktemp -d "${TMPDIR:-/tmp}/clearmta-profile.XXXXXX")
pid=""
stop() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    pid=""
}
trap 'stop; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# CPU seconds (user + system, every thread) the server has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f\n", ($12 + $13) / hz }' \
        "/proc/$pid/stat"
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
    mx=$(port)
    sub=$(port)
    CLEARMTA_BIN=$root/build/clearmta sh "$root/tests/contract-server.sh" "$mx" "$sub" \
        "$work/data.$1" >"$work/server.$1.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$mx),1)" 2>/dev/null
        then return 0; fi
        sleep 0.1
    done
    echo "profile: the server did not start" >&2
    exit 1
}

load() {
    # shellcheck disable=SC2086 # $per_session is one option or none
    smtp-source -s 20 -m "$msgs" -l "$size" $per_session -f bench@example.test \
        -t alice@example.test \
        "127.0.0.1:$mx"
    # Delivery may trail acceptance: wait for the last Maildir file (at most 60 s).
    for _ in $(seq 600); do
        n=$(find "$work/data.$1/maildir/alice/new" -type f 2>/dev/null | wc -l)
        [ "$n" -ge "$msgs" ] && return 0
        sleep 0.1
    done
}

mkdir -p "$out"
start perf
perf record -q -g -F 999 -p "$pid" -o "$work/perf.data" >/dev/null 2>&1 &
perf_pid=$!
sleep 0.5
cpu0=$(cpu_seconds)
load perf
cpu1=$(cpu_seconds)
kill -INT "$perf_pid"
wait "$perf_pid" || true
stop
perf script -i "$work/perf.data" 2>/dev/null | python3 "$here/fold_stacks.py" \
    >"$out/profile-$label.folded"
{
    awk -v a="$cpu0" -v b="$cpu1" -v n="$msgs" -v size="$size" -v load="$load_name" 'BEGIN {
        printf "# server CPU under perf: %.2f s for %d messages of %d octets, %s: %.3f ms each\n",
            b - a, n, size, load, (b - a) * 1000 / n }'
    python3 "$here/fold_stacks.py" --top <"$out/profile-$label.folded"
} >"$out/profile-$label.top"

start strace
strace -c -f -q -p "$pid" -o "$work/strace.txt" &
strace_pid=$!
sleep 0.5
load strace
sleep 0.5
kill -INT "$strace_pid"
wait "$strace_pid" || true
stop
{
    echo "# strace -c -f of clearmta: $msgs messages of $size octets, 20 sessions, $load_name"
    cat "$work/strace.txt"
    echo
    echo "# calls per message"
    awk -v n="$msgs" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
        printf "%-20s %8.2f\n", $NF, $4 / n }' \
        "$work/strace.txt" | sort -k2 -nr
} >"$out/profile-$label.syscalls"
echo "profile: wrote $out/profile-$label.{folded,top,syscalls}"
