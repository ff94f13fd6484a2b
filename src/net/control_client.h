/* net/control_client.h — the blocking client of a running server's control socket (the protocol
 * is described in net/control.h), for the CLI: one request, one answer, bounded in time. */
#ifndef CLEARMTA_NET_CONTROL_CLIENT_H
#define CLEARMTA_NET_CONTROL_CLIENT_H

#include <stddef.h>

#include "net/control.h" /* the protocol's bounds and NET_CONTROL_SOCKET_NAME */

/* net_control_call's answer when the socket exists but this user may not connect to it
 * (EACCES, EPERM: it is for root and the server's user): the server may well be running. */
#define NET_CONTROL_DENIED (-2)

/* Sends argv as one request to the socket at path and writes the body to out (status 0) or err
 * (otherwise). Returns the status, NET_CONTROL_DENIED when this user may not connect, or -1
 * with a message in errbuf when no server answers (ENOENT/ECONNREFUSED: "no clearmta server
 * is running (no control socket at PATH)"); errbuf is set for NET_CONTROL_DENIED too.
 * An argv the protocol cannot carry (a space or control character in an argument, too many or
 * too long) is refused before connecting: its reason goes to err_fd and the status is 2.
 * timeout_ms bounds the whole exchange. Blocks: never call it on the event loop. */
int net_control_call(const char *path, int argc, char **argv, int out_fd, int err_fd,
                     unsigned timeout_ms, char *errbuf, size_t errlen);

#endif
