#!/bin/sh
# bench/postfix.sh — a private Postfix instance set up to the test contract of DESIGN.md
# (loopback only, domain example.test, Maildir delivery, same limits), for bench/run.sh.
# Usage: postfix.sh setup DIR PORT | start DIR | stop DIR | pids DIR. Runs as root.
# Keeps Postfix's default durability: cleanup(8) fsyncs the queue file before smtpd says 250.
set -eu

usage() {
    echo "usage: $0 setup DIR PORT | start DIR | stop DIR | pids DIR" >&2
    exit 2
}
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
# postfix -c needs an absolute path (a relative one fails without a word).
[ "$cmd" != setup ] || mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Writes DIR/etc/{main.cf,master.cf,mailboxes} and creates DIR/{queue,data,maildir}; the
# system's own Postfix (/etc/postfix, /var/spool/postfix) is never touched.
setup() {
    port=$1
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/maildir"
    uid=$(id -u postfix) gid=$(id -g postfix)
    chown root:root "$dir/queue"
    chown postfix:postfix "$dir/data" "$dir/maildir"
    cat >"$dir/etc/main.cf" <<EOF
# Written by bench/postfix.sh: the clearmta test contract, for the benchmark only.
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains =
local_recipient_maps =
virtual_mailbox_domains = example.test
virtual_mailbox_base = $dir/maildir
virtual_mailbox_maps = texthash:$dir/etc/mailboxes
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
message_size_limit = 10485760
smtpd_recipient_limit = 100
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
default_process_limit = 100
virtual_destination_concurrency_limit = 20
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_host_lookup = native
biff = no
maillog_file_prefixes = $dir
maillog_file = $dir/maillog
EOF
    printf '%s\n' "alice@example.test alice/" "bob@example.test bob/" \
        "postmaster@example.test postmaster/" >"$dir/etc/mailboxes"
    # The packaged master.cf with smtpd on our loopback port, and no chroot (a chroot would need
    # copies of /etc files inside the queue directory).
    awk -v listen="127.0.0.1:$port" '
        /^#/ || /^[ \t]/ || NF < 8 { print; next }
        $1 == "smtp" && $2 == "inet" { $1 = listen }
        { $5 = "n"; print }' /etc/postfix/master.cf >"$dir/etc/master.cf"
}

conf() { postconf -c "$dir/etc" -h "$1"; }

case $cmd in
setup) [ $# -eq 3 ] || usage; setup "$3" ;;
start) postfix -c "$dir/etc" start ;;
stop) postfix -c "$dir/etc" stop 2>/dev/null || true ;;
pids)
    # The master and every child of it: smtpd, cleanup, qmgr, trivial-rewrite, virtual, ...
    pidfile=$(conf queue_directory)/pid/master.pid
    [ -f "$pidfile" ] || exit 1
    master=$(tr -d ' ' <"$pidfile")
    echo "$master"
    pgrep -P "$master" || true ;;
*) usage ;;
esac
