/* net/transport.c — plain or TLS reads and writes for a connection. errno and OpenSSL error
 * codes become one of four outcomes here and go no further. */
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "net/tls.h"
#include "net/transport.h"

bool net_transport_start_tls(struct net_transport *t, SSL_CTX *ctx)
{
    t->ssl = SSL_new(ctx);
    if (!t->ssl)
        return false;
    if (SSL_set_fd(t->ssl, t->fd) != 1) {
        SSL_free(t->ssl);
        t->ssl = NULL;
        return false;
    }
    SSL_set_accept_state(t->ssl);
    return true;
}

/* Maps an OpenSSL result to an outcome. */
static enum net_io tls_outcome(SSL *ssl, int rc, short *want)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        *want = EV_READ;
        return NET_IO_WAIT;
    case SSL_ERROR_WANT_WRITE:
        *want = EV_WRITE;
        return NET_IO_WAIT;
    case SSL_ERROR_ZERO_RETURN:
        return NET_IO_EOF;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return (errno == 0 || errno == ECONNRESET) ? NET_IO_EOF : NET_IO_ERROR;
    default:
        return NET_IO_ERROR;
    }
}

enum net_io net_transport_handshake(struct net_transport *t, short *want, char *err, size_t errlen)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        /* The server has nothing to send after the client's Finished (no tickets): ACK it now.
         * A client with Nagle on holds its next command until that ACK, which delayed ACK
         * would send only 40 ms later. */
        int one = 1;
        if (SSL_is_server(t->ssl))
            setsockopt(t->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
        return NET_IO_DONE;
    }
    enum net_io io = tls_outcome(t->ssl, rc, want);
    if (io == NET_IO_ERROR)
        net_tls_error(err, errlen);
    else if (io == NET_IO_EOF)
        snprintf(err, errlen, "connection closed during the handshake");
    return io == NET_IO_EOF ? NET_IO_ERROR : io;
}

enum net_io net_transport_recv(struct net_transport *t, char *buf, size_t cap, size_t *got,
                               short *want)
{
    *got = 0;
    if (t->ssl) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_read(t->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
        if (rc > 0) {
            *got = (size_t)rc;
            return NET_IO_DONE;
        }
        return tls_outcome(t->ssl, rc, want);
    }
    ssize_t n = recv(t->fd, buf, cap, 0);
    if (n > 0) {
        *got = (size_t)n;
        return NET_IO_DONE;
    }
    if (n == 0)
        return NET_IO_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        *want = EV_READ;
        return NET_IO_WAIT;
    }
    return errno == ECONNRESET ? NET_IO_EOF : NET_IO_ERROR;
}

enum net_io net_transport_send(struct net_transport *t, const char *p, size_t n, size_t *sent,
                               short *want)
{
    *sent = 0;
    if (t->ssl) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_write(t->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (rc > 0) {
            *sent = (size_t)rc;
            return NET_IO_DONE;
        }
        return tls_outcome(t->ssl, rc, want);
    }
    ssize_t w = send(t->fd, p, n, MSG_NOSIGNAL);
    if (w >= 0) {
        *sent = (size_t)w;
        return NET_IO_DONE;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        *want = EV_WRITE;
        return NET_IO_WAIT;
    }
    return NET_IO_ERROR;
}

bool net_transport_pump(struct net_transport *t, net_transport_output_fn *output,
                        net_transport_consume_fn *consume, void *ctx, short *want)
{
    size_t len;
    const char *p = output(ctx, &len);
    while (len > 0) {
        size_t sent;
        short wait = EV_WRITE;
        enum net_io io = net_transport_send(t, p, len, &sent, &wait);
        if (io == NET_IO_WAIT) {
            *want = wait;
            return true;
        }
        if (io != NET_IO_DONE)
            return false;
        consume(ctx, sent);
        p = output(ctx, &len);
    }
    *want = EV_WRITE;
    return true;
}

size_t net_transport_pending(const struct net_transport *t)
{
    return t->ssl ? (size_t)SSL_pending(t->ssl) : 0;
}

void net_transport_free(struct net_transport *t)
{
    if (t->ssl)
        SSL_free(t->ssl);
    t->ssl = NULL;
}
