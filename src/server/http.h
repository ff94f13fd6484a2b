/* server/http.h — the HTTP listener of the running server (listen http ADDR:PORT): the web
 * console, its JSON API and /metrics, served by libevent's evhttp on the server's event loop.
 * Internal to server/. */
#ifndef CLEARMTA_SERVER_HTTP_H
#define CLEARMTA_SERVER_HTTP_H

#include <stdbool.h>

struct server;

/* Registers the metrics and, when the configuration names one, opens the listener (after the
 * SMTP listeners, before the privilege drop). False (logged) when it cannot. */
bool server_http_open(struct server *srv);
/* Closes it (idempotent); the metrics go last. */
void server_http_close(struct server *srv);

#endif
