#!/bin/sh
# tests/contract-server.sh MX_PORT SUB_PORT DATA_DIR — runs clearmta in the foreground set up
# to the test contract of DESIGN.md: domain example.test with alice, bob and postmaster
# delivered to DATA_DIR/maildir/<user>/, size limit 10485760, at most 100 recipients; the
# submission port offers STARTTLS, then AUTH PLAIN/LOGIN for alice/alice-secret and
# bob/bob-secret (a self-signed certificate is generated into DATA_DIR/tls/).
# The binary is $CLEARMTA_BIN, else build/clearmta beside this script's repository.
# CONTRACT_RELAY=127.0.0.1:PORT sends every other domain to that host (no DNS, opportunistic
# STARTTLS, no AUTH); CONTRACT_FAST_RETRY=1 retries after 2 s doubling to 10 s, gives up at 60 s.
# CONTRACT_PLAN_PER_HOUR=N puts alice and bob (submission, after AUTH) on plan "contract" of N
# messages per rolling hour (default_plan; over it MAIL gets 451 4.7.1); CONTRACT_REDIS=
# 127.0.0.1:PORT keeps the counters in that Redis (fail open), so servers on other ports that
# name the same Redis share one count (tests/redis-server.sh starts one).
# CONTRACT_DKIM=SELECTOR:KEYFILE signs mail from example.test submitted after AUTH (and the
# server's own reports) with d=example.test, that selector and that PEM key (dkim_sign).
# CONTRACT_HTTP=PORT opens the web console and /metrics on 127.0.0.1:PORT (listen http).
# CONTRACT_MAX_CONNECTIONS=N sets max_connections (the server still lowers it to fit its
# descriptors; stress mode begins at 80 % of what is in force).
set -eu
if [ $# -ne 3 ]; then
    echo "usage: $0 MX_PORT SUB_PORT DATA_DIR" >&2
    exit 2
fi
mx=$1 sub=$2 data=$3
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${CLEARMTA_BIN:-$here/build/clearmta}
mkdir -p "$data"
data=$(cd "$data" && pwd)
conf=$data/clearmta.conf
users=$data/users
if [ ! -s "$users" ]; then
    printf 'alice:%s\nbob:%s\n' "$(openssl passwd -6 alice-secret)" \
        "$(openssl passwd -6 bob-secret)" >"$users.tmp"
    chmod 600 "$users.tmp"
    mv "$users.tmp" "$users"
fi
cat >"$conf" <<CONF
# Written by tests/contract-server.sh: the test contract of DESIGN.md.
hostname mx.example.test
listen mx 127.0.0.1:$mx
listen submission 127.0.0.1:$sub
data_dir $data
maildir_root $data/maildir
domain example.test users alice bob postmaster
max_message_size 10485760
max_recipients 100
users_file $users
CONF
if [ "$(id -u)" -eq 0 ]; then
    # Started as root the server would drop to user clearmta; the test dirs are root's.
    echo "user root" >>"$conf"
fi
if [ -n "${CONTRACT_RELAY:-}" ]; then
    host=${CONTRACT_RELAY%:*} port=${CONTRACT_RELAY##*:}
    printf 'relayhost [%s]:%s\n' "$host" "$port" >>"$conf"
fi
if [ "${CONTRACT_FAST_RETRY:-}" = 1 ]; then
    printf 'retry_first 2\nretry_max 10\nqueue_lifetime 60\ndelay_warning 30\n' >>"$conf"
fi
if [ -n "${CONTRACT_PLAN_PER_HOUR:-}" ]; then
    case $CONTRACT_PLAN_PER_HOUR in
    *[!0-9]*) echo "$0: CONTRACT_PLAN_PER_HOUR must be a number" >&2; exit 2 ;;
    esac
    printf 'plan contract messages=%s/hour\ndefault_plan contract\n' \
        "$CONTRACT_PLAN_PER_HOUR" >>"$conf"
fi
if [ -n "${CONTRACT_REDIS:-}" ]; then
    case $CONTRACT_REDIS in
    *[!0-9.:]* | *:*:* | :* | *:) echo "$0: CONTRACT_REDIS must be IPv4:PORT" >&2; exit 2 ;;
    *:*) ;;
    *) echo "$0: CONTRACT_REDIS must be IPv4:PORT" >&2; exit 2 ;;
    esac
    printf 'counters redis %s\n' "$CONTRACT_REDIS" >>"$conf"
fi
if [ -n "${CONTRACT_DKIM:-}" ]; then
    case $CONTRACT_DKIM in
    *:*) ;;
    *) echo "$0: CONTRACT_DKIM must be SELECTOR:KEYFILE" >&2; exit 2 ;;
    esac
    printf 'dkim_sign example.test selector=%s key=%s\n' "${CONTRACT_DKIM%%:*}" \
        "${CONTRACT_DKIM#*:}" >>"$conf"
fi
if [ -n "${CONTRACT_HTTP:-}" ]; then
    case $CONTRACT_HTTP in
    '' | *[!0-9]*) echo "$0: CONTRACT_HTTP must be a port number" >&2; exit 2 ;;
    esac
    printf 'listen http 127.0.0.1:%s\n' "$CONTRACT_HTTP" >>"$conf"
fi
if [ -n "${CONTRACT_MAX_CONNECTIONS:-}" ]; then
    case $CONTRACT_MAX_CONNECTIONS in
    '' | *[!0-9]*) echo "$0: CONTRACT_MAX_CONNECTIONS must be a number" >&2; exit 2 ;;
    esac
    printf 'max_connections %s\n' "$CONTRACT_MAX_CONNECTIONS" >>"$conf"
fi
chmod 644 "$conf" # whatever the umask: a config others may write is refused
exec "$bin" serve -c "$conf"
