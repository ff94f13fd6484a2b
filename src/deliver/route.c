/* deliver/route.c — routing a recipient domain (local, LMTP, static route, smart host, literal,
 * MX),
 * MX ordering with equal preferences shuffled, and the meaning of DNS outcomes.
 * RFC 5321 §5.1, RFC 7505, RFC 3463. */
#include "deliver/route.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/recipients.h"

const char *deliver_route_kind_name(enum deliver_route_kind kind)
{
    switch (kind) {
    case DELIVER_ROUTE_LOCAL: return "local";
    case DELIVER_ROUTE_STATIC: return "static";
    case DELIVER_ROUTE_RELAYHOST: return "relayhost";
    case DELIVER_ROUTE_LITERAL: return "literal";
    case DELIVER_ROUTE_MX: return "mx";
    case DELIVER_ROUTE_LMTP: return "lmtp";
    }
    return "?";
}

/* snprintf into a buffer the caller sized for the longest value; false if it did not fit. */
static bool fits(int n, size_t cap)
{
    return n >= 0 && (size_t)n < cap;
}

static bool route_hop(struct deliver_route *out, enum deliver_route_kind kind,
                      const struct policy_nexthop *hop)
{
    out->kind = kind;
    out->hop = hop;
    memcpy(out->lookup, hop->host, strlen(hop->host) + 1);
    /* Bracketed and MX-looked-up next hops to the same host are different destinations. */
    return fits(snprintf(out->destination, sizeof out->destination, "%s%s%s:%u",
                         hop->mx_lookup ? "" : "[", hop->host, hop->mx_lookup ? "" : "]",
                         (unsigned)hop->port),
                sizeof out->destination);
}

/* Named apart from SMTP destinations: an idle SMTP connection is never reused for LMTP. */
static bool route_lmtp(struct deliver_route *out, const struct policy_lmtp *lmtp)
{
    out->kind = DELIVER_ROUTE_LMTP;
    out->lmtp = lmtp;
    int n;
    if (lmtp->socket[0] != '\0') {
        n = snprintf(out->destination, sizeof out->destination, "lmtp:unix:%s", lmtp->socket);
    } else {
        memcpy(out->lookup, lmtp->host, strlen(lmtp->host) + 1);
        n = snprintf(out->destination, sizeof out->destination, "lmtp:[%s]:%u", lmtp->host,
                     (unsigned)lmtp->port);
    }
    return fits(n, sizeof out->destination);
}

/* "[192.0.2.1]" or "[ipv6:2001:db8::1]" (canonical form) → the bare address. */
static bool route_literal(struct deliver_route *out, const char *canon)
{
    size_t len = strlen(canon);
    const char *ip = canon + 1;
    if (len < 3 || canon[len - 1] != ']')
        return false;
    len -= 2;
    if (strncasecmp(ip, "ipv6:", 5) == 0) {
        ip += 5;
        len -= 5;
    }
    out->kind = DELIVER_ROUTE_LITERAL;
    out->hop = NULL;
    memcpy(out->lookup, ip, len);
    out->lookup[len] = '\0';
    return fits(snprintf(out->destination, sizeof out->destination, "[%s]:25", out->lookup),
                sizeof out->destination);
}

bool deliver_route_find(const struct policy_config *cfg, const char *domain,
                        struct deliver_route *out)
{
    char canon[LIMIT_DOMAIN + 1];
    struct deliver_route r = {.kind = DELIVER_ROUTE_LOCAL};
    size_t len = strlen(domain);
    if (len == 0 || len > LIMIT_DOMAIN || !policy_domain_canonical(domain, canon, sizeof canon))
        return false;
    const struct policy_route *st = NULL;
    const struct policy_lmtp *lmtp = NULL;
    bool ok = true;
    if ((lmtp = policy_domain_lmtp(cfg, canon)) != NULL)
        ok = route_lmtp(&r, lmtp);
    else if (policy_domain_is_local(cfg, canon))
        ; /* LOCAL, no next hop */
    else if ((st = policy_route_find(cfg, canon)) != NULL)
        ok = route_hop(&r, DELIVER_ROUTE_STATIC, &st->hop);
    else if (cfg->relayhost.set)
        ok = route_hop(&r, DELIVER_ROUTE_RELAYHOST, &cfg->relayhost.hop);
    else if (canon[0] == '[')
        ok = route_literal(&r, canon);
    else {
        r.kind = DELIVER_ROUTE_MX;
        memcpy(r.lookup, canon, strlen(canon) + 1);
        memcpy(r.destination, canon, strlen(canon) + 1);
    }
    if (ok)
        *out = r;
    return ok;
}

bool deliver_route_is_null_mx(const struct deliver_mx *records, size_t n)
{
    return n == 1 && (records[0].host[0] == '\0' || strcmp(records[0].host, ".") == 0);
}

/* splitmix64: small, seedable, good enough to spread load; not for secrets. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void deliver_route_order_mx(struct deliver_mx *records, size_t n, uint64_t random)
{
    /* Insertion sort: stable, and DNS answers are short (a 64 KiB answer at most). */
    for (size_t i = 1; i < n; i++) {
        struct deliver_mx key = records[i];
        size_t j = i;
        for (; j > 0 && records[j - 1].preference > key.preference; j--)
            records[j] = records[j - 1];
        records[j] = key;
    }
    uint64_t state = random;
    for (size_t start = 0, end; start < n; start = end) {
        for (end = start + 1; end < n && records[end].preference == records[start].preference;)
            end++;
        for (size_t i = end - 1; i > start; i--) { /* Fisher-Yates over [start, end) */
            size_t j = start + (size_t)(next_random(&state) % (uint64_t)(i - start + 1));
            struct deliver_mx tmp = records[i];
            records[i] = records[j];
            records[j] = tmp;
        }
    }
}

const char *deliver_dns_outcome_text(enum deliver_dns_outcome o)
{
    switch (o) {
#define X(name, text) case name: return text;
        DELIVER_DNS_OUTCOMES(X)
#undef X
    }
    return "unknown DNS outcome";
}

enum reply_outcome deliver_dns_outcome_row(enum deliver_dns_outcome o)
{
    switch (o) {
    case DELIVER_DNS_NULL_MX: return OUTCOME_NULL_MX;
    case DELIVER_DNS_NXDOMAIN: return OUTCOME_BAD_DOMAIN;
    case DELIVER_DNS_NO_HOST: return OUTCOME_BAD_DOMAIN;
    case DELIVER_DNS_MX_UNRESOLVED: return OUTCOME_MX_UNRESOLVED;
    case DELIVER_DNS_OK:
    case DELIVER_DNS_TEMPFAIL:
        break;
    }
    return OUTCOME_ROUTE_TEMPFAIL; /* unknown too: defer rather than lose mail */
}
