/* server/conn.c — one client connection: bytes between the transport (TCP or TLS) and its SMTP
 * session, the STARTTLS and implicit-TLS handshakes, timeouts, closing. Non-blocking; one read
 * per readiness event keeps connections fair. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "server/ipcount.h"
#include "net/log.h"
#include "server/server.h"
#include "net/tls.h"

/* Reads served from TLS's own buffer in one event, without the socket's readiness. */
#define TLS_PENDING_READS 8
/* Checks of the command rate around one flush (server_conn_update): two suffice, the bound only
 * keeps a loop bounded. */
#define RATE_ROUNDS 4

static void conn_event(evutil_socket_t fd, short what, void *arg);
static bool command_rate(struct server_conn *c);

/* The greeting, or the 421 in its place, once the client is admitted (sessions per minute)
 * and, on an implicit-TLS listener, TLS is up. */
static void greet(struct server_conn *c)
{
    if (c->greeted || c->admitting || !c->greet_ready)
        return;
    c->greeted = true;
    if (c->admission == REPLY_OK) {
        smtp_server_start(c->session);
        command_rate(c); /* the first burst's budget, before any input */
        return;
    }
    net_log("limit: [%s] connection refused: over max_sessions_per_minute_per_ip %u", c->addr,
            c->srv->cfg->max_sessions_per_minute_per_ip);
    smtp_server_refuse(c->session, c->admission);
}

/* Watches the socket for mask with the timeout of the session's state. Only a change of mask
 * touches the kernel's epoll set; a change of timeout alone reschedules the timer. */
static void arm(struct server_conn *c, short mask)
{
    const struct timeval *tv = server_capacity_timeout(
        c->srv, c->handshaking                     ? SERVER_WAIT_HANDSHAKE
                : smtp_server_in_data(c->session) ? SERVER_WAIT_DATA
                                                  : SERVER_WAIT_COMMAND);
    if (mask == c->ev_mask && tv == c->ev_timeout)
        return;
    if (mask != c->ev_mask) {
        if (c->ev_mask != -1)
            event_del(&c->ev);
        event_assign(&c->ev, c->srv->base, c->io.fd, mask | EV_PERSIST, conn_event, c);
    }
    event_add(&c->ev, tv);
    c->ev_mask = mask;
    c->ev_timeout = tv;
}

void server_conn_rearm(struct server_conn *c)
{
    if (!c->dead && c->ev_mask != -1)
        arm(c, c->ev_mask);
}

static bool implicit_tls(const struct server_conn *c)
{
    return c->listener->conf->kind == POLICY_LISTEN_SUBMISSIONS;
}

static bool start_tls(struct server_conn *c)
{
    if (!server_capacity_tls_allowed(c->srv, c->addr)) {
        net_log("tls: [%s] over tls_handshakes_per_second %u: closed", c->addr,
                c->srv->cfg->tls_handshakes_per_second);
        return false;
    }
    if (!c->srv->tls_ctx || !net_transport_start_tls(&c->io, c->srv->tls_ctx)) {
        net_log("tls: cannot start TLS for [%s]", c->addr);
        return false;
    }
    c->handshaking = true;
    c->handshake_began_ms = base_clock_mono_ms();
    return true;
}

void server_conn_accept(struct server_listener *l, int fd, const char *addr)
{
    struct server *srv = l->srv;
    struct server_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        server_ipcount_remove(srv->per_ip, addr);
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
        server_ipcount_remove(srv->per_ip, addr);
        return;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    else
        srv->conns_tail = c;
    srv->conns = c;
    srv->n_conns++;
    server_capacity_count(srv);
    net_log("connect from [%s] to %s port %u", c->addr, policy_listen_kind_name(l->conf->kind),
            l->conf->port);
    if (implicit_tls(c) && !start_tls(c)) {
        server_conn_close(c);
        return;
    }
    c->greet_ready = !implicit_tls(c); /* implicit TLS: the greeting goes inside TLS */
    c->admitting = !server_limits_connect(c, &c->admission);
    greet(c);
    server_conn_update(c);
}

void server_conn_admit(struct server_conn *c, enum reply_id admission)
{
    c->admitting = false;
    c->admission = admission;
    greet(c);
    server_conn_update(c);
}

void server_conn_close(struct server_conn *c)
{
    struct server *srv = c->srv;
    if (c->dead)
        return;
    c->dead = true;
    server_capacity_memory(c); /* gives back what it counted */
    if (c->ev_mask != -1)
        event_del(&c->ev);
    net_transport_free(&c->io);
    /* Unread input would make close() send a reset that can destroy our last reply in flight. */
    for (int i = 0; i < 4 && recv(c->io.fd, srv->readbuf, sizeof srv->readbuf, MSG_DONTWAIT) > 0; i++)
        ;
    close(c->io.fd);
    net_log("disconnect from [%s]", c->addr);
    server_limits_forget(c); /* a counters call in flight is cancelled: its callback never comes */
    server_ipcount_remove(srv->per_ip, c->addr);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        srv->conns_tail = c->prev;
    srv->n_conns--;
    server_capacity_count(srv);
    smtp_server_free(c->session); /* aborts a message being received */
    c->session = NULL;
    if (!c->committing) { /* else the commit callback frees c */
        server_transaction_forget(c);
        free(c);
    }
    if (srv->shutting_down && srv->n_conns == 0)
        event_base_loopexit(srv->base, NULL);
}

/* The session's output as net_transport_pump reads it. */
static const char *session_output(void *s, size_t *len) { return smtp_server_output(s, len); }
static void session_consume(void *s, size_t n) { smtp_server_consume_output(s, n); }

/* Writes what the session has to say; false when the connection failed. */
static bool flush(struct server_conn *c)
{
    return net_transport_pump(&c->io, session_output, session_consume, c->session, &c->write_want);
}

/* One handshake step; true when TLS is up and the session may go on. */
static bool handshake(struct server_conn *c)
{
    short want = EV_READ;
    char err[256] = "";
    /* The timeout between packets would let a client drip its handshake forever. */
    if (base_clock_mono_ms() - c->handshake_began_ms >
        (uint64_t)c->srv->cfg->tls_handshake_timeout * 1000) {
        net_log("tls: handshake with [%s] not done in %u s: closed", c->addr,
                c->srv->cfg->tls_handshake_timeout);
        server_conn_close(c);
        return false;
    }
    switch (net_transport_handshake(&c->io, &want, err, sizeof err)) {
    case NET_IO_DONE:
        break;
    case NET_IO_WAIT:
        arm(c, want);
        return false;
    case NET_IO_EOF:
    case NET_IO_ERROR:
        net_log("tls: handshake failed with [%s]: %s", c->addr, err);
        server_conn_close(c);
        return false;
    }
    c->handshaking = false;
    char desc[128];
    net_tls_describe(c->io.ssl, desc, sizeof desc);
    net_log("tls: [%s] %s", c->addr, desc);
    smtp_server_tls_started(c->session);
    if (implicit_tls(c) && !c->greet_ready) {
        c->greet_ready = true;
        greet(c);
    }
    return true;
}

void server_conn_update(struct server_conn *c)
{
    if (c->dead)
        return;
    server_capacity_memory(c);
    if (c->handshaking && !handshake(c))
        return;
    /* A decision resumed, or the output drained (the session then takes the commands it held
     * back), into the rate limit: wait for it, then go on. Each round either runs commands
     * (the held input is bounded) or leaves the session throttled, unlimited or closing. */
    for (int round = 0; round < RATE_ROUNDS; round++) {
        if (!c->throttled && smtp_server_command_limited(c->session))
            command_rate(c);
        if (!flush(c)) {
            server_conn_close(c);
            return;
        }
        if (c->throttled || !smtp_server_command_limited(c->session))
            break;
    }
    if (smtp_server_wants_tls(c->session) && !c->io.ssl) {
        if (!start_tls(c)) {
            server_conn_close(c);
            return;
        }
        server_conn_update(c);
        return;
    }
    size_t pending_out;
    smtp_server_output(c->session, &pending_out);
    if (smtp_server_closing(c->session) && pending_out == 0) {
        server_conn_close(c);
        return;
    }
    short mask = 0;
    if (pending_out > 0)
        mask = c->write_want;
    else if (!smtp_server_closing(c->session) && smtp_server_input_room(c->session) > 0 &&
             c->greeted && !c->throttled)
        mask = c->read_want ? c->read_want : EV_READ;
    arm(c, mask);
}

static void on_throttle_over(evutil_socket_t fd, short what, void *arg)
{
    struct server_conn *c = arg;
    (void)fd;
    (void)what;
    c->throttled = false;
    command_rate(c); /* the waiting commands it now allows run */
    server_conn_update(c);
}

/* max_commands_per_second: lets the session go on at the client's allowed rate, pausing
 * reading while commands wait, and disconnects a client that stays over it (never while a
 * decision is pending: its answer is owed first). True when reading must stop now. */
static bool command_rate(struct server_conn *c)
{
    bool refuse;
    uint64_t delay = server_limits_command_rate(c, &refuse);
    if (refuse && !smtp_server_pending(c->session)) {
        net_log("limit: [%s] over max_commands_per_second %u for 10 s despite delays", c->addr,
                c->srv->cfg->max_commands_per_second);
        smtp_server_refuse(c->session, REPLY_TOO_FAST);
        return true;
    }
    if (delay == 0)
        return false;
    struct timeval tv = {.tv_sec = (time_t)(delay / 1000),
                         .tv_usec = (suseconds_t)(delay % 1000) * 1000};
    if (!c->throttle)
        c->throttle = evtimer_new(c->srv->base, on_throttle_over, c);
    if (!c->throttle || evtimer_add(c->throttle, &tv) < 0) {
        smtp_server_set_command_limit(c->session, UINT64_MAX); /* never stuck: no limit */
        return false;
    }
    c->throttled = true;
    return true;
}

/* Returns false when the connection is gone (c freed). */
static bool conn_read(struct server_conn *c)
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
            server_conn_close(c);
            return false;
        }
        if (io == NET_IO_WAIT) {
            c->read_want = want;
            return true;
        }
        c->read_want = EV_READ;
        smtp_server_feed(c->session, c->srv->readbuf, got);
        if (command_rate(c))
            return true;
        if (net_transport_pending(&c->io) == 0)
            return true;
    }
    return true;
}

static void conn_event(evutil_socket_t fd, short what, void *arg)
{
    struct server_conn *c = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        if (c->handshaking || smtp_server_closing(c->session)) { /* silent peer, or our last
                                                                  * words were never read */
            server_conn_close(c);
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
    server_conn_update(c);
}

void server_conn_shutdown(struct server_conn *c)
{
    smtp_server_shutdown(c->session);
    server_conn_update(c);
}
