/* net/control.h — the local control socket of a running server (<queue_dir>/control.sock, a
 * Unix stream socket, mode 0600): `clearmta queue …` and `clearmta limits …` send one request
 * and read one response. Commands are registered by the modules that answer them.
 *
 * Protocol: the client sends one line of at most NET_CONTROL_REQUEST_MAX bytes, the arguments
 * separated by single spaces, ending with LF (e.g. "queue list --json\n"). The server answers
 * "status N\n" (0 ok, 1 failed, 2 usage error) followed by the body (text or JSON), then
 * closes. A handler may answer later (after an asynchronous look-up). The client side is in
 * net/control_client.h. */
#ifndef CLEARMTA_NET_CONTROL_H
#define CLEARMTA_NET_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct net_control;
struct net_control_request;

#define NET_CONTROL_REQUEST_MAX 4096u
#define NET_CONTROL_ARGS_MAX 32u
/* A response larger than this is cut with an error line (a queue listing of ~100 000
 * messages fits). */
#define NET_CONTROL_RESPONSE_MAX (256u * 1024 * 1024)
/* The socket's name inside queue_dir. */
#define NET_CONTROL_SOCKET_NAME "control.sock"

/* argv[0] is the command word the handler was registered for; json is true when "--json" was
 * among the arguments (it is removed from argv). The handler writes with the functions below
 * and ends with net_control_finish, now or later (req stays valid until then, even if the
 * client went away: writes are then dropped). */
typedef void net_control_handler(void *ctx, struct net_control_request *req, int argc,
                                 char **argv, bool json);

/* Listens on path (a stale socket file is replaced; a live server on it is an error). NULL
 * with the reason in err. */
struct net_control *net_control_new(struct event_base *base, const char *path, char *err,
                                    size_t errlen);

/* Routes requests whose first word is `command` to h. False when the table is full. */
bool net_control_register(struct net_control *c, const char *command, net_control_handler *h,
                          void *ctx);

/* Closes the socket and removes its file. Requests still pending are detached: their handlers
 * must still call net_control_finish, which then only frees them. NULL is fine. */
void net_control_free(struct net_control *c);

/* Appends to the response body (false once NET_CONTROL_RESPONSE_MAX is reached). */
bool net_control_write(struct net_control_request *r, const char *data, size_t len);
bool net_control_printf(struct net_control_request *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string, quoted and escaped (RFC 8259; bytes that are not UTF-8 become
 * U+FFFD, control characters \uXXXX). NULL writes null. */
bool net_control_json_string(struct net_control_request *r, const char *s);

/* Runs the request line (as a client would send it, without LF) in process, for another
 * front end of the same commands (the HTTP console): done gets the status and the body when
 * the handler finishes, now or later (never when the control socket is freed first). False
 * when the line is too long or memory is short. */
typedef void net_control_done(void *ctx, int status, const char *body, size_t len);
bool net_control_run(struct net_control *c, const char *line, net_control_done *done,
                      void *ctx);

/* Sends "status N" and the body, then closes. Exactly once per request. */
void net_control_finish(struct net_control_request *r, int status);

#endif
