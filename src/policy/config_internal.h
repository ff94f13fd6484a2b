/* policy/config_internal.h — internal to policy/config*.c: the loader they read lines into, the
 * reading helpers config.c shares, and the directive families its table dispatches to
 * (config_listen.c, _domains.c, _delivery.c, _limits.c). Not for other modules. */
#ifndef CLEARMTA_POLICY_CONFIG_INTERNAL_H
#define CLEARMTA_POLICY_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"
#include "policy/file_mode.h"

/* A domain line as read, before lines for the same domain are merged (config.c). */
struct pending_domain {
    struct policy_domain d;
    size_t cap_users;
    unsigned line;   /* 0 for the embedded default */
};

/* plan_user and plan_network lines as read: plans may be declared after the lines that name
 * them, so the name is resolved once the whole file is read (config_limits.c). */
struct pending_plan_user {
    struct policy_plan_user m;
    char plan[POLICY_PLAN_NAME_MAX + 1];
    unsigned line;
};
struct pending_plan_network {
    struct policy_plan_network m;
    char plan[POLICY_PLAN_NAME_MAX + 1];
    unsigned line;
};

struct pending_limits {
    struct pending_plan_user *users;
    size_t n_users, cap_users;
    struct pending_plan_network *networks;
    size_t n_networks, cap_networks;
    unsigned default_plan_line;
};

struct loader {
    struct policy_config *c;
    struct policy_problems *p;
    size_t problems;
    const char *config_name; /* anchors relative users-file paths */
    const char *file;        /* where the line being read comes from */
    unsigned line;
    unsigned anchor;         /* config line a problem belongs to (users files: the domain line) */
    unsigned anchors[POLICY_PROBLEMS_MAX];
    unsigned *set_line;      /* per directive: line it was set on, 0 if not yet */
    unsigned listen_line[POLICY_LISTENERS_MAX];
    bool listen_seen;
    struct pending_domain *domains;
    size_t n_domains, cap_domains;
    struct pending_limits limits;
    bool client;             /* policy_config_load_client: no file holding a secret is opened */
};

/* "N/PERIOD" (bytes: SIZE/PERIOD, SIZE with k/M/G), N in 1..max; PERIOD "second", "minute",
 * "hour", "day" or "Ns", 1 s to POLICY_PLAN_WINDOW_MAX (config_limits.c). */
bool policy_conf_rate(const char *v, bool bytes, uint64_t max, uint64_t *n, unsigned *window);

/* Reports a problem at ld->file:ld->line; kept in config-line order by ld->anchor. */
__attribute__((format(printf, 2, 3))) void policy_conf_problem(struct loader *ld,
                                                               const char *fmt, ...);
void policy_conf_oom(struct loader *ld);

/* A token echoed in a message: truncated, bytes >= 0x80 escaped so no terminal sees them raw. */
struct policy_conf_shown {
    char s[72];
};
struct policy_conf_shown policy_conf_show(const char *tok);

/* Decimal digits, optionally (suffix) one of k, M, G (binary multiples, either case).
 * Saturates at UINT64_MAX so an overlong number reads as "above its bound". */
bool policy_conf_number(const char *s, bool suffix, uint64_t *out);

/* ASCII letters to lower case, in place. */
void policy_conf_lower(char *s);

/* "IPv4", "IPv4:PORT", "IPv6", "[IPv6]" or "[IPv6]:PORT" (port 1-65535, default_port when
 * absent) into "IP:PORT" or "[IPv6]:PORT" with the address in its inet_ntop form; false when
 * text is none of these or out is too small. */
bool policy_conf_ip_port(const char *text, unsigned default_port, char *out, size_t cap);

struct cursor {
    char *pos;
};

/* Next whitespace-separated token of a line, NUL-terminated in place; NULL at the end of the
 * line or at a token starting with '#', which begins a comment. */
char *policy_conf_token(struct cursor *cur);

/* A user name as useradd(8) accepts it: 1 to POLICY_RUN_USER_CAP - 1 letters, digits, '_', '-'
 * and '.', not starting with '-'. */
bool policy_conf_user_name_valid(const char *s);

/* RFC 1123 §2.1 host name: LDH labels of 1..63 octets, not starting or ending with '-'. */
bool policy_conf_hostname_valid(const char *s);

/* A numeric IPv4 or IPv6 address into its inet_ntop form; false when it is neither. */
bool policy_conf_canonical_ip(const char *s, char *out, size_t cap);

/* Reads a whole regular file of at most POLICY_CONFIG_FILE_MAX bytes into a buffer the caller
 * frees, refusing it when its mode has a forbidden bit (policy/file_mode.h; 0: any mode). On
 * failure returns NULL with the reason in err; errno goes no further. */
char *policy_conf_read_file(const char *path, mode_t forbidden, size_t *len, char *err,
                            size_t errcap);

/* A relative path (users files, credentials, certificates) is relative to the directory of the
 * config file; false when the result does not fit in cap bytes. */
bool policy_conf_resolve_path(const char *config_name, const char *path, char *out, size_t cap);

/* Calls fn with each line of data (NUL-terminated, without its LF or CRLF), tracking file and
 * line number for problems; overlong or binary lines are reported and skipped. */
typedef void policy_conf_line_fn(struct loader *ld, char *line, void *arg);
void policy_conf_each_line(struct loader *ld, const char *file, const char *data, size_t len,
                           policy_conf_line_fn *fn, void *arg);

/* The config line a directive was set on, 0 if it was not (for checks after the whole file). */
unsigned policy_conf_directive_line(const struct loader *ld, const char *keyword);

/* The directive table's entries (config.c); a family's directive has this signature. */
struct directive;

/* The single value of a directive that takes one; reports and returns NULL otherwise. */
char *policy_conf_one_value(struct loader *ld, const struct directive *d, struct cursor *cur);

/* A file the config names (tls_cert, tls_key, users_file) into the directive's field, resolved
 * like users files. */
void policy_conf_apply_file(struct loader *ld, const struct directive *d, struct cursor *cur);

/* The listen directive (config_listen.c). */
/* http_name NAME: a host name the console accepts in Host: (config_listen.c). */
void policy_listen_http_name(struct loader *ld, const struct directive *d, struct cursor *cur);
/* http_local_users NAME...: users of this host whose loopback clients need no token, resolved
 * to uids now (an unknown name is a problem) (config_listen.c). */
void policy_listen_http_local_users(struct loader *ld, const struct directive *d,
                                    struct cursor *cur);
void policy_listen_apply(struct loader *ld, const struct directive *d, struct cursor *cur);

/* What a listener of l->kind offers before any option (also for the embedded listeners). */
void policy_listen_kind_defaults(struct policy_listener *l);

/* After the whole file: tls_cert and tls_key are set together or not at all. */
void policy_listen_finish_tls(struct loader *ld);

/* The domain and users_file directives (config_domains.c). */
void policy_domains_domain(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_domains_users_file(struct loader *ld, const struct directive *d, struct cursor *cur);

/* Hands c's (default) domains to the loader as line-0 entries, so config lines can replace
 * them, then frees the rest of c with policy_config_free; false when memory ran out. */
bool policy_domains_adopt_defaults(struct loader *ld);

/* After the whole file: merges the domain lines into c's sorted domain table, reporting
 * conflicting lines. Leaves ld->domains for the caller to free. */
void policy_domains_finish(struct loader *ld);

/* Releases c's domains and their users (part of policy_config_free). */
void policy_domains_free(struct policy_config *c);

/* The route, relayhost and resolver directives (config_delivery.c). */
/* config_auth.c: dkim_sign; spf_check and dmarc_check (the directives, and the listener
 * options spf_check=… dmarc_check=…, false when reported). */
void policy_auth_dkim_sign(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_auth_spf_check(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_auth_dmarc_check(struct loader *ld, const struct directive *d, struct cursor *cur);
bool policy_auth_check_option(struct loader *ld, struct policy_listener *l, const char *opt);

void policy_delivery_route(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_delivery_relayhost(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_delivery_resolver(struct loader *ld, const struct directive *d, struct cursor *cur);

/* After the whole file: sorts the routes for policy_route_find and checks that the retry
 * settings make a schedule. */
void policy_delivery_finish(struct loader *ld);

/* The Limit directives (config_limits.c). */
void policy_limits_plan(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_limits_plan_user(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_limits_plan_network(struct loader *ld, const struct directive *d,
                                struct cursor *cur);
void policy_limits_default_plan(struct loader *ld, const struct directive *d,
                                struct cursor *cur);
void policy_limits_counters(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_limits_greylisting(struct loader *ld, const struct directive *d,
                               struct cursor *cur);

/* Option words of one directive line (config_limits.c): the value of "key=value" when opt has
 * that key (else NULL); once reports a key given twice on a line (what: e.g. "plan trial");
 * number_option parses v in min..max (size: k, M, G allowed) or reports it. */
const char *policy_conf_option_value(const char *opt, const char *key);
bool policy_conf_option_once(struct loader *ld, const char *what, const char *key,
                             unsigned *seen, unsigned bit);
bool policy_conf_number_option(struct loader *ld, const char *what, const char *key,
                               const char *v, bool size, uint64_t min, uint64_t max,
                               uint64_t *out);

/* "NAME off" or "NAME on [OPTION...]" (usage: the options, for the problem text). True for on
 * with every option read through fn into ctx; false for off (*on set false) or a problem
 * (reported; each bad option is). */
typedef bool policy_conf_option_fn(struct loader *ld, const char *opt, unsigned *seen,
                                   void *ctx);
bool policy_conf_switch(struct loader *ld, struct cursor *cur, const char *what,
                        const char *usage, policy_conf_option_fn *fn, void *ctx, bool *on);

/* The capacity directive stress (config_capacity.c) and its defaults. */
void policy_capacity_stress(struct loader *ld, const struct directive *d, struct cursor *cur);
void policy_capacity_defaults(struct policy_config *c);

/* The embedded defaults of the Limit settings: no plans, counters in memory, greylisting off. */
void policy_limits_defaults(struct policy_config *c);

/* After the whole file: resolves plan names, sorts and checks the members, checks plans
 * against the global limits; reports problems at their lines. Frees ld->limits. */
void policy_limits_finish(struct loader *ld);

/* Releases the plans and members c owns (part of policy_config_free). */
void policy_limits_free(struct policy_config *c);

#endif
