#!/bin/sh
# scripts/deps.sh — installs the Debian packages a step needs, and only those missing.
# Usage: deps.sh build|test|bench. Runs apt-get as root (sudo when not root).
set -eu

build_pkgs="gcc make python3 libc6-dev libevent-dev libssl-dev libcrypt-dev libc-ares-dev libhiredis-dev libpsl-dev libidn2-dev publicsuffix openssl"
test_pkgs="$build_pkgs libcmocka-dev python3 swaks libnet-ssleay-perl curl msmtp dnsmasq-base redis-server clang libclang-rt-14-dev man-db systemd python3-dkim python3-spf python3-yaml dovecot-core dovecot-lmtpd chromium chromium-driver python3-selenium prometheus"
bench_pkgs="$build_pkgs postfix redis-server linux-perf strace sasl2-bin libsasl2-modules"

case "${1:-build}" in
    build) want=$build_pkgs ;;
    test) want=$test_pkgs ;;
    bench) want=$bench_pkgs ;;
    *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if [ "$p" = python3 ] && command -v python3 >/dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# swaks needs Net::SSLeay for STARTTLS, only a recommendation of its package: named above.
# postfix asks for a mail type on install; a private instance is configured by bench itself.
if echo "$missing" | grep -q postfix; then
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
fi
# Several builds may install at once: wait for the package lock rather than fail on it.
lock="-o DPkg::Lock::Timeout=900"
# shellcheck disable=SC2086
$sudo apt-get $lock update -qq >&2 || true
# shellcheck disable=SC2086
$sudo apt-get $lock install -y -qq --no-install-recommends $missing >&2
