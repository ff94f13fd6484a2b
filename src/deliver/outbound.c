/* deliver/outbound.c — one outbound SMTP or LMTP connection: non-blocking connect, the client
 * session's bytes over TCP, a Unix socket or TLS (STARTTLS, RFC 3207; SNI, RFC 6066 §3; host
 * name check, RFC 6125), timeouts (RFC 5321 §4.5.3.2). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/outbound.h"
#include "net/tls.h"
#include "net/tls_resume.h"
#include "net/transport.h"

/* Reads served from TLS's own buffer per event, as the server side does. */
#define OUTBOUND_PENDING_READS 8

struct deliver_outbound {
    struct deliver_outbound_cfg cfg;
    struct net_transport io;
    struct event *ev, *fin;
    short read_want, write_want;
    bool connecting, connect_failed, handshaking, want_tls, closed, verify_failed;
    char host[256]; /* cfg.host copied: SNI and the name to verify; "" when none */
    int connect_errno; /* connect() failed at once: reported from the loop */
    struct smtp_client *session;
    struct smtp_client_callbacks user_cb;
    void *ctx;
    void (*finished)(void *ctx);
    char error[512];
    char buf[16384];
};

SSL_CTX *deliver_outbound_tls_context(bool verify, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        (verify && SSL_CTX_set_default_verify_paths(ctx) != 1)) {
        net_tls_error(err, errlen);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    net_tls_resume_enable(ctx); /* without it (out of memory), every handshake is full */
    return ctx;
}

static bool numeric_host(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

/* SNI for a named host, and with a verifying context the name the certificate must match
 * (SSL_set1_host: SAN dNSName, wildcards in the leftmost label only, RFC 6125 §6.4). */
static bool tls_names(struct deliver_outbound *o)
{
    bool verify = SSL_CTX_get_verify_mode(o->cfg.tls) & SSL_VERIFY_PEER;
    if (o->host[0] == '\0')
        return !verify; /* nothing to check the certificate against */
    if (!numeric_host(o->host) && SSL_set_tlsext_host_name(o->io.ssl, o->host) != 1)
        return false;
    if (verify) {
        SSL_set_hostflags(o->io.ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        return SSL_set1_host(o->io.ssl, o->host) == 1;
    }
    return true;
}

/* ---- session callbacks: forwarded, except STARTTLS which is ours ---- */

static void cb_ready(void *ctx, const struct smtp_client_caps *caps)
{
    struct deliver_outbound *o = ctx;
    if (o->user_cb.ready)
        o->user_cb.ready(o->ctx, caps);
}

static void cb_start_tls(void *ctx)
{
    struct deliver_outbound *o = ctx;
    o->want_tls = true;
}

static void cb_rcpt(void *ctx, size_t i, const struct smtp_client_result *r)
{
    struct deliver_outbound *o = ctx;
    if (o->user_cb.rcpt_result)
        o->user_cb.rcpt_result(o->ctx, i, r);
}

static void cb_data_rcpt(void *ctx, size_t i, const struct smtp_client_result *r)
{
    struct deliver_outbound *o = ctx;
    if (o->user_cb.data_rcpt_result)
        o->user_cb.data_rcpt_result(o->ctx, i, r);
}

static void cb_message(void *ctx, const struct smtp_client_result *r, size_t n_tried)
{
    struct deliver_outbound *o = ctx;
    if (o->user_cb.message_result)
        o->user_cb.message_result(o->ctx, r, n_tried);
}

static void cb_closed(void *ctx, const struct smtp_client_result *why)
{
    struct deliver_outbound *o = ctx;
    if (o->user_cb.closed)
        o->user_cb.closed(o->ctx, why);
}

/* ---- I/O ---- */

static void on_event(evutil_socket_t fd, short what, void *arg);

static void on_finished(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_outbound *o = arg;
    (void)fd;
    (void)what;
    o->finished(o->ctx); /* may free o */
}

/* The session is over and its last words are out: close and tell the owner from the loop. */
static void finish(struct deliver_outbound *o)
{
    if (o->closed)
        return;
    o->closed = true;
    event_del(o->ev);
    /* A clean end says close_notify (one try, never waited for): OpenSSL keeps the session
     * resumable only then (net/tls_resume.h). */
    if (o->io.ssl != NULL && o->error[0] == '\0' && !o->handshaking)
        SSL_shutdown(o->io.ssl);
    net_transport_free(&o->io);
    close(o->io.fd);
    o->io.fd = -1;
    event_active(o->fin, EV_TIMEOUT, 0);
}

static void lost(struct deliver_outbound *o, const char *why)
{
    if (o->error[0] == '\0')
        snprintf(o->error, sizeof o->error, "%s", why);
    smtp_client_connection_lost(o->session);
}

static void arm(struct deliver_outbound *o, short mask)
{
    unsigned s = smtp_client_awaiting_data_end(o->session) ? o->cfg.data_timeout_s
                                                            : o->cfg.command_timeout_s;
    if (o->connecting)
        s = o->cfg.connect_timeout_s;
    struct timeval tv = {.tv_sec = s > 0 ? s : 300};
    event_del(o->ev);
    event_assign(o->ev, o->cfg.base, o->io.fd, mask, on_event, o);
    event_add(o->ev, &tv);
}

/* The session's output as net_transport_pump reads it. */
static const char *session_output(void *s, size_t *len) { return smtp_client_output(s, len); }
static void session_consume(void *s, size_t n) { smtp_client_consume_output(s, n); }

static bool flush(struct deliver_outbound *o)
{
    return net_transport_pump(&o->io, session_output, session_consume, o->session, &o->write_want);
}

static void start_tls(struct deliver_outbound *o)
{
    o->want_tls = false;
    o->io.ssl = o->cfg.tls ? SSL_new(o->cfg.tls) : NULL;
    if (o->io.ssl == NULL || SSL_set_fd(o->io.ssl, o->io.fd) != 1 || !tls_names(o)) {
        lost(o, "cannot start TLS");
        return;
    }
    char destination[NET_TLS_RESUME_KEY_MAX + 1];
    if (net_tls_resume_destination(o->io.fd, o->host, destination, sizeof destination))
        net_tls_resume_offer(o->io.ssl, destination);
    SSL_set_connect_state(o->io.ssl);
    o->handshaking = true;
}

/* One handshake step; true when the session may go on. */
static bool handshake(struct deliver_outbound *o)
{
    short want = EV_READ;
    char err[200] = "";
    switch (net_transport_handshake(&o->io, &want, err, sizeof err)) {
    case NET_IO_DONE:
        o->handshaking = false;
        smtp_client_tls_started(o->session);
        return true;
    case NET_IO_WAIT:
        arm(o, want);
        return false;
    case NET_IO_EOF:
    case NET_IO_ERROR:
        break;
    }
    char why[512];
    bool verify = SSL_CTX_get_verify_mode(o->cfg.tls) & SSL_VERIFY_PEER;
    long v = verify ? SSL_get_verify_result(o->io.ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        o->verify_failed = true;
        snprintf(why, sizeof why, "TLS certificate verification failed for %s: %s", o->host,
                 X509_verify_cert_error_string(v));
    } else {
        snprintf(why, sizeof why, "TLS handshake failed: %s", err);
    }
    o->handshaking = false;
    lost(o, why);
    return true;
}

static void update(struct deliver_outbound *o)
{
    if (o->closed)
        return;
    if (o->want_tls && o->io.ssl == NULL)
        start_tls(o);
    if (o->handshaking && !handshake(o))
        return;
    if (!flush(o))
        lost(o, "connection lost while sending");
    size_t out;
    smtp_client_output(o->session, &out);
    if (smtp_client_done(o->session) && (out == 0 || o->error[0] != '\0')) {
        finish(o);
        return;
    }
    arm(o, out > 0 ? o->write_want : (o->read_want ? o->read_want : EV_READ));
}

static void connected(struct deliver_outbound *o)
{
    int e = o->connect_errno;
    socklen_t len = sizeof e;
    if (e == 0 && getsockopt(o->io.fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
        e = errno;
    o->connecting = false;
    if (e != 0) {
        o->connect_failed = true;
        lost(o, strerror(e));
    }
}

static void read_some(struct deliver_outbound *o)
{
    for (int i = 0; i < OUTBOUND_PENDING_READS && !smtp_client_done(o->session); i++) {
        size_t got;
        short want = EV_READ;
        enum net_io io = net_transport_recv(&o->io, o->buf, sizeof o->buf, &got, &want);
        if (io == NET_IO_WAIT) {
            o->read_want = want;
            return;
        }
        if (io != NET_IO_DONE) {
            lost(o, "connection closed by the server");
            return;
        }
        o->read_want = EV_READ;
        smtp_client_feed(o->session, o->buf, got);
        if (o->want_tls || net_transport_pending(&o->io) == 0)
            return;
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    struct deliver_outbound *o = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        if (o->connecting) {
            o->connecting = false;
            o->connect_failed = true;
            lost(o, "connection timed out");
        } else if (smtp_client_done(o->session)) {
            finish(o);
            return;
        } else {
            if (o->error[0] == '\0')
                snprintf(o->error, sizeof o->error, "timeout waiting for the server");
            smtp_client_timeout(o->session);
        }
    } else if (o->connecting) {
        connected(o);
    } else if (!o->handshaking) {
        size_t out;
        smtp_client_output(o->session, &out);
        if (out == 0)
            read_some(o);
    }
    update(o);
}

struct deliver_outbound *deliver_outbound_open(const struct deliver_outbound_cfg *cfg,
                                               const struct sockaddr *sa, socklen_t salen,
                                               const struct smtp_client_opts *opts,
                                               const struct smtp_client_callbacks *cb,
                                               void (*finished)(void *ctx), void *ctx,
                                               char *err, size_t errlen)
{
    static const struct smtp_client_callbacks ours = {
        .ready = cb_ready, .start_tls = cb_start_tls, .rcpt_result = cb_rcpt,
        .message_result = cb_message, .data_rcpt_result = cb_data_rcpt, .closed = cb_closed};
    struct deliver_outbound *o = calloc(1, sizeof *o);
    if (o == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    o->cfg = *cfg;
    o->cfg.host = NULL;
    if (cfg->host != NULL)
        snprintf(o->host, sizeof o->host, "%s", cfg->host);
    o->user_cb = *cb;
    o->ctx = ctx;
    o->finished = finished;
    o->io.fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    o->ev = event_new(cfg->base, -1, 0, on_event, o);
    o->fin = event_new(cfg->base, -1, 0, on_finished, o);
    o->session = smtp_client_new(opts, &ours, o);
    if (o->io.fd < 0 || !o->ev || !o->fin || !o->session) {
        snprintf(err, errlen, "%s", o->io.fd < 0 ? strerror(errno) : "out of memory");
        deliver_outbound_free(o);
        return NULL;
    }
    int one = 1;
    if (sa->sa_family != AF_UNIX) /* an LMTP server's socket has no Nagle to turn off */
        setsockopt(o->io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    o->connecting = true;
    /* A failure at once is reported from the loop too: the caller gets o before any callback. */
    if (connect(o->io.fd, sa, salen) != 0 && errno != EINPROGRESS)
        o->connect_errno = errno;
    arm(o, EV_WRITE);
    if (o->connect_errno != 0)
        event_active(o->ev, EV_WRITE, 0);
    return o;
}

void deliver_outbound_set_owner(struct deliver_outbound *o, const struct smtp_client_callbacks *cb,
                                void (*finished)(void *ctx), void *ctx)
{
    o->user_cb = *cb;
    o->finished = finished;
    o->ctx = ctx;
}

void deliver_outbound_wake(struct deliver_outbound *o)
{
    if (!o->closed)
        event_active(o->ev, EV_WRITE, 0);
}

struct smtp_client *deliver_outbound_session(struct deliver_outbound *o)
{
    return o->session;
}

const char *deliver_outbound_error(const struct deliver_outbound *o)
{
    return o->error;
}

bool deliver_outbound_connect_failed(const struct deliver_outbound *o)
{
    return o->connect_failed;
}

bool deliver_outbound_verify_failed(const struct deliver_outbound *o)
{
    return o->verify_failed;
}

void deliver_outbound_free(struct deliver_outbound *o)
{
    if (o == NULL)
        return;
    if (o->ev)
        event_free(o->ev);
    if (o->fin)
        event_free(o->fin);
    if (!o->closed && o->io.fd >= 0) {
        net_transport_free(&o->io);
        close(o->io.fd);
    }
    smtp_client_free(o->session);
    free(o);
}
