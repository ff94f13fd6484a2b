/* deliver/agent_internal.h — what the delivery agent's files share: the job (one per queued
 * message the agent knows), the attempt (one delivery run of it), the delivery (one next hop
 * of an attempt, tried address by address) and the agent. Not for other modules. */
#ifndef CLEARMTA_DELIVER_AGENT_INTERNAL_H
#define CLEARMTA_DELIVER_AGENT_INTERNAL_H

#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/agent.h"
#include "deliver/outbound.h"
#include "deliver/resolver.h"
#include "deliver/route.h"
#include "policy/counters.h"
#include "store/remote.h"

/* Destinations remembered at once (LRU beyond): far above the hops a slice routes to. */
#define AGENT_DESTINATIONS_MAX 10000
/* Longest diagnostic kept per recipient (a reply's text is at most REPLY_TEXT_MAX). */
#define AGENT_DIAG_MAX (REPLY_TEXT_MAX + LIMIT_DOMAIN + 96)
#define AGENT_RELAY_MAX (2 * LIMIT_DOMAIN + 16)
/* Addresses tried per delivery attempt, host by host: as Postfix's smtp_mx_address_limit, so
 * one attempt to a domain with many dead hosts ends in bounded time. */
#define AGENT_ADDRS_PER_ATTEMPT 5
/* Deliveries waiting for a free connection to their destination. Each holds its queue file
 * open and its message in memory; beyond this a message's job waits instead (blocked jobs:
 * no file, no body), to be tried again as waiters go. */
#define AGENT_WAITERS_MAX 256
/* Blocked jobs tried again per connection given back: enough to refill the waiters as they
 * go, few enough that one release does not load many messages. */
#define AGENT_UNBLOCK_PER_RELEASE 8
/* A destination's share of the waiters: twice its connection limit (each connection takes the
 * next waiter when its message is done, and the blocked jobs refill them meanwhile), at least
 * this many. A slow destination never holds more, so the others always find room to wait. */
#define AGENT_WAITERS_PER_DEST_MIN 8
/* Blocked jobs passed over per unblocking because their destination still has no room to
 * wait: they go to the back, without their files being read, so a slow destination's jobs at
 * the front do not hold back those behind them. */
#define AGENT_UNBLOCK_SCAN 64
/* Buckets of the blocked jobs' table by destination. */
#define AGENT_BLOCKED_BUCKETS 256

struct blocked_queue;

struct rcpt_out {
    size_t idx;                  /* index in the queue file */
    enum store_rcpt_state st;    /* PENDING: no outcome yet in this attempt */
    struct reply_status status;
    char diag[AGENT_DIAG_MAX];
    const char *relay;           /* the delivery's relay text, NULL: none reached */
    const char *remote_mta;      /* the host that replied (DSN Remote-MTA), or NULL */
    bool recorded;               /* logged (and written when final) */
    bool expired;                /* given up by us (4.4.7), whatever the last reply said */
    bool relayed;                /* SENT to a peer without DSN: the success report is ours */
};

struct attempt;

/* One address to connect to, and the host it belongs to. */
struct candidate {
    char host[LIMIT_DOMAIN + 1];
    struct sockaddr_storage ss;
    socklen_t sslen;
};

/* What goes with an open connection when it passes from one delivery to another, or waits
 * idle between them. */
struct conn_carry {
    struct deliver_outbound *out;
    struct candidate cand;        /* the address it is connected to */
    char relay[AGENT_RELAY_MAX];
    char host[LIMIT_DOMAIN + 1];
    unsigned conn_messages;       /* messages it delivered */
    unsigned mailmax;             /* the peer's LIMITS MAILMAX, 0: none */
    bool relay_reports;           /* the peer has no DSN */
};

/* A connection with nothing to send, kept open for the next message to its destination. It
 * holds one of the destination's connections until a delivery takes it, it times out
 * (connection_idle_timeout: QUIT) or the peer closes it. */
struct idle_conn {
    struct deliver_agent *a;
    struct idle_conn *prev, *next;
    char dest[DELIVER_DESTINATION_NAME_MAX + 1];
    struct conn_carry c;
    struct event *timer;
    bool closing; /* QUIT sent or the peer gone: not to be taken */
};

/* One next hop of an attempt: resolution, then one connection at a time over its candidates. */
struct delivery {
    struct attempt *at;
    struct delivery *next;
    struct deliver_route route;
    char dest[DELIVER_DESTINATION_NAME_MAX + 1];
    char relay[AGENT_RELAY_MAX];  /* host[ip]:port of the candidate in use */
    char host[LIMIT_DOMAIN + 1];  /* its host name, for Remote-MTA */
    unsigned short port;
    struct candidate cand[AGENT_ADDRS_PER_ATTEMPT];
    size_t n_cand, cur;
    struct deliver_lookup *lookup;       /* resolution in flight */
    struct policy_counters_call *pacing; /* rate decision in flight */
    struct event *wait;                  /* rate pacing: the wait before asking again */
    struct delivery *wprev, *wnext;      /* in the agent's waiters while waiting */
    bool waiting;                        /* for a free connection to dest */
    bool waiting_global;                 /* ... because every outbound connection is taken */
    bool reserved;                       /* woken, holding one of the free places */
    struct event *wake;                  /* a connection is free: try again */
    unsigned mailmax;                    /* the peer's LIMITS MAILMAX, 0: none */
    struct smtp_client_opts copts;
    struct deliver_outbound *out;
    struct smtp_client_rcpt *crcpts;
    size_t *map; /* crcpts[i] is at->rc[map[i]] */
    size_t n;
    struct smtp_client_message msg;
    size_t first;        /* first recipient of the transaction in progress */
    unsigned conn_messages;
    bool acquired;       /* holds one of the destination's connections */
    bool ready;          /* the session of the current candidate got past EHLO */
    bool next_candidate; /* the current candidate failed before ready: try the next */
    bool verify;         /* required-verify: check the certificate against host */
    bool reused;         /* the connection came from another delivery or from the idle list */
    bool answered;       /* the peer answered a RCPT or the data on this connection */
    bool reconnect;      /* a reused connection died unanswered: connect afresh */
    bool last_sent;      /* the peer accepted all of the last transaction: every recipient
                          * and the data */
    /* The peer did not offer DSN (RFC 3461 §5.2.2): NOTIFY=SUCCESS recipients it accepts get
     * a "relayed" report from us. False until EHLO is done, so a connection whose EHLO we
     * did not see reports nothing rather than twice. */
    bool relay_reports;
};

struct job;

struct attempt {
    struct job *job;
    struct store_remote_msg m;
    struct rcpt_out *rc;
    size_t n_rc;
    struct delivery *dl;
    size_t running; /* deliveries resolving, waiting or connected */
    /* Scratch of n_rc entries each, for the lists record() takes and writes. */
    struct rcpt_out **list;
    size_t *idx;
    enum store_rcpt_state *st;
    int64_t not_before; /* a destination backs off until then */
    bool postponed;     /* a delivery found no room to wait for a connection */
    char postponed_on[DELIVER_DESTINATION_NAME_MAX + 1]; /* the first such delivery's */
    bool recorded_any;  /* some recipient got an outcome */
    bool record_failed; /* an outcome could not be written: the file still says pending */
};

/* What `queue list` shows of a recipient between attempts (in memory: counts from start). */
struct rcpt_info {
    unsigned attempts;
    char *last_reply; /* malloc'd, or NULL */
    struct reply_status last_status;
};

/* A doubly linked list of jobs through one of their struct job_link members. */
struct job_link {
    struct job *prev, *next;
};
struct job_list {
    struct job *head, *tail;
};

struct job {
    struct deliver_agent *a;
    struct job *prev, *next;
    char id[STORE_ID_LEN + 1];
    unsigned attempts;
    bool again;     /* submitted or flushed while an attempt ran */
    bool held;      /* cached flag (store/flags.h) */
    bool warned;    /* cached flag: the delay warning went out */
    bool blocked;   /* in the agent's blocked jobs, waiting for room among the waiters */
    struct job_link in_all;  /* in the agent's blocked jobs */
    struct job_link in_dest; /* in queue's */
    char blocked_on[DELIVER_DESTINATION_NAME_MAX + 1]; /* the destination without room */
    struct blocked_queue *queue; /* blocked_on's jobs (agent_blocked.c), NULL: none */
    int64_t next_try; /* Unix time the timer fires, 0 when not scheduled */
    struct event *timer;
    struct attempt *at;
    struct rcpt_info *info; /* n_info entries, by queue-file index; NULL before an attempt */
    size_t n_info;
};

struct deliver_agent {
    struct deliver_agent_opts o;
    int dir_fd;   /* queue/ */
    int flags_fd; /* flags/ (store/flags.h), -1 when it cannot be opened */
    struct store_lazysync *outcome_sync; /* makes outcome records durable off the loop */
    SSL_CTX *tls, *tls_verify;
    struct deliver_resolver *resolver; /* NULL: MX routes defer */
    struct deliver_destination_table *dests;
    struct job *jobs;
    struct delivery *waiters, *waiters_tail; /* FIFO of deliveries waiting for a connection */
    size_t n_waiters;
    /* Outbound connections open now (delivering, connecting or idle) and the most allowed at
     * once, whatever the destinations (max_outbound_connections; agent_slots.c). */
    unsigned out_open, out_max;
    unsigned out_woken;       /* waiters woken to take a free place, not yet run */
    size_t n_waiting_global; /* waiters for a global place (their destination has room) */
    struct job_list blocked; /* FIFO of jobs postponed for want of waiter room */
    struct blocked_queue *blocked_by_dest[AGENT_BLOCKED_BUCKETS]; /* the same by destination */
    struct idle_conn *idle;             /* connections waiting for a message */
    struct policy_counters *counters, *own_counters;
    /* The relay rate's last logged state: a "reached" or "unavailable" line goes out once per
     * stretch, until a message is allowed again (ALLOWED: nothing logged). */
    enum policy_counters_status pace_logged;
    uint64_t rng;
};

/* agent.c */
void deliver_agent_logf(struct deliver_agent *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t deliver_agent_random(struct deliver_agent *a);
int64_t deliver_agent_now(void);
/* Sets rc's outcome to row o of codes.def (its state by the row's use, its status by the
 * row's code) with diag as the diagnostic. */
void deliver_agent_set_outcome(struct rcpt_out *rc, enum reply_outcome o, const char *diag);
struct job *deliver_agent_job_find(struct deliver_agent *a, const char *id);
void deliver_agent_job_schedule(struct job *j, uint64_t seconds);
void deliver_agent_job_cancel(struct job *j);
/* Drops the attempt in progress (connections, look-ups) without recording anything more. */
void deliver_agent_job_abort(struct job *j);
void deliver_agent_job_free(struct job *j);
/* The callbacks of a connection, for agent_route.c. */
extern const struct smtp_client_callbacks deliver_agent_client_cb;
void deliver_agent_delivery_finished(void *ctx);
/* The delivery is over (its recipients' outcomes set): frees its destination connection,
 * records the outcomes, and releases its unit of the attempt. */
void deliver_agent_delivery_done(struct delivery *d);
/* Ends one running unit of the attempt (a delivery that stopped); the last ends the attempt. */
void deliver_agent_attempt_release(struct attempt *at);

/* agent_blocked.c: jobs postponed for want of room among the waiters. block puts j at the back
 * (of all and of j->blocked_on's); unblock_job takes it off (nothing if it is not blocked). */
void deliver_agent_block(struct job *j);
void deliver_agent_unblock_job(struct job *j);
/* Schedules up to n blocked jobs now, oldest first, passing over those whose destination
 * still has no room. */
void deliver_agent_unblock(struct deliver_agent *a, size_t n);
/* Schedules up to n of the jobs blocked on dest while dest has room; returns how many. */
size_t deliver_agent_unblock_dest(struct deliver_agent *a, const char *dest, size_t n);
/* Testing builds: aborts unless every job is held, in an attempt or has its next try
 * scheduled (a deferred recipient without a next try would wait for a restart), and unless
 * every delivery waiting for a connection has one to wait for: a connection open to its
 * destination or a woken delivery about to take one, with the destination's count of open
 * connections true. */
void deliver_agent_check_schedules(struct deliver_agent *a);

/* agent_route.c: recipients into deliveries, and each delivery's resolution and addresses. */
bool deliver_agent_group(struct attempt *at);
/* Counts the delivery as running and starts it (pacing, then deliver_agent_delivery_go). */
void deliver_agent_delivery_start(struct delivery *d);
/* After a connection ended: the next candidate when the last one failed before EHLO was done
 * and one is left (true), else false. */
bool deliver_agent_delivery_next(struct delivery *d);
void deliver_agent_delivery_free(struct delivery *d);

/* agent_slots.c: who gets a connection — each destination's concurrency, the global cap on
 * outbound connections shared fairly among destinations, and the waiters. */
enum deliver_agent_slot {
    AGENT_SLOT_TAKEN,       /* counted open, for dst and globally */
    AGENT_SLOT_DEST_FULL,   /* dst backs off or has its limit open */
    AGENT_SLOT_GLOBAL_FULL  /* every outbound connection is taken */
};
enum deliver_agent_slot deliver_agent_slot_take(struct deliver_agent *a,
                                                struct deliver_destination *dst, int64_t now);
/* Room for one more delivery of dst among the waiters: under the global bound and under dst's
 * share of it. */
bool deliver_agent_may_wait(const struct deliver_agent *a, const struct deliver_destination *dst);
/* Queues d until a connection is free (global: every outbound connection is taken, and an idle
 * one, if any, is closed to make room); false when out of memory. */
bool deliver_agent_wait_for_connection(struct delivery *d, struct deliver_destination *dst,
                                       bool global);
/* Takes d off the waiters, if it is there. */
void deliver_agent_unwait(struct deliver_agent *a, struct delivery *d);
/* Gives back d's destination connection (if it holds one) and lets waiters of that
 * destination try again. */
void deliver_agent_dest_release(struct delivery *d);
/* Gives back one connection of destination dest (a connection no delivery holds). */
void deliver_agent_slot_release(struct deliver_agent *a, const char *dest);
/* As many waiters for dst as may connect now try again, from the loop (not from inside the
 * caller); all of them while it backs off, so they defer. When every outbound connection is
 * taken, all of dst's waiters wait for a place given back instead. After a connection is
 * given back, and after a success that may have raised the destination's concurrency. */
void deliver_agent_wake_waiters(struct deliver_agent *a, const struct deliver_destination *dst);
/* The first delivery waiting for a connection to dest, taken off the list, or NULL. */
struct delivery *deliver_agent_take_waiter(struct deliver_agent *a, const char *dest);
/* May dst's connection carry its next message? False when every outbound connection is taken
 * and a destination holding fewer waits for one: the connection closes and its place goes
 * there. */
bool deliver_agent_fair_to_keep(struct deliver_agent *a, const struct deliver_destination *dst);
/* agent_reuse.c: says QUIT on one idle connection (its place is given back when it closes);
 * false when there is none to close. */
bool deliver_agent_idle_close_one(struct deliver_agent *a);
/* Sets the message d sends and its recipients' relay. */
void deliver_agent_delivery_prepare(struct delivery *d);
/* Connects again to the current candidate (a reused connection died before any answer). */
void deliver_agent_delivery_reconnect(struct delivery *d);
/* Connection reuse, after d's message: when d's destination lets its connection send another
 * message, a delivery waiting for that destination gets it, or with none waiting and d's last
 * transaction accepted whole it is kept idle (connection_idle_timeout). True when d no longer holds
 * it; false: d says QUIT. */
bool deliver_agent_hand_over(struct delivery *d);
/* An idle connection to d's destination, handed to d with d's message sent on it; false when
 * there is none. */
bool deliver_agent_take_idle(struct delivery *d);
/* Closes every idle connection at once (agent shutdown). */
void deliver_agent_idle_free_all(struct deliver_agent *a);

/* agent_pace.c: relay-host rate= pacing. Calls deliver_agent_delivery_go when the delivery
 * may go, now or later. */
void deliver_agent_pace(struct delivery *d);
/* agent_route.c: takes a destination connection, resolves, connects. */
void deliver_agent_delivery_go(struct delivery *d);

/* agent_dsn.c: reports to the sender. */
void deliver_agent_send_bounce(struct attempt *at);
void deliver_agent_send_delay_warning(struct attempt *at);
/* One "relayed" report for the attempt's recipients handed to peers without DSN that asked
 * for NOTIFY=SUCCESS (RFC 3461 §5.2.2, §6.2). */
void deliver_agent_send_relayed(struct attempt *at);
/* A report for the recipients of qf not yet delivered, after an administrator deleted it. */
void deliver_agent_send_deleted(struct deliver_agent *a, const struct store_remote_msg *m);

#endif
