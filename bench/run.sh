#!/bin/sh
# bench/run.sh — `make bench`: clearmta beside a private Postfix instance on this machine, with
# smtp-sink and the disk's sync rate as ceilings; inbound loads, then outbound delivery to
# smtp-sink (bench.py runs bench/outbound.py last). Loopback only; stops by itself (hard limit
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
*clearmta*)
    if [ ! -x "$root/build/clearmta" ]; then
        echo "bench: build/clearmta missing (run make)" >&2
        exit 1
    fi ;;
esac

# 10 000 idle connections need as many descriptors in the server and in the client.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    echo "bench: warning: fd limit $(ulimit -n) < 10100, the 10 000-connection figure is capped" >&2
fi

work=$root/build/bench
stop_servers() {
    for d in "$work"/data/postfix.*; do
        if [ -d "$d/etc" ]; then sh "$here/postfix.sh" stop "$d" 2>/dev/null || true; fi
    done
    if [ -f "$work/clearmta.pid" ]; then
        pid=$(cat "$work/clearmta.pid")
        # Only our server: the pid may have been reused since.
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" || true)
        if echo "$cmd" | grep -q "clearmta serve -c $work/data/"; then
            kill "$pid"
        fi
        rm -f "$work/clearmta.pid"
    fi
}
# The data directories hold every delivered message: some 200 000 files, which take minutes
# to delete on a slow disk. They are moved aside and deleted in the background, holding a lock
# that the next run waits for, so that deletion never overlaps a measurement.
lock=$work/.remove.lock
remove_data() {
    [ "${BENCH_KEEP:-0}" = 1 ] && return 0
    [ -d "$work/data" ] || return 0
    trash=$work/trash.$$
    mv "$work/data" "$trash"
    nohup nice -n 19 flock "$lock" rm -rf "$trash" >/dev/null 2>&1 &
    echo "bench: removing the data directories in the background (BENCH_KEEP=1 keeps them)" >&2
}
cleanup() {
    # Whatever happened to bench.py, leave no server behind.
    stop_servers
    remove_data
}
mkdir -p "$work"
flock -w 600 "$lock" true ||
    echo "bench: warning: an earlier run's files are still being removed" >&2
stop_servers  # left over from an interrupted run
rm -rf "$work/data" "$work"/trash.* "$work/clearmta.log"
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$here"
timeout -k 10 "${BENCH_TIMEOUT:-900}" python3 "$here/bench.py"

# Limits (issue 9): counter decisions per second, memory vs Redis, and what a plan adds to each
# MAIL at 20 sessions; appended to the table bench.py just wrote (bench/limits.py).
timeout -k 10 "${BENCH_LIMITS_TIMEOUT:-600}" python3 "$here/limits.py" \
    --append "$here/results/latest.md" ||
    echo "bench: the limits figures failed (see above); latest.md has none" >&2

# Many destinations, one slow (issue 16): the other nine's rate beside a destination answering
# in 1 s, against their rate alone (bench/fanout.py).
timeout -k 10 "${BENCH_FANOUT_TIMEOUT:-900}" python3 "$here/fanout.py" \
    --append "$here/results/latest.md" ||
    echo "bench: the fan-out figures failed (see above); latest.md has none" >&2

# Mail authentication (issue 20): µs per message of DKIM signing and verification, and what
# the checks on receipt add per message (bench/auth_cost.py).
timeout -k 10 "${BENCH_AUTH_TIMEOUT:-600}" python3 "$here/auth_cost.py" \
    --bin "$root/build/clearmta" --append "$here/results/latest.md" ||
    echo "bench: the mail authentication figures failed (see above); latest.md has none" >&2

# Submission (issue 16): STARTTLS + AUTH submissions per second, one message per connection,
# clearmta beside Postfix with TLS and Cyrus SASL (bench/submission.py).
timeout -k 10 "${BENCH_SUB_TIMEOUT:-300}" python3 "$here/submission.py" \
    --append "$here/results/latest.md" ||
    echo "bench: the submission figures failed (see above); latest.md has none" >&2

# Metrics (issue 18): the metric operations of one accepted message, timed, beside clearmta's
# CPU per message from the table (bench/metrics_cost.py).
timeout -k 10 120 python3 "$here/metrics_cost.py" --append "$here/results/latest.md" ||
    echo "bench: the metrics figure failed (see above); latest.md has none" >&2

# Explain (issue 15): the shared bounce set in one process and a million log and reply lines,
# per second of one core (bench/explain_speed.py), appended to the same table file.
timeout -k 10 "${BENCH_EXPLAIN_TIMEOUT:-600}" python3 "$here/explain_speed.py" \
    --append "$here/results/latest.md" ||
    echo "bench: the explain figures failed (see above); latest.md has none" >&2
