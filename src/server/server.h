/* server/server.h — the running server: event loop, listeners, connections, and the glue between
 * SMTP sessions, policy and the store. Internal to server/ except server_run(). */
#ifndef CLEARMTA_SERVER_SERVER_H
#define CLEARMTA_SERVER_SERVER_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "auth/dkim_sign.h"
#include "deliver/agent.h"
#include "net/tls.h"
#include "net/transport.h"
#include "policy/authcheck.h"
#include "policy/authlimit.h"
#include "policy/config.h"
#include "policy/recipients.h"
#include "smtp/server_session.h"
#include "store/queue.h"

struct server_conn;
struct net_control;
struct server_limits;
struct server_limits_show;
struct server_receipt;
struct deliver_authcheck;
struct policy_counters;

struct server_listener {
    int fd; /* -1: closed (removed by a reload); the slot stays while its sessions live */
    struct event *ev;
    const struct policy_listener *conf;
    struct smtp_server_opts opts;
    struct server *srv;
};

/* capacity.c: the descriptor budget and stress mode. */
struct server_capacity {
    unsigned long long nofile; /* the descriptor limit in force (soft raised to hard) */
    unsigned fit;              /* connections the descriptors allow */
    unsigned max_conns;        /* min(max_connections, fit): more get 421 4.3.2 */
    unsigned outbound_reserve; /* outbound connections the descriptors kept for delivery */
    unsigned stress_high, stress_low; /* the water marks, in connections */
    bool stress;                      /* stress mode is on */
    const struct timeval *stress_timeout; /* libevent common timeout of stress.timeout */
    int spare_fd;        /* kept open to accept-and-refuse when descriptors run out */
    const struct timeval *handshake_timeout; /* tls_handshake_timeout (common timeout) */
    struct policy_authlimit *tls_rate; /* TLS handshakes per address in the last second */
    unsigned tls_rate_per_second;      /* the tls_handshakes_per_second tls_rate counts for */
    uint64_t memory; /* bytes the connections hold (session_memory budget) */
    bool memory_full; /* the budget is spent: logged once per episode */
    enum smtp_verdict (*data_begin)(void *ctx, const struct smtp_envelope *env,
                                    struct smtp_decision *d); /* transaction.c's, wrapped */
    struct event *resume_ev; /* accept.c: listeners paused after accept(2) failed resume */
};

struct server {
    struct event_base *base;
    const struct policy_config *cfg;
    struct store_queue *queue;
    struct event *queue_ev, *sigterm_ev, *sigint_ev, *grace_ev;
    struct server_listener listeners[POLICY_LISTENERS_MAX];
    size_t n_listeners;
    struct server_ipcount *per_ip;
    struct server_conn *conns; /* every live connection, newest first, for shutdown */
    struct server_conn *conns_tail; /* the oldest (stress mode makes room from this end) */
    unsigned n_conns;
    struct server_capacity cap;
    bool shutting_down;
    const struct timeval *command_timeout, *data_timeout; /* libevent common timeouts */
    SSL_CTX *tls_ctx; /* NULL when TLS could not be set up */
    struct policy_authcheck *authcheck; /* password verification off the loop */
    struct event *authcheck_ev;
    struct policy_authlimit *authlimit; /* failed AUTH per client address */
    struct deliver_agent *agent;        /* remote delivery (deliver/agent.h) */
    struct policy_counters *counters;   /* plans, greylisting, session rates (memory or Redis) */
    struct net_control *control;        /* <queue_dir>/control.sock; NULL when it failed */
    struct auth_dkim_signers *dkim;     /* dkim_sign keys, read at start; NULL: none */
    size_t held_bytes;                  /* signing.c: memory of all sessions' held messages */
    struct deliver_authcheck *receipt_checker; /* SPF/DKIM/DMARC on receipt; made when needed */
    struct server_limits_show *shows;      /* "limits show" requests waiting on the counters */
    struct smtp_server_callbacks callbacks;
    const char *config_path;           /* re-read on SIGHUP; NULL: embedded defaults */
    struct event *sighup_ev, *sigusr1_ev; /* reload.c: reload; log reopen */
    struct server_retired *retired;    /* configurations read by reloads (reload.c) */
    struct server_pickup *pickup;      /* the maildrop of clearmta sendmail (pickup.c) */
    struct server_http *http;          /* listen http: console and /metrics (http.c) */
    char readbuf[64 * 1024]; /* shared by every connection: the loop reads one at a time */
};

struct server_conn {
    struct server *srv;
    struct server_listener *listener;
    struct server_conn *prev, *next;
    struct net_transport io;
    struct event ev;
    short ev_mask; /* EV_READ/EV_WRITE currently watched; -1: not added */
    const struct timeval *ev_timeout; /* the timeout armed with it */
    bool handshaking;  /* TLS handshake in progress (STARTTLS or implicit TLS) */
    uint64_t handshake_began_ms; /* monotonic: the handshake has tls_handshake_timeout in all */
    size_t memory;     /* what the connection counts in srv->cap.memory now (capacity.c) */
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
    bool msg_signing;      /* submitted after AUTH with signing keys: held until signed */
    bool msg_checking;     /* received on MX with checks on: held until checked (receipt.c) */
    struct server_receipt *receipt; /* the checks of the open transaction; NULL: none */
    struct server_signing_buf {
        char *p;
        size_t len, cap;
    } msg_held;            /* the message so far (signing.c), written once signed */
    struct policy_authcheck_job *auth_job; /* a password being verified */
    struct event *auth_delay;              /* holds back the answer to a failed AUTH */
    char auth_user[LIMIT_PATH + 1];        /* who is trying to log in, for the log */
    struct server_limits *limits;             /* limit checks (limits.c); NULL until needed */
    bool admitting;  /* the sessions-per-minute decision is pending: no greeting, no reading */
    bool greet_ready; /* the greeting may go once admitted (TLS is up on implicit TLS) */
    bool greeted;     /* the greeting (or the refusal in its place) was queued */
    enum reply_id admission; /* REPLY_OK, or the 421 that refuses the connection */
    struct event *throttle;  /* max_commands_per_second: reading resumes when it fires */
    bool throttled;          /* input is held back for the command rate */
    bool rate_started;       /* max_commands_per_second: a token bucket of one second */
    uint64_t rate_tokens;    /* commands the client may send now, in thousandths */
    uint64_t rate_last_ms;   /* when the bucket was last filled */
    uint64_t rate_commands;  /* smtp_server_commands() when tokens were last spent */
    uint64_t rate_over_since_ms; /* since when input waits for the rate (0: it does not) */
    uint64_t data_end_us;    /* the message's data ended then: its reply is timed (metrics.c) */
    char addr[64];
};

/* Runs the server on cfg until SIGTERM/SIGINT and a graceful shutdown. Returns the exit status. */
int server_run(const struct policy_config *cfg);

/* As server_run; cfg was read from path, which SIGHUP reads again (reload.c). cfg stays the
 * caller's and must outlive the call. */
int server_run_file(const char *path, const struct policy_config *cfg);

/* server.c: a listening socket. start binds conf and accepts on it (false, logged, when it
 * cannot); configure sets the session options from srv->cfg; stop closes it (idempotent). */
bool server_listener_start(struct server *srv, struct server_listener *l,
                           const struct policy_listener *conf);
void server_listener_configure(struct server *srv, struct server_listener *l,
                               const struct policy_listener *conf);
void server_listener_stop(struct server_listener *l);

/* privileges.c: started as root, the server runs as cfg->run_user (default clearmta). */
struct server_privileges {
    bool drop; /* started as root with a non-root user: drop after binding */
    uid_t uid;
    gid_t gid;
    char name[POLICY_RUN_USER_CAP], group[64];
};
/* Before anything is opened: looks the user up (unknown: false, the log names it), checks
 * that the data directories and what they hold belong to it (else false, the log says what to
 * chown) or creates them for it. Not root: only makes data_dir; p->drop stays false. */
/* embedded: the configuration is the embedded default (no file), where a missing default
 * user means "try it out as whoever started it", as `make run` does, with a warning. */
bool server_privileges_prepare(const struct policy_config *cfg, bool embedded,
                               struct server_privileges *p);
/* Who the self-signed pair in <data_dir>/tls may belong to, and is given to when the server
 * drops root: the user (or, without a drop, whoever runs the server). */
struct net_tls_owner server_privileges_tls_owner(const struct server_privileges *p);
/* Besides root, the one owner the log file may have (before the user is looked up): the
 * configured user when started as root (root alone when there is no such user), else
 * whoever runs the server. */
uid_t server_privileges_log_owner(const struct policy_config *cfg);
/* After the listeners are bound: clears supplementary groups, sets all gids then all uids of
 * the process (every thread) to the user's and checks that root cannot be regained. */
bool server_privileges_drop(const struct server_privileges *p);

/* A message dropped while the server ran but its poke was lost (or could not be sent: the
 * control socket is not every user's) waits at most this long. */
#define SERVER_PICKUP_INTERVAL_S 2

/* pickup.c: messages clearmta sendmail left in <queue_dir>/maildrop go into the queue. open
 * (after the queue, agent and control socket) picks up what is there and then polls; close
 * after the queue is closed (its commits call back). */
bool server_pickup_open(struct server *srv);
void server_pickup_close(struct server *srv);
/* How the server would take address as a recipient (sendmail checks before it drops). */
enum policy_rcpt_result server_pickup_classify(const struct policy_config *cfg,
                                               const char *address, char *mailbox, size_t cap);

/* reload.c: SIGHUP (reload) and SIGUSR1 (log reopen). open watches the signals; close frees
 * the configurations it replaced. */
bool server_reload_open(struct server *srv);
void server_reload_close(struct server *srv);

/* accept.c: the listener's readiness callback (arg: the server_listener); stop drops a
 * pending resume of paused listeners. */
void server_accept_ready(evutil_socket_t lfd, short what, void *arg);
void server_accept_close(struct server *srv);

/* capacity.c. prepare (first in setup) raises the descriptor limit; open (last) measures what
 * is open and sets max_connections and the stress marks, which configure sets again after a
 * reload; close releases the spare descriptor. */
void server_capacity_prepare(struct server *srv);
bool server_capacity_open(struct server *srv);
void server_capacity_configure(struct server *srv);
void server_capacity_close(struct server *srv);
/* The delivery agent's cap on outbound connections: max_outbound_connections when set
 * (configured > 0), else its share of a descriptor limit of nofile (an eighth, two descriptors
 * per connection). */
unsigned server_capacity_outbound(unsigned long long nofile, unsigned configured);
/* At accept: REPLY_OK (the address is counted in srv->per_ip) or the 421 refusing the client.
 * In stress at the limit an idle client before EHLO may be closed to make room. */
enum reply_id server_capacity_admit(struct server *srv, const char *addr);
/* After srv->n_conns changed: enters or leaves stress mode (logged; timeouts re-armed). */
void server_capacity_count(struct server *srv);
/* Counts what c holds now (session buffers, TLS, message being received) against
 * session_memory; after it closed (c->dead), nothing. */
void server_capacity_memory(struct server_conn *c);
/* Wraps the session callbacks: a new message is refused 452 4.3.1 at the memory budget. */
void server_capacity_callbacks(struct server *srv);
/* The inactivity timeout in force for a connection in a TLS handshake (the shorter of
 * tls_handshake_timeout and timeout_command), in data or else between commands; in stress mode
 * the stress timeout when it is shorter. */
enum server_wait { SERVER_WAIT_COMMAND, SERVER_WAIT_DATA, SERVER_WAIT_HANDSHAKE };
const struct timeval *server_capacity_timeout(const struct server *srv, enum server_wait w);
/* Whether addr may begin another TLS handshake now (tls_handshakes_per_second); counts it. */
bool server_capacity_tls_allowed(struct server *srv, const char *addr);

/* conn.c */
void server_conn_accept(struct server_listener *l, int fd, const char *addr);
void server_conn_update(struct server_conn *c); /* flush output, re-arm events, close when done */
void server_conn_rearm(struct server_conn *c);  /* the timeout in force changed */
void server_conn_shutdown(struct server_conn *c);
void server_conn_close(struct server_conn *c);

/* Ends the wait for the sessions-per-minute decision: greets (REPLY_OK) or refuses. */
void server_conn_admit(struct server_conn *c, enum reply_id admission);

/* transaction.c: the session callbacks (policy decisions, storage). */
void server_transaction_callbacks(struct smtp_server_callbacks *cb);
void server_transaction_forget(struct server_conn *c); /* drop what the conn holds of a message */
/* The message passed its checks at the end of data: make it durable (always SMTP_PENDING:
 * the commit's callback resumes the session). */
enum smtp_verdict server_transaction_commit(struct server_conn *c);
void server_transaction_discard(struct server_conn *c); /* the message was refused: drop it */
/* Begins storing the message of se (the queue file) and writes our Received field; REPLY_OK
 * or the failure reply (logged; nothing is kept). */
enum reply_id server_transaction_open(struct server_conn *c, const struct store_envelope *se,
                                      const struct smtp_envelope *env);

/* receipt.c: SPF, DKIM and DMARC of mail received on MX listeners (spf_check, dmarc_check).
 * mail: SPF, then server_limits_mail. holds: the message is to be held and checked at its end;
 * keep takes the envelope (and rcpts, malloc'd) until then; data_end checks, stores and goes
 * on to server_limits_data_end. results: the Authentication-Results value of the message ("").
 * forget: the conn closes. close: after every connection. */
enum smtp_verdict server_receipt_mail(struct server_conn *c, const struct smtp_command *cmd,
                                      struct smtp_decision *d);
bool server_receipt_holds(struct server_conn *c);
void server_receipt_keep(struct server_conn *c, const struct store_envelope *se,
                         struct store_rcpt *rcpts, const struct smtp_envelope *env);
enum smtp_verdict server_receipt_data_end(struct server_conn *c, struct smtp_decision *d);
const char *server_receipt_results(const struct server_conn *c);
void server_receipt_forget(struct server_conn *c);
void server_receipt_close(struct server *srv);
uint64_t server_now_ms(void);                        /* monotonic milliseconds */

/* signing.c: DKIM signing of submitted mail (issue "Mail authentication"). The keys are read
 * at start (before any privilege drop); a key that cannot be read stops the server. */
bool server_signing_open(struct server *srv);
void server_signing_close(struct server *srv);
/* At the start of data: whether this message is to be signed (after AUTH, keys configured). */
void server_signing_begin(struct server_conn *c);
/* Holds message bytes while signing is on; REPLY_OK or the store failure reply. */
enum reply_id server_signing_write(struct server_conn *c, const char *p, size_t n);
/* Before the commit: signs what was held (when its From: domain has a key) and writes the
 * signature and the message into the store. Failures surface at the commit (sticky). */
void server_signing_finish(struct server_conn *c);
void server_signing_forget(struct server_conn *c); /* drops what is held */

/* limits.c: plan limits, greylisting, session and command rates (issue "Limit"). Each check
 * runs after the other policy accepted; it returns the final verdict, or SMTP_PENDING and
 * resumes the session once the counters answered. d holds the accepting decision on entry. */
bool server_limits_open(struct server *srv);  /* makes srv->counters from cfg->counters */
void server_limits_close(struct server *srv); /* after every connection is closed */
enum smtp_verdict server_limits_mail(struct server_conn *c, const struct smtp_command *cmd,
                                  struct smtp_decision *d);
enum smtp_verdict server_limits_rcpt(struct server_conn *c, const struct smtp_command *cmd,
                                  struct smtp_decision *d);
/* The end of data: the plan's message size and the bytes counted now (no SIZE= at MAIL); on
 * success it commits through server_transaction_commit, else discards the message. */
enum smtp_verdict server_limits_data_end(struct server_conn *c, struct smtp_decision *d);
/* At accept: max_sessions_per_minute_per_ip. True when decided at once (*admission set);
 * false: server_conn_admit follows from the loop. */
bool server_limits_connect(struct server_conn *c, enum reply_id *admission);
/* max_commands_per_second: lets the session handle the commands the client's rate allows
 * now (smtp_server_set_command_limit); returns the milliseconds until more are allowed while
 * input waits (0: none waits). *refuse is set once input kept waiting for 10 s. */
uint64_t server_limits_command_rate(struct server_conn *c, bool *refuse);
void server_limits_forget(struct server_conn *c); /* the conn closes: cancel, free */
/* The plan of the open transaction's account, or NULL (for the metrics). */
const char *server_limits_plan(const struct server_conn *c);

/* limits_show.c: the "limits" control command (clearmta limits show [USER|IP] [--json]). */
void server_limits_register(struct net_control *ctl, struct server *srv);
/* At shutdown, after the control socket and the counters were freed: releases pending shows. */
void server_limits_show_drop(struct server *srv);

#endif
