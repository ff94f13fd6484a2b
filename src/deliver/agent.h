/* deliver/agent.h — remote delivery inside `clearmta serve`, on the server's event loop:
 * routes, SMTP delivery, durable per-recipient outcomes, retries on the schedule of retry.h,
 * bounces (RFC 3464) for failed recipients. RFC 5321 §4.5.4. */
#ifndef CLEARMTA_DELIVER_AGENT_H
#define CLEARMTA_DELIVER_AGENT_H

#include <stdbool.h>
#include <stddef.h>

#include "deliver/destination.h"
#include "deliver/retry.h"
#include "policy/config.h"
#include "reply/reply.h"
#include "store/queue.h"

struct event_base;
struct deliver_agent;
struct auth_dkim_signers; /* auth/dkim_sign.h */

struct deliver_agent_opts {
    struct event_base *base;
    const struct policy_config *cfg; /* hostname, queue_dir, routes, relayhost; outlives agent */
    struct store_queue *queue;       /* bounces are injected here */
    struct deliver_retry_policy retry;
    struct deliver_destination_config destination;
    unsigned connect_timeout_s, command_timeout_s, data_timeout_s; /* 0: 30, 300, 600 */
    unsigned idle_timeout_s; /* an idle connection waits this long for a message; 0: QUIT */
    unsigned max_connections; /* outbound connections open at once; 0: the default below */
    void (*log)(void *ctx, const char *line); /* one line, no newline; NULL: none */
    void *log_ctx;
    const struct auth_dkim_signers *dkim; /* signs reports from a signing domain; NULL: none */
};

/* The retry policy, destination settings and timeouts cfg asks for (retry_first, retry_max,
 * queue_lifetime, delay_warning, delivery_timeout_*, max_messages_per_connection,
 * connection_idle_timeout); the caller adds loop, queue and logger. */
void deliver_agent_opts_from_config(struct deliver_agent_opts *o, const struct policy_config *cfg);

/* Outbound connections at once when nothing sets the cap (the server derives it from its
 * descriptor budget: server/capacity.c). */
#define DELIVER_AGENT_CONNECTIONS_DEFAULT 1000

/* Creates the agent and schedules every queued message with pending remote recipients
 * (recovery after a restart). NULL with one line in err on failure. */
struct deliver_agent *deliver_agent_new(const struct deliver_agent_opts *o, char *err,
                                        size_t errlen);

/* A reloaded configuration: later attempts route, name themselves and pace by cfg (which
 * must outlive the agent, as must the one it replaces: attempts in flight still read it). */
void deliver_agent_set_config(struct deliver_agent *a, const struct policy_config *cfg);

/* The most outbound connections open at once (connecting, delivering or idle), whatever the
 * number of destinations; n 0 counts as 1. Lowering it closes nothing: connections above it
 * end with their messages. */
void deliver_agent_set_max_connections(struct deliver_agent *a, unsigned n);
unsigned deliver_agent_max_connections(const struct deliver_agent *a);

/* The outbound connections open now (connecting, delivering or idle), the cap, and the
 * deliveries waiting in memory for a connection: for `clearmta queue status`. */
struct deliver_agent_outbound {
    unsigned open, max;
    size_t waiting;
};
void deliver_agent_outbound_use(const struct deliver_agent *a, struct deliver_agent_outbound *o);

/* Connections in flight are dropped; their recipients stay pending on disk. NULL is fine. */
void deliver_agent_free(struct deliver_agent *a);

/* A message was committed with remote recipients: try it now. False when out of memory (the
 * message stays queued for the next start). */
bool deliver_agent_submit(struct deliver_agent *a, const char *queue_id);

/* ---- administration: `clearmta queue …` through the control socket ---------------------- */

/* One recipient as `clearmta queue list` shows it. */
struct deliver_agent_rcpt_view {
    const char *address;
    /* "local" (waiting for the Maildir runner), "queued" (remote, not tried yet), "sending"
     * (remote, an attempt is in progress), "deferred" (tried, will be retried), "sent",
     * "bounced". A queued or deferred recipient always has its next try (next_try != 0)
     * unless its message is held. */
    const char *state;
    unsigned attempts;      /* delivery attempts made for it since the server started */
    int64_t next_try;       /* Unix time of the next attempt, 0 when none is scheduled */
    const char *last_reply; /* the last reply or failure, e.g. "451 4.7.1 Try later"; "" */
    struct reply_status last_status; /* its enhanced status (cls 0 when none) */
};

struct deliver_agent_msg_view {
    const char *id;
    int64_t arrival;       /* Unix time */
    uint64_t size;         /* message bytes */
    const char *sender;    /* "" for <> */
    bool held;             /* `queue hold`: not delivered until released */
    bool warned;           /* a delay warning was sent */
    const char *auth_results; /* Authentication-Results recorded on receipt; "" when none */
    const char *folder;       /* Maildir++ folder of its local copies (".Junk"); "" inbox */
    size_t n_rcpts;
    const struct deliver_agent_rcpt_view *rcpts;
};

typedef void deliver_agent_view_cb(void *ctx, const struct deliver_agent_msg_view *m);

enum deliver_agent_admin_err {
    DELIVER_AGENT_ADMIN_OK,
    DELIVER_AGENT_ADMIN_NOT_FOUND, /* no such message in the queue */
    DELIVER_AGENT_ADMIN_IO,        /* the queue could not be read or written */
    DELIVER_AGENT_ADMIN_NOMEM
};

/* Calls fn for each message in the queue (id NULL; oldest first) or for message id only; the
 * views are valid during the call. *count: messages shown. Errors: NOT_FOUND (id given), IO,
 * NOMEM. */
enum deliver_agent_admin_err deliver_agent_list(struct deliver_agent *a, const char *id,
                                                deliver_agent_view_cb *fn, void *ctx,
                                                size_t *count);

/* Tries now: message `target` (a queue id), every message with a remote recipient in domain
 * `target`, or every message (target NULL), ignoring retry times and destination backoffs
 * (held messages stay held). *count: messages scheduled. Errors: NOT_FOUND (nothing matched a
 * given target). */
enum deliver_agent_admin_err deliver_agent_flush(struct deliver_agent *a, const char *target,
                                                 size_t *count);

/* hold: no delivery attempt (remote or local) until release; durable across restarts.
 * Errors: NOT_FOUND, IO. */
enum deliver_agent_admin_err deliver_agent_hold(struct deliver_agent *a, const char *id);
enum deliver_agent_admin_err deliver_agent_release(struct deliver_agent *a, const char *id);

/* Removes a message. With bounce, its sender (unless <>) gets a failure DSN for every
 * recipient not yet delivered, status 5.0.0, saying the administrator deleted it; without,
 * it goes silently. Logged either way. Errors: NOT_FOUND, IO. */
enum deliver_agent_admin_err deliver_agent_delete(struct deliver_agent *a, const char *id,
                                                  bool bounce);

/* The messages the agent has in hand (each with a remote recipient still to deliver), counted
 * in memory without reading the queue; *oldest: the arrival (Unix time, from the queue id) of
 * the oldest, 0 when there is none. For the metrics: cheap enough for every scrape. */
size_t deliver_agent_queue_size(struct deliver_agent *a, int64_t *oldest);

/* Calls fn for each destination the agent knows (concurrency, backoff, messages per
 * connection: destination.h), then returns the time the views were taken. */
int64_t deliver_agent_destinations(struct deliver_agent *a,
                                   void (*fn)(void *ctx, const struct deliver_destination *d),
                                   void *ctx);

/* The counters the relay host's rate= pacing uses (policy/counters.h); NULL: the agent makes
 * its own memory counters. Set before the first delivery, e.g. the server's shared Redis
 * counters, so that several nodes stay within one provider plan together. */
struct policy_counters;
void deliver_agent_set_counters(struct deliver_agent *a, struct policy_counters *c);

/* A store_local_success_fn (store/deliver_local.h) with ctx the agent, for
 * store_queue_set_success_hook: queues one "delivered" report (RFC 3464, RFC 3461 §6.2) for the
 * local recipients rcpts[0..n) of qf, none for the sender <>. Safe on the local runner's
 * thread. */
struct store_qf;
void deliver_agent_send_delivered(void *ctx, const struct store_qf *qf, const size_t *rcpts,
                                  size_t n, int fd);

#endif
