/* auth/dmarc.c — DMARC evaluation: for each author domain, the policy record at
 * _dmarc.<domain>, else at the organizational domain's (libpsl), relaxed or strict alignment
 * of SPF and DKIM, the policy that applies (sp= for subdomains); of several author domains,
 * the strictest failing policy. RFC 7489 §3.1-3.2, §6.3-6.6. */
#include "auth/dmarc.h"

#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/tags.h"

static const psl_ctx_t *psl;

const char *auth_dmarc_result_name(enum auth_dmarc_result r)
{
    switch (r) {
    case AUTH_DMARC_NONE: return "none";
    case AUTH_DMARC_PASS: return "pass";
    case AUTH_DMARC_FAIL: return "fail";
    case AUTH_DMARC_TEMPERROR: return "temperror";
    case AUTH_DMARC_PERMERROR: return "permerror";
    }
    return "permerror";
}

const char *auth_dmarc_policy_name(enum auth_dmarc_policy p)
{
    switch (p) {
    case AUTH_DMARC_P_NONE: return "none";
    case AUTH_DMARC_P_QUARANTINE: return "quarantine";
    case AUTH_DMARC_P_REJECT: return "reject";
    case AUTH_DMARC_P_UNSET: break;
    }
    return "";
}

/* A p= or sp= value into *out; false when it is none of the three (absent: UNSET, true). */
static bool policy_of(const struct auth_tag *t, enum auth_dmarc_policy *out)
{
    *out = AUTH_DMARC_P_UNSET;
    if (t == NULL)
        return true;
    if (t->value_len == 4 && strncasecmp(t->value, "none", 4) == 0)
        *out = AUTH_DMARC_P_NONE;
    else if (t->value_len == 10 && strncasecmp(t->value, "quarantine", 10) == 0)
        *out = AUTH_DMARC_P_QUARANTINE;
    else if (t->value_len == 6 && strncasecmp(t->value, "reject", 6) == 0)
        *out = AUTH_DMARC_P_REJECT;
    return *out != AUTH_DMARC_P_UNSET;
}

static bool is_record(const char *rec, size_t len)
{
    size_t i = 0;
    while (i < len && (rec[i] == ' ' || rec[i] == '\t'))
        i++;
    if (len - i < 8 || strncmp(rec + i, "v=DMARC1", 8) != 0)
        return false;
    for (i += 8; i < len && (rec[i] == ' ' || rec[i] == '\t'); i++)
        ;
    return i == len || rec[i] == ';';
}

enum auth_err auth_dmarc_record_parse(const char *rec, size_t len, struct auth_dmarc_record *out)
{
    memset(out, 0, sizeof *out);
    out->pct = 100;
    struct auth_tags tags;
    if (!is_record(rec, len) || auth_tags_parse(rec, len, &tags) != AUTH_OK ||
        tags.n == 0 || tags.t[0].name_len != 1 || tags.t[0].name[0] != 'v')
        return AUTH_ERR_SYNTAX;
    const struct auth_tag *p = auth_tags_get(&tags, "p"), *sp = auth_tags_get(&tags, "sp"),
                          *adkim = auth_tags_get(&tags, "adkim"),
                          *aspf = auth_tags_get(&tags, "aspf"), *pct = auth_tags_get(&tags, "pct"),
                          *rua = auth_tags_get(&tags, "rua"), *ruf = auth_tags_get(&tags, "ruf");
    if (p == NULL || !policy_of(p, &out->p))
        return AUTH_ERR_SYNTAX; /* §6.6.3: without a valid p= there is no policy */
    if (!policy_of(sp, &out->sp))
        out->sp = AUTH_DMARC_P_UNSET; /* absent or unknown sp=: p= applies */
    out->strict_dkim = adkim != NULL && auth_tag_is(adkim, "s");
    out->strict_spf = aspf != NULL && auth_tag_is(aspf, "s");
    if (pct != NULL && pct->value_len > 0 && pct->value_len <= 3) {
        unsigned v = 0;
        bool ok = true;
        for (size_t i = 0; i < pct->value_len; i++) {
            ok = ok && pct->value[i] >= '0' && pct->value[i] <= '9';
            v = v * 10 + (unsigned)(pct->value[i] - '0');
        }
        if (ok && v <= 100)
            out->pct = v;
    }
    if (rua != NULL)
        auth_tag_squeeze(rua, out->rua, sizeof out->rua);
    if (ruf != NULL)
        auth_tag_squeeze(ruf, out->ruf, sizeof out->ruf);
    return AUTH_OK;
}

bool auth_dmarc_psl_load(void)
{
    if (psl == NULL)
        psl = psl_latest(NULL);
    if (psl == NULL)
        psl = psl_builtin();
    return psl != NULL;
}

void auth_dmarc_org_domain(const char *domain, char *out, size_t cap)
{
    char lower[256];
    size_t n = strnlen(domain, sizeof lower - 1);
    for (size_t i = 0; i < n; i++)
        lower[i] = (domain[i] >= 'A' && domain[i] <= 'Z') ? (char)(domain[i] + 32) : domain[i];
    lower[n] = '\0';
    if (n > 0 && lower[n - 1] == '.')
        lower[--n] = '\0';
    auth_dmarc_psl_load();
    const char *reg = psl ? psl_registrable_domain(psl, lower) : NULL;
    if (reg == NULL) { /* not under a known suffix: the last two labels (§3.2 fallback) */
        reg = lower;
        const char *last = strrchr(lower, '.');
        for (const char *p = lower; last != NULL && p < last; p++)
            if (*p == '.')
                reg = p + 1;
    }
    snprintf(out, cap, "%s", reg);
}

struct lookup {
    char name[300];
    bool answered;
    enum auth_dns_status st;
    bool found;
    struct auth_dmarc_record rec;
};

/* The evaluation of one author domain. */
struct author {
    char from[256], from_org[256];
    struct lookup at_from, at_org;
    enum auth_dmarc_result result;
    enum auth_dmarc_policy policy;
};

struct auth_dmarc {
    struct author *authors;
    size_t n_authors;
    char spf_domain[256];
    bool spf_pass;
    struct auth_dmarc_dkim *dkim;
    char (*dkim_domains)[256];
    size_t n_dkim;
    const struct author *decisive; /* whose result and policy apply; NULL: no author */
    enum auth_dmarc_result result;
};

struct auth_dmarc *auth_dmarc_new(const char *const *from_domains, size_t n_from,
                                  const char *spf_domain, bool spf_pass,
                                  const struct auth_dmarc_dkim *dkim, size_t n_dkim)
{
    struct auth_dmarc *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->authors = calloc(n_from ? n_from : 1, sizeof *d->authors);
    d->dkim = calloc(n_dkim ? n_dkim : 1, sizeof *d->dkim);
    d->dkim_domains = calloc(n_dkim ? n_dkim : 1, sizeof *d->dkim_domains);
    if (d->authors == NULL || d->dkim == NULL || d->dkim_domains == NULL) {
        auth_dmarc_free(d);
        return NULL;
    }
    for (size_t i = 0; i < n_dkim; i++) {
        snprintf(d->dkim_domains[i], sizeof d->dkim_domains[i], "%s", dkim[i].domain);
        d->dkim[i] = (struct auth_dmarc_dkim){d->dkim_domains[i], dkim[i].pass};
    }
    d->n_dkim = n_dkim;
    for (size_t i = 0; i < n_from; i++) {
        struct author *a = &d->authors[i];
        snprintf(a->from, sizeof a->from, "%s", from_domains[i] ? from_domains[i] : "");
        for (char *p = a->from; *p; p++)
            *p = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
        auth_dmarc_org_domain(a->from, a->from_org, sizeof a->from_org);
        snprintf(a->at_from.name, sizeof a->at_from.name, "_dmarc.%s", a->from);
        snprintf(a->at_org.name, sizeof a->at_org.name, "_dmarc.%s", a->from_org);
    }
    d->n_authors = n_from;
    snprintf(d->spf_domain, sizeof d->spf_domain, "%s", spf_domain ? spf_domain : "");
    d->spf_pass = spf_pass;
    return d;
}

void auth_dmarc_free(struct auth_dmarc *d)
{
    if (d == NULL)
        return;
    free(d->authors);
    free(d->dkim);
    free(d->dkim_domains);
    free(d);
}

static void answer_lookup(struct lookup *l, enum auth_dns_status st, const char *const *records,
                          const size_t *lens, size_t n)
{
    l->answered = true;
    l->st = st;
    l->found = false;
    size_t dmarc = 0;
    for (size_t i = 0; st == AUTH_DNS_OK && i < n; i++)
        if (is_record(records[i], lens[i]) && dmarc++ == 0)
            l->found = auth_dmarc_record_parse(records[i], lens[i], &l->rec) == AUTH_OK;
    if (dmarc > 1)
        l->found = false; /* §6.6.3: more than one record: none applies */
}

void auth_dmarc_answer(struct auth_dmarc *d, const char *name, enum auth_dns_status st,
                       const char *const *records, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < d->n_authors; i++) { /* authors may share a record to look up */
        struct author *a = &d->authors[i];
        if (strcasecmp(name, a->at_from.name) == 0)
            answer_lookup(&a->at_from, st, records, lens, n);
        if (strcasecmp(name, a->at_org.name) == 0)
            answer_lookup(&a->at_org, st, records, lens, n);
    }
}

static bool aligned(const char *a, const char *from, const char *from_org, bool strict)
{
    if (a == NULL || a[0] == '\0')
        return false;
    if (strict)
        return strcasecmp(a, from) == 0;
    char org[256];
    auth_dmarc_org_domain(a, org, sizeof org);
    return strcasecmp(org, from_org) == 0;
}

/* Evaluates one author domain on the answers it has: NEED names its next look-up. */
static enum auth_dmarc_step run_author(const struct auth_dmarc *d, struct author *a,
                                       const char **txt_name)
{
    a->policy = AUTH_DMARC_P_UNSET;
    if (a->from[0] == '\0' || strchr(a->from, '.') == NULL) {
        a->result = AUTH_DMARC_PERMERROR; /* no usable From: domain */
        return AUTH_DMARC_DONE;
    }
    const struct lookup *l = &a->at_from;
    if (!l->answered) {
        *txt_name = l->name;
        return AUTH_DMARC_NEED;
    }
    bool subdomain = strcmp(a->from, a->from_org) != 0;
    if (l->st == AUTH_DNS_TEMPFAIL) {
        a->result = AUTH_DMARC_TEMPERROR;
        return AUTH_DMARC_DONE;
    }
    if (!l->found && subdomain) {
        l = &a->at_org;
        if (!l->answered) {
            *txt_name = l->name;
            return AUTH_DMARC_NEED;
        }
        if (l->st == AUTH_DNS_TEMPFAIL) {
            a->result = AUTH_DMARC_TEMPERROR;
            return AUTH_DMARC_DONE;
        }
    }
    if (!l->found) {
        a->result = AUTH_DMARC_NONE;
        return AUTH_DMARC_DONE;
    }
    const struct auth_dmarc_record *r = &l->rec;
    bool pass = d->spf_pass && aligned(d->spf_domain, a->from, a->from_org, r->strict_spf);
    for (size_t i = 0; !pass && i < d->n_dkim; i++)
        pass = d->dkim[i].pass && aligned(d->dkim[i].domain, a->from, a->from_org,
                                          r->strict_dkim);
    a->result = pass ? AUTH_DMARC_PASS : AUTH_DMARC_FAIL;
    /* §6.3 sp=: the organizational domain's record speaks for its subdomains. */
    a->policy = l == &a->at_org && r->sp != AUTH_DMARC_P_UNSET ? r->sp : r->p;
    return AUTH_DMARC_DONE;
}

/* How much an author's outcome weighs when several authors are evaluated (§6.6.1: the
 * strictest policy among those that fail applies): a failure, the stricter its policy the
 * heavier; then a temporary error (a retry may fail), a permanent error, a pass, none. */
static unsigned weight(const struct author *a)
{
    switch (a->result) {
    case AUTH_DMARC_FAIL: return 10u + (unsigned)a->policy;
    case AUTH_DMARC_TEMPERROR: return 4;
    case AUTH_DMARC_PERMERROR: return 3;
    case AUTH_DMARC_PASS: return 2;
    case AUTH_DMARC_NONE: break;
    }
    return 1;
}

enum auth_dmarc_step auth_dmarc_run(struct auth_dmarc *d, const char **txt_name)
{
    d->decisive = NULL;
    d->result = AUTH_DMARC_PERMERROR; /* no author domain at all */
    for (size_t i = 0; i < d->n_authors; i++)
        if (run_author(d, &d->authors[i], txt_name) == AUTH_DMARC_NEED)
            return AUTH_DMARC_NEED;
    for (size_t i = 0; i < d->n_authors; i++)
        if (d->decisive == NULL || weight(&d->authors[i]) > weight(d->decisive))
            d->decisive = &d->authors[i];
    if (d->decisive != NULL)
        d->result = d->decisive->result;
    return AUTH_DMARC_DONE;
}

enum auth_dmarc_result auth_dmarc_result(const struct auth_dmarc *d)
{
    return d->result;
}

enum auth_dmarc_policy auth_dmarc_policy(const struct auth_dmarc *d)
{
    return d->decisive ? d->decisive->policy : AUTH_DMARC_P_UNSET;
}

const char *auth_dmarc_from_domain(const struct auth_dmarc *d)
{
    return d->decisive ? d->decisive->from : "";
}
