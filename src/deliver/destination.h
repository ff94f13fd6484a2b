/* deliver/destination.h — adaptive per-destination delivery state: how many connections a
 * next hop gets (additive increase, halving on "too many connections" or rate-limit replies),
 * backoff after failures, a learned cap on messages per connection, and a bounded table of
 * destinations for `clearmta queue status`. Pure: the caller passes the time. */
#ifndef CLEARMTA_DELIVER_DESTINATION_H
#define CLEARMTA_DELIVER_DESTINATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits_mta.h"
#include "reply/reply.h"

#define DELIVER_DESTINATION_ERRORS(X)                                                   \
    X(DELIVER_DESTINATION_OK, "ok")                                                     \
    X(DELIVER_DESTINATION_ERR_NAME,                                                     \
      "bad destination name: empty, too long, or holding a space or control byte")     \
    X(DELIVER_DESTINATION_ERR_CONFIG, "bad destination settings")                       \
    X(DELIVER_DESTINATION_ERR_FULL,                                                     \
      "destination table full: every destination is busy or backing off")              \
    X(DELIVER_DESTINATION_ERR_NOMEM, "out of memory")

enum deliver_destination_err {
#define X(name, text) name,
    DELIVER_DESTINATION_ERRORS(X)
#undef X
};
/* Never NULL. */
const char *deliver_destination_strerror(enum deliver_destination_err err);

/* A destination is a next-hop domain or "host:port" ("[2001:db8::1]:2525" fits). */
#define DELIVER_DESTINATION_NAME_MAX (LIMIT_DOMAIN + 8)
/* What caused the current backoff, as shown by `clearmta queue status`. */
#define DELIVER_DESTINATION_WHY_MAX 120
/* Most destinations a table may hold. */
#define DELIVER_DESTINATION_TABLE_MAX 1000000

struct deliver_destination_config {
    unsigned concurrency_start; /* connections allowed at first, 1..concurrency_max */
    unsigned concurrency_max;   /* never more than this, >= 1 */
    unsigned grow_after;        /* delivered messages per +1 connection, >= 1 */
    unsigned backoff_first_s;   /* backoff after the first failure, doubling, >= 1 */
    unsigned backoff_max_s;     /* the doubling stops here, >= backoff_first_s */
    unsigned messages_per_connection; /* configured cap, 0 = unlimited */
};

/* Start 5 of at most 20, +1 per 10 delivered, backoff 60 s doubling to 960 s, no cap. */
extern const struct deliver_destination_config deliver_destination_defaults;
/* The same with backoffs of 1 s doubling to 8 s, for the test contract's fast mode. */
extern const struct deliver_destination_config deliver_destination_fast;

/* The state; read it freely, change it only through the functions below. */
struct deliver_destination {
    char name[DELIVER_DESTINATION_NAME_MAX + 1]; /* lowercase */
    struct deliver_destination_config cfg;
    unsigned limit;        /* connections allowed now, 1..cfg.concurrency_max */
    unsigned in_use;       /* connections open (acquired, not yet released) */
    unsigned waiting;      /* deliveries waiting for a connection (the caller's count) */
    unsigned successes;    /* delivered messages since the limit last changed */
    unsigned failures;     /* connect failures and throttling replies since the last success */
    unsigned per_conn;     /* messages per connection now, 0 = unlimited */
    int64_t backoff_until; /* no new connection before this time */
    bool unreachable;      /* the last connection failed to connect: not a sign of load */
    int64_t last_used;     /* time of the last table look-up */
    char why[DELIVER_DESTINATION_WHY_MAX + 1]; /* what set the backoff, "" if nothing */
};

/* What a reply taught the destination. */
enum deliver_signal {
    DELIVER_SIGNAL_NONE,     /* nothing about load: 3xx, or a failure of this message only */
    DELIVER_SIGNAL_SUCCESS,  /* a message was delivered */
    DELIVER_SIGNAL_THROTTLE  /* the server wants fewer connections or less mail: backing off */
};

/* Sets d to its starting state. Errors: NAME (empty, too long, space or control bytes),
 * CONFIG (a setting out of the ranges given in struct deliver_destination_config). */
enum deliver_destination_err deliver_destination_init(struct deliver_destination *d,
                                                      const char *name,
                                                      const struct deliver_destination_config *cfg);

/* True when a new connection may be opened now: no backoff running and fewer connections open
 * than the limit. */
bool deliver_destination_may_connect(const struct deliver_destination *d, int64_t now);

/* may_connect, and if so counts the connection as open. Pair each true with one release. */
bool deliver_destination_acquire(struct deliver_destination *d, int64_t now);
void deliver_destination_release(struct deliver_destination *d);

/* A connection got past its greeting and EHLO: the destination answers again, so its backoff
 * (and the count of failures in a row) ends. After connect failures (an outage, not load) the
 * concurrency is back to at least concurrency_start. */
void deliver_destination_on_connected(struct deliver_destination *d);

/* Ends the backoff now, keeping what was learned (limit, messages per connection): `queue
 * flush` means "try now, whatever the backoff". */
void deliver_destination_resume(struct deliver_destination *d);

/* True when a connection that has already sent `conn_messages` messages may send another. */
bool deliver_destination_may_send(const struct deliver_destination *d, unsigned conn_messages);

/* A connection (TCP, TLS or the greeting) failed. Halves the limit (at least 1) and backs off
 * for backoff_first_s doubling with each failure in a row, up to backoff_max_s. why: words for
 * the status display (e.g. "connection refused"), or NULL. */
void deliver_destination_on_connect_failed(struct deliver_destination *d, const char *why,
                                           int64_t now);

/* Learns from a reply of the destination; call it with the reply that ended each transaction
 * (the end-of-data reply) and with any failure reply (greeting, EHLO, MAIL, RCPT, DATA).
 * conn_messages: messages this connection had delivered before the reply.
 * - 2xx: SUCCESS; after grow_after of them the limit grows by one (up to concurrency_max).
 * - 421 at any point, or a 4xx/5xx whose reason (reply_explain) is toomanyconn or speeding,
 *   or a 4xx whose reason is systemfull: THROTTLE: the limit halves (at least 1) and a
 *   backoff starts as for connect failures. When the reason is toomanyconn or speeding and the
 *   connection had delivered messages, messages per connection is capped at that number.
 *   "Too many recipients" (X.5.3, or 452 without an enhanced code) limits one transaction,
 *   not the destination: NONE.
 * - anything else: NONE. */
enum deliver_signal deliver_destination_on_reply(struct deliver_destination *d,
                                                 const struct reply_parsed *r,
                                                 unsigned conn_messages, int64_t now);

/* One line for `clearmta queue status`, e.g. "example.org: concurrency 2/20 (1 open), backoff
 * until 12:00:03 (421 4.7.0 Too many connections), messages per connection 10" (times in UTC;
 * the backoff only while it runs). NUL-terminated, truncated to cap − 1; returns the length
 * the full line needs (as snprintf does). */
size_t deliver_destination_describe(const struct deliver_destination *d, int64_t now, char *buf,
                                    size_t cap);

/* ---- a bounded table of destinations, hashed by name (case-insensitive) ------------------ */

struct deliver_destination_table;

/* Errors: CONFIG (max_entries 0 or above DELIVER_DESTINATION_TABLE_MAX, or a bad cfg), NOMEM.
 * The table keeps a copy of cfg. Free with deliver_destination_table_free (NULL is fine). */
enum deliver_destination_err
deliver_destination_table_new(const struct deliver_destination_config *cfg, size_t max_entries,
                              struct deliver_destination_table **out);
void deliver_destination_table_free(struct deliver_destination_table *t);

/* The destination called name, created in its starting state if absent. When the table is
 * full, the least recently used destination with no open connection, no delivery waiting and
 * no running backoff makes room (what it learned is forgotten). The pointer stays valid until that destination is
 * evicted or the table freed: do not keep it across table_get calls for other names while its
 * in_use is 0. Errors: NAME, FULL (nothing can be evicted). */
enum deliver_destination_err deliver_destination_table_get(struct deliver_destination_table *t,
                                                           const char *name, int64_t now,
                                                           struct deliver_destination **out);

/* deliver_destination_resume for every destination of the table. */
void deliver_destination_table_resume_all(struct deliver_destination_table *t);

/* The destination called name, or NULL; creates nothing. */
struct deliver_destination *deliver_destination_table_find(struct deliver_destination_table *t,
                                                           const char *name);

size_t deliver_destination_table_count(const struct deliver_destination_table *t);

/* Iteration: start with *cursor = 0; returns the next destination or NULL at the end. The
 * table must not change during an iteration. */
const struct deliver_destination *
deliver_destination_table_next(const struct deliver_destination_table *t, size_t *cursor);

#endif
