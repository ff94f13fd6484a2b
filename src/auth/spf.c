/* auth/spf.c — SPF check_host() on a cache of DNS answers: each run evaluates from the start
 * and stops at the first answer it lacks (the caller fetches it and runs again), so the
 * evaluator holds no I/O state and the limits are counted the same on every run.
 * RFC 7208 §4 (check_host, limits), §5 (mechanisms), §6 (modifiers), §8 (results). */
#include "auth/spf.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/spf_macro.h"

struct answer {
    char name[256];
    enum auth_dns_type type;
    enum auth_dns_status st;
    size_t n;
    char **recs;
    size_t *lens;
};

struct auth_spf {
    unsigned char ip[16];
    bool v6;
    char ip_i[80], ip_c[64], ptr_name[80];
    char sender[600], local[256], sender_domain[256], helo[256], receiver[256];
    long long now;
    struct answer *cache;
    size_t n_cache, cap_cache;
    /* per run */
    unsigned terms, voids;
    bool need;
    char need_name[256];
    enum auth_dns_type need_type;
    enum auth_spf_result result;
    const char *reason;
    char explanation[1024];
};

/* Internal outcomes of a step: a result, or "the run must stop for an answer". */
#define NEED (-1)
enum { NO = 0, YES = 1, TEMP = 2, PERM = 3 };

static bool lower_eq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

struct auth_spf *auth_spf_new(const char *ip, const char *helo, const char *mail_from,
                              const char *receiver, long long now)
{
    struct auth_spf *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (inet_pton(AF_INET, ip, s->ip) == 1) {
        s->v6 = false;
    } else if (inet_pton(AF_INET6, ip, s->ip) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        s->v6 = memcmp(s->ip, mapped, 12) != 0; /* ::ffff:a.b.c.d is checked as IPv4 */
        if (!s->v6)
            memmove(s->ip, s->ip + 12, 4);
    } else {
        free(s);
        return NULL;
    }
    if (s->v6) {
        size_t o = 0;
        for (int i = 0; i < 16; i++)
            /* Upper-case nibbles, as the RFC 7208 test suite expects; DNS ignores the case. */
            o += (size_t)snprintf(s->ip_i + o, sizeof s->ip_i - o, "%s%X.%X", i ? "." : "",
                                  s->ip[i] >> 4, s->ip[i] & 15);
        o = 0;
        for (int i = 15; i >= 0; i--)
            o += (size_t)snprintf(s->ptr_name + o, sizeof s->ptr_name - o, "%x.%x.",
                                  s->ip[i] & 15, s->ip[i] >> 4);
        snprintf(s->ptr_name + o, sizeof s->ptr_name - o, "ip6.arpa");
        inet_ntop(AF_INET6, s->ip, s->ip_c, sizeof s->ip_c);
    } else {
        snprintf(s->ip_i, sizeof s->ip_i, "%u.%u.%u.%u", s->ip[0], s->ip[1], s->ip[2], s->ip[3]);
        snprintf(s->ptr_name, sizeof s->ptr_name, "%u.%u.%u.%u.in-addr.arpa", s->ip[3], s->ip[2],
                 s->ip[1], s->ip[0]);
        memcpy(s->ip_c, s->ip_i, sizeof s->ip_c);
    }
    snprintf(s->helo, sizeof s->helo, "%s", helo ? helo : "");
    snprintf(s->receiver, sizeof s->receiver, "%s", receiver ? receiver : "unknown");
    s->now = now;
    const char *from = mail_from && mail_from[0] ? mail_from : NULL;
    const char *at = from ? strrchr(from, '@') : NULL;
    if (from == NULL || at == NULL) {
        /* §2.3/§4.3: no sender, or no domain in it: postmaster at the HELO name. */
        snprintf(s->local, sizeof s->local, "%s", from && at == NULL ? from : "postmaster");
        snprintf(s->sender_domain, sizeof s->sender_domain, "%s", s->helo);
    } else {
        size_t ll = (size_t)(at - from);
        snprintf(s->local, sizeof s->local, "%.*s", (int)(ll < 255 ? ll : 255), from);
        if (ll == 0)
            snprintf(s->local, sizeof s->local, "postmaster");
        snprintf(s->sender_domain, sizeof s->sender_domain, "%s", at + 1);
    }
    snprintf(s->sender, sizeof s->sender, "%s@%s", s->local, s->sender_domain);
    return s;
}

void auth_spf_free(struct auth_spf *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_cache; i++) {
        for (size_t j = 0; j < s->cache[i].n; j++)
            free(s->cache[i].recs[j]);
        free(s->cache[i].recs);
        free(s->cache[i].lens);
    }
    free(s->cache);
    free(s);
}

void auth_spf_answer(struct auth_spf *s, const char *name, enum auth_dns_type type,
                     enum auth_dns_status st, const char *const *records, const size_t *lens,
                     size_t n)
{
    if (s->n_cache == s->cap_cache) {
        size_t cap = s->cap_cache ? s->cap_cache * 2 : 16;
        struct answer *na = realloc(s->cache, cap * sizeof *na);
        if (na == NULL)
            return; /* asked again; the run gives temperror after AUTH_SPF_ANSWERS_MAX */
        s->cache = na;
        s->cap_cache = cap;
    }
    struct answer *a = &s->cache[s->n_cache];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = type;
    a->st = st;
    if (st == AUTH_DNS_OK && n > 0) {
        a->recs = calloc(n, sizeof *a->recs);
        a->lens = calloc(n, sizeof *a->lens);
        if (a->recs == NULL || a->lens == NULL) {
            free(a->recs);
            free(a->lens);
            a->st = AUTH_DNS_TEMPFAIL;
            a->recs = NULL;
            a->lens = NULL;
        }
        for (size_t i = 0; a->recs && i < n; i++) {
            a->recs[i] = malloc(lens[i] + 1);
            if (a->recs[i] == NULL)
                break;
            memcpy(a->recs[i], records[i], lens[i]);
            a->recs[i][lens[i]] = '\0';
            a->lens[i] = lens[i];
            a->n++;
        }
    } else if (st == AUTH_DNS_OK) {
        a->st = AUTH_DNS_NODATA;
    }
    s->n_cache++;
}

/* The cached answer for (name, type), or NULL after noting it as the one the run needs. */
static const struct answer *get(struct auth_spf *s, const char *name, enum auth_dns_type type)
{
    for (size_t i = 0; i < s->n_cache; i++)
        if (s->cache[i].type == type && lower_eq(s->cache[i].name, name))
            return &s->cache[i];
    s->need = true;
    snprintf(s->need_name, sizeof s->need_name, "%s", name);
    s->need_type = type;
    return NULL;
}

/* §4.3: labels of 1..63 octets, at most 253 in all, at least two labels. */
static bool domain_ok(const char *d)
{
    size_t n = strlen(d), label = 0, labels = 0;
    if (n > 0 && d[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (d[i] == '.') {
            if (label == 0)
                return false;
            labels++;
            label = 0;
        } else if (++label > 63) {
            return false;
        }
    }
    return label > 0 && labels >= 1;
}

static bool ip_in(const struct auth_spf *s, const unsigned char *net, bool v6, unsigned cidr)
{
    if (v6 != s->v6)
        return false;
    unsigned bytes = cidr / 8, bits = cidr % 8;
    if (memcmp(s->ip, net, bytes) != 0)
        return false;
    if (bits == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - bits));
    return (s->ip[bytes] & mask) == (net[bytes] & mask);
}

static bool addr_matches(const struct auth_spf *s, const char *text, unsigned c4, unsigned c6)
{
    unsigned char a[16];
    if (!s->v6 && inet_pton(AF_INET, text, a) == 1)
        return ip_in(s, a, false, c4);
    if (s->v6 && inet_pton(AF_INET6, text, a) == 1)
        return ip_in(s, a, true, c6);
    return false;
}

static bool name_within(const char *name, const char *domain)
{
    size_t n = strlen(name), d = strlen(domain);
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (d > 0 && domain[d - 1] == '.')
        d--;
    if (n == d)
        return strncasecmp(name, domain, n) == 0;
    return n > d && name[n - d - 1] == '.' && strncasecmp(name + n - d, domain, d) == 0;
}

/* §5.5: a PTR name of the client whose address records hold the client, preferring one
 * within target; DNS errors skip a name. *out "" when none. NEED or NO. */
static int validated_name(struct auth_spf *s, const char *target, bool any, char *out, size_t cap)
{
    out[0] = '\0';
    const struct answer *p = get(s, s->ptr_name, AUTH_DNS_PTR);
    if (p == NULL)
        return NEED;
    if (p->st != AUTH_DNS_OK)
        return NO;
    for (size_t i = 0; i < p->n && i < AUTH_SPF_NAMES_MAX; i++) {
        const char *name = p->recs[i];
        if (!domain_ok(name))
            continue;
        const struct answer *a = get(s, name, s->v6 ? AUTH_DNS_AAAA : AUTH_DNS_A);
        if (a == NULL)
            return NEED;
        bool valid = false;
        for (size_t j = 0; a->st == AUTH_DNS_OK && j < a->n && !valid; j++)
            valid = addr_matches(s, a->recs[j], 32, 128);
        if (!valid)
            continue;
        if (name_within(name, target)) {
            snprintf(out, cap, "%s", name);
            return YES;
        }
        if (any && out[0] == '\0')
            snprintf(out, cap, "%s", name);
    }
    return out[0] ? YES : NO;
}

/* A macro-string expanded for domain cur; %{p} computed on demand. For a domain-spec, names
 * over 253 octets lose left labels (§7.3). Returns YES, NEED, or PERM (bad macro). */
static int expand(struct auth_spf *s, const char *spec, size_t len, const char *cur, bool exp,
                  char *out, size_t cap)
{
    struct auth_spf_macro_values v = {.s = s->sender, .l = s->local, .o = s->sender_domain,
                                      .d = cur, .i = s->ip_i, .c = s->ip_c,
                                      .v = s->v6 ? "ip6" : "in-addr", .h = s->helo,
                                      .r = s->receiver, .t = s->now};
    size_t n = 0;
    bool needs_p = false;
    enum auth_err e = auth_spf_macro_expand(spec, len, &v, exp, out, cap, &n, &needs_p);
    if (e == AUTH_OK && needs_p) {
        char p[256];
        int r = validated_name(s, cur, true, p, sizeof p);
        if (r == NEED)
            return NEED;
        v.p = p[0] ? p : "unknown";
        e = auth_spf_macro_expand(spec, len, &v, exp, out, cap, &n, &needs_p);
    }
    if (e != AUTH_OK)
        return PERM;
    if (!exp) {
        if (n > 0 && out[n - 1] == '.')
            out[--n] = '\0';
        char *p = out;
        while (strlen(p) > 253 && strchr(p, '.') != NULL)
            p = strchr(p, '.') + 1;
        memmove(out, p, strlen(p) + 1);
    }
    return YES;
}

static int target(struct auth_spf *s, const struct auth_spf_term *t, const char *cur, char *out,
                  size_t cap)
{
    if (t->spec == NULL) {
        snprintf(out, cap, "%s", cur);
        return YES;
    }
    return expand(s, t->spec, t->spec_len, cur, false, out, cap);
}

/* An address look-up of a mechanism: NEED, TEMP, NO (void or no match), YES. */
static int addresses(struct auth_spf *s, const char *name, enum auth_dns_type type,
                     unsigned c4, unsigned c6, bool count_void, bool any)
{
    if (!domain_ok(name))
        return NO;
    const struct answer *a = get(s, name, type);
    if (a == NULL)
        return NEED;
    if (a->st == AUTH_DNS_TEMPFAIL)
        return TEMP;
    if (a->st != AUTH_DNS_OK || a->n == 0) {
        if (count_void && ++s->voids > AUTH_SPF_VOID_MAX)
            return PERM;
        return NO;
    }
    if (any)
        return YES;
    for (size_t i = 0; i < a->n; i++)
        if (addr_matches(s, a->recs[i], c4, c6))
            return YES;
    return NO;
}

static int check_host(struct auth_spf *s, const char *domain, int depth, bool top,
                      bool *explained);

static int mechanism(struct auth_spf *s, const struct auth_spf_term *t, const char *cur, int depth)
{
    char name[512];
    int r;
    enum auth_dns_type at = s->v6 ? AUTH_DNS_AAAA : AUTH_DNS_A;
    if (t->kind != AUTH_SPF_ALL && t->kind != AUTH_SPF_IP4 && t->kind != AUTH_SPF_IP6 &&
        ++s->terms > AUTH_SPF_DNS_TERMS_MAX) {
        s->reason = "more than 10 DNS-querying terms";
        return PERM;
    }
    switch (t->kind) {
    case AUTH_SPF_ALL:
        return YES;
    case AUTH_SPF_IP4:
        return ip_in(s, t->ip, false, t->cidr4) ? YES : NO;
    case AUTH_SPF_IP6:
        return ip_in(s, t->ip, true, t->cidr6) ? YES : NO;
    case AUTH_SPF_A:
        if ((r = target(s, t, cur, name, sizeof name)) != YES)
            return r;
        return addresses(s, name, at, t->cidr4, t->cidr6, true, false);
    case AUTH_SPF_EXISTS:
        if ((r = target(s, t, cur, name, sizeof name)) != YES)
            return r;
        return addresses(s, name, AUTH_DNS_A, 32, 128, true, true);
    case AUTH_SPF_MX: {
        if ((r = target(s, t, cur, name, sizeof name)) != YES)
            return r;
        if (!domain_ok(name))
            return NO;
        const struct answer *mx = get(s, name, AUTH_DNS_MX);
        if (mx == NULL)
            return NEED;
        if (mx->st == AUTH_DNS_TEMPFAIL)
            return TEMP;
        if (mx->st != AUTH_DNS_OK || mx->n == 0)
            return ++s->voids > AUTH_SPF_VOID_MAX ? PERM : NO;
        if (mx->n > AUTH_SPF_NAMES_MAX) {
            s->reason = "more than 10 MX names";
            return PERM;
        }
        for (size_t i = 0; i < mx->n; i++) {
            const char *host = strchr(mx->recs[i], ' ');
            host = host ? host + 1 : mx->recs[i];
            r = addresses(s, host, at, t->cidr4, t->cidr6, false, false);
            if (r != NO)
                return r;
        }
        return NO;
    }
    case AUTH_SPF_PTR: {
        if ((r = target(s, t, cur, name, sizeof name)) != YES)
            return r;
        char found[256];
        const struct answer *p = get(s, s->ptr_name, AUTH_DNS_PTR);
        if (p == NULL)
            return NEED;
        if (p->st == AUTH_DNS_NXDOMAIN || p->st == AUTH_DNS_NODATA)
            if (++s->voids > AUTH_SPF_VOID_MAX)
                return PERM;
        return validated_name(s, name, false, found, sizeof found);
    }
    case AUTH_SPF_INCLUDE: {
        if ((r = target(s, t, cur, name, sizeof name)) != YES)
            return r;
        bool explained = false;
        r = check_host(s, name, depth + 1, false, &explained);
        switch (r) {
        case NEED: return NEED;
        case AUTH_SPF_PASS: return YES;
        case AUTH_SPF_FAIL:
        case AUTH_SPF_SOFTFAIL:
        case AUTH_SPF_NEUTRAL: return NO;
        case AUTH_SPF_TEMPERROR: return TEMP;
        default:
            if (r == AUTH_SPF_NONE)
                s->reason = "include: the included domain has no SPF record";
            return PERM;
        }
    }
    default:
        return PERM;
    }
}

/* §6.2: the explanation of a fail, from exp= of the record that failed; any problem: "". */
static int explain(struct auth_spf *s, const struct auth_spf_term *exp, const char *cur)
{
    char name[512], text[1024];
    int r = expand(s, exp->spec, exp->spec_len, cur, false, name, sizeof name);
    if (r == NEED)
        return NEED;
    if (r != YES || !domain_ok(name))
        return YES;
    const struct answer *a = get(s, name, AUTH_DNS_TXT);
    if (a == NULL)
        return NEED;
    if (a->st != AUTH_DNS_OK || a->n != 1)
        return YES;
    r = expand(s, a->recs[0], a->lens[0], cur, true, text, sizeof text);
    if (r == NEED)
        return NEED;
    if (r == YES)
        for (const char *p = text; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                return YES; /* §6.2: US-ASCII only */
    if (r == YES)
        snprintf(s->explanation, sizeof s->explanation, "%s", text);
    return YES;
}

static int check_host(struct auth_spf *s, const char *domain, int depth, bool top,
                      bool *explained)
{
    if (depth > (int)AUTH_SPF_DNS_TERMS_MAX + 2)
        return AUTH_SPF_PERMERROR;
    if (!domain_ok(domain)) {
        if (top)
            s->reason = "the domain is not a valid multi-label name";
        return AUTH_SPF_NONE;
    }
    const struct answer *txt = get(s, domain, AUTH_DNS_TXT);
    if (txt == NULL)
        return NEED;
    if (txt->st == AUTH_DNS_TEMPFAIL) {
        s->reason = "DNS failure looking up the SPF record";
        return AUTH_SPF_TEMPERROR;
    }
    const char *rec = NULL;
    size_t rec_len = 0, found = 0;
    for (size_t i = 0; txt->st == AUTH_DNS_OK && i < txt->n; i++)
        if (auth_spf_is_record(txt->recs[i], txt->lens[i])) {
            rec = txt->recs[i];
            rec_len = txt->lens[i];
            found++;
        }
    if (found == 0) {
        s->reason = "no SPF record";
        return AUTH_SPF_NONE;
    }
    if (found > 1) {
        s->reason = "more than one SPF record";
        return AUTH_SPF_PERMERROR;
    }
    struct auth_spf_record r;
    enum auth_err e = auth_spf_record_parse(rec, rec_len, &r);
    if (e != AUTH_OK) {
        auth_spf_record_free(&r);
        s->reason = e == AUTH_ERR_NOMEM ? "out of memory" : "SPF record syntax error";
        return e == AUTH_ERR_NOMEM ? AUTH_SPF_TEMPERROR : AUTH_SPF_PERMERROR;
    }
    char cur[256];
    snprintf(cur, sizeof cur, "%s", domain);
    int out = AUTH_SPF_NEUTRAL;
    bool matched = false;
    for (size_t i = 0; i < r.n; i++) {
        int m = mechanism(s, &r.terms[i], cur, depth);
        if (m == NO)
            continue;
        matched = true;
        out = m == YES    ? (int)r.terms[i].qualifier
              : m == TEMP ? AUTH_SPF_TEMPERROR
              : m == NEED ? NEED
                          : AUTH_SPF_PERMERROR;
        if (m == YES && top)
            s->reason = "a mechanism matched";
        if (m == PERM && s->reason == NULL)
            s->reason = "permanent error in a mechanism";
        if (m == TEMP)
            s->reason = "DNS failure in a mechanism";
        break;
    }
    if (!matched && r.has_redirect) {
        char name[512];
        if (++s->terms > AUTH_SPF_DNS_TERMS_MAX) {
            s->reason = "more than 10 DNS-querying terms";
            out = AUTH_SPF_PERMERROR;
        } else {
            int t = expand(s, r.redirect.spec, r.redirect.spec_len, cur, false, name,
                           sizeof name);
            if (t == NEED)
                out = NEED;
            else if (t != YES)
                out = AUTH_SPF_PERMERROR;
            else {
                out = check_host(s, name, depth + 1, top, explained);
                *explained = true; /* §6.2: only the target's exp= explains a redirect */
                if (out == AUTH_SPF_NONE) {
                    s->reason = "redirect= names a domain without SPF record";
                    out = AUTH_SPF_PERMERROR;
                }
            }
        }
    } else if (!matched && top) {
        s->reason = "no mechanism matched";
    }
    if (out == AUTH_SPF_FAIL && top && !*explained && r.has_exp) {
        *explained = true; /* the exp= of the record that failed (a redirect's own) */
        if (explain(s, &r.exp, cur) == NEED)
            out = NEED;
    }
    auth_spf_record_free(&r);
    return out;
}

enum auth_spf_step auth_spf_run(struct auth_spf *s, const char **name, enum auth_dns_type *type)
{
    s->terms = 0;
    s->voids = 0;
    s->need = false;
    s->reason = NULL;
    s->explanation[0] = '\0';
    bool explained = false;
    int r = check_host(s, s->sender_domain, 0, true, &explained);
    if (r == NEED && s->n_cache >= AUTH_SPF_ANSWERS_MAX) {
        r = AUTH_SPF_TEMPERROR; /* cannot happen within the limits; a guard all the same */
        s->reason = "too many DNS look-ups";
    }
    if (r == NEED) {
        *name = s->need_name;
        *type = s->need_type;
        return AUTH_SPF_NEED;
    }
    s->result = (enum auth_spf_result)r;
    if (s->reason == NULL)
        s->reason = "";
    return AUTH_SPF_DONE;
}

enum auth_spf_result auth_spf_result(const struct auth_spf *s)
{
    return s->result;
}

const char *auth_spf_domain(const struct auth_spf *s)
{
    return s->sender_domain;
}

const char *auth_spf_explanation(const struct auth_spf *s)
{
    return s->explanation;
}

const char *auth_spf_reason(const struct auth_spf *s)
{
    return s->reason ? s->reason : "";
}

unsigned auth_spf_dns_terms(const struct auth_spf *s)
{
    return s->terms;
}
