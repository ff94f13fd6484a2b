/* policy/config.h — the configuration file (clearmta.conf(5)): embedded defaults, a loader that
 * reports every problem with file:line, and the effective settings the server runs with. */
#ifndef CLEARMTA_POLICY_CONFIG_H
#define CLEARMTA_POLICY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "limits_mta.h"

/* Bounds of configurable values that limits.h does not (yet) hold. Each guards against a typo
 * turning into a resource the server cannot honour. */
/* Each connection is a file descriptor; Linux's default fs.nr_open is 1048576. */
#define POLICY_CONNECTIONS_MAX 1048576u
/* More errors than this per session only feeds a probing client. */
#define POLICY_ERRORS_MAX 1000u
/* An hour of silence is never a live SMTP client; longer timeouts only pin memory. */
#define POLICY_TIMEOUT_MAX 3600u
/* Shutdown waits at most this long for transactions in flight. */
#define POLICY_SHUTDOWN_GRACE_MAX 3600u
/* No disk we run on is larger (1 PiB); a bigger min_free_disk is a typo that refuses all mail. */
#define POLICY_MIN_FREE_DISK_MAX (1ull << 50)
/* A config or users-file line longer than this is an error (and never a buffer overflow). */
#define POLICY_CONFIG_LINE_MAX 4096u
/* Config and users files are read whole; beyond this they are refused (about a million users). */
#define POLICY_CONFIG_FILE_MAX (64u * 1024 * 1024)
/* Listening sockets; a handful is normal. */
#define POLICY_LISTENERS_MAX 16u
#define POLICY_HTTP_PORT_DEFAULT 8025u /* the console of the embedded default (make run) */
/* http_local_users: the administrators of a host, a handful. */
#define POLICY_HTTP_LOCAL_USERS_MAX 16u
/* Problems kept for display; more are counted in policy_problems.dropped. */
#define POLICY_PROBLEMS_MAX 64u
/* Size of a buffer that holds any mailbox name, with its NUL. */
#define POLICY_MAILBOX_CAP (LIMIT_LOCAL_PART + 1)
#define POLICY_PATH_CAP 4096u
/* Failed AUTH attempts per client address within auth_fail_window before 421 4.7.0 and close:
 * enough for typing mistakes, too few for guessing. Each tracked address keeps that many
 * times, so the bound also bounds memory. */
#define POLICY_AUTH_FAIL_LIMIT_DEFAULT 5u
#define POLICY_AUTH_FAIL_LIMIT_MAX 100u
/* Seconds; a day at most: a longer memory only keeps records of long-gone clients. */
#define POLICY_AUTH_FAIL_WINDOW_DEFAULT 600u
#define POLICY_AUTH_FAIL_WINDOW_MAX 86400u

/* Static routes; a longer list belongs in a map file, not in the config. */
#define POLICY_ROUTES_MAX 1024u
/* Retry settings, seconds. The bounds keep a typo from retrying every second forever or from
 * keeping mail for a year: RFC 5321 §4.5.4.1 suggests giving up after 4-5 days. */
#define POLICY_RETRY_FIRST_DEFAULT 300u
#define POLICY_RETRY_MAX_DEFAULT 3600u
#define POLICY_QUEUE_LIFETIME_DEFAULT 432000u
#define POLICY_DELAY_WARNING_DEFAULT 14400u
#define POLICY_RETRY_INTERVAL_MAX 86400u        /* a day between attempts at most */
#define POLICY_QUEUE_LIFETIME_MAX (30u * 86400) /* thirty days */
/* Outbound timeouts: RFC 5321 §4.5.3.2's 5 minutes per command and 10 for the final dot. */
#define POLICY_DELIVERY_CONNECT_DEFAULT 30u
#define POLICY_DELIVERY_COMMAND_DEFAULT 300u
#define POLICY_DELIVERY_DATA_DEFAULT 600u
/* Messages one outbound connection carries before it says QUIT (Postfix's smtp_connection_
 * reuse_count_limit is unlimited by default; 100 spreads mail over hosts behind one name). */
#define POLICY_MESSAGES_PER_CONNECTION_DEFAULT 100u
#define POLICY_MESSAGES_PER_CONNECTION_MAX 100000u
/* Seconds an outbound connection with nothing to send stays open for the next message. */
#define POLICY_CONNECTION_IDLE_DEFAULT 5u
#define POLICY_CONNECTION_IDLE_MAX 300u
/* Smart-host sending rate: messages per period; a million per period is no limit at all. */
#define POLICY_RATE_MAX 1000000u
/* SASL user name and password of the smart host (RFC 4616 allows 255 octets each). */
#define POLICY_AUTH_FIELD_CAP 256u

/* How a next hop is secured: none: never STARTTLS; opportunistic: STARTTLS when offered, any
 * certificate; required: STARTTLS or defer, any certificate; required-verify: STARTTLS with a
 * certificate valid for the host name, or defer. */
enum policy_tls {
    POLICY_TLS_NONE,
    POLICY_TLS_OPPORTUNISTIC,
    POLICY_TLS_REQUIRED,
    POLICY_TLS_REQUIRED_VERIFY
};

/* "none", "opportunistic", "required" or "required-verify". */
const char *policy_tls_name(enum policy_tls tls);

/* A next hop as written after "smtp:" or relayhost: [HOST]:PORT looks HOST up as a host
 * (A/AAAA, or a numeric address); HOST:PORT without brackets looks up HOST's MX first (as in
 * Postfix). The port defaults to 25. */
struct policy_nexthop {
    char host[LIMIT_DOMAIN + 1]; /* lower-case host name, or a numeric IP (no brackets) */
    unsigned short port;         /* 1..65535 */
    enum policy_tls tls;         /* default: opportunistic */
    bool mx_lookup;              /* written without brackets */
};

/* route DOMAIN smtp:NEXTHOP [tls=…]: mail for DOMAIN (exactly; not its subdomains) goes there. */
struct policy_route {
    char domain[LIMIT_DOMAIN + 1]; /* lower case */
    struct policy_nexthop hop;
    unsigned line;                 /* config line, for messages */
};

/* dkim_sign DOMAIN selector=S key=FILE [algorithm=rsa-sha256|ed25519-sha256] [headers=a:b]:
 * mail whose From: domain is DOMAIN, submitted after AUTH or generated by the server, is signed
 * (RFC 6376). The key is read when the server starts; "" algorithm: the key's own. */
#define POLICY_DKIM_SIGN_MAX 256u
struct policy_dkim_sign {
    char domain[LIMIT_DOMAIN + 1]; /* lower case */
    char selector[64];             /* DNS labels, dot-separated */
    char key[POLICY_PATH_CAP];     /* as resolved against the config directory */
    char algorithm[16];            /* "", "rsa-sha256" or "ed25519-sha256" */
    char headers[512];             /* colon-separated field names; "" = the default set */
    unsigned line;
};

/* relayhost NEXTHOP [tls=…] [auth=FILE] [rate=N/PERIOD]: every remote domain without its own
 * route goes to this smart host. */
struct policy_relayhost {
    bool set;
    struct policy_nexthop hop;
    bool auth;                                /* auth= given: AUTH PLAIN/LOGIN with these */
    char auth_file[POLICY_PATH_CAP];          /* as resolved against the config directory */
    char auth_user[POLICY_AUTH_FIELD_CAP];    /* from the file's "user:password" line */
    char auth_password[POLICY_AUTH_FIELD_CAP];
    unsigned rate;        /* messages per rate_period seconds; 0: no limit */
    unsigned rate_period; /* seconds, 1..POLICY_PLAN_WINDOW_MAX (second/minute/hour/day/Ns) */
};

/* spf_check and dmarc_check (globally, or per MX listener as spf_check=… dmarc_check=…):
 * what the checks of mail received on MX listeners do; never for AUTH sessions. INHERIT is a
 * listener's "as the global directive says". */
enum policy_spf_check {
    POLICY_SPF_INHERIT,
    POLICY_SPF_OFF,   /* not checked */
    POLICY_SPF_TAG,   /* checked, recorded in Authentication-Results */
    POLICY_SPF_REJECT /* and fail → 550 5.7.23, temperror → 451 4.7.24 at MAIL FROM */
};
enum policy_dmarc_check {
    POLICY_DMARC_INHERIT,
    POLICY_DMARC_OFF,    /* not checked (nor DKIM) */
    POLICY_DMARC_TAG,    /* DKIM and DMARC checked, recorded in Authentication-Results */
    POLICY_DMARC_ENFORCE /* and p=reject → 550 5.7.26, p=quarantine → the .Junk folder */
};

enum policy_listen_kind {
    POLICY_LISTEN_MX,          /* port 25 role: no AUTH, local domains only */
    POLICY_LISTEN_SUBMISSION,  /* RFC 6409: STARTTLS + AUTH */
    POLICY_LISTEN_SUBMISSIONS  /* RFC 8314: implicit TLS */
};

/* "mx", "submission" or "submissions". */
const char *policy_listen_kind_name(enum policy_listen_kind kind);

/* What a listener offers; the defaults follow its kind, options after the address change them.
 * AUTH is offered when auth is set, a users_file is loaded, and TLS is active or
 * auth_plaintext is set: never a password in clear text unless the admin says so. */
struct policy_listener {
    enum policy_listen_kind kind;
    char host[64];       /* numeric IPv4 or IPv6 (no brackets), "" for any address */
    unsigned short port; /* 1..65535 */
    bool starttls;       /* offer STARTTLS: mx and submission; no-starttls turns it off.
                          * submissions speaks TLS from the first byte, so never */
    bool auth;           /* offer AUTH: submission and submissions; never mx; no-auth: off */
    bool auth_plaintext; /* auth-plaintext: offer AUTH before TLS too (tests, trusted networks) */
    enum policy_spf_check spf_check;     /* mx only: spf_check=…; INHERIT: the global one */
    enum policy_dmarc_check dmarc_check; /* mx only: dmarc_check=…; INHERIT: the global one */
};

enum policy_domain_kind {
    POLICY_DOMAIN_USERS,    /* listed users (and postmaster) are local, others unknown */
    POLICY_DOMAIN_CATCH_ALL /* every local part goes to catch_all */
};

/* The longest LMTP socket path: sizeof sockaddr_un.sun_path less its NUL. */
#define POLICY_LMTP_PATH_MAX 107u

/* domain NAME lmtp TARGET (RFC 2033): the domain's mail goes to an LMTP server, not Maildir.
 * TARGET is unix:PATH (resolved against the config file's directory) or [HOST]:PORT. */
struct policy_lmtp {
    bool set;
    char socket[POLICY_LMTP_PATH_MAX + 1]; /* unix:PATH; "" for TCP */
    char host[LIMIT_DOMAIN + 1];           /* [HOST]:PORT: lower-case name or numeric IP */
    unsigned short port;                   /* 1..65535 for TCP, 0 for a socket */
};

struct policy_domain {
    char name[LIMIT_DOMAIN + 1]; /* lower case; literals canonical, e.g. "[192.0.2.1]" */
    enum policy_domain_kind kind;
    char catch_all[POLICY_MAILBOX_CAP]; /* POLICY_DOMAIN_CATCH_ALL: the mailbox */
    char **users;   /* POLICY_DOMAIN_USERS: lower-case, unique, sorted by strcmp; owned.
                     * With lmtp: none means every local part goes to the LMTP server */
    size_t n_users;
    struct policy_lmtp lmtp; /* lmtp.set: delivered by LMTP (kind is USERS) */
};

/* Plans (issue "Limit"): named sets of sending limits per rolling window. */
#define POLICY_PLANS_MAX 64u
#define POLICY_PLAN_NAME_MAX 32u
/* Limits a plan holds per kind (e.g. one per hour and one per day). */
#define POLICY_PLAN_WINDOWS_MAX 4u
/* Users or networks assigned to plans by plan_user / plan_network lines. */
#define POLICY_PLAN_MEMBERS_MAX 100000u
/* Messages or recipients per window of one limit: a billion is no limit at all. */
#define POLICY_PLAN_COUNT_MAX 1000000000u
/* Bytes per window of one limit: 1 PiB, as min_free_disk. */
#define POLICY_PLAN_BYTES_MAX (1ull << 50)
/* max_messages_per_session and max_sessions_per_minute_per_ip above this are no limit. */
#define POLICY_SESSION_MESSAGES_MAX 100000u
#define POLICY_SESSIONS_PER_MINUTE_MAX 100000u
/* No SMTP client needs more; a pipelining client sends a burst counted as one read. */
#define POLICY_COMMANDS_PER_SECOND_MAX 10000u
/* Counters backend: a decision waits at most this long (milliseconds). */
#define POLICY_COUNTERS_TIMEOUT_DEFAULT 200u
#define POLICY_COUNTERS_TIMEOUT_MAX 10000u
/* Greylisting, seconds: a retry is accepted after delay; a triplet is forgotten after expire
 * (which must exceed delay, or no retry could ever pass). */
#define POLICY_GREYLIST_DELAY_DEFAULT 300u
#define POLICY_GREYLIST_DELAY_MAX 86400u
#define POLICY_GREYLIST_EXPIRE_DEFAULT 86400u
#define POLICY_GREYLIST_EXPIRE_MAX (30u * 86400)
/* The client network of a triplet: a sender's retries may come from a neighbouring address. */
#define POLICY_GREYLIST_V4_PREFIX_DEFAULT 24u
#define POLICY_GREYLIST_V6_PREFIX_DEFAULT 64u

enum policy_plan_metric {
    POLICY_PLAN_MESSAGES,   /* messages accepted (counted at MAIL, refused there) */
    POLICY_PLAN_RECIPIENTS, /* recipients accepted (counted at RCPT, extras get 452 4.5.3) */
    POLICY_PLAN_BYTES       /* message bytes (SIZE= at MAIL, else counted at the end) */
};
/* "messages", "recipients", "bytes". */
const char *policy_plan_metric_name(enum policy_plan_metric m);

/* One limit: at most `limit` units per rolling `window` seconds. */
struct policy_plan_limit {
    enum policy_plan_metric metric;
    uint64_t limit;  /* >= 1 */
    unsigned window; /* seconds, 1..POLICY_PLAN_WINDOW_MAX; hour 3600, day 86400 */
};
#define POLICY_PLAN_WINDOW_MAX (7u * 86400)

/* plan NAME messages=N/PERIOD recipients=N/PERIOD bytes=SIZE/PERIOD max-recipients=N
 *      max-message-size=SIZE over=temporary|permanent
 * PERIOD: second, minute, hour, day, or a number of seconds with "s" (e.g. 60s). */
struct policy_plan {
    char name[POLICY_PLAN_NAME_MAX + 1];       /* [a-z0-9_-], lower case */
    struct policy_plan_limit limits[3 * POLICY_PLAN_WINDOWS_MAX];
    size_t n_limits;
    unsigned max_recipients;   /* per message, 0: the global max_recipients */
    uint64_t max_message_size; /* 0: the global max_message_size */
    bool permanent;            /* over=permanent: 550 5.7.1 instead of 451 4.7.1 */
    unsigned line;
};

/* plan_user USER PLAN: a submission user's plan (USER as in the users file, lower case). */
struct policy_plan_user {
    char user[LIMIT_PATH + 1];
    size_t plan; /* index in plans */
};

/* plan_network CIDR PLAN: MX clients from that network are on the plan (longest prefix). */
struct policy_plan_network {
    int family;              /* AF_INET or AF_INET6 */
    unsigned char addr[16];  /* network byte order, host bits zero */
    unsigned prefix;         /* 0..32 or 0..128 */
    size_t plan;
};

/* counters memory | counters redis HOST:PORT [fail=open|closed] [timeout=MS] [prefix=P] */
enum policy_counters_kind { POLICY_COUNTERS_MEMORY, POLICY_COUNTERS_REDIS };
struct policy_counters_config {
    enum policy_counters_kind kind;   /* default memory */
    char server[64];                  /* REDIS: "127.0.0.1:6379" or "[::1]:6379" */
    bool fail_closed;                 /* Redis unreachable: refuse with 451 4.7.1 (closed) or
                                       * allow (open, the default) */
    unsigned timeout_ms;              /* per decision, default 200, 1..10000 */
    char prefix[64];                  /* key prefix, default "clearmta:" */
};

/* greylisting on [delay=SECONDS] [expire=SECONDS] [networks=V4/V6] ; off by default */
struct policy_greylist_config {
    bool on;
    unsigned delay;      /* seconds before a retry is accepted, default 300 */
    unsigned expire;     /* seconds a triplet is remembered after its last attempt, default
                          * 86400 (also how long a passed triplet stays passed) */
    unsigned v4_prefix;  /* client network of the triplet: IPv4 /24 by default (8..32) */
    unsigned v6_prefix;  /* IPv6 /64 by default (16..128) */
};

/* stress on [high=PERCENT] [low=PERCENT] [timeout=SECONDS] [per_ip=N] | stress off. Stress
 * mode begins when the connections reach high % of max_connections and ends at low %. */
#define POLICY_STRESS_HIGH_DEFAULT 80u
#define POLICY_STRESS_LOW_DEFAULT 60u
/* Seconds a client may stay silent in stress mode (Postfix uses 10 s in its stress mode too). */
#define POLICY_STRESS_TIMEOUT_DEFAULT 10u
/* Connections one address may hold in stress mode: a busy relay needs a few, a flood many. */
#define POLICY_STRESS_PER_IP_DEFAULT 10u
struct policy_stress_config {
    bool on;          /* default on */
    unsigned high;    /* percent of max_connections, 1..100 */
    unsigned low;     /* percent, below high */
    unsigned timeout; /* seconds, 1..POLICY_TIMEOUT_MAX; replaces timeout_command */
    unsigned per_ip;  /* 1..POLICY_CONNECTIONS_MAX; max_connections_per_ip in stress */
};
/* session_memory SIZE: the total of session buffers; above this, 421 4.3.2 at connect and
 * 452 4.3.1 at DATA. The default fits 10000 idle sessions and some hundreds receiving. */
#define POLICY_SESSION_MEMORY_DEFAULT (512ull << 20)
#define POLICY_SESSION_MEMORY_MIN (1ull << 20)
#define POLICY_SESSION_MEMORY_MAX (1ull << 40)
/* A TLS handshake takes a round trip or two; a client silent for this long mid-handshake only
 * holds a descriptor and OpenSSL's buffers. */
#define POLICY_TLS_HANDSHAKE_TIMEOUT_DEFAULT 30u
/* TLS handshakes begun per client address per second (IPv6 per /64): each costs the server a
 * key exchange and a signature, which a flood of them turns into a CPU attack. */
#define POLICY_TLS_HANDSHAKES_PER_SECOND_DEFAULT 10u
#define POLICY_TLS_HANDSHAKES_PER_SECOND_MAX 100000u

struct policy_users; /* policy/users.h */

/* A user name as useradd(8) accepts it: 32 bytes, letters, digits, '_', '-', '.'. */
#define POLICY_RUN_USER_CAP 33
#define POLICY_DEFAULT_RUN_USER "clearmta"

struct policy_config {
    char hostname[256];
    struct policy_listener listeners[POLICY_LISTENERS_MAX];
    size_t n_listeners;
    /* listen http ADDR:PORT: the web console and /metrics (server/http.c); port 0 when none.
     * Clients must show the token of http_password_file ("": they are refused) unless they
     * are on loopback and their socket belongs to root, the server's user or one of
     * local_uids (http_local_users, resolved when the file is read); http_name is a host name
     * accepted in Host: besides the address ("": none). */
    struct policy_http {
        char host[64];
        unsigned short port;
        char password_file[POLICY_PATH_CAP];
        char name[256];
        uid_t local_uids[POLICY_HTTP_LOCAL_USERS_MAX];
        size_t n_local_uids;
    } http;
    char data_dir[POLICY_PATH_CAP], queue_dir[POLICY_PATH_CAP], maildir_root[POLICY_PATH_CAP];
    struct policy_domain *domains; /* sorted by name, unique; owned */
    size_t n_domains;
    uint64_t max_message_size;
    unsigned max_recipients, max_connections, max_connections_per_ip, max_errors;
    unsigned max_recipients_overshoot; /* RCPTs past max_recipients before each is an error */
    unsigned max_hops; /* Received: fields over this: 554 5.4.6 (loop detection) */
    unsigned timeout_command, timeout_data, shutdown_grace; /* seconds */
    uint64_t min_free_disk;
    bool bare_lf_normalize, soft_bounce, log_syslog;
    char log_file[POLICY_PATH_CAP]; /* log_file PATH: append the log there; "" = not set */
    bool sync_fdatasync; /* sync_mode fdatasync: fdatasync per queue file, not one syncfs */
    /* TLS certificate chain and key (PEM), resolved against the config file's directory; both
     * "" when not set: the server then generates a self-signed pair in data_dir. */
    char tls_cert[POLICY_PATH_CAP], tls_key[POLICY_PATH_CAP];
    /* user NAME: the account the server drops to when started as root; "" when not set
     * (then POLICY_DEFAULT_RUN_USER as root, and no change for anyone else). */
    char run_user[POLICY_RUN_USER_CAP];
    char users_file[POLICY_PATH_CAP]; /* as resolved; "" when not set */
    struct policy_users *users;       /* loaded from users_file; NULL without one; owned */
    bool sender_ownership;            /* MAIL FROM must be owned by the AUTH user (553 5.7.1) */
    unsigned auth_fail_limit, auth_fail_window; /* failures per client address per seconds */
    struct policy_route *routes; /* sorted by domain, unique; owned */
    size_t n_routes;
    struct policy_relayhost relayhost;
    struct policy_dkim_sign *dkim_sign; /* owned; domains unique */
    size_t n_dkim_sign;
    enum policy_spf_check spf_check;     /* default OFF: no DNS unless configured */
    enum policy_dmarc_check dmarc_check; /* default OFF */
    /* DNS server for MX look-ups, "IPv4:PORT" or "[IPv6]:PORT"; "" uses /etc/resolv.conf. */
    char resolver[64];
    /* Seconds: first retry, the doubling's cap, give-up age, delay-warning age (0: none). */
    unsigned retry_first, retry_max, queue_lifetime, delay_warning;
    /* Outbound SMTP timeouts, seconds (RFC 5321 §4.5.3.2): connecting and the greeting, each
     * command's reply, the whole message data up to the reply to its final dot. */
    unsigned delivery_timeout_connect, delivery_timeout_command, delivery_timeout_data;
    /* Connection reuse: messages per outbound connection (0: unlimited), and seconds an idle
     * connection waits for the next message to its destination (0: QUIT at once). */
    unsigned max_messages_per_connection, connection_idle_timeout;
    /* The delivery agent's outbound connections open at once, whatever the destinations;
     * 0 (the default): an eighth of the descriptor limit (server/capacity.c). */
    unsigned max_outbound_connections;
    /* Limits. */
    struct policy_plan *plans;                 /* owned; n_plans entries, names unique */
    size_t n_plans;
    struct policy_plan_user *plan_users;       /* owned; sorted by user */
    size_t n_plan_users;
    struct policy_plan_network *plan_networks; /* owned */
    size_t n_plan_networks;
    char default_plan[POLICY_PLAN_NAME_MAX + 1]; /* default_plan NAME: for submission users
                                                  * without plan_user; "" = none */
    struct policy_counters_config counters;
    struct policy_greylist_config greylist;
    unsigned max_messages_per_session;         /* 0 = unlimited; then 421 4.7.0 */
    unsigned max_sessions_per_minute_per_ip;   /* 0 = unlimited; over: 421 4.7.0 at connect */
    unsigned max_commands_per_second;          /* per session, 0 = unlimited; over: delayed,
                                                * then 421 4.7.0 when it persists */
    struct policy_stress_config stress;        /* config_capacity.c */
    uint64_t session_memory;                   /* bytes; see POLICY_SESSION_MEMORY_DEFAULT */
    unsigned tls_handshake_timeout;            /* seconds */
    unsigned tls_handshakes_per_second;        /* per address; 0 = unlimited */
};

struct policy_problem {
    char file[256];  /* config file or users file, as named */
    unsigned line;   /* 1-based; 0 when the problem concerns the whole file */
    char message[256];
};

struct policy_problems {
    struct policy_problem items[POLICY_PROBLEMS_MAX];
    size_t count;   /* items used */
    size_t dropped; /* problems found beyond POLICY_PROBLEMS_MAX */
};

/* Fills c with the embedded defaults (DESIGN.md "Defaults"). Returns false only when memory for
 * the default domain cannot be allocated; c is then still safe to pass to policy_config_free. */
bool policy_config_defaults(struct policy_config *c);

/* Reads the file at path and applies it on top of the defaults; c need not be initialised.
 * Returns the number of problems found (0: the config is usable); the first
 * POLICY_PROBLEMS_MAX are stored in p (may be NULL) in file order. Every problem in the file is
 * reported, not just the first. Whatever the result, c must be released with policy_config_free. */
size_t policy_config_load(const char *path, struct policy_config *c, struct policy_problems *p);

/* As policy_config_load, for a local client (sendmail, mailq) that may run as any user: the
 * files that hold secrets, the AUTH users_file and relayhost auth= files, are never opened
 * (users stays NULL, the relayhost has no credentials); everything else is read and checked
 * as the server does. Such a config is never one to serve with. */
size_t policy_config_load_client(const char *path, struct policy_config *c,
                                 struct policy_problems *p);

/* As policy_config_load, from memory: name labels problems and anchors relative users-file
 * paths (its directory part). data need not be NUL-terminated. */
size_t policy_config_load_buffer(const char *name, const char *data, size_t len,
                                 struct policy_config *c, struct policy_problems *p);

/* The static route for domain (any case), or NULL. */
const struct policy_route *policy_route_find(const struct policy_config *c, const char *domain);

/* The plan of an authenticated submission user (plan_user, else default_plan), or NULL. */
const struct policy_plan *policy_plan_for_user(const struct policy_config *c, const char *user);

/* The plan of an MX client address (plan_network, longest prefix), or NULL. sa is a
 * struct sockaddr_in or sockaddr_in6 (IPv4-mapped IPv6 counts as IPv4). */
struct sockaddr;
const struct policy_plan *policy_plan_for_address(const struct policy_config *c,
                                                  const struct sockaddr *sa);

/* As policy_plan_for_address, but the matching plan_network line itself (its plan is
 * c->plans[n->plan]), for callers that key counters by the network: every client of one
 * plan_network shares one count. NULL when no network holds the address. */
const struct policy_plan_network *policy_plan_network_for_address(const struct policy_config *c,
                                                                  const struct sockaddr *sa);

/* Releases what c owns and leaves it empty (the smart-host password is wiped). Safe on a
 * zeroed config and twice. */
void policy_config_free(struct policy_config *c);

/* The spf_check and dmarc_check that apply to mail received on listener l: its own option,
 * else the global directive; always OFF for a submission listener. */
enum policy_spf_check policy_listener_spf_check(const struct policy_config *c,
                                                const struct policy_listener *l);
enum policy_dmarc_check policy_listener_dmarc_check(const struct policy_config *c,
                                                    const struct policy_listener *l);
/* "off", "tag", "reject"/"enforce", "inherit". */
const char *policy_spf_check_name(enum policy_spf_check v);
const char *policy_dmarc_check_name(enum policy_dmarc_check v);

#endif
