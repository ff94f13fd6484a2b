/* policy/config_limits.c — the Limit directives of clearmta.conf(5): sending plans and who is on
 * them (plan, plan_user, plan_network, default_plan), the counters backend and greylisting; and
 * the look-ups of a user's or a client address's plan. */
#include "policy/config_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/array.h"
#include "policy/users.h"

/* Redis's own default port, when counters redis names none. */
#define REDIS_PORT 6379u
#define COUNTERS_PREFIX_DEFAULT "clearmta:"

/* ---- option words ---- */

/* The value of "key=value" when opt has that key, else NULL. */
const char *policy_conf_option_value(const char *opt, const char *key)
{
    size_t len = strlen(key);
    return strncmp(opt, key, len) == 0 && opt[len] == '=' ? opt + len + 1 : NULL;
}

/* Marks an option of one line as given; a second time is reported (what: e.g. "plan trial"). */
bool policy_conf_option_once(struct loader *ld, const char *what, const char *key,
                             unsigned *seen, unsigned bit)
{
    if ((*seen & bit) == 0) {
        *seen |= bit;
        return true;
    }
    policy_conf_problem(ld, "%s: %s is given twice", what, key);
    return false;
}

bool policy_conf_number_option(struct loader *ld, const char *what, const char *key,
                               const char *v, bool size, uint64_t min, uint64_t max,
                               uint64_t *out)
{
    uint64_t n;
    if (policy_conf_number(v, size, &n) && n >= min && n <= max) {
        *out = n;
        return true;
    }
    policy_conf_problem(ld, "%s: %s takes %s %llu-%llu, not '%s'", what, key,
                        size ? "a size (k, M or G allowed)" : "a number",
                        (unsigned long long)min, (unsigned long long)max,
                        policy_conf_show(v).s);
    return false;
}

/* One of two words: no gives false, yes true. */
static bool word_option(struct loader *ld, const char *what, const char *key, const char *v,
                        const char *no, const char *yes, bool *out)
{
    if (strcmp(v, no) == 0 || strcmp(v, yes) == 0) {
        *out = strcmp(v, yes) == 0;
        return true;
    }
    policy_conf_problem(ld, "%s: %s takes %s or %s, not '%s'", what, key, no, yes,
                        policy_conf_show(v).s);
    return false;
}

bool policy_conf_switch(struct loader *ld, struct cursor *cur, const char *what,
                        const char *usage, policy_conf_option_fn *fn, void *ctx, bool *on)
{
    char *mode = policy_conf_token(cur);
    if (mode != NULL && strcmp(mode, "off") == 0) {
        if (policy_conf_token(cur) == NULL)
            *on = false;
        else
            policy_conf_problem(ld, "%s off takes no options", what);
        return false;
    }
    if (mode == NULL || strcmp(mode, "on") != 0) {
        policy_conf_problem(ld, "%s takes off, or on %s", what, usage);
        return false;
    }
    bool ok = true;
    unsigned seen = 0;
    for (char *opt = policy_conf_token(cur); opt != NULL; opt = policy_conf_token(cur))
        ok = fn(ld, opt, &seen, ctx) && ok; /* report every bad option */
    return ok;
}

/* ---- plans ---- */

const char *policy_plan_metric_name(enum policy_plan_metric m)
{
    switch (m) {
    case POLICY_PLAN_MESSAGES: return "messages";
    case POLICY_PLAN_RECIPIENTS: return "recipients";
    case POLICY_PLAN_BYTES: return "bytes";
    }
    return "?";
}

/* [a-z0-9_-]{1,32} in either case, stored lower case into out; reported when not. */
static bool read_plan_name(struct loader *ld, const char *keyword, const char *s,
                           char out[POLICY_PLAN_NAME_MAX + 1])
{
    size_t len = strlen(s);
    bool ok = len > 0 && len <= POLICY_PLAN_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-';
    if (!ok) {
        policy_conf_problem(ld, "%s: '%s' is not a plan name (1-%u letters, digits, '_' or '-')",
                            keyword, policy_conf_show(s).s, POLICY_PLAN_NAME_MAX);
        return false;
    }
    memcpy(out, s, len + 1);
    policy_conf_lower(out);
    return true;
}

static const struct policy_plan *find_plan(const struct policy_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_plans; i++)
        if (strcmp(c->plans[i].name, name) == 0)
            return &c->plans[i];
    return NULL;
}

/* "second", "minute", "hour", "day", or seconds written "Ns", 1 s to POLICY_PLAN_WINDOW_MAX. */
static bool parse_period(const char *s, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned seconds;
    } named[] = {{"second", 1}, {"minute", 60}, {"hour", 3600}, {"day", 86400}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (strcmp(s, named[i].name) == 0) {
            *out = named[i].seconds;
            return true;
        }
    }
    char num[24];
    uint64_t n;
    size_t len = strlen(s);
    if (len < 2 || len > sizeof num || s[len - 1] != 's')
        return false;
    memcpy(num, s, len - 1);
    num[len - 1] = '\0';
    if (!policy_conf_number(num, false, &n) || n == 0 || n > POLICY_PLAN_WINDOW_MAX)
        return false;
    *out = (unsigned)n;
    return true;
}

bool policy_conf_rate(const char *v, bool bytes, uint64_t max, uint64_t *n, unsigned *window)
{
    const char *slash = strchr(v, '/');
    char num[24];
    size_t len = slash != NULL ? (size_t)(slash - v) : 0;
    if (len == 0 || len >= sizeof num)
        return false;
    memcpy(num, v, len);
    num[len] = '\0';
    return policy_conf_number(num, bytes, n) && *n >= 1 && *n <= max &&
           parse_period(slash + 1, window);
}

/* "N/PERIOD" (bytes: SIZE/PERIOD) into lim; false when it is not one. */
static bool parse_limit(const char *v, struct policy_plan_limit *lim)
{
    bool bytes = lim->metric == POLICY_PLAN_BYTES;
    return policy_conf_rate(v, bytes, bytes ? POLICY_PLAN_BYTES_MAX : POLICY_PLAN_COUNT_MAX,
                            &lim->limit, &lim->window);
}

/* messages=, recipients= or bytes=: one more limit, one per window and metric. */
static void plan_limit(struct loader *ld, struct policy_plan *pl, enum policy_plan_metric m,
                       const char *v)
{
    const char *metric = policy_plan_metric_name(m);
    bool bytes = m == POLICY_PLAN_BYTES;
    struct policy_plan_limit lim = {.metric = m};
    if (!parse_limit(v, &lim)) {
        policy_conf_problem(ld, "plan %s: %s takes %s/PERIOD (%s 1-%llu; PERIOD second, minute, "
                            "hour, day or 1s-%us), not '%s'", pl->name, metric,
                            bytes ? "SIZE" : "N", bytes ? "SIZE with k, M or G," : "N",
                            bytes ? (unsigned long long)POLICY_PLAN_BYTES_MAX
                                  : (unsigned long long)POLICY_PLAN_COUNT_MAX,
                            POLICY_PLAN_WINDOW_MAX, policy_conf_show(v).s);
        return;
    }
    size_t same = 0;
    for (size_t i = 0; i < pl->n_limits; i++) {
        if (pl->limits[i].metric != m)
            continue;
        if (pl->limits[i].window == lim.window) {
            policy_conf_problem(ld, "plan %s: %s per %u s is already limited (one limit per "
                                "window)", pl->name, metric, lim.window);
            return;
        }
        same++;
    }
    if (same == POLICY_PLAN_WINDOWS_MAX) {
        policy_conf_problem(ld, "plan %s: more than %u %s limits (POLICY_PLAN_WINDOWS_MAX)",
                            pl->name, POLICY_PLAN_WINDOWS_MAX, metric);
        return;
    }
    pl->limits[pl->n_limits++] = lim;
}

enum { SEEN_MAX_RCPT = 1, SEEN_MAX_SIZE = 2, SEEN_OVER = 4 };

/* One KEY=VALUE word of a plan line; reported when bad. */
static void plan_setting(struct loader *ld, struct policy_plan *pl, unsigned *seen,
                         const char *opt)
{
    static const enum policy_plan_metric metrics[] = {POLICY_PLAN_MESSAGES,
                                                      POLICY_PLAN_RECIPIENTS, POLICY_PLAN_BYTES};
    char what[8 + POLICY_PLAN_NAME_MAX];
    const char *v;
    uint64_t n;
    snprintf(what, sizeof what, "plan %s", pl->name);
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        if ((v = policy_conf_option_value(opt, policy_plan_metric_name(metrics[i]))) != NULL) {
            plan_limit(ld, pl, metrics[i], v);
            return;
        }
    }
    if ((v = policy_conf_option_value(opt, "max-recipients")) != NULL) {
        if (policy_conf_option_once(ld, what, "max-recipients", seen, SEEN_MAX_RCPT) &&
            policy_conf_number_option(ld, what, "max-recipients", v, false, 1,
                                      LIMIT_RECIPIENTS_MAX, &n))
            pl->max_recipients = (unsigned)n;
    } else if ((v = policy_conf_option_value(opt, "max-message-size")) != NULL) {
        if (policy_conf_option_once(ld, what, "max-message-size", seen, SEEN_MAX_SIZE))
            policy_conf_number_option(ld, what, "max-message-size", v, true, 1,
                                      LIMIT_MESSAGE_SIZE_MAX, &pl->max_message_size);
    } else if ((v = policy_conf_option_value(opt, "over")) != NULL) {
        if (policy_conf_option_once(ld, what, "over", seen, SEEN_OVER))
            word_option(ld, what, "over", v, "temporary", "permanent", &pl->permanent);
    } else {
        policy_conf_problem(ld, "%s: unknown setting '%s' (messages=, recipients=, bytes=, "
                            "max-recipients=, max-message-size=, over=)", what,
                            policy_conf_show(opt).s);
    }
}

void policy_limits_plan(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    struct policy_config *c = ld->c;
    struct policy_plan pl = {.line = ld->line};
    char *name = policy_conf_token(cur);
    if (name == NULL) {
        policy_conf_problem(ld, "plan takes a name and limits: messages=N/PERIOD, "
                            "recipients=N/PERIOD, bytes=SIZE/PERIOD, max-recipients=N, "
                            "max-message-size=SIZE, over=temporary|permanent");
        return;
    }
    if (!read_plan_name(ld, "plan", name, pl.name))
        return;
    size_t before = ld->problems;
    unsigned seen = 0;
    for (char *opt = policy_conf_token(cur); opt != NULL; opt = policy_conf_token(cur))
        plan_setting(ld, &pl, &seen, opt);
    if (ld->problems == before && pl.n_limits == 0 && pl.max_recipients == 0 &&
        pl.max_message_size == 0)
        policy_conf_problem(ld, "plan %s sets no limit (messages=, recipients=, bytes=, "
                            "max-recipients= or max-message-size=)", pl.name);
    /* A plan with bad settings is still declared, so lines naming it add no more problems. */
    const struct policy_plan *other = find_plan(c, pl.name);
    if (other != NULL) {
        policy_conf_problem(ld, "plan %s is already defined on line %u", pl.name, other->line);
        return;
    }
    if (c->n_plans == POLICY_PLANS_MAX) {
        policy_conf_problem(ld, "plan: more than %u plans (POLICY_PLANS_MAX)", POLICY_PLANS_MAX);
        return;
    }
    struct policy_plan *np = realloc(c->plans, (c->n_plans + 1) * sizeof *np);
    if (np == NULL) {
        policy_conf_oom(ld);
        return;
    }
    c->plans = np;
    np[c->n_plans++] = pl;
}

void policy_limits_default_plan(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *v = policy_conf_token(cur);
    if (v == NULL || policy_conf_token(cur) != NULL) {
        policy_conf_problem(ld, "default_plan takes one plan name");
        return;
    }
    if (read_plan_name(ld, "default_plan", v, ld->c->default_plan))
        ld->limits.default_plan_line = ld->line;
}

/* ---- members: users and networks ---- */

void policy_limits_plan_user(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    struct pending_limits *lp = &ld->limits;
    char *user = policy_conf_token(cur), *plan = policy_conf_token(cur);
    struct pending_plan_user pu = {.line = ld->line};
    if (user == NULL || plan == NULL || policy_conf_token(cur) != NULL) {
        policy_conf_problem(ld, "plan_user takes a user (as in the users file) and a plan name");
        return;
    }
    size_t len = strlen(user);
    if (len >= sizeof pu.m.user || !policy_users_valid_name(user, len)) {
        policy_conf_problem(ld, "plan_user: '%s' is not a user name (as in the users file: "
                            "1-255 letters, digits, '.', '_', '-', '+' or '@')",
                            policy_conf_show(user).s);
        return;
    }
    if (!read_plan_name(ld, "plan_user", plan, pu.plan))
        return;
    memcpy(pu.m.user, user, len + 1);
    policy_conf_lower(pu.m.user);
    if (lp->n_users == POLICY_PLAN_MEMBERS_MAX) {
        policy_conf_problem(ld, "plan_user: more than %u lines (POLICY_PLAN_MEMBERS_MAX)",
                            POLICY_PLAN_MEMBERS_MAX);
        return;
    }
    if (base_array_reserve((void **)&lp->users, &lp->cap_users, lp->n_users + 1,
                           sizeof *lp->users, 16) != BASE_OK) {
        policy_conf_oom(ld);
        return;
    }
    lp->users[lp->n_users++] = pu;
}

static size_t family_bytes(int family)
{
    return family == AF_INET ? 4 : 16;
}

/* Clears the host bits of a network; true when some were set. */
static bool clear_host_bits(struct policy_plan_network *n)
{
    bool set = false;
    for (size_t i = 0; i < family_bytes(n->family); i++) {
        unsigned bits = n->prefix >= 8 * (i + 1) ? 8 : n->prefix > 8 * i ? n->prefix - 8 * i : 0;
        unsigned char mask = (unsigned char)(0xff00u >> bits);
        set = set || (n->addr[i] & ~mask) != 0;
        n->addr[i] &= mask;
    }
    return set;
}

/* "ADDRESS/PREFIX", IPv4 or IPv6. An IPv4-mapped IPv6 network (::ffff:a.b.c.d/96 or longer)
 * is stored as the IPv4 network it maps, as clients' mapped addresses count as IPv4. */
static bool parse_network(const char *text, struct policy_plan_network *n)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char s[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : 0;
    uint64_t prefix;
    if (len == 0 || len >= sizeof s)
        return false;
    memcpy(s, text, len);
    s[len] = '\0';
    n->family = strchr(s, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(n->family, s, n->addr) != 1 || !policy_conf_number(slash + 1, false, &prefix) ||
        prefix > 8 * family_bytes(n->family))
        return false;
    n->prefix = (unsigned)prefix;
    if (n->family == AF_INET6 && n->prefix >= 96 && memcmp(n->addr, mapped, 12) == 0) {
        memmove(n->addr, n->addr + 12, 4);
        memset(n->addr + 4, 0, 12);
        n->family = AF_INET;
        n->prefix -= 96;
    }
    return true;
}

/* "192.0.2.0/24" or "2001:db8::/32". */
static const char *network_text(const struct policy_plan_network *n, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (inet_ntop(n->family, n->addr, ip, sizeof ip) == NULL)
        snprintf(ip, sizeof ip, "?");
    snprintf(out, cap, "%s/%u", ip, n->prefix);
    return out;
}

void policy_limits_plan_network(struct loader *ld, const struct directive *d,
                                struct cursor *cur)
{
    (void)d;
    struct pending_limits *lp = &ld->limits;
    char *cidr = policy_conf_token(cur), *plan = policy_conf_token(cur);
    struct pending_plan_network pn = {.line = ld->line};
    char text[INET6_ADDRSTRLEN + 8];
    if (cidr == NULL || plan == NULL || policy_conf_token(cur) != NULL) {
        policy_conf_problem(ld, "plan_network takes a network (ADDRESS/PREFIX) and a plan name");
        return;
    }
    if (!parse_network(cidr, &pn.m)) {
        policy_conf_problem(ld, "plan_network: '%s' is not a network (IPv4 ADDRESS/0-32 or IPv6 "
                            "ADDRESS/0-128)", policy_conf_show(cidr).s);
        return;
    }
    if (clear_host_bits(&pn.m)) {
        policy_conf_problem(ld, "plan_network: %s has host bits set (the network is %s)",
                            policy_conf_show(cidr).s, network_text(&pn.m, text, sizeof text));
        return;
    }
    if (!read_plan_name(ld, "plan_network", plan, pn.plan))
        return;
    if (lp->n_networks == POLICY_PLAN_MEMBERS_MAX) {
        policy_conf_problem(ld, "plan_network: more than %u lines (POLICY_PLAN_MEMBERS_MAX)",
                            POLICY_PLAN_MEMBERS_MAX);
        return;
    }
    if (base_array_reserve((void **)&lp->networks, &lp->cap_networks, lp->n_networks + 1,
                           sizeof *lp->networks, 16) != BASE_OK) {
        policy_conf_oom(ld);
        return;
    }
    lp->networks[lp->n_networks++] = pn;
}

/* ---- counters and greylisting ---- */

enum { SEEN_FAIL = 1, SEEN_TIMEOUT = 2, SEEN_PREFIX = 4 };

static bool counters_option(struct loader *ld, const char *opt, unsigned *seen,
                            struct policy_counters_config *cc)
{
    static const char what[] = "counters redis";
    const char *v;
    uint64_t n;
    if ((v = policy_conf_option_value(opt, "fail")) != NULL)
        return policy_conf_option_once(ld, what, "fail", seen, SEEN_FAIL) &&
               word_option(ld, what, "fail", v, "open", "closed", &cc->fail_closed);
    if ((v = policy_conf_option_value(opt, "timeout")) != NULL) {
        if (!policy_conf_option_once(ld, what, "timeout", seen, SEEN_TIMEOUT) ||
            !policy_conf_number_option(ld, what, "timeout", v, false, 1,
                                       POLICY_COUNTERS_TIMEOUT_MAX, &n))
            return false;
        cc->timeout_ms = (unsigned)n;
        return true;
    }
    if ((v = policy_conf_option_value(opt, "prefix")) != NULL) {
        size_t len = strlen(v);
        bool ok = len > 0 && len < sizeof cc->prefix;
        for (size_t i = 0; ok && i < len; i++)
            ok = v[i] > ' ' && v[i] < 0x7f; /* printable ASCII: keys stay readable in redis-cli */
        if (!policy_conf_option_once(ld, what, "prefix", seen, SEEN_PREFIX))
            return false;
        if (!ok) {
            policy_conf_problem(ld, "%s: prefix takes 1-%zu printable ASCII characters, not "
                                "'%s'", what, sizeof cc->prefix - 1, policy_conf_show(v).s);
            return false;
        }
        memcpy(cc->prefix, v, len + 1);
        return true;
    }
    policy_conf_problem(ld, "%s: unknown option '%s' (fail=open|closed, timeout=MS, prefix=P)",
                        what, policy_conf_show(opt).s);
    return false;
}

void policy_limits_counters(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    char *kind = policy_conf_token(cur);
    if (kind != NULL && strcmp(kind, "memory") == 0) {
        if (policy_conf_token(cur) != NULL)
            policy_conf_problem(ld, "counters memory takes no options");
        else
            ld->c->counters.kind = POLICY_COUNTERS_MEMORY;
        return;
    }
    char *server = kind != NULL && strcmp(kind, "redis") == 0 ? policy_conf_token(cur) : NULL;
    if (server == NULL) {
        policy_conf_problem(ld, "counters takes memory, or redis HOST:PORT [fail=open|closed] "
                            "[timeout=MS] [prefix=P]");
        return;
    }
    struct policy_counters_config cc = ld->c->counters;
    if (!policy_conf_ip_port(server, REDIS_PORT, cc.server, sizeof cc.server)) {
        policy_conf_problem(ld, "counters redis: '%s' is not HOST:PORT (numeric IPv4, or IPv6 in "
                            "brackets; port 1-65535)", policy_conf_show(server).s);
        return;
    }
    bool ok = true;
    unsigned seen = 0;
    for (char *opt = policy_conf_token(cur); opt != NULL; opt = policy_conf_token(cur))
        ok = counters_option(ld, opt, &seen, &cc) && ok; /* report every bad option */
    if (ok) {
        cc.kind = POLICY_COUNTERS_REDIS;
        ld->c->counters = cc;
    }
}

enum { SEEN_DELAY = 1, SEEN_EXPIRE = 2, SEEN_NETWORKS = 4 };

/* networks=V4/V6: the prefix lengths of a triplet's client network. */
static bool greylist_networks(struct loader *ld, const char *v, struct policy_greylist_config *g)
{
    const char *slash = strchr(v, '/');
    char num[8];
    uint64_t v4, v6;
    size_t len = slash != NULL ? (size_t)(slash - v) : 0;
    bool ok = len > 0 && len < sizeof num;
    if (ok) {
        memcpy(num, v, len);
        num[len] = '\0';
        ok = policy_conf_number(num, false, &v4) && v4 >= 8 && v4 <= 32 &&
             policy_conf_number(slash + 1, false, &v6) && v6 >= 16 && v6 <= 128;
    }
    if (!ok) {
        policy_conf_problem(ld, "greylisting: networks takes V4/V6 prefix lengths (8-32/16-128, "
                            "e.g. 24/64), not '%s'", policy_conf_show(v).s);
        return false;
    }
    g->v4_prefix = (unsigned)v4;
    g->v6_prefix = (unsigned)v6;
    return true;
}

static bool greylist_option(struct loader *ld, const char *opt, unsigned *seen, void *ctx)
{
    struct policy_greylist_config *g = ctx;
    static const char what[] = "greylisting";
    const char *v;
    uint64_t n;
    if ((v = policy_conf_option_value(opt, "delay")) != NULL) {
        if (!policy_conf_option_once(ld, what, "delay", seen, SEEN_DELAY) ||
            !policy_conf_number_option(ld, what, "delay", v, false, 1,
                                       POLICY_GREYLIST_DELAY_MAX, &n))
            return false;
        g->delay = (unsigned)n;
        return true;
    }
    if ((v = policy_conf_option_value(opt, "expire")) != NULL) {
        if (!policy_conf_option_once(ld, what, "expire", seen, SEEN_EXPIRE) ||
            !policy_conf_number_option(ld, what, "expire", v, false, 1,
                                       POLICY_GREYLIST_EXPIRE_MAX, &n))
            return false;
        g->expire = (unsigned)n;
        return true;
    }
    if ((v = policy_conf_option_value(opt, "networks")) != NULL)
        return policy_conf_option_once(ld, what, "networks", seen, SEEN_NETWORKS) &&
               greylist_networks(ld, v, g);
    policy_conf_problem(ld, "%s: unknown option '%s' (delay=SECONDS, expire=SECONDS, "
                        "networks=V4/V6)", what, policy_conf_show(opt).s);
    return false;
}

void policy_limits_greylisting(struct loader *ld, const struct directive *d, struct cursor *cur)
{
    (void)d;
    struct policy_greylist_config g = ld->c->greylist;
    if (!policy_conf_switch(ld, cur, "greylisting",
                            "[delay=SECONDS] [expire=SECONDS] [networks=V4/V6]", greylist_option,
                            &g, &ld->c->greylist.on))
        return;
    if (g.expire <= g.delay) {
        policy_conf_problem(ld, "greylisting: expire (%u) must be longer than delay (%u), or no "
                            "retry could pass", g.expire, g.delay);
        return;
    }
    g.on = true;
    ld->c->greylist = g;
}

/* ---- after the whole file ---- */

/* The index of plan name, or reported at line (who: e.g. "plan_user alice"). */
static bool resolve_plan(struct loader *ld, const char *who, const char *name, unsigned line,
                         size_t *index)
{
    const struct policy_plan *p = find_plan(ld->c, name);
    if (p != NULL) {
        *index = (size_t)(p - ld->c->plans);
        return true;
    }
    ld->line = ld->anchor = line;
    policy_conf_problem(ld, "%s: no plan named '%s'", who, name);
    return false;
}

static int pending_user_cmp(const void *a, const void *b)
{
    const struct pending_plan_user *x = a, *y = b;
    int c = strcmp(x->m.user, y->m.user);
    return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

/* Sorts plan_user lines by user for bisection; each user once, with a plan that exists. */
static void finish_users(struct loader *ld)
{
    struct pending_limits *lp = &ld->limits;
    struct policy_config *c = ld->c;
    char who[16 + LIMIT_PATH];
    if (lp->n_users == 0)
        return;
    qsort(lp->users, lp->n_users, sizeof lp->users[0], pending_user_cmp);
    c->plan_users = malloc(lp->n_users * sizeof c->plan_users[0]);
    if (c->plan_users == NULL) {
        ld->line = ld->anchor = lp->users[0].line;
        policy_conf_oom(ld);
        return;
    }
    for (size_t i = 0, first = 0; i < lp->n_users; i++) {
        struct pending_plan_user *pu = &lp->users[i];
        snprintf(who, sizeof who, "plan_user %s", pu->m.user);
        if (i > 0 && strcmp(pu->m.user, lp->users[first].m.user) == 0) {
            ld->line = ld->anchor = pu->line;
            policy_conf_problem(ld, "%s is already on line %u", who, lp->users[first].line);
            continue;
        }
        first = i;
        if (c->users != NULL && policy_users_name(c->users, pu->m.user) == NULL) {
            ld->line = ld->anchor = pu->line;
            policy_conf_problem(ld, "%s: no such user in users_file", who);
        } else if (resolve_plan(ld, who, pu->plan, pu->line, &pu->m.plan)) {
            c->plan_users[c->n_plan_users++] = pu->m;
        }
    }
}

/* Longest prefix first, so the first network that holds an address is its longest match. */
static int pending_network_cmp(const void *a, const void *b)
{
    const struct pending_plan_network *x = a, *y = b;
    if (x->m.prefix != y->m.prefix)
        return x->m.prefix > y->m.prefix ? -1 : 1;
    if (x->m.family != y->m.family)
        return x->m.family < y->m.family ? -1 : 1;
    int c = memcmp(x->m.addr, y->m.addr, sizeof x->m.addr);
    return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

static bool same_network(const struct policy_plan_network *x, const struct policy_plan_network *y)
{
    return x->family == y->family && x->prefix == y->prefix &&
           memcmp(x->addr, y->addr, sizeof x->addr) == 0;
}

static void finish_networks(struct loader *ld)
{
    struct pending_limits *lp = &ld->limits;
    struct policy_config *c = ld->c;
    char who[16 + INET6_ADDRSTRLEN + 8], text[INET6_ADDRSTRLEN + 8];
    if (lp->n_networks == 0)
        return;
    qsort(lp->networks, lp->n_networks, sizeof lp->networks[0], pending_network_cmp);
    c->plan_networks = malloc(lp->n_networks * sizeof c->plan_networks[0]);
    if (c->plan_networks == NULL) {
        ld->line = ld->anchor = lp->networks[0].line;
        policy_conf_oom(ld);
        return;
    }
    for (size_t i = 0, first = 0; i < lp->n_networks; i++) {
        struct pending_plan_network *pn = &lp->networks[i];
        snprintf(who, sizeof who, "plan_network %s", network_text(&pn->m, text, sizeof text));
        if (i > 0 && same_network(&pn->m, &lp->networks[first].m)) {
            ld->line = ld->anchor = pn->line;
            policy_conf_problem(ld, "%s is already on line %u", who, lp->networks[first].line);
            continue;
        }
        first = i;
        if (resolve_plan(ld, who, pn->plan, pn->line, &pn->m.plan))
            c->plan_networks[c->n_plan_networks++] = pn->m;
    }
}

/* A plan can lower the global per-message limits, not raise them: the session enforces the
 * global ones (and advertises SIZE) before any plan is known. */
static void check_plans(struct loader *ld)
{
    const struct policy_config *c = ld->c;
    for (size_t i = 0; i < c->n_plans; i++) {
        const struct policy_plan *p = &c->plans[i];
        ld->line = ld->anchor = p->line;
        if (p->max_recipients > c->max_recipients)
            policy_conf_problem(ld, "plan %s: max-recipients %u is above max_recipients %u (a "
                                "plan can only lower it)", p->name, p->max_recipients,
                                c->max_recipients);
        if (p->max_message_size > c->max_message_size)
            policy_conf_problem(ld, "plan %s: max-message-size %llu is above max_message_size "
                                "%llu (a plan can only lower it)", p->name,
                                (unsigned long long)p->max_message_size,
                                (unsigned long long)c->max_message_size);
    }
}

void policy_limits_finish(struct loader *ld)
{
    struct pending_limits *lp = &ld->limits;
    size_t index;
    if (lp->default_plan_line != 0)
        resolve_plan(ld, "default_plan", ld->c->default_plan, lp->default_plan_line, &index);
    finish_users(ld);
    finish_networks(ld);
    check_plans(ld);
    free(lp->users);
    free(lp->networks);
    memset(lp, 0, sizeof *lp);
}

/* ---- defaults, release, look-ups ---- */

void policy_limits_defaults(struct policy_config *c)
{
    c->counters.kind = POLICY_COUNTERS_MEMORY;
    c->counters.fail_closed = false;
    c->counters.timeout_ms = POLICY_COUNTERS_TIMEOUT_DEFAULT;
    snprintf(c->counters.prefix, sizeof c->counters.prefix, "%s", COUNTERS_PREFIX_DEFAULT);
    c->greylist.on = false;
    c->greylist.delay = POLICY_GREYLIST_DELAY_DEFAULT;
    c->greylist.expire = POLICY_GREYLIST_EXPIRE_DEFAULT;
    c->greylist.v4_prefix = POLICY_GREYLIST_V4_PREFIX_DEFAULT;
    c->greylist.v6_prefix = POLICY_GREYLIST_V6_PREFIX_DEFAULT;
}

void policy_limits_free(struct policy_config *c)
{
    free(c->plans);
    c->plans = NULL;
    c->n_plans = 0;
    free(c->plan_users);
    c->plan_users = NULL;
    c->n_plan_users = 0;
    free(c->plan_networks);
    c->plan_networks = NULL;
    c->n_plan_networks = 0;
    c->default_plan[0] = '\0';
}

static int plan_user_cmp(const void *a, const void *b)
{
    return strcmp(((const struct policy_plan_user *)a)->user,
                  ((const struct policy_plan_user *)b)->user);
}

const struct policy_plan *policy_plan_for_user(const struct policy_config *c, const char *user)
{
    struct policy_plan_user probe;
    size_t len = user != NULL ? strlen(user) : sizeof probe.user;
    if (len < sizeof probe.user && c->n_plan_users > 0) {
        memcpy(probe.user, user, len + 1);
        policy_conf_lower(probe.user);
        const struct policy_plan_user *pu = bsearch(&probe, c->plan_users, c->n_plan_users,
                                                    sizeof probe, plan_user_cmp);
        if (pu != NULL)
            return &c->plans[pu->plan];
    }
    return c->default_plan[0] != '\0' ? find_plan(c, c->default_plan) : NULL;
}

static bool in_network(const unsigned char *addr, const struct policy_plan_network *n)
{
    size_t whole = n->prefix / 8;
    unsigned rest = n->prefix % 8;
    if (memcmp(addr, n->addr, whole) != 0)
        return false;
    return rest == 0 || (addr[whole] & (unsigned char)(0xff00u >> rest)) == n->addr[whole];
}

const struct policy_plan_network *policy_plan_network_for_address(const struct policy_config *c,
                                                                  const struct sockaddr *sa)
{
    unsigned char addr[16];
    int family = AF_INET;
    if (sa == NULL || c->n_plan_networks == 0)
        return NULL;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        memcpy(addr, &in.sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        bool mapped = IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr);
        memcpy(addr, in6.sin6_addr.s6_addr + (mapped ? 12 : 0), mapped ? 4 : 16);
        family = mapped ? AF_INET : AF_INET6;
    } else {
        return NULL;
    }
    const struct policy_plan_network *best = NULL; /* the longest prefix, in any order */
    for (size_t i = 0; i < c->n_plan_networks; i++) {
        const struct policy_plan_network *n = &c->plan_networks[i];
        if (n->family == family && in_network(addr, n) && (!best || n->prefix > best->prefix))
            best = n;
    }
    return best;
}

const struct policy_plan *policy_plan_for_address(const struct policy_config *c,
                                                  const struct sockaddr *sa)
{
    const struct policy_plan_network *n = policy_plan_network_for_address(c, sa);
    return n != NULL ? &c->plans[n->plan] : NULL;
}
