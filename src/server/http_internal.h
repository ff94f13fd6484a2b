/* server/http_internal.h — what the HTTP listener (http.c), its JSON API (http_api.c) and the
 * traffic charts' data (console_traffic.c) share. Not for other files. */
#ifndef CLEARMTA_SERVER_HTTP_INTERNAL_H
#define CLEARMTA_SERVER_HTTP_INTERNAL_H

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/metrics.h"

struct server;

/* Request sizes: headers of a browser fit in 8 KiB; a bounce pasted whole in 1 MiB. */
#define HTTP_HEADERS_MAX 8192
#define HTTP_BODY_MAX (1024 * 1024)
#define HTTP_TIMEOUT_S 10
/* CSRF tokens of the last sessions (pages served) that are still accepted. */
#define HTTP_CSRF_SESSIONS 64
#define HTTP_CSRF_HEX 32
#define HTTP_TOKEN_MAX 256 /* bytes of the http_password_file token */
/* Connections of a listener off loopback held at once: at this many it stops accepting (the
 * kernel's backlog keeps the rest waiting), so that clients of the network cannot take the
 * descriptors that SMTP needs. */
#define HTTP_CONNECTIONS_MAX 64

/* A minute of traffic: replies by class (2xx, 4xx, 5xx) sent and received, and the remote
 * replies by series of clearmta_remote_replies_total. */
struct http_traffic_minute {
    int64_t minute; /* Unix time / 60; 0: no data */
    uint64_t in[3], out[3];
    uint32_t remote[DELIVER_METRICS_REMOTE_SERIES + 1];
};

/* The last hour, minute by minute, sampled from the metrics' totals (nothing is counted twice:
 * each sample adds what the totals grew by since the last one). */
struct http_traffic {
    struct http_traffic_minute m[60];
    bool started;
    uint64_t last_in[3], last_out[3];
    uint64_t last_remote[DELIVER_METRICS_REMOTE_SERIES + 1];
    struct event *tick;
};

struct server_http {
    struct server *srv;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    bool tls;                    /* the listener is off loopback: TLS, Secure cookie */
    struct http_connections *tls_connections; /* http.c: the count of open ones */
    bool accept_paused;          /* at HTTP_CONNECTIONS_MAX */
    char host_port[80];  /* "127.0.0.1:8025" or "[::1]:8025": what Host: must say */
    char token[HTTP_TOKEN_MAX + 1];
    size_t token_len;    /* 0: every client but trusted local users is refused */
    char csrf[HTTP_CSRF_SESSIONS][HTTP_CSRF_HEX + 1];
    size_t csrf_next;
    struct http_traffic traffic;
};

/* http.c: answers. */
void http_send(struct evhttp_request *req, int code, const char *type, const char *body,
               size_t len);
void http_send_buffer(struct evhttp_request *req, int code, const char *type,
                      struct evbuffer *body);
/* {"error":"text"} with code. */
void http_send_error(struct evhttp_request *req, int code, const char *text);
/* A new CSRF token, remembered (oldest forgotten); false when no randomness. */
bool http_csrf_issue(struct server_http *h, char out[HTTP_CSRF_HEX + 1]);

/* http_words.c. host: the Host header; local: "ADDR:PORT" or "[ADDR6]:PORT" the client
 * reached; name: http_name ("" for none). True when host is local, name or name:PORT, or
 * localhost:PORT on a loopback address. */
bool http_host_matches(const char *host, const char *local, bool loopback, const char *name);
/* Copies the value of cookie name from a Cookie header (NULL: none) into out[cap]; false when
 * absent or longer than cap - 1. */
bool http_cookie_value(const char *cookies, const char *name, char *out, size_t cap);
/* s may be one argument of a control command: 1..max bytes of letters, digits and @._:+-, not
 * starting with '-' (no option, no space, no control character). */
bool http_safe_word(const char *s, size_t max);

/* http_api.c: /api/... ; false when path is none of its routes. */
bool http_api_route(struct server_http *h, struct evhttp_request *req, const char *path);

/* console_traffic.c */
bool http_traffic_open(struct server_http *h);
void http_traffic_close(struct server_http *h);
void http_traffic_sample(struct http_traffic *t); /* brings the current minute up to date */
void http_traffic_json(struct http_traffic *t, struct evbuffer *out);

#endif
