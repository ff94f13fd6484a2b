#!/bin/sh
# tests/dns-server.sh PORT RECORDS_FILE — runs dnsmasq in the foreground as a test DNS server on
# 127.0.0.1:PORT (UDP and TCP), answering only from RECORDS_FILE: dnsmasq option lines such as
#   mx-host=example.test,mx1.example.test,10     (MX; "mx-host=null.test,.,0" is a null MX)
#   host-record=mx1.example.test,127.0.0.1,::1   (A and AAAA)
#   txt-record=noaddr.test,"x"                   (a name that exists without MX or address)
# Names under .test that the file does not hold get NXDOMAIN; nothing is forwarded upstream,
# /etc/hosts and /etc/resolv.conf are not read. Point clearmta at it with `resolver
# 127.0.0.1:PORT`. Stop it with SIGTERM (its pid is this script's: it execs dnsmasq).
# Exits 3 when dnsmasq is not installed (`apt-get install dnsmasq`), so tests can skip.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 PORT RECORDS_FILE" >&2
    exit 2
fi
port=$1 records=$2
case $port in
    ''|*[!0-9]*) echo "$0: PORT must be a number" >&2; exit 2 ;;
esac
if [ ! -r "$records" ]; then
    echo "$0: cannot read $records" >&2
    exit 2
fi
dnsmasq=$(command -v dnsmasq || true)
[ -n "$dnsmasq" ] || dnsmasq=/usr/sbin/dnsmasq
if [ ! -x "$dnsmasq" ]; then
    echo "$0: dnsmasq is not installed" >&2
    exit 3
fi
records=$(cd "$(dirname "$records")" && pwd)/$(basename "$records")
# --conf-file=/dev/null first: the system's /etc/dnsmasq.conf never applies. --user keeps the
# invoking user (dnsmasq run as root would otherwise switch to "nobody", who may not read the
# records file).
exec "$dnsmasq" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --listen-address=127.0.0.1 --bind-interfaces --port="$port" --local=/test/ \
    --pid-file= --user="$(id -un)" --log-facility=- --conf-file="$records"
