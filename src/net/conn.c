/* net/conn.c — one client connection: bytes between the transport (TCP or TLS) and its SMTP
 * session, the STARTTLS and implicit-TLS handshakes, timeouts, closing. Non-blocking; one read
 * per readiness event keeps connections fair. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/ipcount.h"
#include "net/log.h"
#include "net/server.h"
#include "net/tls.h"

/* Reads served from TLS's own buffer in one event, without the socket's readiness. */
#define TLS_PENDING_READS 8

static void conn_event(evutil_socket_t fd, short what, void *arg);

/* Watches the socket for mask with the timeout of the session's state. Only a change of mask
 * touches the kernel's epoll set; a change of timeout alone reschedules the timer. */
static void arm(struct net_conn *c, short mask)
{
    bool data_timeout = smtp_server_in_data(c->session);
    if (mask == c->ev_mask && data_timeout == c->ev_data_timeout)
        return;
    const struct timeval *tv = data_timeout ? c->srv->data_timeout : c->srv->command_timeout;
    if (mask != c->ev_mask) {
        if (c->ev_mask != -1)
            event_del(&c->ev);
        event_assign(&c->ev, c->srv->base, c->io.fd, mask | EV_PERSIST, conn_event, c);
    }
    event_add(&c->ev, tv);
    c->ev_mask = mask;
    c->ev_data_timeout = data_timeout;
}

static bool implicit_tls(const struct net_conn *c)
{
    return c->listener->conf->kind == POLICY_LISTEN_SUBMISSIONS;
}

static bool start_tls(struct net_conn *c)
{
    if (!c->srv->tls_ctx || !net_transport_start_tls(&c->io, c->srv->tls_ctx)) {
        net_log("tls: cannot start TLS for [%s]", c->addr);
        return false;
    }
    c->handshaking = true;
    return true;
}

void net_conn_accept(struct net_listener *l, int fd, const char *addr)
{
    struct net_server *srv = l->srv;
    struct net_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        net_ipcount_remove(srv->per_ip, addr);
        return;
    }
    c->srv = srv;
    c->listener = l;
    c->io.fd = fd;
    c->ev_mask = -1;
    c->write_want = EV_WRITE;
    size_t n = strlen(addr);
    memcpy(c->addr, addr, n < sizeof c->addr ? n + 1 : sizeof c->addr);
    c->addr[sizeof c->addr - 1] = '\0';
    c->session = smtp_server_new(&l->opts, &srv->callbacks, c);
    if (!c->session) {
        free(c);
        close(fd);
        net_ipcount_remove(srv->per_ip, addr);
        return;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    net_log("connect from [%s] to %s port %u", c->addr, policy_listen_kind_name(l->conf->kind),
            l->conf->port);
    if (implicit_tls(c)) {
        if (!start_tls(c)) {
            net_conn_close(c);
            return;
        }
    } else {
        smtp_server_start(c->session);
    }
    net_conn_update(c);
}

void net_conn_close(struct net_conn *c)
{
    struct net_server *srv = c->srv;
    if (c->dead)
        return;
    c->dead = true;
    if (c->ev_mask != -1)
        event_del(&c->ev);
    net_transport_free(&c->io);
    /* Unread input would make close() send a reset that can destroy our last reply in flight. */
    for (int i = 0; i < 4 && recv(c->io.fd, srv->readbuf, sizeof srv->readbuf, MSG_DONTWAIT) > 0; i++)
        ;
    close(c->io.fd);
    net_log("disconnect from [%s]", c->addr);
    net_ipcount_remove(srv->per_ip, c->addr);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    smtp_server_free(c->session); /* aborts a message being received */
    c->session = NULL;
    if (!c->committing) { /* else the commit callback frees c */
        net_transaction_forget(c);
        free(c);
    }
    if (srv->shutting_down && srv->n_conns == 0)
        event_base_loopexit(srv->base, NULL);
}

/* Writes what the session has to say; false when the connection failed. */
static bool flush(struct net_conn *c)
{
    size_t len;
    const char *p = smtp_server_output(c->session, &len);
    while (len > 0) {
        size_t sent;
        short want = EV_WRITE;
        enum net_io io = net_transport_send(&c->io, p, len, &sent, &want);
        if (io == NET_IO_WAIT) {
            c->write_want = want;
            return true;
        }
        if (io != NET_IO_DONE)
            return false;
        smtp_server_consume_output(c->session, sent);
        p = smtp_server_output(c->session, &len);
    }
    c->write_want = EV_WRITE;
    return true;
}

/* One handshake step; true when TLS is up and the session may go on. */
static bool handshake(struct net_conn *c)
{
    short want = EV_READ;
    char err[256] = "";
    switch (net_transport_handshake(&c->io, &want, err, sizeof err)) {
    case NET_IO_DONE:
        break;
    case NET_IO_WAIT:
        arm(c, want);
        return false;
    case NET_IO_EOF:
    case NET_IO_ERROR:
        net_log("tls: handshake failed with [%s]: %s", c->addr, err);
        net_conn_close(c);
        return false;
    }
    c->handshaking = false;
    char desc[128];
    net_tls_describe(c->io.ssl, desc, sizeof desc);
    net_log("tls: [%s] %s", c->addr, desc);
    smtp_server_tls_started(c->session);
    if (implicit_tls(c))
        smtp_server_start(c->session);
    return true;
}

void net_conn_update(struct net_conn *c)
{
    if (c->dead)
        return;
    if (c->handshaking && !handshake(c))
        return;
    if (!flush(c)) {
        net_conn_close(c);
        return;
    }
    if (smtp_server_wants_tls(c->session) && !c->io.ssl) {
        if (!start_tls(c)) {
            net_conn_close(c);
            return;
        }
        net_conn_update(c);
        return;
    }
    size_t pending_out;
    smtp_server_output(c->session, &pending_out);
    if (smtp_server_closing(c->session) && pending_out == 0) {
        net_conn_close(c);
        return;
    }
    short mask = 0;
    if (pending_out > 0)
        mask = c->write_want;
    else if (!smtp_server_closing(c->session) && smtp_server_input_room(c->session) > 0)
        mask = c->read_want ? c->read_want : EV_READ;
    arm(c, mask);
}

/* Returns false when the connection is gone (c freed). */
static bool conn_read(struct net_conn *c)
{
    for (int i = 0; i < TLS_PENDING_READS; i++) {
        size_t room = smtp_server_input_room(c->session);
        if (room == 0 || smtp_server_pending(c->session))
            return true;
        if (room > sizeof c->srv->readbuf)
            room = sizeof c->srv->readbuf;
        size_t got;
        short want = EV_READ;
        enum net_io io = net_transport_recv(&c->io, c->srv->readbuf, room, &got, &want);
        if (io == NET_IO_EOF || io == NET_IO_ERROR) {
            net_conn_close(c);
            return false;
        }
        if (io == NET_IO_WAIT) {
            c->read_want = want;
            return true;
        }
        c->read_want = EV_READ;
        smtp_server_feed(c->session, c->srv->readbuf, got);
        if (net_transport_pending(&c->io) == 0)
            return true;
    }
    return true;
}

static void conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct net_conn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        if (c->handshaking || smtp_server_closing(c->session)) { /* silent peer, or our last
                                                                  * words were never read */
            net_conn_close(c);
            return;
        }
        /* A client waiting on our decision (a commit in flight) is not idle. */
        if (!smtp_server_pending(c->session)) {
            net_log("timeout from [%s]", c->addr);
            smtp_server_timeout(c->session);
        }
    } else if (!c->handshaking && (what & (EV_READ | EV_WRITE))) {
        size_t pending_out;
        smtp_server_output(c->session, &pending_out);
        if (pending_out == 0 && !conn_read(c))
            return;
    }
    net_conn_update(c);
}

void net_conn_shutdown(struct net_conn *c)
{
    smtp_server_shutdown(c->session);
    net_conn_update(c);
}
