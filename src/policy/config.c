/* policy/config.c — clearmta.conf(5) loader core: embedded defaults, lines and tokens, the
 * directive table and its dispatch, problems with file:line. The directive families are read by
 * config_listen.c, config_domains.c, config_delivery.c and config_limits.c. */
#include "policy/config.h"
#include "policy/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/users.h"

struct policy_conf_shown policy_conf_show(const char *tok)
{
    struct policy_conf_shown out;
    size_t n = 0;
    for (; *tok != '\0' && n + 5 < sizeof out.s - 3; tok++) {
        unsigned char ch = (unsigned char)*tok;
        if (ch >= 0x80)
            n += (size_t)snprintf(out.s + n, sizeof out.s - n, "\\x%02x", ch);
        else
            out.s[n++] = (char)ch;
    }
    if (*tok != '\0') {
        memcpy(out.s + n, "...", 3);
        n += 3;
    }
    out.s[n] = '\0';
    return out;
}

/* The slot for the next problem, kept in config-line order (anchor) even for problems found
 * after reading, such as conflicting domain lines; NULL when it falls beyond the kept ones. */
static struct policy_problem *problem_slot(struct loader *ld)
{
    struct policy_problems *p = ld->p;
    size_t at = p->count;
    while (at > 0 && ld->anchors[at - 1] > ld->anchor)
        at--;
    if (at == POLICY_PROBLEMS_MAX) {
        p->dropped++;
        return NULL;
    }
    if (p->count == POLICY_PROBLEMS_MAX)
        p->dropped++; /* the last kept problem makes room */
    else
        p->count++;
    size_t move = p->count - 1 - at;
    memmove(&p->items[at + 1], &p->items[at], move * sizeof p->items[0]);
    memmove(&ld->anchors[at + 1], &ld->anchors[at], move * sizeof ld->anchors[0]);
    ld->anchors[at] = ld->anchor;
    return &p->items[at];
}

void policy_conf_problem(struct loader *ld, const char *fmt, ...)
{
    ld->problems++;
    struct policy_problem *pr = ld->p != NULL ? problem_slot(ld) : NULL;
    if (pr == NULL)
        return;
    pr->line = ld->line;
    size_t flen = strlen(ld->file);
    if (flen >= sizeof pr->file)
        flen = sizeof pr->file - 1; /* a path that long is still recognisable by its start */
    memcpy(pr->file, ld->file, flen);
    pr->file[flen] = '\0';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(pr->message, sizeof pr->message, fmt, ap);
    va_end(ap);
    if (n < 0)
        memcpy(pr->message, "(unprintable message)", sizeof "(unprintable message)");
    else if ((size_t)n >= sizeof pr->message)
        memcpy(pr->message + sizeof pr->message - 4, "...", 4);
}

void policy_conf_oom(struct loader *ld)
{
    policy_conf_problem(ld, "out of memory");
}

/* ---- values ---- */

bool policy_conf_number(const char *s, bool suffix, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if (s[0] < '0' || s[0] > '9')
        return false;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned digit = (unsigned)(s[i] - '0');
        v = v > (UINT64_MAX - digit) / 10 ? UINT64_MAX : v * 10 + digit;
    }
    unsigned shift = 0;
    if (suffix && s[i] != '\0') {
        switch (s[i]) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return false;
        }
        i++;
    }
    if (s[i] != '\0')
        return false;
    *out = v > (UINT64_MAX >> shift) ? UINT64_MAX : v << shift;
    return true;
}

bool policy_conf_hostname_valid(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || (ch == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

void policy_conf_lower(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

bool policy_conf_canonical_ip(const char *s, char *out, size_t cap)
{
    unsigned char bin[16];
    int af = strchr(s, ':') != NULL ? AF_INET6 : AF_INET;
    return inet_pton(af, s, bin) == 1 && inet_ntop(af, bin, out, (socklen_t)cap) != NULL;
}

bool policy_conf_ip_port(const char *text, unsigned default_port, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN], s[72];
    uint64_t port = default_port;
    size_t len = strlen(text);
    if (len >= sizeof s)
        return false;
    memcpy(s, text, len + 1);
    char *host = s, *colon = NULL;
    bool ok = true;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        ok = close != NULL && (close[1] == '\0' || close[1] == ':');
        if (ok) {
            *close = '\0';
            host = s + 1;
            colon = close[1] == ':' ? close + 1 : NULL;
            ok = strchr(host, ':') != NULL;
        }
    } else if (strchr(s, ':') == strrchr(s, ':')) {
        colon = strchr(s, ':'); /* one colon: IPv4:PORT; more: a bare IPv6 address */
    }
    if (ok && colon != NULL) {
        *colon = '\0';
        ok = policy_conf_number(colon + 1, false, &port) && port >= 1 && port <= 65535;
    }
    if (!ok || !policy_conf_canonical_ip(host, ip, sizeof ip))
        return false;
    bool v6 = strchr(ip, ':') != NULL;
    int n = snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", ip, v6 ? "]" : "", (unsigned)port);
    return n >= 0 && (size_t)n < cap;
}

/* ---- tokens ---- */

char *policy_conf_token(struct cursor *cur)
{
    char *s = cur->pos;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '#')
        *s = '\0';
    if (*s == '\0') {
        cur->pos = s;
        return NULL;
    }
    char *start = s;
    while (*s != '\0' && *s != ' ' && *s != '\t')
        s++;
    if (*s != '\0')
        *s++ = '\0';
    cur->pos = s;
    return start;
}

/* ---- directives ---- */

typedef void apply_fn(struct loader *ld, const struct directive *d, struct cursor *cur);

struct directive {
    const char *keyword;
    apply_fn *apply;
    bool repeatable;
    size_t offset;         /* field in struct policy_config */
    bool size;             /* number: uint64_t field, k/M/G allowed (else unsigned) */
    uint64_t min, max;     /* number bounds */
    const char *bound;     /* name of the max bound, for messages */
    const char *words[2];  /* choice: the words for false and true (true NULL: one word) */
};

#define FIELD(name) offsetof(struct policy_config, name)
#define NO_FIELD ((size_t)-1)

static void *field(struct loader *ld, const struct directive *d)
{
    return (char *)ld->c + d->offset;
}

char *policy_conf_one_value(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_token(cur);
    if (v == NULL || policy_conf_token(cur) != NULL) {
        policy_conf_problem(ld, "%s takes exactly one value", d->keyword);
        return NULL;
    }
    return v;
}

static void apply_number(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_one_value(ld, d, cur);
    uint64_t n;
    if (v == NULL)
        return;
    if (!policy_conf_number(v, d->size, &n)) {
        policy_conf_problem(ld, "%s: '%s' is not a number%s", d->keyword, policy_conf_show(v).s,
                d->size ? " (digits, optionally followed by k, M or G)" : "");
    } else if (n < d->min) {
        policy_conf_problem(ld, "%s must be at least %llu", d->keyword, (unsigned long long)d->min);
    } else if (n > d->max) {
        policy_conf_problem(ld, "%s %s is above its bound %llu (%s)", d->keyword,
                            policy_conf_show(v).s, (unsigned long long)d->max, d->bound);
    } else if (d->size) {
        *(uint64_t *)field(ld, d) = n;
    } else {
        *(unsigned *)field(ld, d) = (unsigned)n;
    }
}

static void apply_choice(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_one_value(ld, d, cur);
    if (v == NULL)
        return;
    bool is_true = d->words[1] != NULL && strcmp(v, d->words[1]) == 0;
    if (!is_true && strcmp(v, d->words[0]) != 0) {
        if (d->words[1] != NULL)
            policy_conf_problem(ld, "%s takes '%s' or '%s', not '%s'", d->keyword, d->words[0],
                                d->words[1], policy_conf_show(v).s);
        else
            policy_conf_problem(ld, "%s takes only '%s', not '%s'", d->keyword, d->words[0],
                    policy_conf_show(v).s);
        return;
    }
    if (d->offset != NO_FIELD)
        *(bool *)field(ld, d) = is_true;
}

static void apply_path(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_one_value(ld, d, cur);
    if (v == NULL)
        return;
    size_t len = strlen(v);
    if (len >= POLICY_PATH_CAP) {
        policy_conf_problem(ld, "%s is longer than %u bytes", d->keyword, POLICY_PATH_CAP - 1);
        return;
    }
    memcpy(field(ld, d), v, len + 1);
}

static void apply_hostname(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_one_value(ld, d, cur);
    if (v == NULL)
        return;
    if (!policy_conf_hostname_valid(v)) {
        policy_conf_problem(ld,
                "hostname '%s' is not a valid host name (letters, digits, '-', '.')",
                policy_conf_show(v).s);
        return;
    }
    memcpy(ld->c->hostname, v, strlen(v) + 1);
}

bool policy_conf_user_name_valid(const char *v)
{
    size_t n = strlen(v);
    bool ok = n > 0 && n < POLICY_RUN_USER_CAP && v[0] != '-';
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
             (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '-' || v[i] == '.';
    return ok;
}

/* user NAME: checked here so that a typo is a config problem, not a failed getpwnam. */
static void apply_user(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_one_value(ld, d, cur);
    if (v == NULL)
        return;
    if (!policy_conf_user_name_valid(v)) {
        policy_conf_problem(ld, "user '%s' is not a user name (at most %u letters, digits, "
                            "'_', '-', '.')", policy_conf_show(v).s, POLICY_RUN_USER_CAP - 1);
        return;
    }
    memcpy(ld->c->run_user, v, strlen(v) + 1);
}

/* ---- files ---- */

char *policy_conf_read_file(const char *path, mode_t forbidden, size_t *len, char *err,
                            size_t errcap)
{
    /* O_NONBLOCK: opening a FIFO must not hang the loader; regular files ignore it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    char *buf = NULL;
    struct stat st;
    if (fd < 0) {
        snprintf(err, errcap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(err, errcap, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "not a regular file");
        goto fail;
    }
    if (!policy_file_mode_ok(path, st.st_mode, forbidden, err, errcap))
        goto fail;
    if (st.st_size > (off_t)POLICY_CONFIG_FILE_MAX) {
        snprintf(err, errcap, "larger than %u bytes", POLICY_CONFIG_FILE_MAX);
        goto fail;
    }
    size_t want = (size_t)st.st_size, got = 0;
    buf = malloc(want + 1);
    if (buf == NULL) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errcap, "cannot read: %s", strerror(errno));
            goto fail;
        }
        if (n == 0)
            break; /* the file shrank while we read: take what is there */
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

bool policy_conf_resolve_path(const char *config_name, const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(config_name, '/');
    size_t dir = (path[0] == '/' || slash == NULL) ? 0 : (size_t)(slash - config_name) + 1;
    size_t plen = strlen(path);
    if (dir + plen >= cap)
        return false;
    memcpy(out, config_name, dir);
    memcpy(out + dir, path, plen + 1);
    return true;
}

void policy_conf_apply_file(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = policy_conf_one_value(ld, d, cur);
    if (v == NULL)
        return;
    if (!policy_conf_resolve_path(ld->config_name, v, field(ld, d), POLICY_PATH_CAP)) {
        policy_conf_problem(ld, "%s: path is longer than %u bytes", d->keyword,
                POLICY_PATH_CAP - 1);
        *(char *)field(ld, d) = '\0';
    }
}

static const struct directive directives[] = {
    {.keyword = "hostname", .apply = apply_hostname},
    {.keyword = "listen", .apply = policy_listen_apply, .repeatable = true},
    {.keyword = "http_password_file", .apply = policy_conf_apply_file,
     .offset = FIELD(http.password_file)},
    {.keyword = "http_name", .apply = policy_listen_http_name},
    {.keyword = "http_local_users", .apply = policy_listen_http_local_users},
    {.keyword = "user", .apply = apply_user},
    {.keyword = "data_dir", .apply = apply_path, .offset = FIELD(data_dir)},
    {.keyword = "queue_dir", .apply = apply_path, .offset = FIELD(queue_dir)},
    {.keyword = "maildir_root", .apply = apply_path, .offset = FIELD(maildir_root)},
    {.keyword = "domain", .apply = policy_domains_domain, .repeatable = true},
    {.keyword = "max_message_size", .apply = apply_number, .offset = FIELD(max_message_size),
     .size = true, .min = 1, .max = LIMIT_MESSAGE_SIZE_MAX, .bound = "LIMIT_MESSAGE_SIZE_MAX"},
    {.keyword = "max_recipients", .apply = apply_number, .offset = FIELD(max_recipients),
     .min = 1, .max = LIMIT_RECIPIENTS_MAX, .bound = "LIMIT_RECIPIENTS_MAX"},
    {.keyword = "max_recipients_overshoot", .apply = apply_number,
     .offset = FIELD(max_recipients_overshoot), .min = 0, .max = LIMIT_RCPT_OVERSHOOT_MAX,
     .bound = "LIMIT_RCPT_OVERSHOOT_MAX"},
    {.keyword = "max_hops", .apply = apply_number, .offset = FIELD(max_hops),
     .min = LIMIT_HOPS_MIN, .max = LIMIT_HOPS_MAX, .bound = "LIMIT_HOPS_MAX"},
    {.keyword = "max_connections", .apply = apply_number, .offset = FIELD(max_connections),
     .min = 1, .max = POLICY_CONNECTIONS_MAX, .bound = "POLICY_CONNECTIONS_MAX"},
    {.keyword = "max_connections_per_ip", .apply = apply_number,
     .offset = FIELD(max_connections_per_ip), .min = 1, .max = POLICY_CONNECTIONS_MAX,
     .bound = "POLICY_CONNECTIONS_MAX"},
    {.keyword = "max_errors", .apply = apply_number, .offset = FIELD(max_errors), .min = 1,
     .max = POLICY_ERRORS_MAX, .bound = "POLICY_ERRORS_MAX"},
    {.keyword = "timeout_command", .apply = apply_number, .offset = FIELD(timeout_command),
     .min = 1, .max = POLICY_TIMEOUT_MAX, .bound = "POLICY_TIMEOUT_MAX"},
    {.keyword = "timeout_data", .apply = apply_number, .offset = FIELD(timeout_data), .min = 1,
     .max = POLICY_TIMEOUT_MAX, .bound = "POLICY_TIMEOUT_MAX"},
    {.keyword = "min_free_disk", .apply = apply_number, .offset = FIELD(min_free_disk),
     .size = true, .min = 0, .max = POLICY_MIN_FREE_DISK_MAX, .bound = "POLICY_MIN_FREE_DISK_MAX"},
    {.keyword = "shutdown_grace", .apply = apply_number, .offset = FIELD(shutdown_grace),
     .min = 0, .max = POLICY_SHUTDOWN_GRACE_MAX, .bound = "POLICY_SHUTDOWN_GRACE_MAX"},
    /* The name service administrators look for; the same setting as shutdown_grace. */
    {.keyword = "shutdown_timeout", .apply = apply_number, .offset = FIELD(shutdown_grace),
     .min = 0, .max = POLICY_SHUTDOWN_GRACE_MAX, .bound = "POLICY_SHUTDOWN_GRACE_MAX"},
    {.keyword = "bare_lf", .apply = apply_choice, .offset = FIELD(bare_lf_normalize),
     .words = {"reject", "normalize"}},
    {.keyword = "soft_bounce", .apply = apply_choice, .offset = FIELD(soft_bounce),
     .words = {"no", "yes"}},
    {.keyword = "vrfy", .apply = apply_choice, .offset = NO_FIELD, .words = {"no", NULL}},
    {.keyword = "log_file", .apply = apply_path, .offset = FIELD(log_file)},
    {.keyword = "log", .apply = apply_choice, .offset = FIELD(log_syslog),
     .words = {"stderr", "syslog"}},
    {.keyword = "sync_mode", .apply = apply_choice, .offset = FIELD(sync_fdatasync),
     .words = {"syncfs", "fdatasync"}},
    {.keyword = "tls_cert", .apply = policy_conf_apply_file, .offset = FIELD(tls_cert)},
    {.keyword = "tls_key", .apply = policy_conf_apply_file, .offset = FIELD(tls_key)},
    {.keyword = "users_file", .apply = policy_domains_users_file, .offset = FIELD(users_file)},
    {.keyword = "sender_ownership", .apply = apply_choice, .offset = FIELD(sender_ownership),
     .words = {"no", "yes"}},
    {.keyword = "auth_fail_limit", .apply = apply_number, .offset = FIELD(auth_fail_limit),
     .min = 1, .max = POLICY_AUTH_FAIL_LIMIT_MAX, .bound = "POLICY_AUTH_FAIL_LIMIT_MAX"},
    {.keyword = "auth_fail_window", .apply = apply_number, .offset = FIELD(auth_fail_window),
     .min = 1, .max = POLICY_AUTH_FAIL_WINDOW_MAX, .bound = "POLICY_AUTH_FAIL_WINDOW_MAX"},
    {.keyword = "route", .apply = policy_delivery_route, .repeatable = true},
    {.keyword = "relayhost", .apply = policy_delivery_relayhost},
    {.keyword = "dkim_sign", .apply = policy_auth_dkim_sign, .repeatable = true},
    {.keyword = "spf_check", .apply = policy_auth_spf_check},
    {.keyword = "dmarc_check", .apply = policy_auth_dmarc_check},
    {.keyword = "resolver", .apply = policy_delivery_resolver},
    {.keyword = "retry_first", .apply = apply_number, .offset = FIELD(retry_first), .min = 1,
     .max = POLICY_RETRY_INTERVAL_MAX, .bound = "POLICY_RETRY_INTERVAL_MAX"},
    {.keyword = "retry_max", .apply = apply_number, .offset = FIELD(retry_max), .min = 1,
     .max = POLICY_RETRY_INTERVAL_MAX, .bound = "POLICY_RETRY_INTERVAL_MAX"},
    {.keyword = "queue_lifetime", .apply = apply_number, .offset = FIELD(queue_lifetime),
     .min = 60, .max = POLICY_QUEUE_LIFETIME_MAX, .bound = "POLICY_QUEUE_LIFETIME_MAX"},
    {.keyword = "delay_warning", .apply = apply_number, .offset = FIELD(delay_warning), .min = 0,
     .max = POLICY_QUEUE_LIFETIME_MAX, .bound = "POLICY_QUEUE_LIFETIME_MAX"},
    {.keyword = "delivery_timeout_connect", .apply = apply_number,
     .offset = FIELD(delivery_timeout_connect), .min = 1, .max = POLICY_TIMEOUT_MAX,
     .bound = "POLICY_TIMEOUT_MAX"},
    {.keyword = "delivery_timeout_command", .apply = apply_number,
     .offset = FIELD(delivery_timeout_command), .min = 1, .max = POLICY_TIMEOUT_MAX,
     .bound = "POLICY_TIMEOUT_MAX"},
    {.keyword = "delivery_timeout_data", .apply = apply_number,
     .offset = FIELD(delivery_timeout_data), .min = 1, .max = POLICY_TIMEOUT_MAX,
     .bound = "POLICY_TIMEOUT_MAX"},
    {.keyword = "max_messages_per_connection", .apply = apply_number,
     .offset = FIELD(max_messages_per_connection), .min = 0,
     .max = POLICY_MESSAGES_PER_CONNECTION_MAX, .bound = "POLICY_MESSAGES_PER_CONNECTION_MAX"},
    {.keyword = "connection_idle_timeout", .apply = apply_number,
     .offset = FIELD(connection_idle_timeout), .min = 0, .max = POLICY_CONNECTION_IDLE_MAX,
     .bound = "POLICY_CONNECTION_IDLE_MAX"},
    {.keyword = "max_outbound_connections", .apply = apply_number,
     .offset = FIELD(max_outbound_connections), .min = 0, .max = POLICY_CONNECTIONS_MAX,
     .bound = "POLICY_CONNECTIONS_MAX"},
    {.keyword = "plan", .apply = policy_limits_plan, .repeatable = true},
    {.keyword = "plan_user", .apply = policy_limits_plan_user, .repeatable = true},
    {.keyword = "plan_network", .apply = policy_limits_plan_network, .repeatable = true},
    {.keyword = "default_plan", .apply = policy_limits_default_plan},
    {.keyword = "counters", .apply = policy_limits_counters},
    {.keyword = "greylisting", .apply = policy_limits_greylisting},
    {.keyword = "max_messages_per_session", .apply = apply_number,
     .offset = FIELD(max_messages_per_session), .min = 0, .max = POLICY_SESSION_MESSAGES_MAX,
     .bound = "POLICY_SESSION_MESSAGES_MAX"},
    {.keyword = "max_sessions_per_minute_per_ip", .apply = apply_number,
     .offset = FIELD(max_sessions_per_minute_per_ip), .min = 0,
     .max = POLICY_SESSIONS_PER_MINUTE_MAX, .bound = "POLICY_SESSIONS_PER_MINUTE_MAX"},
    {.keyword = "max_commands_per_second", .apply = apply_number,
     .offset = FIELD(max_commands_per_second), .min = 0, .max = POLICY_COMMANDS_PER_SECOND_MAX,
     .bound = "POLICY_COMMANDS_PER_SECOND_MAX"},
    {.keyword = "stress", .apply = policy_capacity_stress},
    {.keyword = "tls_handshake_timeout", .apply = apply_number,
     .offset = FIELD(tls_handshake_timeout), .min = 1, .max = POLICY_TIMEOUT_MAX,
     .bound = "POLICY_TIMEOUT_MAX"},
    {.keyword = "tls_handshakes_per_second", .apply = apply_number,
     .offset = FIELD(tls_handshakes_per_second), .min = 0,
     .max = POLICY_TLS_HANDSHAKES_PER_SECOND_MAX,
     .bound = "POLICY_TLS_HANDSHAKES_PER_SECOND_MAX"},
    {.keyword = "session_memory", .apply = apply_number, .offset = FIELD(session_memory),
     .size = true, .min = POLICY_SESSION_MEMORY_MIN, .max = POLICY_SESSION_MEMORY_MAX,
     .bound = "POLICY_SESSION_MEMORY_MAX"},
};
#define N_DIRECTIVES (sizeof directives / sizeof directives[0])

static void config_line(struct loader *ld, char *line, void *arg)
{
    (void)arg;
    struct cursor cur = {line};
    char *kw = policy_conf_token(&cur);
    ld->anchor = ld->line;
    if (kw == NULL)
        return;
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        const struct directive *d = &directives[i];
        if (strcmp(kw, d->keyword) != 0)
            continue;
        /* A repeated single-valued directive is more likely an oversight than an override. */
        if (!d->repeatable && ld->set_line[i] != 0) {
            policy_conf_problem(ld, "%s is already set on line %u", d->keyword, ld->set_line[i]);
            return;
        }
        ld->set_line[i] = ld->line;
        d->apply(ld, d, &cur);
        return;
    }
    policy_conf_problem(ld, "unknown directive '%s'", policy_conf_show(kw).s);
}

/* ---- lines ---- */

/* True when the line holds only printable bytes, tabs and bytes >= 0x80 (UTF-8 user names). */
static bool clean_line(struct loader *ld, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            policy_conf_problem(ld, "control character 0x%02x in column %zu", ch, i + 1);
            return false;
        }
    }
    return true;
}

void policy_conf_each_line(struct loader *ld, const char *file, const char *data, size_t len,
                           policy_conf_line_fn *fn, void *arg)
{
    const char *saved_file = ld->file;
    unsigned saved_line = ld->line;
    char buf[POLICY_CONFIG_LINE_MAX + 1];
    size_t pos = 0;
    ld->file = file;
    ld->line = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : len, n = end - pos;
        if (ld->line != (unsigned)-1)
            ld->line++;
        if (n > 0 && data[end - 1] == '\r')
            n--;
        if (n > POLICY_CONFIG_LINE_MAX) {
            policy_conf_problem(ld, "line is longer than %u bytes", POLICY_CONFIG_LINE_MAX);
        } else if (clean_line(ld, data + pos, n)) {
            memcpy(buf, data + pos, n);
            buf[n] = '\0';
            fn(ld, buf, arg);
        }
        pos = end + 1;
    }
    ld->file = saved_file;
    ld->line = saved_line;
}

/* ---- finishing ---- */

unsigned policy_conf_directive_line(const struct loader *ld, const char *keyword)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++)
        if (strcmp(directives[i].keyword, keyword) == 0)
            return ld->set_line[i];
    return 0;
}

/* dir + "/" + leaf into out; false when it does not fit. */
static bool join_path(char *out, size_t cap, const char *dir, const char *leaf)
{
    int n = snprintf(out, cap, "%s/%s", dir, leaf);
    return n >= 0 && (size_t)n < cap;
}

/* queue_dir and maildir_root follow data_dir unless set themselves, whatever the line order. */
static void finish_dirs(struct loader *ld)
{
    static const struct {
        const char *keyword, *leaf;
        size_t offset;
    } derived[] = {{"queue_dir", "queue", FIELD(queue_dir)},
                   {"maildir_root", "maildir", FIELD(maildir_root)}};
    for (size_t i = 0; i < sizeof derived / sizeof derived[0]; i++) {
        if (policy_conf_directive_line(ld, derived[i].keyword) != 0)
            continue;
        char *dst = (char *)ld->c + derived[i].offset;
        if (!join_path(dst, POLICY_PATH_CAP, ld->c->data_dir, derived[i].leaf)) {
            ld->line = ld->anchor = policy_conf_directive_line(ld, "data_dir");
            policy_conf_problem(ld, "data_dir is too long to hold %s (%u bytes at most)",
                    derived[i].leaf,
                    POLICY_PATH_CAP - 1);
            dst[0] = '\0';
        }
    }
}

/* ---- public ---- */

static void default_hostname(char *out, size_t cap)
{
    if (gethostname(out, cap) != 0 || memchr(out, '\0', cap) == NULL ||
        !policy_conf_hostname_valid(out))
        snprintf(out, cap, "localhost");
}

bool policy_config_defaults(struct policy_config *c)
{
    memset(c, 0, sizeof *c);
    default_hostname(c->hostname, sizeof c->hostname);
    c->spf_check = POLICY_SPF_OFF;
    c->dmarc_check = POLICY_DMARC_OFF;
    c->listeners[0] = (struct policy_listener){.kind = POLICY_LISTEN_MX, .host = "127.0.0.1",
                                               .port = 2525};
    c->listeners[1] = (struct policy_listener){.kind = POLICY_LISTEN_SUBMISSION,
                                               .host = "127.0.0.1", .port = 2587};
    c->n_listeners = 2;
    c->http = (struct policy_http){.host = "127.0.0.1", .port = POLICY_HTTP_PORT_DEFAULT};
    for (size_t i = 0; i < c->n_listeners; i++)
        policy_listen_kind_defaults(&c->listeners[i]);
    snprintf(c->data_dir, sizeof c->data_dir, "./var/clearmta");
    snprintf(c->queue_dir, sizeof c->queue_dir, "./var/clearmta/queue");
    snprintf(c->maildir_root, sizeof c->maildir_root, "./var/clearmta/maildir");
    c->max_message_size = LIMIT_MESSAGE_SIZE_DEFAULT;
    c->max_recipients = LIMIT_RECIPIENTS_DEFAULT;
    c->max_recipients_overshoot = LIMIT_RCPT_OVERSHOOT_DEFAULT;
    c->max_hops = LIMIT_HOPS_DEFAULT;
    c->max_connections = LIMIT_CONNECTIONS_DEFAULT;
    c->max_connections_per_ip = LIMIT_CONNECTIONS_PER_IP_DEFAULT;
    c->max_errors = LIMIT_SESSION_ERRORS_DEFAULT;
    c->timeout_command = LIMIT_TIMEOUT_COMMAND_DEFAULT;
    c->timeout_data = LIMIT_TIMEOUT_DATA_DEFAULT;
    c->shutdown_grace = LIMIT_SHUTDOWN_GRACE;
    c->min_free_disk = LIMIT_MIN_FREE_DISK_DEFAULT;
    c->sender_ownership = true;
    c->auth_fail_limit = POLICY_AUTH_FAIL_LIMIT_DEFAULT;
    c->auth_fail_window = POLICY_AUTH_FAIL_WINDOW_DEFAULT;
    c->retry_first = POLICY_RETRY_FIRST_DEFAULT;
    c->retry_max = POLICY_RETRY_MAX_DEFAULT;
    c->delivery_timeout_connect = POLICY_DELIVERY_CONNECT_DEFAULT;
    c->delivery_timeout_command = POLICY_DELIVERY_COMMAND_DEFAULT;
    c->delivery_timeout_data = POLICY_DELIVERY_DATA_DEFAULT;
    c->max_messages_per_connection = POLICY_MESSAGES_PER_CONNECTION_DEFAULT;
    c->connection_idle_timeout = POLICY_CONNECTION_IDLE_DEFAULT;
    c->queue_lifetime = POLICY_QUEUE_LIFETIME_DEFAULT;
    c->delay_warning = POLICY_DELAY_WARNING_DEFAULT;
    policy_limits_defaults(c);
    policy_capacity_defaults(c);
    /* The local domain "localhost": every local part reaches the postmaster's mailbox. */
    c->domains = calloc(1, sizeof *c->domains);
    if (c->domains == NULL)
        return false;
    snprintf(c->domains[0].name, sizeof c->domains[0].name, "localhost");
    c->domains[0].kind = POLICY_DOMAIN_CATCH_ALL;
    snprintf(c->domains[0].catch_all, sizeof c->domains[0].catch_all, "postmaster");
    c->n_domains = 1;
    return true;
}

void policy_config_free(struct policy_config *c)
{
    policy_domains_free(c);
    policy_users_free(c->users);
    c->users = NULL;
    free(c->routes);
    c->routes = NULL;
    c->n_routes = 0;
    free(c->dkim_sign);
    c->dkim_sign = NULL;
    c->n_dkim_sign = 0;
    explicit_bzero(&c->relayhost, sizeof c->relayhost);
    policy_limits_free(c);
}

/* Loads data; a client load (bool client) opens no file that holds a secret. */
static size_t load_buffer(const char *name, const char *data, size_t len, bool client,
                          struct policy_config *c, struct policy_problems *p)
{
    unsigned set_line[N_DIRECTIVES] = {0};
    struct loader ld = {.c = c, .p = p, .config_name = name, .file = name, .set_line = set_line,
                        .client = client};
    if (p != NULL) {
        p->count = 0;
        p->dropped = 0;
    }
    if (!policy_config_defaults(c) || !policy_domains_adopt_defaults(&ld)) {
        policy_conf_oom(&ld);
    } else {
        policy_conf_each_line(&ld, name, data, len, config_line, NULL);
        finish_dirs(&ld);
        policy_listen_finish_tls(&ld);
        policy_delivery_finish(&ld);
    }
    policy_limits_finish(&ld);
    policy_domains_finish(&ld);
    free(ld.domains);
    return ld.problems;
}

size_t policy_config_load_buffer(const char *name, const char *data, size_t len,
                                 struct policy_config *c, struct policy_problems *p)
{
    return load_buffer(name, data, len, false, c, p);
}

static size_t load_file(const char *path, bool client, struct policy_config *c,
                        struct policy_problems *p)
{
    char err[POLICY_PATH_CAP + 160];
    size_t len;
    /* It names the files root opens: no one else may write it. */
    char *data = policy_conf_read_file(path, POLICY_MODE_TRUSTED, &len, err, sizeof err);
    if (data != NULL) {
        size_t n = load_buffer(path, data, len, client, c, p);
        free(data);
        return n;
    }
    /* Still leave c holding the defaults, so callers handle both outcomes the same way. */
    size_t n = load_buffer(path, "", 0, client, c, p);
    struct loader ld = {.c = c, .p = p, .file = path};
    policy_conf_problem(&ld, "%s", err);
    return n + ld.problems;
}

size_t policy_config_load(const char *path, struct policy_config *c, struct policy_problems *p)
{
    return load_file(path, false, c, p);
}

size_t policy_config_load_client(const char *path, struct policy_config *c,
                                 struct policy_problems *p)
{
    return load_file(path, true, c, p);
}
