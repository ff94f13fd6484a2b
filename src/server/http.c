/* server/http.c — the HTTP listener (listen http ADDR:PORT) on the server's event loop: bounded
 * requests (headers 8 KiB: 400, body 1 MiB: 413, 10 s timeout), TLS when it listens off
 * loopback (and then at most HTTP_CONNECTIONS_MAX connections at once), the Host guard against DNS rebinding (403), the token that clients must show
 * (401: bearer, or HTTP Basic's password) unless they are local users trusted on loopback
 * (root, the server's own, http_local_users), then the routes:
 * the console's embedded files, /metrics (Prometheus text format 0.0.4) and /api/ (http_api.c).
 * RFC 9110 (HTTP semantics), RFC 6750 (bearer tokens), RFC 7617 (Basic), RFC 6265 (cookies). */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/listener.h"
#include "net/log.h"
#include "net/peer_uid.h"
#include "policy/file_mode.h"
#include "reply/json.h"
#include "smtp/sasl.h"
#include "server/console_assets.h"
#include "server/http.h"
#include "server/http_internal.h"
#include "server/metrics.h"
#include "server/server.h"

/* Every answer: nothing but this origin, no framing, no sniffing, no caching, no referrer. */
static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                          "form-action 'self'; frame-ancestors 'none'";

static void security_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Security-Policy", csp);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Cache-Control", "no-store");
}

void http_send_buffer(struct evhttp_request *req, int code, const char *type,
                      struct evbuffer *body)
{
    security_headers(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, code, NULL, body);
}

void http_send(struct evhttp_request *req, int code, const char *type, const char *body,
               size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add(b, body, len);
    http_send_buffer(req, code, type, b);
    if (b)
        evbuffer_free(b);
}

static bool buffer_put(void *ctx, const char *p, size_t n)
{
    return evbuffer_add(ctx, p, n) == 0;
}

void http_send_error(struct evhttp_request *req, int code, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add(b, "{\"error\":", 9);
        reply_json_string(text, strlen(text), buffer_put, b);
        evbuffer_add(b, "}\n", 2);
    }
    http_send_buffer(req, code, "application/json", b);
    if (b)
        evbuffer_free(b);
}

bool http_csrf_issue(struct server_http *h, char out[HTTP_CSRF_HEX + 1])
{
    unsigned char r[HTTP_CSRF_HEX / 2];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        return false;
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    memcpy(h->csrf[h->csrf_next], out, HTTP_CSRF_HEX + 1);
    h->csrf_next = (h->csrf_next + 1) % HTTP_CSRF_SESSIONS;
    return true;
}

/* ---- who may ask ------------------------------------------------------------------------- */

static bool is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
           strncasecmp(addr, "::ffff:127.", 11) == 0;
}

/* The local address:port of the request's connection as a Host header names it. */
static bool local_host(struct evhttp_request *req, char *out, size_t cap, bool *loopback)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!bev || getsockname(bufferevent_getfd(bev), (struct sockaddr *)&ss, &len) != 0)
        return false;
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
    } else {
        return false;
    }
    *loopback = is_loopback(ip);
    return true;
}

/* DNS rebinding: a page of another site that resolves its name to this address must not
 * read the console. Host (or the authority of an absolute-form target) must be the address the
 * client connected to, localhost on a loopback address, or http_name (with or without the
 * port). */
static bool host_allowed(struct server_http *h, struct evhttp_request *req)
{
    /* exactly one Host (RFC 9112 §3.2: more is a bad request, whichever one evhttp reads) */
    const char *host = NULL;
    size_t hosts = 0;
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    for (const struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        if (strcasecmp(kv->key, "Host") == 0 && ++hosts == 1)
            host = kv->value;
    /* a request target in absolute-form names the host instead (RFC 9112 §3.2.2) */
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *uri_host = uri && evhttp_uri_get_scheme(uri) ? evhttp_uri_get_host(uri) : NULL;
    char authority[300];
    if (uri_host) {
        int port = evhttp_uri_get_port(uri);
        int n = port < 0 ? snprintf(authority, sizeof authority, "%s", uri_host)
                         : snprintf(authority, sizeof authority, "%s:%d", uri_host, port);
        if (n < 0 || (size_t)n >= sizeof authority)
            return false;
        host = authority;
    }
    char local[INET6_ADDRSTRLEN + 16];
    bool loopback = false;
    if (hosts != 1 || !local_host(req, local, sizeof local, &loopback))
        return false;
    return http_host_matches(host, local, loopback, h->srv->cfg->http.name);
}

/* given[0..n) is the token; the same time whatever matches. */
static bool token_equal(const struct server_http *h, const char *given, size_t n)
{
    unsigned char diff = n != h->token_len;
    for (size_t i = 0; i < h->token_len; i++)
        diff |= (unsigned char)(h->token[i] ^ (i < n ? given[i] : 0));
    return diff == 0;
}

/* A client on loopback whose socket belongs to root, to the server's own user (after any
 * privilege drop) or to a user of http_local_users: trusted as the control socket trusts
 * local root. Asked of the kernel at each request (net/peer_uid.c), never remembered: ports
 * are reused. An owner that cannot be found is nobody's: the token decides. */
static bool local_user_trusted(const struct server_http *h, struct evhttp_connection *conn)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(conn, &addr, &port);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
    struct net_peer_socket peer;
    if (!addr || !is_loopback(addr) || !bev || !net_peer_socket(bufferevent_getfd(bev), &peer))
        return false;
    if (peer.uid == 0 || peer.uid == geteuid())
        return true;
    const struct policy_http *conf = &h->srv->cfg->http;
    for (size_t i = 0; i < conf->n_local_uids; i++)
        if (conf->local_uids[i] == peer.uid)
            return true;
    return false;
}

/* Trusted local users need no token; everyone else shows it, as a bearer token (tools) or as
 * the password of HTTP Basic (browsers), over TLS when not on loopback (listen_http). */
static bool client_allowed(struct server_http *h, struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (!conn)
        return false;
    if (local_user_trusted(h, conn))
        return true;
    const char *auth =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (h->token_len == 0 || !auth)
        return false;
    if (strncasecmp(auth, "Bearer ", 7) == 0)
        return token_equal(h, auth + 7, strlen(auth + 7));
    /* Basic (RFC 7617), for browsers: any user name, the token as the password */
    unsigned char plain[2 * HTTP_TOKEN_MAX];
    size_t n = 0, len = strncasecmp(auth, "Basic ", 6) == 0 ? strlen(auth + 6) : 0;
    if (len == 0 || len > 4 * sizeof plain / 3 ||
        !smtp_base64_decode(auth + 6, len, plain, sizeof plain, &n))
        return false;
    const unsigned char *colon = memchr(plain, ':', n);
    return colon && token_equal(h, (const char *)colon + 1, n - (size_t)(colon + 1 - plain));
}

/* ---- routes ------------------------------------------------------------------------------ */

static void serve_metrics(struct server_http *h, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    server_metrics_collect(h->srv);
    if (!b || !base_metrics_write(buffer_put, b)) {
        if (b)
            evbuffer_free(b);
        http_send_error(req, 500, "out of memory");
        return;
    }
    http_send_buffer(req, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

/* An embedded file; the page itself comes with the session's CSRF cookie. */
static bool serve_asset(struct server_http *h, struct evhttp_request *req, const char *path)
{
    const char *name = strcmp(path, "/") == 0 ? "/index.html" : path;
    for (size_t i = 0; i < server_console_assets_count; i++) {
        const struct server_console_asset *a = &server_console_assets[i];
        if (strcmp(a->path, name) != 0)
            continue;
        char token[HTTP_CSRF_HEX + 1], cookie[HTTP_CSRF_HEX + 64];
        if (strcmp(name, "/index.html") == 0) {
            if (!http_csrf_issue(h, token)) {
                http_send_error(req, 500, "no randomness for the session token");
                return true;
            }
            snprintf(cookie, sizeof cookie, "clearmta_csrf=%s; Path=/; SameSite=Strict%s", token,
                     h->tls ? "; Secure" : "");
            evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
        }
        http_send(req, 200, a->type, (const char *)a->data, a->len);
        return true;
    }
    return false;
}

/* More than one Content-Length: evhttp read the body by the first; the rest of the stream is
 * no request to trust (RFC 9112 §6.3). */
static bool one_length(struct evhttp_request *req)
{
    const struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    size_t n = 0;
    for (const struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        n += strcasecmp(kv->key, "Content-Length") == 0;
    return n <= 1;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct server_http *h = arg;
    if (!one_length(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        http_send_error(req, 400, "more than one Content-Length");
        return;
    }
    if (!host_allowed(h, req)) {
        http_send_error(req, 403, "Host is not this server's address or http_name");
        return;
    }
    if (!client_allowed(h, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Basic realm=\"clearmta\", charset=\"UTF-8\"");
        http_send_error(req, 401, "this client needs the http_password_file token (without "
                        "it: local users root, the server's own and http_local_users)");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || path[0] != '/') {
        http_send_error(req, 400, "bad request target");
        return;
    }
    if (strncmp(path, "/api/", 5) == 0 && http_api_route(h, req, path))
        return;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    bool get = method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD;
    if (strcmp(path, "/metrics") == 0 && get) {
        serve_metrics(h, req);
        return;
    }
    if (get && serve_asset(h, req, path))
        return;
    http_send_error(req, get ? 404 : 405, get ? "not found" : "method not allowed");
}

/* ---- set-up ------------------------------------------------------------------------------ */

/* The token of http_password_file: its first line, which only the server's user may read. */
static bool read_token(struct server_http *h, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        net_log("error: http_password_file %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    char why[POLICY_PATH_CAP + 160];
    if (!policy_file_mode_ok(path, st.st_mode, POLICY_MODE_SECRET, why, sizeof why)) {
        net_log("error: http_password_file %s: %s", path, why);
        close(fd);
        return false;
    }
    ssize_t n = read(fd, h->token, HTTP_TOKEN_MAX);
    close(fd);
    size_t len = n > 0 ? strcspn(h->token, "\r\n") : 0;
    if (n < 0 || (size_t)n > HTTP_TOKEN_MAX || len < 16) {
        net_log("error: http_password_file %s: the first line must be a token of 16 to %d "
                "bytes", path, HTTP_TOKEN_MAX);
        return false;
    }
    h->token[len] = '\0';
    h->token_len = len;
    return true;
}

/* ---- connections off loopback ----------------------------------------------------------- */

/* evhttp neither bounds its connections nor tells when one closes; the SSL of each one does:
 * libevent frees it with the connection, and the ex_data slot's free function sees it go.
 * libevent may finalize a connection after evhttp_free, even after server_http_close: the
 * count outlives the listener (h NULL) until its last connection is gone. */
struct http_connections {
    size_t open;
    struct server_http *h; /* NULL once closed */
};

static int connection_slot = -1;

static void accepting(struct server_http *h, bool on)
{
    struct evconnlistener *l = h->bound ? evhttp_bound_socket_get_listener(h->bound) : NULL;
    if (!l || h->accept_paused != on)
        return;
    if (on ? evconnlistener_enable(l) == 0 : evconnlistener_disable(l) == 0)
        h->accept_paused = !on;
}

static void connection_freed(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct http_connections *count = ptr; /* NULL: an SSL of SMTP */
    if (!count || count->open == 0)
        return;
    count->open--;
    if (count->h && count->open < HTTP_CONNECTIONS_MAX)
        accepting(count->h, true);
    else if (!count->h && count->open == 0)
        free(count);
}

/* Each connection of a listener off loopback speaks TLS (the server's certificate). */
static struct bufferevent *tls_connection(struct event_base *base, void *arg)
{
    struct server_http *h = arg;
    SSL *ssl = SSL_new(h->srv->tls_ctx);
    if (ssl && SSL_set_ex_data(ssl, connection_slot, h->tls_connections) == 1 &&
        ++h->tls_connections->open >= HTTP_CONNECTIONS_MAX)
        accepting(h, false);
    struct bufferevent *bev = ssl ? bufferevent_openssl_socket_new(
                                        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                        BEV_OPT_CLOSE_ON_FREE)
                                  : NULL;
    if (!bev && ssl)
        SSL_free(ssl);
    return bev;
}

static bool listen_http(struct server_http *h)
{
    const struct policy_http *conf = &h->srv->cfg->http;
    char err[256];
    bool tls = !is_loopback(conf->host);
    if (tls && !h->srv->tls_ctx) {
        net_log("error: listen http %s:%u: off loopback the console needs TLS, which is "
                "unavailable", conf->host[0] ? conf->host : "*", conf->port);
        return false;
    }
    if (tls && connection_slot < 0)
        connection_slot = SSL_get_ex_new_index(0, NULL, NULL, NULL, connection_freed);
    if (tls && connection_slot < 0) {
        net_log("error: listen http: no SSL ex_data slot to count connections");
        return false;
    }
    h->tls = tls;
    if (tls && (h->tls_connections = calloc(1, sizeof *h->tls_connections)) == NULL) {
        net_log("error: listen http: out of memory");
        return false;
    }
    if (tls) {
        h->tls_connections->h = h;
        evhttp_set_bevcb(h->http, tls_connection, h);
    }
    int fd = net_listen(conf->host, conf->port, err, sizeof err);
    if (fd < 0) {
        net_log("error: listen http: %s", err);
        return false;
    }
    h->bound = evhttp_accept_socket_with_handle(h->http, fd);
    if (!h->bound) {
        close(fd);
        net_log("error: listen http %s:%u: out of memory", conf->host, conf->port);
        return false;
    }
    bool v6 = strchr(conf->host, ':') != NULL;
    net_log("listening on %s%s%s:%u (http): console %s://%s%s%s:%u/", v6 ? "[" : "",
            conf->host[0] ? conf->host : "*", v6 ? "]" : "", conf->port, tls ? "https" : "http",
            v6 ? "[" : "", conf->host[0] ? conf->host : "127.0.0.1", v6 ? "]" : "", conf->port);
    return true;
}

bool server_http_open(struct server *srv)
{
    if (!server_metrics_open()) {
        net_log("fatal: metrics: out of memory");
        return false;
    }
    const struct policy_config *cfg = srv->cfg;
    if (cfg->http.port == 0)
        return true;
    struct server_http *h = calloc(1, sizeof *h);
    if (!h)
        return false;
    srv->http = h;
    h->srv = srv;
    if (cfg->http.password_file[0] && !read_token(h, cfg->http.password_file))
        return false;
    h->http = evhttp_new(srv->base);
    if (!h->http || !http_traffic_open(h))
        return false;
    evhttp_set_max_headers_size(h->http, HTTP_HEADERS_MAX);
    evhttp_set_max_body_size(h->http, HTTP_BODY_MAX);
    evhttp_set_timeout(h->http, HTTP_TIMEOUT_S);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_gencb(h->http, on_request, h);
    return listen_http(h);
}

void server_http_close(struct server *srv)
{
    struct server_http *h = srv->http;
    if (h) {
        http_traffic_close(h);
        h->bound = NULL; /* evhttp_free frees it, then the connections, counted down */
        if (h->http)
            evhttp_free(h->http);
        if (h->tls_connections) {
            h->tls_connections->h = NULL; /* its last connection frees it */
            if (h->tls_connections->open == 0)
                free(h->tls_connections);
        }
        free(h);
        srv->http = NULL;
    }
    server_metrics_close();
}
