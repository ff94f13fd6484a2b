/* net/listener.h — listening sockets: bind, listen, non-blocking. errno becomes text here. */
#ifndef CLEARMTA_NET_LISTENER_H
#define CLEARMTA_NET_LISTENER_H

#include <stddef.h>

/* Opens a non-blocking listening TCP socket on host (numeric IPv4/IPv6, "" = every address)
 * and port. Returns the fd, or -1 with a one-line reason in err. */
int net_listen(const char *host, unsigned short port, char *err, size_t errlen);

/* The numeric address of a peer as text ("192.0.2.1", "2001:db8::1"; IPv4-mapped IPv6 shown as
 * IPv4). */
void net_peer_address(const void *sockaddr, char *out, size_t cap);

#endif
