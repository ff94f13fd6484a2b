#!/bin/sh
# tests/redis-server.sh — a throw-away redis-server for the tests and the bench: loopback only,
# no persistence (no RDB, no AOF), its files in DIR (created).
#   tests/redis-server.sh PORT DIR        runs it in the foreground (stop it with SIGTERM)
#   tests/redis-server.sh start PORT DIR  starts it in the background (pid in DIR/redis.pid, log
#                                         in DIR/redis.log); returns once it answers PING
#                                         (exit 1 if not within 10 s)
#   tests/redis-server.sh stop DIR        stops the one started so (SIGTERM, SIGKILL after 10 s)
set -eu
usage() {
    echo "usage: $0 [start] PORT DIR | stop DIR" >&2
    exit 2
}
check_port() {
    case $1 in
    '' | *[!0-9]*) usage ;;
    esac
}
# True while PID is a running redis-server (pids get reused; a zombie waiting for its reaper
# has an empty command line).
is_redis() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q redis-server
}
# The pid in DIR/redis.pid if that process is still a redis-server.
our_pid() {
    [ -s "$1/redis.pid" ] || return 1
    pid=$(cat "$1/redis.pid")
    case $pid in
    '' | *[!0-9]*) return 1 ;;
    esac
    is_redis "$pid" || return 1
    echo "$pid"
}
case ${1:-} in
start)
    [ $# -eq 3 ] || usage
    check_port "$2"
    mkdir -p "$3"
    dir=$(cd "$3" && pwd)
    # The options are spelled out here, not kept in a variable: --save '' must reach
    # redis-server as one empty argument.
    redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" --daemonize yes
    tries=0
    until [ "$(redis-cli -h 127.0.0.1 -p "$2" ping 2>/dev/null)" = PONG ]; do
        tries=$((tries + 1))
        if [ $tries -ge 100 ]; then
            echo "$0: redis-server on port $2 did not answer within 10 s:" >&2
            tail -5 "$dir/redis.log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    ;;
stop)
    [ $# -eq 2 ] || usage
    pid=$(our_pid "$2") || exit 0
    kill "$pid" 2>/dev/null || true
    tries=0
    while is_redis "$pid"; do
        tries=$((tries + 1))
        if [ $tries -ge 100 ]; then
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$2/redis.pid"
    ;;
*)
    [ $# -eq 2 ] || usage
    check_port "$1"
    mkdir -p "$2"
    dir=$(cd "$2" && pwd)
    exec redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --pidfile "$dir/redis.pid"
    ;;
esac
