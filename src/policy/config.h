/* policy/config.h — the configuration file (clearmta.conf(5)): embedded defaults, a loader that
 * reports every problem with file:line, and the effective settings the server runs with. */
#ifndef CLEARMTA_POLICY_CONFIG_H
#define CLEARMTA_POLICY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
};

enum policy_domain_kind {
    POLICY_DOMAIN_USERS,    /* listed users (and postmaster) are local, others unknown */
    POLICY_DOMAIN_CATCH_ALL /* every local part goes to catch_all */
};

struct policy_domain {
    char name[LIMIT_DOMAIN + 1]; /* lower case; literals canonical, e.g. "[192.0.2.1]" */
    enum policy_domain_kind kind;
    char catch_all[POLICY_MAILBOX_CAP]; /* POLICY_DOMAIN_CATCH_ALL: the mailbox */
    char **users;   /* POLICY_DOMAIN_USERS: lower-case, unique, sorted by strcmp; owned */
    size_t n_users;
};

struct policy_users; /* policy/users.h */

struct policy_config {
    char hostname[256];
    struct policy_listener listeners[POLICY_LISTENERS_MAX];
    size_t n_listeners;
    char data_dir[POLICY_PATH_CAP], queue_dir[POLICY_PATH_CAP], maildir_root[POLICY_PATH_CAP];
    struct policy_domain *domains; /* sorted by name, unique; owned */
    size_t n_domains;
    uint64_t max_message_size;
    unsigned max_recipients, max_connections, max_connections_per_ip, max_errors;
    unsigned timeout_command, timeout_data, shutdown_grace; /* seconds */
    uint64_t min_free_disk;
    bool bare_lf_normalize, soft_bounce, log_syslog;
    /* TLS certificate chain and key (PEM), resolved against the config file's directory; both
     * "" when not set: the server then generates a self-signed pair in data_dir. */
    char tls_cert[POLICY_PATH_CAP], tls_key[POLICY_PATH_CAP];
    char users_file[POLICY_PATH_CAP]; /* as resolved; "" when not set */
    struct policy_users *users;       /* loaded from users_file; NULL without one; owned */
    bool sender_ownership;            /* MAIL FROM must be owned by the AUTH user (553 5.7.1) */
    unsigned auth_fail_limit, auth_fail_window; /* failures per client address per seconds */
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

/* As policy_config_load, from memory: name labels problems and anchors relative users-file
 * paths (its directory part). data need not be NUL-terminated. */
size_t policy_config_load_buffer(const char *name, const char *data, size_t len,
                                 struct policy_config *c, struct policy_problems *p);

/* Releases what c owns and leaves it empty. Safe on a zeroed config and twice. */
void policy_config_free(struct policy_config *c);

#endif
