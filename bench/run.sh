#!/bin/sh
# bench/run.sh — `make bench`: clearmta beside a private Postfix instance on this machine, with
# smtp-sink and the disk's sync rate as ceilings. Loopback only; stops by itself (hard limit
# BENCH_TIMEOUT seconds, default 900). Writes bench/results/latest.md. See bench/README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

# Postfix's master must start as root.
if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E sh "$0" "$@"
fi
for tool in smtp-source smtp-sink postfix postconf python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench: $tool missing (sh scripts/deps.sh bench installs it)" >&2
        exit 1
    }
done
case ${BENCH_SERVERS:-clearmta} in
*clearmta*) [ -x "$root/build/clearmta" ] || { echo "bench: build/clearmta missing (run make)" >&2; exit 1; } ;;
esac

# 10 000 idle connections need as many descriptors in the server and in the client.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    echo "bench: warning: fd limit $(ulimit -n) < 10100, the 10 000-connection figure is capped" >&2
fi

work=$root/build/bench
stop_servers() {
    for d in "$work"/postfix.*; do
        if [ -d "$d/etc" ]; then sh "$here/postfix.sh" stop "$d" 2>/dev/null || true; fi
    done
    if [ -f "$work/clearmta.pid" ]; then
        pid=$(cat "$work/clearmta.pid")
        # Only our server: the pid may have been reused since.
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "clearmta serve -c $work/"; then
            kill "$pid"
        fi
        rm -f "$work/clearmta.pid"
    fi
}
# Data directories hold every delivered message; BENCH_KEEP=1 keeps them for inspection.
remove_data() {
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"/clearmta.* "$work"/postfix.*
}
cleanup() {
    # Whatever happened to bench.py, leave no server behind.
    stop_servers
    remove_data
}
stop_servers  # left over from an interrupted run
rm -rf "$work"/clearmta.* "$work"/postfix.* "$work/clearmta.log"
mkdir -p "$work"
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$here"
timeout -k 10 "${BENCH_TIMEOUT:-900}" python3 "$here/bench.py"
