/* policy/config.c — clearmta.conf(5): embedded defaults, a line-based loader that reports every
 * problem with file:line, users files, and the sorted domain/user tables recipients.c searches.
 * The Limit directives (plans, counters, greylisting) are read by config_limits.c. */
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

#include "policy/recipients.h"
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

/* RFC 1123 §2.1 host name: LDH labels of 1..63 octets, not starting or ending with '-'. */
static bool valid_hostname(const char *s)
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

/* A user or catch-all mailbox as written in the config: a safe directory name that is also a
 * plain local part (quoting characters and '@' mean the line is not what the admin meant). */
static bool valid_user(const char *s)
{
    return policy_mailbox_name_safe(s, strlen(s)) && strpbrk(s, "@\"\\") == NULL;
}

void policy_conf_lower(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
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

struct directive;
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

/* The single value of a directive that takes one; reports and returns NULL otherwise. */
static char *one_value(struct loader *ld, const struct directive *d, struct cursor *cur)
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
    char *v = one_value(ld, d, cur);
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
    char *v = one_value(ld, d, cur);
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
    char *v = one_value(ld, d, cur);
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
    char *v = one_value(ld, d, cur);
    if (v == NULL)
        return;
    if (!valid_hostname(v)) {
        policy_conf_problem(ld,
                "hostname '%s' is not a valid host name (letters, digits, '-', '.')",
                policy_conf_show(v).s);
        return;
    }
    memcpy(ld->c->hostname, v, strlen(v) + 1);
}

/* "ADDR:PORT" with ADDR an IPv4 address, "[IPv6]" or "*"; host gets the inet_ntop form. */
static bool parse_listen_addr(const char *text, struct policy_listener *l)
{
    char s[sizeof l->host + 16]; /* "[" host "]:" port; anything longer is not an address */
    size_t len = strlen(text);
    if (len >= sizeof s)
        return false;
    memcpy(s, text, len + 1);
    char *colon, *host = s;
    int af = AF_INET;
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return false;
        *close = '\0';
        host = s + 1;
        colon = close + 1;
        af = AF_INET6;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        *colon = '\0';
    }
    uint64_t port;
    if (!policy_conf_number(colon + 1, false, &port) || port == 0 || port > 65535)
        return false;
    l->port = (unsigned short)port;
    if (af == AF_INET && strcmp(host, "*") == 0) {
        l->host[0] = '\0';
        return true;
    }
    unsigned char bin[16];
    return inet_pton(af, host, bin) == 1 && inet_ntop(af, bin, l->host, sizeof l->host) != NULL;
}

/* What each kind offers before any option. */
static void listener_defaults(struct policy_listener *l)
{
    l->starttls = l->kind != POLICY_LISTEN_SUBMISSIONS;
    l->auth = l->kind != POLICY_LISTEN_MX;
    l->auth_plaintext = false;
}

/* Applies one option word after the address; false (reported) when it is unknown or does not
 * fit the listener's kind. */
static bool listen_option(struct loader *ld, struct policy_listener *l, const char *opt)
{
    const char *kind = policy_listen_kind_name(l->kind);
    if (strcmp(opt, "no-auth") == 0) {
        l->auth = false;
    } else if (strcmp(opt, "no-starttls") == 0 && l->kind != POLICY_LISTEN_SUBMISSIONS) {
        l->starttls = false;
    } else if (strcmp(opt, "auth-plaintext") == 0 && l->kind == POLICY_LISTEN_SUBMISSION) {
        l->auth_plaintext = true;
    } else if (strcmp(opt, "no-starttls") == 0 || strcmp(opt, "auth-plaintext") == 0) {
        policy_conf_problem(ld, "listen: %s does not apply to %s listeners (%s)", opt, kind,
                l->kind == POLICY_LISTEN_MX ? "they never offer AUTH"
                                            : "they speak TLS from the first byte");
        return false;
    } else {
        policy_conf_problem(ld,
                "listen: unknown option '%s' (auth-plaintext, no-auth or no-starttls)",
                policy_conf_show(opt).s);
        return false;
    }
    if (l->auth_plaintext && !l->auth) {
        policy_conf_problem(ld, "listen: auth-plaintext and no-auth contradict each other");
        return false;
    }
    return true;
}

static void apply_listen(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *kind = policy_conf_token(cur), *addr = policy_conf_token(cur);
    struct policy_listener l;
    if (kind == NULL || addr == NULL) {
        policy_conf_problem(ld,
                "listen takes a kind (mx, submission, submissions), ADDRESS:PORT and "
                "options (auth-plaintext, no-auth, no-starttls)");
        return;
    }
    if (strcmp(kind, "mx") == 0) {
        l.kind = POLICY_LISTEN_MX;
    } else if (strcmp(kind, "submission") == 0) {
        l.kind = POLICY_LISTEN_SUBMISSION;
    } else if (strcmp(kind, "submissions") == 0) {
        l.kind = POLICY_LISTEN_SUBMISSIONS;
    } else {
        policy_conf_problem(ld, "listen: unknown kind '%s' (mx, submission or submissions)",
                policy_conf_show(kind).s);
        return;
    }
    if (!parse_listen_addr(addr, &l)) {
        policy_conf_problem(ld,
                "listen: '%s' is not ADDRESS:PORT (IPv4, [IPv6] or *, port 1-65535)",
                policy_conf_show(addr).s);
        return;
    }
    listener_defaults(&l);
    for (char *opt = policy_conf_token(cur); opt != NULL; opt = policy_conf_token(cur))
        if (!listen_option(ld, &l, opt))
            return;
    /* The first listen line replaces the embedded default listeners. */
    if (!ld->listen_seen)
        ld->c->n_listeners = 0;
    ld->listen_seen = true;
    for (size_t i = 0; i < ld->c->n_listeners; i++) {
        const struct policy_listener *o = &ld->c->listeners[i];
        if (o->port == l.port && strcmp(o->host, l.host) == 0) {
            policy_conf_problem(ld, "listen: address already used on line %u", ld->listen_line[i]);
            return;
        }
    }
    if (ld->c->n_listeners == POLICY_LISTENERS_MAX) {
        policy_conf_problem(ld, "listen: more than %u listeners (POLICY_LISTENERS_MAX)",
                POLICY_LISTENERS_MAX);
        return;
    }
    ld->listen_line[ld->c->n_listeners] = ld->line;
    ld->c->listeners[ld->c->n_listeners++] = l;
}

/* ---- domains ---- */

static struct pending_domain *new_domain(struct loader *ld, const char *name)
{
    if (ld->n_domains == ld->cap_domains) {
        size_t cap = ld->cap_domains ? ld->cap_domains * 2 : 8;
        struct pending_domain *nd = realloc(ld->domains, cap * sizeof *nd);
        if (nd == NULL)
            return NULL;
        ld->domains = nd;
        ld->cap_domains = cap;
    }
    struct pending_domain *pd = &ld->domains[ld->n_domains++];
    memset(pd, 0, sizeof *pd);
    memcpy(pd->d.name, name, strlen(name) + 1);
    pd->line = ld->line;
    return pd;
}

/* Adds a user to a domain line; an invalid name is reported and skipped. False: out of memory. */
static bool add_user(struct loader *ld, struct pending_domain *pd, const char *user)
{
    if (!valid_user(user)) {
        policy_conf_problem(ld,
                "user '%s' cannot be a mailbox name (no '/', '@', quotes, backslashes, "
                "control characters or leading '.'; at most %d bytes)",
                policy_conf_show(user).s, LIMIT_LOCAL_PART);
        return true;
    }
    if (pd->d.n_users == pd->cap_users) {
        size_t cap = pd->cap_users ? pd->cap_users * 2 : 16;
        char **nu = realloc(pd->d.users, cap * sizeof *nu);
        if (nu == NULL)
            return false;
        pd->d.users = nu;
        pd->cap_users = cap;
    }
    char *copy = strdup(user);
    if (copy == NULL)
        return false;
    policy_conf_lower(copy);
    pd->d.users[pd->d.n_users++] = copy;
    return true;
}

/* Each line of a users file holds one user; '#' begins a comment. */
struct users_ctx {
    struct pending_domain *pd;
    bool oom;
};

typedef void line_fn(struct loader *ld, char *line, void *arg);
static void each_line(struct loader *ld, const char *file, const char *data, size_t len,
                      line_fn *fn, void *arg);

static void users_line(struct loader *ld, char *line, void *arg)
{
    struct users_ctx *uc = arg;
    struct cursor cur = {line};
    char *user = policy_conf_token(&cur);
    if (user == NULL || uc->oom)
        return;
    if (policy_conf_token(&cur) != NULL) {
        policy_conf_problem(ld, "one user per line");
        return;
    }
    if (!add_user(ld, uc->pd, user)) {
        uc->oom = true;
        policy_conf_oom(ld);
    }
}

/* Reads a whole regular file of at most POLICY_CONFIG_FILE_MAX bytes. On failure returns NULL
 * with the reason in err; errno goes no further. */
static char *read_file(const char *path, size_t *len, char *err, size_t errcap)
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

/* A relative users-file path is relative to the directory of the config file. */
static bool resolve_path(const char *config_name, const char *path, char *out, size_t cap)
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

static void load_users_file(struct loader *ld, struct pending_domain *pd, const char *path)
{
    char full[POLICY_PATH_CAP], err[160];
    size_t len;
    if (!resolve_path(ld->config_name, path, full, sizeof full)) {
        policy_conf_problem(ld, "users-file: path is longer than %u bytes", POLICY_PATH_CAP - 1);
        return;
    }
    char *data = read_file(full, &len, err, sizeof err);
    if (data == NULL) {
        policy_conf_problem(ld, "users-file '%s': %s", policy_conf_show(full).s, err);
        return;
    }
    struct users_ctx uc = {pd, false};
    each_line(ld, full, data, len, users_line, &uc);
    free(data);
}

/* A file the config names (tls_cert, tls_key, users_file), resolved like users files. */
static void apply_file(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = one_value(ld, d, cur);
    if (v == NULL)
        return;
    if (!resolve_path(ld->config_name, v, field(ld, d), POLICY_PATH_CAP)) {
        policy_conf_problem(ld, "%s: path is longer than %u bytes", d->keyword,
                POLICY_PATH_CAP - 1);
        *(char *)field(ld, d) = '\0';
    }
}

/* Problems of the AUTH users file, under its own name and line numbers. */
static void users_file_problem(void *ctx, unsigned line, const char *message)
{
    struct loader *ld = ctx;
    ld->line = line;
    policy_conf_problem(ld, "%s", message);
}

static void apply_users_file(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char err[160];
    size_t len;
    apply_file(ld, d, cur);
    const char *path = ld->c->users_file;
    if (path[0] == '\0')
        return;
    char *data = read_file(path, &len, err, sizeof err);
    if (data == NULL) {
        policy_conf_problem(ld, "users_file '%s': %s", policy_conf_show(path).s, err);
        return;
    }
    const char *saved_file = ld->file;
    unsigned saved_line = ld->line;
    ld->file = path;
    policy_users_load_buffer(data, len, users_file_problem, ld, &ld->c->users);
    ld->file = saved_file;
    ld->line = saved_line;
    explicit_bzero(data, len); /* hashes help offline guessing: leave no copy behind */
    free(data);
}

static void apply_domain(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *name = policy_conf_token(cur), *mode = policy_conf_token(cur);
    char canon[LIMIT_DOMAIN + 1];
    if (name == NULL || mode == NULL) {
        policy_conf_problem(ld,
                "domain takes a name and users USER..., users-file PATH or catch-all MAILBOX");
        return;
    }
    bool literal = name[0] == '[';
    if ((!literal && !valid_hostname(name)) || !policy_domain_canonical(name, canon, sizeof canon)) {
        policy_conf_problem(ld, "domain '%s' is not a domain name or an address literal",
                policy_conf_show(name).s);
        return;
    }
    bool users = strcmp(mode, "users") == 0;
    if (!users && strcmp(mode, "users-file") != 0 && strcmp(mode, "catch-all") != 0) {
        policy_conf_problem(ld, "domain %s: '%s' is not users, users-file or catch-all", canon,
                policy_conf_show(mode).s);
        return;
    }
    char *first = policy_conf_token(cur);
    if (first == NULL || (!users && policy_conf_token(cur) != NULL)) {
        policy_conf_problem(ld, "domain %s: %s takes %s", canon, mode,
                users ? "at least one user" : "exactly one value");
        return;
    }
    bool catch_all = strcmp(mode, "catch-all") == 0;
    if (catch_all && !valid_user(first)) {
        policy_conf_problem(ld, "domain %s: catch-all mailbox '%s' is not a safe mailbox name",
                            canon, policy_conf_show(first).s);
        return;
    }
    struct pending_domain *pd = new_domain(ld, canon);
    if (pd == NULL) {
        policy_conf_oom(ld);
    } else if (catch_all) {
        pd->d.kind = POLICY_DOMAIN_CATCH_ALL;
        memcpy(pd->d.catch_all, first, strlen(first) + 1); /* valid_user bounds the length */
        policy_conf_lower(pd->d.catch_all);
    } else if (!users) {
        load_users_file(ld, pd, first);
    } else {
        for (char *u = first; u != NULL; u = policy_conf_token(cur)) {
            if (!add_user(ld, pd, u)) {
                policy_conf_oom(ld);
                return;
            }
        }
    }
}

/* ---- routes, smart host, resolver ---- */

static int route_cmp(const void *a, const void *b)
{
    return strcmp(((const struct policy_route *)a)->domain,
                  ((const struct policy_route *)b)->domain);
}

const char *policy_tls_name(enum policy_tls tls)
{
    switch (tls) {
    case POLICY_TLS_NONE: return "none";
    case POLICY_TLS_OPPORTUNISTIC: return "opportunistic";
    case POLICY_TLS_REQUIRED: return "required";
    case POLICY_TLS_REQUIRED_VERIFY: return "required-verify";
    }
    return "?";
}

static bool parse_tls(const char *word, enum policy_tls *out)
{
    static const enum policy_tls all[] = {POLICY_TLS_NONE, POLICY_TLS_OPPORTUNISTIC,
                                          POLICY_TLS_REQUIRED, POLICY_TLS_REQUIRED_VERIFY};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(word, policy_tls_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* A numeric IPv4 or IPv6 address into its inet_ntop form; false when it is neither. */
static bool canonical_ip(const char *s, char *out, size_t cap)
{
    unsigned char bin[16];
    int af = strchr(s, ':') != NULL ? AF_INET6 : AF_INET;
    return inet_pton(af, s, bin) == 1 && inet_ntop(af, bin, out, (socklen_t)cap) != NULL;
}

/* "[HOST]:PORT", "[HOST]", "HOST:PORT" or "HOST" (module comment in config.h); HOST in
 * brackets is a host name or numeric IP, without them a host name whose MX is looked up. */
static bool parse_nexthop(const char *text, struct policy_nexthop *h)
{
    char s[LIMIT_DOMAIN + 16]; /* "[" host "]:" port; longer is not a next hop */
    size_t len = strlen(text);
    if (len >= sizeof s)
        return false;
    memcpy(s, text, len + 1);
    char *host = s, *port = NULL;
    h->mx_lookup = s[0] != '[';
    if (!h->mx_lookup) {
        char *close = strchr(s, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return false;
        *close = '\0';
        host = s + 1;
        port = close[1] == ':' ? close + 2 : NULL;
    } else if ((port = strchr(s, ':')) != NULL) {
        *port++ = '\0'; /* a second ':' (bare IPv6) fails the port check below */
    }
    uint64_t p = 25;
    if (port != NULL && (!policy_conf_number(port, false, &p) || p == 0 || p > 65535))
        return false;
    h->port = (unsigned short)p;
    if (!h->mx_lookup && canonical_ip(host, h->host, sizeof h->host))
        return true;
    if (!valid_hostname(host) || canonical_ip(host, h->host, sizeof h->host))
        return false; /* a numeric address needs brackets: it has no MX to look up */
    memcpy(h->host, host, strlen(host) + 1);
    policy_conf_lower(h->host);
    return true;
}

/* "tls=WORD"; false when opt is not a tls option (nothing reported), true when it was one
 * (reported if its value is bad). */
static bool tls_option(struct loader *ld, const char *keyword, const char *opt,
                       struct policy_nexthop *h, bool *ok)
{
    if (strncmp(opt, "tls=", 4) != 0)
        return false;
    if (!parse_tls(opt + 4, &h->tls)) {
        policy_conf_problem(ld,
                "%s: tls takes none, opportunistic, required or required-verify, not '%s'",
                keyword, policy_conf_show(opt + 4).s);
        *ok = false;
    }
    return true;
}

static bool read_nexthop(struct loader *ld, const char *keyword, const char *text,
                         struct policy_nexthop *h)
{
    h->tls = POLICY_TLS_OPPORTUNISTIC;
    if (parse_nexthop(text, h))
        return true;
    policy_conf_problem(ld,
            "%s: '%s' is not a next hop ([HOST]:PORT, or HOST:PORT to look up HOST's MX; "
            "numeric addresses in brackets; port 1-65535)", keyword, policy_conf_show(text).s);
    return false;
}

static void apply_route(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *domain = policy_conf_token(cur), *target = policy_conf_token(cur);
    struct policy_route r = {.line = ld->line};
    bool ok = true;
    if (domain == NULL || target == NULL) {
        policy_conf_problem(ld, "route takes a domain, smtp:[HOST]:PORT and optionally tls=MODE");
        return;
    }
    if (!valid_hostname(domain)) {
        policy_conf_problem(ld, "route: '%s' is not a domain name", policy_conf_show(domain).s);
        return;
    }
    memcpy(r.domain, domain, strlen(domain) + 1);
    policy_conf_lower(r.domain);
    if (strncmp(target, "smtp:", 5) != 0) {
        policy_conf_problem(ld, "route: '%s' does not start with smtp: (the only transport)",
                policy_conf_show(target).s);
        return;
    }
    if (!read_nexthop(ld, "route", target + 5, &r.hop))
        return;
    for (char *opt = policy_conf_token(cur); opt != NULL && ok; opt = policy_conf_token(cur))
        if (!tls_option(ld, "route", opt, &r.hop, &ok)) {
            policy_conf_problem(ld, "route: unknown option '%s' (tls=MODE)",
                    policy_conf_show(opt).s);
            ok = false;
        }
    if (!ok)
        return;
    for (size_t i = 0; i < ld->c->n_routes; i++) {
        if (strcmp(ld->c->routes[i].domain, r.domain) == 0) {
            policy_conf_problem(ld, "route: %s is already routed on line %u", r.domain,
                    ld->c->routes[i].line);
            return;
        }
    }
    if (ld->c->n_routes == POLICY_ROUTES_MAX) {
        policy_conf_problem(ld, "route: more than %u routes (POLICY_ROUTES_MAX)",
                POLICY_ROUTES_MAX);
        return;
    }
    struct policy_route *nr = realloc(ld->c->routes, (ld->c->n_routes + 1) * sizeof *nr);
    if (nr == NULL) {
        policy_conf_oom(ld);
        return;
    }
    ld->c->routes = nr;
    nr[ld->c->n_routes++] = r;
}

/* "rate=N/PERIOD": policy_conf_rate's periods, as plans write them. */
static bool parse_rate(const char *v, struct policy_relayhost *rh)
{
    uint64_t n;
    unsigned window;
    if (!policy_conf_rate(v, false, POLICY_RATE_MAX, &n, &window))
        return false;
    rh->rate = (unsigned)n;
    rh->rate_period = window;
    return true;
}

/* The one "user:password" line of a smart-host credentials file (blank lines and '#' comments
 * aside). Whitespace is part of the password, so lines are not tokenised. */
static bool parse_credentials(const char *data, size_t len, struct policy_relayhost *rh)
{
    size_t found = 0;
    for (const char *line = data, *end; line < data + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(data + len - line));
        if (end == NULL)
            end = data + len;
        size_t n = (size_t)(end - line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        const char *colon = memchr(line, ':', n);
        size_t ulen = colon != NULL ? (size_t)(colon - line) : 0, plen = n - ulen - 1;
        if (colon == NULL || ulen == 0 || ulen >= POLICY_AUTH_FIELD_CAP || plen == 0 ||
            plen >= POLICY_AUTH_FIELD_CAP || memchr(line, '\0', n) != NULL || ++found > 1)
            return false;
        memcpy(rh->auth_user, line, ulen);
        rh->auth_user[ulen] = '\0';
        memcpy(rh->auth_password, colon + 1, plen);
        rh->auth_password[plen] = '\0';
    }
    return found == 1;
}

/* auth=FILE: resolved against the config directory; group or others may not write it and
 * others may not read it (0600 or 0640), as it holds a password in clear. */
static bool load_credentials(struct loader *ld, const char *path, struct policy_relayhost *rh)
{
    char err[160];
    struct stat st;
    size_t len;
    if (!resolve_path(ld->config_name, path, rh->auth_file, sizeof rh->auth_file)) {
        policy_conf_problem(ld, "relayhost: auth path is longer than %u bytes",
                POLICY_PATH_CAP - 1);
        return false;
    }
    if (stat(rh->auth_file, &st) == 0 && (st.st_mode & 0027) != 0) {
        policy_conf_problem(ld,
                "relayhost: auth file '%s' is open to others (mode %03o; use chmod 600)",
                policy_conf_show(rh->auth_file).s, (unsigned)(st.st_mode & 0777));
        return false;
    }
    char *data = read_file(rh->auth_file, &len, err, sizeof err);
    if (data == NULL) {
        policy_conf_problem(ld, "relayhost: auth file '%s': %s", policy_conf_show(rh->auth_file).s,
                err);
        return false;
    }
    bool ok = parse_credentials(data, len, rh);
    explicit_bzero(data, len);
    free(data);
    if (!ok)
        policy_conf_problem(ld,
                "relayhost: auth file '%s' must hold one line user:password (each 1-%u "
                "bytes)", policy_conf_show(rh->auth_file).s, POLICY_AUTH_FIELD_CAP - 1);
    return ok;
}

static bool relayhost_option(struct loader *ld, const char *opt, struct policy_relayhost *rh)
{
    bool ok = true;
    if (tls_option(ld, "relayhost", opt, &rh->hop, &ok))
        return ok;
    if (strncmp(opt, "auth=", 5) == 0 && opt[5] != '\0') {
        rh->auth = load_credentials(ld, opt + 5, rh);
        return rh->auth;
    }
    if (strncmp(opt, "rate=", 5) == 0) {
        if (parse_rate(opt + 5, rh))
            return true;
        policy_conf_problem(ld,
                "relayhost: rate takes N/second, N/minute, N/hour or N/day with N 1-%u, not "
                "'%s'", POLICY_RATE_MAX, policy_conf_show(opt + 5).s);
        return false;
    }
    policy_conf_problem(ld, "relayhost: unknown option '%s' (tls=MODE, auth=FILE, rate=N/PERIOD)",
            policy_conf_show(opt).s);
    return false;
}

static void apply_relayhost(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *target = policy_conf_token(cur);
    struct policy_relayhost rh = {0};
    bool ok = true;
    if (target == NULL) {
        policy_conf_problem(ld,
                "relayhost takes [HOST]:PORT and options tls=MODE, auth=FILE, rate=N/PERIOD");
        return;
    }
    if (!read_nexthop(ld, "relayhost", target, &rh.hop))
        return;
    for (char *opt = policy_conf_token(cur); opt != NULL && ok; opt = policy_conf_token(cur))
        ok = relayhost_option(ld, opt, &rh);
    if (ok && rh.auth && rh.hop.tls == POLICY_TLS_NONE) {
        policy_conf_problem(ld, "relayhost: auth= with tls=none would send the password in clear");
        ok = false;
    }
    if (ok) {
        rh.set = true;
        ld->c->relayhost = rh;
    }
    explicit_bzero(&rh, sizeof rh);
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
    if (!ok || !canonical_ip(host, ip, sizeof ip))
        return false;
    bool v6 = strchr(ip, ':') != NULL;
    int n = snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", ip, v6 ? "]" : "", (unsigned)port);
    return n >= 0 && (size_t)n < cap;
}

/* The DNS server, stored as c-ares takes it. */
static void apply_resolver(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char *v = one_value(ld, d, cur);
    if (v != NULL && !policy_conf_ip_port(v, 53, ld->c->resolver, sizeof ld->c->resolver))
        policy_conf_problem(ld, "resolver: '%s' is not IP[:PORT] (numeric IPv4, or IPv6 in "
                            "brackets with a port; port 1-65535)", policy_conf_show(v).s);
}

const struct policy_route *policy_route_find(const struct policy_config *c, const char *domain)
{
    struct policy_route probe;
    size_t len = strlen(domain);
    if (len >= sizeof probe.domain || c->n_routes == 0)
        return NULL;
    memcpy(probe.domain, domain, len + 1);
    policy_conf_lower(probe.domain);
    return bsearch(&probe, c->routes, c->n_routes, sizeof probe, route_cmp);
}

/* Sorted once after reading, so look-ups can bisect. */
static void finish_routes(struct loader *ld)
{
    if (ld->c->n_routes > 1)
        qsort(ld->c->routes, ld->c->n_routes, sizeof ld->c->routes[0], route_cmp);
}

static const struct directive directives[] = {
    {.keyword = "hostname", .apply = apply_hostname},
    {.keyword = "listen", .apply = apply_listen, .repeatable = true},
    {.keyword = "data_dir", .apply = apply_path, .offset = FIELD(data_dir)},
    {.keyword = "queue_dir", .apply = apply_path, .offset = FIELD(queue_dir)},
    {.keyword = "maildir_root", .apply = apply_path, .offset = FIELD(maildir_root)},
    {.keyword = "domain", .apply = apply_domain, .repeatable = true},
    {.keyword = "max_message_size", .apply = apply_number, .offset = FIELD(max_message_size),
     .size = true, .min = 1, .max = LIMIT_MESSAGE_SIZE_MAX, .bound = "LIMIT_MESSAGE_SIZE_MAX"},
    {.keyword = "max_recipients", .apply = apply_number, .offset = FIELD(max_recipients),
     .min = 1, .max = LIMIT_RECIPIENTS_MAX, .bound = "LIMIT_RECIPIENTS_MAX"},
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
    {.keyword = "bare_lf", .apply = apply_choice, .offset = FIELD(bare_lf_normalize),
     .words = {"reject", "normalize"}},
    {.keyword = "soft_bounce", .apply = apply_choice, .offset = FIELD(soft_bounce),
     .words = {"no", "yes"}},
    {.keyword = "vrfy", .apply = apply_choice, .offset = NO_FIELD, .words = {"no", NULL}},
    {.keyword = "log", .apply = apply_choice, .offset = FIELD(log_syslog),
     .words = {"stderr", "syslog"}},
    {.keyword = "sync_mode", .apply = apply_choice, .offset = FIELD(sync_fdatasync),
     .words = {"syncfs", "fdatasync"}},
    {.keyword = "tls_cert", .apply = apply_file, .offset = FIELD(tls_cert)},
    {.keyword = "tls_key", .apply = apply_file, .offset = FIELD(tls_key)},
    {.keyword = "users_file", .apply = apply_users_file, .offset = FIELD(users_file)},
    {.keyword = "sender_ownership", .apply = apply_choice, .offset = FIELD(sender_ownership),
     .words = {"no", "yes"}},
    {.keyword = "auth_fail_limit", .apply = apply_number, .offset = FIELD(auth_fail_limit),
     .min = 1, .max = POLICY_AUTH_FAIL_LIMIT_MAX, .bound = "POLICY_AUTH_FAIL_LIMIT_MAX"},
    {.keyword = "auth_fail_window", .apply = apply_number, .offset = FIELD(auth_fail_window),
     .min = 1, .max = POLICY_AUTH_FAIL_WINDOW_MAX, .bound = "POLICY_AUTH_FAIL_WINDOW_MAX"},
    {.keyword = "route", .apply = apply_route, .repeatable = true},
    {.keyword = "relayhost", .apply = apply_relayhost},
    {.keyword = "resolver", .apply = apply_resolver},
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

/* Calls fn with each line of data (NUL-terminated, without its LF or CRLF), tracking file and
 * line number for problems; overlong or binary lines are reported and skipped. */
static void each_line(struct loader *ld, const char *file, const char *data, size_t len,
                      line_fn *fn, void *arg)
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

static void free_users(struct policy_domain *d)
{
    for (size_t i = 0; i < d->n_users; i++)
        free(d->users[i]);
    free(d->users);
    d->users = NULL;
    d->n_users = 0;
}

static int pending_cmp(const void *a, const void *b)
{
    const struct pending_domain *x = a, *y = b;
    int c = strcmp(x->d.name, y->d.name);
    return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_users(struct policy_domain *d)
{
    if (d->n_users == 0)
        return;
    qsort(d->users, d->n_users, sizeof d->users[0], str_ptr_cmp);
    size_t keep = 1;
    for (size_t i = 1; i < d->n_users; i++) {
        if (strcmp(d->users[i], d->users[keep - 1]) == 0)
            free(d->users[i]); /* listed twice: harmless, keep one */
        else
            d->users[keep++] = d->users[i];
    }
    d->n_users = keep;
}

/* Moves the users of src to the end of dst. */
static bool merge_users(struct pending_domain *dst, struct pending_domain *src)
{
    size_t n = dst->d.n_users + src->d.n_users;
    if (src->d.n_users == 0)
        return true;
    if (n > dst->cap_users) {
        char **nu = realloc(dst->d.users, n * sizeof *nu);
        if (nu == NULL)
            return false;
        dst->d.users = nu;
        dst->cap_users = n;
    }
    memcpy(dst->d.users + dst->d.n_users, src->d.users, src->d.n_users * sizeof src->d.users[0]);
    dst->d.n_users = n;
    free(src->d.users);
    src->d.users = NULL;
    src->d.n_users = 0;
    return true;
}

/* Sorts the domain lines by name and merges lines for the same domain: users lines add up, a
 * catch-all stands alone, and any config line for a name replaces its embedded default. */
static void finish_domains(struct loader *ld)
{
    struct pending_domain *pd = ld->domains;
    size_t n = ld->n_domains, kept = 0;
    if (n > 0)
        qsort(pd, n, sizeof pd[0], pending_cmp);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(pd[j].d.name, pd[i].d.name) == 0)
            j++;
        if (j - i > 1 && pd[i].line == 0)
            free_users(&pd[i++].d); /* the default, overridden by the config */
        struct pending_domain *first = &pd[i];
        for (size_t k = i + 1; k < j; k++) {
            if (first->d.kind == POLICY_DOMAIN_CATCH_ALL || pd[k].d.kind == POLICY_DOMAIN_CATCH_ALL) {
                ld->line = ld->anchor = pd[k].line;
                policy_conf_problem(ld,
                        "domain %s is already defined on line %u (a catch-all domain is "
                        "defined once)", pd[k].d.name, first->line);
                free_users(&pd[k].d);
            } else if (!merge_users(first, &pd[k])) {
                ld->line = ld->anchor = pd[k].line;
                policy_conf_oom(ld);
                free_users(&pd[k].d);
            }
        }
        sort_users(&first->d);
        pd[kept++] = *first;
        i = j;
    }
    ld->n_domains = kept;
    struct policy_domain *out = kept ? calloc(kept, sizeof *out) : NULL;
    if (kept > 0 && out == NULL) {
        ld->line = 0;
        ld->anchor = (unsigned)-1;
        policy_conf_oom(ld);
        for (size_t i = 0; i < kept; i++)
            free_users(&pd[i].d);
        return;
    }
    for (size_t i = 0; i < kept; i++)
        out[i] = pd[i].d;
    ld->c->domains = out;
    ld->c->n_domains = kept;
}

static unsigned directive_line(const struct loader *ld, const char *keyword)
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
        if (directive_line(ld, derived[i].keyword) != 0)
            continue;
        char *dst = (char *)ld->c + derived[i].offset;
        if (!join_path(dst, POLICY_PATH_CAP, ld->c->data_dir, derived[i].leaf)) {
            ld->line = ld->anchor = directive_line(ld, "data_dir");
            policy_conf_problem(ld, "data_dir is too long to hold %s (%u bytes at most)",
                    derived[i].leaf,
                    POLICY_PATH_CAP - 1);
            dst[0] = '\0';
        }
    }
}

/* A certificate without its key (or the reverse) is half a setup: say so, do not guess. */
static void finish_tls(struct loader *ld)
{
    /* By line, not value: a line with a bad value has been reported already. */
    bool cert = directive_line(ld, "tls_cert") != 0, key = directive_line(ld, "tls_key") != 0;
    if (cert == key)
        return;
    ld->line = ld->anchor = directive_line(ld, cert ? "tls_cert" : "tls_key");
    const char *set = cert ? "tls_cert" : "tls_key", *missing = cert ? "tls_key" : "tls_cert";
    policy_conf_problem(ld, "%s is set but %s is not (both or neither: without them a self-signed "
            "certificate is generated)", set, missing);
}

/* The retry settings must make a schedule: the cap not below the first wait, a warning before
 * the give-up. */
static void finish_retry(struct loader *ld)
{
    const struct policy_config *c = ld->c;
    if (c->retry_max < c->retry_first) {
        ld->line = ld->anchor = directive_line(ld, directive_line(ld, "retry_max") != 0
                                                       ? "retry_max" : "retry_first");
        policy_conf_problem(ld, "retry_max (%u) is below retry_first (%u)", c->retry_max,
                c->retry_first);
    }
    if (c->delay_warning != 0 && c->delay_warning >= c->queue_lifetime) {
        ld->line = ld->anchor = directive_line(ld, directive_line(ld, "delay_warning") != 0
                                                       ? "delay_warning" : "queue_lifetime");
        policy_conf_problem(ld,
                "delay_warning (%u) is not below queue_lifetime (%u): no warning would be "
                "sent (0 turns warnings off)", c->delay_warning, c->queue_lifetime);
    }
}

/* ---- public ---- */

const char *policy_listen_kind_name(enum policy_listen_kind kind)
{
    switch (kind) {
    case POLICY_LISTEN_MX: return "mx";
    case POLICY_LISTEN_SUBMISSION: return "submission";
    case POLICY_LISTEN_SUBMISSIONS: return "submissions";
    }
    return "?";
}

static void default_hostname(char *out, size_t cap)
{
    if (gethostname(out, cap) != 0 || memchr(out, '\0', cap) == NULL || !valid_hostname(out))
        snprintf(out, cap, "localhost");
}

bool policy_config_defaults(struct policy_config *c)
{
    memset(c, 0, sizeof *c);
    default_hostname(c->hostname, sizeof c->hostname);
    c->listeners[0] = (struct policy_listener){.kind = POLICY_LISTEN_MX, .host = "127.0.0.1",
                                               .port = 2525};
    c->listeners[1] = (struct policy_listener){.kind = POLICY_LISTEN_SUBMISSION,
                                               .host = "127.0.0.1", .port = 2587};
    c->n_listeners = 2;
    for (size_t i = 0; i < c->n_listeners; i++)
        listener_defaults(&c->listeners[i]);
    snprintf(c->data_dir, sizeof c->data_dir, "./var/clearmta");
    snprintf(c->queue_dir, sizeof c->queue_dir, "./var/clearmta/queue");
    snprintf(c->maildir_root, sizeof c->maildir_root, "./var/clearmta/maildir");
    c->max_message_size = LIMIT_MESSAGE_SIZE_DEFAULT;
    c->max_recipients = LIMIT_RECIPIENTS_DEFAULT;
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
    for (size_t i = 0; i < c->n_domains; i++)
        free_users(&c->domains[i]);
    free(c->domains);
    c->domains = NULL;
    c->n_domains = 0;
    policy_users_free(c->users);
    c->users = NULL;
    free(c->routes);
    c->routes = NULL;
    c->n_routes = 0;
    explicit_bzero(&c->relayhost, sizeof c->relayhost);
    policy_limits_free(c);
}

/* Hands the default domains to the loader as line-0 entries, so config lines can replace them. */
static bool adopt_default_domains(struct loader *ld)
{
    struct policy_config *c = ld->c;
    bool ok = true;
    for (size_t i = 0; ok && i < c->n_domains; i++) {
        struct pending_domain *pd = new_domain(ld, c->domains[i].name);
        ok = pd != NULL;
        if (ok) {
            pd->d = c->domains[i];
            pd->line = 0;
            c->domains[i].users = NULL;
            c->domains[i].n_users = 0;
        }
    }
    policy_config_free(c); /* frees what was not adopted */
    return ok;
}

size_t policy_config_load_buffer(const char *name, const char *data, size_t len,
                                 struct policy_config *c, struct policy_problems *p)
{
    unsigned set_line[N_DIRECTIVES] = {0};
    struct loader ld = {.c = c, .p = p, .config_name = name, .file = name, .set_line = set_line};
    if (p != NULL) {
        p->count = 0;
        p->dropped = 0;
    }
    if (!policy_config_defaults(c) || !adopt_default_domains(&ld)) {
        policy_conf_oom(&ld);
    } else {
        each_line(&ld, name, data, len, config_line, NULL);
        finish_dirs(&ld);
        finish_tls(&ld);
        finish_routes(&ld);
        finish_retry(&ld);
    }
    policy_limits_finish(&ld);
    finish_domains(&ld);
    free(ld.domains);
    return ld.problems;
}

size_t policy_config_load(const char *path, struct policy_config *c, struct policy_problems *p)
{
    char err[160];
    size_t len;
    char *data = read_file(path, &len, err, sizeof err);
    if (data != NULL) {
        size_t n = policy_config_load_buffer(path, data, len, c, p);
        free(data);
        return n;
    }
    /* Still leave c holding the defaults, so callers handle both outcomes the same way. */
    size_t n = policy_config_load_buffer(path, "", 0, c, p);
    struct loader ld = {.c = c, .p = p, .file = path};
    policy_conf_problem(&ld, "%s", err);
    return n + ld.problems;
}
