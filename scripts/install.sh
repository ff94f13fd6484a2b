#!/bin/sh
# scripts/install.sh install|uninstall PREFIX DESTDIR — what `make install` and
# `make uninstall` do: the binary with its sendmail and mailq names, man pages made from docs/
# (scripts/man.py), the systemd unit, the configuration only when absent; as root with an empty
# DESTDIR also the system user and group clearmta and the spool. Uninstall leaves the
# configuration and the spool.
set -eu
action=$1 prefix=$2 destdir=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
sbin=$destdir$prefix/sbin
bin=$destdir$prefix/bin
man5=$destdir$prefix/share/man/man5
man8=$destdir$prefix/share/man/man8
unitdir=$destdir$prefix/lib/systemd/system
etc=$destdir/etc/clearmta
spool=/var/spool/clearmta

installed="$sbin/clearmta $sbin/sendmail $bin/mailq $man8/clearmta.8 $man8/sendmail.8
$man8/mailq.8 $man5/clearmta.conf.5 $unitdir/clearmta.service"

case $action in
install)
    install -d -m 0755 "$sbin" "$bin" "$man5" "$man8" "$unitdir"
    install -m 0755 "$root/build/clearmta" "$sbin/clearmta"
    # One program under three names: it looks at argv[0].
    ln -sf clearmta "$sbin/sendmail"
    ln -sf ../sbin/clearmta "$bin/mailq"
    python3 "$root/scripts/man.py" "$root/docs/clearmta.8.md" >"$man8/clearmta.8"
    python3 "$root/scripts/man.py" "$root/docs/sendmail.8.md" >"$man8/sendmail.8"
    python3 "$root/scripts/man.py" "$root/docs/clearmta.conf.5.md" >"$man5/clearmta.conf.5"
    echo ".so man8/sendmail.8" >"$man8/mailq.8"
    chmod 0644 "$man8/clearmta.8" "$man8/sendmail.8" "$man8/mailq.8" "$man5/clearmta.conf.5"
    sed -e "s|@SBINDIR@|$prefix/sbin|g" -e "s|@SYSCONFDIR@|/etc|g" \
        "$root/dist/clearmta.service.in" >"$unitdir/clearmta.service"
    chmod 0644 "$unitdir/clearmta.service"
    install -d -m 0755 "$etc"
    if [ ! -e "$etc/clearmta.conf" ]; then
        install -m 0644 "$root/dist/clearmta.conf" "$etc/clearmta.conf"
    else
        echo "install: $etc/clearmta.conf exists; left as it is"
    fi
    if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ]; then
        getent group clearmta >/dev/null || groupadd --system clearmta
        getent passwd clearmta >/dev/null ||
            useradd --system --gid clearmta --home-dir "$spool" --no-create-home \
                --shell /usr/sbin/nologin --comment "clearmta mail server" clearmta
        # o+x on the spool and the queue: any local user's sendmail reaches the maildrop
        # (01733: dropping in, but no listing); nothing else there is readable by others.
        install -d -o clearmta -g clearmta -m 0751 "$spool"
        install -d -o clearmta -g clearmta -m 0711 "$spool/queue"
        install -d -o clearmta -g clearmta -m 01733 "$spool/queue/maildrop"
    fi
    ;;
uninstall)
    # shellcheck disable=SC2086
    rm -f $installed
    echo "uninstall: left $etc/clearmta.conf and $spool"
    ;;
*)
    echo "usage: $0 install|uninstall PREFIX DESTDIR" >&2
    exit 2
    ;;
esac
