/* policy/config_domains.c — the local domains of clearmta.conf(5): domain lines (users,
 * users-file, catch-all, lmtp) merged into the sorted domain/user tables recipients.c searches;
 * and the AUTH users file (users_file). */
#include "policy/config_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/array.h"
#include "policy/recipients.h"
#include "policy/users.h"

/* ---- domains ---- */

/* A user or catch-all mailbox as written in the config: a safe directory name that is also a
 * plain local part (quoting characters and '@' mean the line is not what the admin meant). */
static bool valid_user(const char *s)
{
    return policy_mailbox_name_safe(s, strlen(s)) && strpbrk(s, "@\"\\") == NULL;
}

static struct pending_domain *new_domain(struct loader *ld, const char *name)
{
    if (base_array_reserve((void **)&ld->domains, &ld->cap_domains, ld->n_domains + 1,
                           sizeof *ld->domains, 8) != BASE_OK)
        return NULL;
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
    if (base_array_reserve((void **)&pd->d.users, &pd->cap_users, pd->d.n_users + 1,
                           sizeof *pd->d.users, 16) != BASE_OK)
        return false;
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

static void load_users_file(struct loader *ld, struct pending_domain *pd, const char *path)
{
    char full[POLICY_PATH_CAP], err[160];
    size_t len;
    if (!policy_conf_resolve_path(ld->config_name, path, full, sizeof full)) {
        policy_conf_problem(ld, "users-file: path is longer than %u bytes", POLICY_PATH_CAP - 1);
        return;
    }
    char *data = policy_conf_read_file(full, 0, &len, err, sizeof err);
    if (data == NULL) {
        policy_conf_problem(ld, "users-file '%s': %s", policy_conf_show(full).s, err);
        return;
    }
    struct users_ctx uc = {pd, false};
    policy_conf_each_line(ld, full, data, len, users_line, &uc);
    free(data);
}

/* "unix:PATH" (resolved against the config file's directory) or "[HOST]:PORT", HOST a host
 * name or a numeric address: LMTP has no well-known port and no MX (RFC 2033 §5). */
static bool parse_lmtp(struct loader *ld, const char *text, struct policy_lmtp *out)
{
    if (strncmp(text, "unix:", 5) == 0) {
        char full[POLICY_PATH_CAP];
        if (text[5] == '\0' || !policy_conf_resolve_path(ld->config_name, text + 5, full,
                                                          sizeof full) ||
            strlen(full) > POLICY_LMTP_PATH_MAX)
            return false;
        memcpy(out->socket, full, strlen(full) + 1);
        out->set = true;
        return true;
    }
    char s[LIMIT_DOMAIN + 16];
    size_t len = strlen(text);
    if (len >= sizeof s || text[0] != '[')
        return false;
    memcpy(s, text, len + 1);
    char *close = strchr(s, ']');
    uint64_t port;
    if (close == NULL || close[1] != ':' || !policy_conf_number(close + 2, false, &port) ||
        port == 0 || port > 65535)
        return false;
    *close = '\0';
    const char *host = s + 1;
    if (!policy_conf_canonical_ip(host, out->host, sizeof out->host)) {
        if (!policy_conf_hostname_valid(host))
            return false;
        memcpy(out->host, host, strlen(host) + 1);
        policy_conf_lower(out->host);
    }
    out->port = (unsigned short)port;
    out->set = true;
    return true;
}

static void domain_lmtp(struct loader *ld, const char *canon, const char *target)
{
    struct policy_lmtp lmtp = {.set = false};
    if (!parse_lmtp(ld, target, &lmtp)) {
        policy_conf_problem(ld,
                "domain %s: lmtp '%s' is not unix:PATH (at most %u bytes) or [HOST]:PORT "
                "(port 1-65535)", canon, policy_conf_show(target).s, POLICY_LMTP_PATH_MAX);
        return;
    }
    struct pending_domain *pd = new_domain(ld, canon);
    if (pd == NULL)
        policy_conf_oom(ld);
    else
        pd->d.lmtp = lmtp;
}

void policy_domains_domain(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *name = policy_conf_token(cur), *mode = policy_conf_token(cur);
    char canon[LIMIT_DOMAIN + 1];
    if (name == NULL || mode == NULL) {
        policy_conf_problem(ld,
                "domain takes a name and users USER..., users-file PATH, catch-all MAILBOX "
                "or lmtp TARGET");
        return;
    }
    bool literal = name[0] == '[';
    if ((!literal && !policy_conf_hostname_valid(name)) ||
        !policy_domain_canonical(name, canon, sizeof canon)) {
        policy_conf_problem(ld, "domain '%s' is not a domain name or an address literal",
                policy_conf_show(name).s);
        return;
    }
    bool users = strcmp(mode, "users") == 0, lmtp = strcmp(mode, "lmtp") == 0;
    if (!users && !lmtp && strcmp(mode, "users-file") != 0 && strcmp(mode, "catch-all") != 0) {
        policy_conf_problem(ld, "domain %s: '%s' is not users, users-file, catch-all or lmtp",
                canon, policy_conf_show(mode).s);
        return;
    }
    char *first = policy_conf_token(cur);
    if (first == NULL || (!users && policy_conf_token(cur) != NULL)) {
        policy_conf_problem(ld, "domain %s: %s takes %s", canon, mode,
                users ? "at least one user" : "exactly one value");
        return;
    }
    if (lmtp) {
        domain_lmtp(ld, canon, first);
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

/* ---- the AUTH users file ---- */

/* Problems of the AUTH users file, under its own name and line numbers. */
static void users_file_problem(void *ctx, unsigned line, const char *message)
{
    struct loader *ld = ctx;
    ld->line = line;
    policy_conf_problem(ld, "%s", message);
}

void policy_domains_users_file(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    char err[POLICY_PATH_CAP + 160];
    size_t len;
    policy_conf_apply_file(ld, d, cur);
    const char *path = ld->c->users_file;
    if (path[0] == '\0' || ld->client) /* a client has no use for passwords */
        return;
    /* Password hashes help offline guessing, and an account owns sender addresses. */
    char *data = policy_conf_read_file(path, POLICY_MODE_SECRET, &len, err, sizeof err);
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
void policy_domains_finish(struct loader *ld)
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
            bool catch_all = first->d.kind == POLICY_DOMAIN_CATCH_ALL ||
                             pd[k].d.kind == POLICY_DOMAIN_CATCH_ALL;
            bool two_lmtp = first->d.lmtp.set && pd[k].d.lmtp.set;
            if (catch_all || two_lmtp) {
                ld->line = ld->anchor = pd[k].line;
                policy_conf_problem(ld,
                        "domain %s is already defined on line %u (%s is defined once)",
                        pd[k].d.name, first->line,
                        catch_all ? "a catch-all domain" : "the LMTP server of a domain");
                free_users(&pd[k].d);
            } else if (!merge_users(first, &pd[k])) {
                ld->line = ld->anchor = pd[k].line;
                policy_conf_oom(ld);
                free_users(&pd[k].d);
            } else if (pd[k].d.lmtp.set) {
                first->d.lmtp = pd[k].d.lmtp; /* users lines only narrow an LMTP domain */
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

bool policy_domains_adopt_defaults(struct loader *ld)
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

void policy_domains_free(struct policy_config *c)
{
    for (size_t i = 0; i < c->n_domains; i++)
        free_users(&c->domains[i]);
    free(c->domains);
    c->domains = NULL;
    c->n_domains = 0;
}
