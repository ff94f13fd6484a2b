/* net/transport.h — a connection's bytes over plain TCP or TLS (OpenSSL), non-blocking. Each
 * call says, when it cannot go on, whether it waits for the socket to be readable or writable
 * (TLS may need to write to read, and read to write). */
#ifndef CLEARMTA_NET_TRANSPORT_H
#define CLEARMTA_NET_TRANSPORT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum net_io {
    NET_IO_DONE,  /* bytes moved (count returned), or the handshake finished */
    NET_IO_WAIT,  /* try again when *want (EV_READ or EV_WRITE) fires */
    NET_IO_EOF,   /* the peer closed */
    NET_IO_ERROR, /* the connection is broken; err holds a reason for TLS failures */
};

struct net_transport {
    int fd;
    SSL *ssl; /* NULL: plain TCP */
};

/* Starts TLS on the socket as a server; false when out of memory. */
bool net_transport_start_tls(struct net_transport *t, SSL_CTX *ctx);

/* One step of the TLS handshake. */
enum net_io net_transport_handshake(struct net_transport *t, short *want, char *err, size_t errlen);

enum net_io net_transport_recv(struct net_transport *t, char *buf, size_t cap, size_t *got,
                               short *want);
enum net_io net_transport_send(struct net_transport *t, const char *p, size_t n, size_t *sent,
                               short *want);

/* The output of whoever drives the connection (an SMTP session): output() returns the bytes
 * waiting to go out (*len 0: none), consume() drops the first n of them once they are sent. */
typedef const char *net_transport_output_fn(void *ctx, size_t *len);
typedef void net_transport_consume_fn(void *ctx, size_t n);

/* Sends output until none is left or the socket would block. True with *want EV_WRITE when
 * everything went out, or with what to wait for when it would block (TLS may need EV_READ to
 * write); false when the connection failed or the peer closed, *want untouched. */
bool net_transport_pump(struct net_transport *t, net_transport_output_fn *output,
                        net_transport_consume_fn *consume, void *ctx, short *want);

/* Decrypted bytes already buffered inside TLS (readable without the socket). */
size_t net_transport_pending(const struct net_transport *t);

/* Frees the TLS state (no close_notify: the socket is about to close). */
void net_transport_free(struct net_transport *t);

#endif
