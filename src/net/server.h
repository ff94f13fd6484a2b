/* net/server.h — the running server: event loop, listeners, connections, and the glue between
 * SMTP sessions, policy and the store. Internal to net/ except net_server_run(). */
#ifndef CLEARMTA_NET_SERVER_H
#define CLEARMTA_NET_SERVER_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "deliver/agent.h"
#include "net/transport.h"
#include "policy/authcheck.h"
#include "policy/authlimit.h"
#include "policy/config.h"
#include "smtp/server_session.h"
#include "store/queue.h"

struct net_conn;

struct net_listener {
    int fd;
    struct event *ev;
    const struct policy_listener *conf;
    struct smtp_server_opts opts;
    struct net_server *srv;
};

struct net_server {
    struct event_base *base;
    const struct policy_config *cfg;
    struct store_queue *queue;
    struct event *queue_ev, *sigterm_ev, *sigint_ev, *grace_ev;
    struct net_listener listeners[POLICY_LISTENERS_MAX];
    size_t n_listeners;
    struct net_ipcount *per_ip;
    struct net_conn *conns; /* every live connection, for shutdown */
    unsigned n_conns;
    bool shutting_down;
    const struct timeval *command_timeout, *data_timeout; /* libevent common timeouts */
    SSL_CTX *tls_ctx; /* NULL when TLS could not be set up */
    struct policy_authcheck *authcheck; /* password verification off the loop */
    struct event *authcheck_ev;
    struct policy_authlimit *authlimit; /* failed AUTH per client address */
    struct deliver_agent *agent;        /* remote delivery (deliver/agent.h) */
    struct smtp_server_callbacks callbacks;
    char readbuf[64 * 1024]; /* shared by every connection: the loop reads one at a time */
};

struct net_conn {
    struct net_server *srv;
    struct net_listener *listener;
    struct net_conn *prev, *next;
    struct net_transport io;
    struct event ev;
    short ev_mask; /* EV_READ/EV_WRITE currently watched; -1: not added */
    bool ev_data_timeout;
    bool handshaking;  /* TLS handshake in progress (STARTTLS or implicit TLS) */
    short read_want;   /* what the transport waits for to read (TLS may need EV_WRITE) */
    short write_want;  /* ... and to write */
    bool committing; /* a message commit is in flight: the conn lives until its callback */
    bool dead;       /* the socket is gone; free once the commit is done */
    struct smtp_server *session;
    struct store_msg *msg; /* the message being received */
    uint64_t msg_size;
    size_t msg_rcpts;
    bool msg_remote; /* the message has remote recipients: the agent gets it once committed */
    char *msg_sender;
    struct policy_authcheck_job *auth_job; /* a password being verified */
    struct event *auth_delay;              /* holds back the answer to a failed AUTH */
    char auth_user[LIMIT_PATH + 1];        /* who is trying to log in, for the log */
    char addr[64];
};

/* Runs the server on cfg until SIGTERM/SIGINT and a graceful shutdown. Returns the exit status. */
int net_server_run(const struct policy_config *cfg);

/* conn.c */
void net_conn_accept(struct net_listener *l, int fd, const char *addr);
void net_conn_update(struct net_conn *c); /* flush output, re-arm events, close when done */
void net_conn_shutdown(struct net_conn *c);
void net_conn_close(struct net_conn *c);

/* transaction.c: the session callbacks (policy decisions, storage). */
void net_transaction_callbacks(struct smtp_server_callbacks *cb);
void net_transaction_forget(struct net_conn *c); /* drop what the conn holds of a message */
uint64_t net_now_ms(void);                        /* monotonic milliseconds */

#endif
