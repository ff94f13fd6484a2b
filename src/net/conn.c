/* net/conn.c — one client connection: socket bytes in and out of its SMTP session, timeouts,
 * closing. Non-blocking; one read per readiness event keeps connections fair. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/ipcount.h"
#include "net/log.h"
#include "net/server.h"

static void conn_event(evutil_socket_t fd, short what, void *arg);

void net_conn_accept(struct net_listener *l, int fd, const char *addr)
{
    struct net_server *srv = l->srv;
    struct net_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = srv;
    c->listener = l;
    c->fd = fd;
    c->ev_mask = -1;
    size_t n = strlen(addr);
    memcpy(c->addr, addr, n < sizeof c->addr ? n + 1 : sizeof c->addr);
    c->addr[sizeof c->addr - 1] = '\0';
    c->session = smtp_server_new(&l->opts, &srv->callbacks, c);
    if (!c->session) {
        free(c);
        close(fd);
        return;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    net_log("connect from [%s] to %s port %u", c->addr, policy_listen_kind_name(l->conf->kind),
            l->conf->port);
    smtp_server_start(c->session);
    net_conn_update(c);
}

static void conn_free(struct net_conn *c)
{
    net_transaction_forget(c);
    free(c);
}

void net_conn_close(struct net_conn *c)
{
    struct net_server *srv = c->srv;
    if (c->dead)
        return;
    c->dead = true;
    if (c->ev_mask != -1)
        event_del(&c->ev);
    /* Unread input would make close() send a reset that can destroy our last reply in flight. */
    for (int i = 0; i < 4 && recv(c->fd, c->srv->readbuf, sizeof c->srv->readbuf, MSG_DONTWAIT) > 0; i++)
        ;
    close(c->fd);
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
    if (!c->committing)
        conn_free(c);
    if (srv->shutting_down && srv->n_conns == 0)
        event_base_loopexit(srv->base, NULL);
}

/* Writes what the session has to say; false when the socket failed. */
static bool flush(struct net_conn *c)
{
    size_t len;
    const char *p = smtp_server_output(c->session, &len);
    while (len > 0) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            if (errno == EINTR)
                continue;
            return false;
        }
        smtp_server_consume_output(c->session, (size_t)w);
        p = smtp_server_output(c->session, &len);
    }
    return true;
}

void net_conn_update(struct net_conn *c)
{
    if (c->dead)
        return;
    if (!flush(c)) {
        net_conn_close(c);
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
        mask |= EV_WRITE;
    else if (!smtp_server_closing(c->session) && smtp_server_input_room(c->session) > 0)
        mask |= EV_READ;
    bool data_timeout = smtp_server_in_data(c->session);
    if (mask == c->ev_mask && data_timeout == c->ev_data_timeout)
        return;
    if (c->ev_mask != -1)
        event_del(&c->ev);
    event_assign(&c->ev, c->srv->base, c->fd, mask | EV_PERSIST, conn_event, c);
    event_add(&c->ev, data_timeout ? c->srv->data_timeout : c->srv->command_timeout);
    c->ev_mask = mask;
    c->ev_data_timeout = data_timeout;
}

/* Returns false when the connection is gone (c freed). */
static bool conn_read(struct net_conn *c)
{
    size_t room = smtp_server_input_room(c->session);
    if (room == 0)
        return true;
    if (room > sizeof c->srv->readbuf)
        room = sizeof c->srv->readbuf;
    ssize_t n = recv(c->fd, c->srv->readbuf, room, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        net_conn_close(c);
        return false;
    }
    if (n > 0)
        smtp_server_feed(c->session, c->srv->readbuf, (size_t)n);
    return true;
}

static void conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct net_conn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        if (smtp_server_closing(c->session)) { /* our last words were never read */
            net_conn_close(c);
            return;
        }
        /* A client waiting on our decision (a commit in flight) is not idle. */
        if (!smtp_server_pending(c->session)) {
            net_log("timeout from [%s]", c->addr);
            smtp_server_timeout(c->session);
        }
    } else if ((what & EV_READ) && !conn_read(c)) {
        return;
    }
    net_conn_update(c);
}

void net_conn_shutdown(struct net_conn *c)
{
    smtp_server_shutdown(c->session);
    net_conn_update(c);
}
