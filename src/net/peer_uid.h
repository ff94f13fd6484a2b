/* net/peer_uid.h — who owns the other end of a TCP connection made within this host (a client
 * on loopback): the kernel's socket table asked through NETLINK_SOCK_DIAG. */
#ifndef CLEARMTA_NET_PEER_UID_H
#define CLEARMTA_NET_PEER_UID_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The socket at the other end of a connection: the user it belongs to (the one that made it)
 * and its inode number (fstat's st_ino of that socket). */
struct net_peer_socket {
    uid_t uid;
    uint64_t inode;
};

/* Finds the socket at the other end of the connected TCP socket fd (IPv4, IPv6 or IPv4-mapped
 * IPv6) by the exact pair of addresses and ports, asked anew at each call (ports are reused).
 * False — the owner is unknown — when fd is no connected TCP socket, the other end is not a
 * socket of this host, it is no longer open in ESTABLISHED state (closed or half-closed: the
 * kernel no longer says whose it was), or the kernel cannot be asked. Blocks at most a second
 * (the kernel answers within the request). */
bool net_peer_socket(int fd, struct net_peer_socket *out);

#endif
