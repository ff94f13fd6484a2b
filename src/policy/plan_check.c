/* policy/plan_check.c — plan accounts, counter keys and the wording of limit refusals; pure
 * functions that server/limits.c feeds with counters results (issue "Limit"). */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/counters.h"
#include "policy/plan_check.h"

/* An IP address as family and bytes; IPv4-mapped IPv6 becomes IPv4 so that both spellings of
 * one client share its counters. */
struct ip {
    int family;
    unsigned char addr[16];
};

static bool ip_of(const struct sockaddr *sa, struct ip *ip)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(ip, 0, sizeof *ip);
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        ip->family = AF_INET;
        memcpy(ip->addr, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    if (memcmp(&in6->sin6_addr, mapped, sizeof mapped) == 0) {
        ip->family = AF_INET;
        memcpy(ip->addr, (const unsigned char *)&in6->sin6_addr + 12, 4);
    } else {
        ip->family = AF_INET6;
        memcpy(ip->addr, &in6->sin6_addr, 16);
    }
    return true;
}

static unsigned family_bits(int family)
{
    return family == AF_INET ? 32 : 128;
}

/* Zeroes the host bits beyond prefix. */
static void mask(unsigned char *addr, unsigned bits, unsigned prefix)
{
    for (unsigned i = 0; i < bits / 8; i++) {
        unsigned keep = prefix > i * 8 ? prefix - i * 8 : 0;
        if (keep < 8)
            addr[i] &= (unsigned char)(0xff00u >> keep);
    }
}

/* "192.0.2.0/24" from a masked address. */
static size_t cidr_text(char *out, size_t cap, int family, const unsigned char *addr,
                        unsigned prefix)
{
    char text[INET6_ADDRSTRLEN];
    if (!inet_ntop(family, addr, text, sizeof text))
        return 0;
    int n = snprintf(out, cap, "%s/%u", text, prefix);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void account_clear(struct policy_account *a)
{
    a->plan = NULL;
    a->name[0] = '\0';
}

void policy_account_for_user(const struct policy_config *c, const char *user,
                             struct policy_account *a)
{
    account_clear(a);
    size_t n = user ? strlen(user) : 0;
    if (n == 0 || n >= sizeof a->name)
        return;
    for (size_t i = 0; i < n; i++)
        a->name[i] = (char)tolower((unsigned char)user[i]);
    a->name[n] = '\0';
    a->plan = policy_plan_for_user(c, a->name);
    if (!a->plan)
        a->name[0] = '\0';
}

/* The counter is keyed by the plan_network itself: every client of one network shares one
 * count. */
void policy_account_for_address(const struct policy_config *c, const struct sockaddr *sa,
                                struct policy_account *a)
{
    account_clear(a);
    const struct policy_plan_network *best = policy_plan_network_for_address(c, sa);
    if (!best || best->plan >= c->n_plans)
        return;
    a->name[0] = '[';
    size_t n = cidr_text(a->name + 1, sizeof a->name - 2, best->family, best->addr, best->prefix);
    if (n == 0) {
        a->name[0] = '\0';
        return;
    }
    a->name[n + 1] = ']';
    a->name[n + 2] = '\0';
    a->plan = &c->plans[best->plan];
}

static const char *metric_key(enum policy_plan_metric m)
{
    switch (m) {
    case POLICY_PLAN_MESSAGES: return "msg";
    case POLICY_PLAN_RECIPIENTS: return "rcpt";
    case POLICY_PLAN_BYTES: return "bytes";
    }
    return "other";
}

static size_t fits_key(int n, size_t cap)
{
    if (n <= 0 || (size_t)n >= cap || (size_t)n > POLICY_COUNTERS_KEY_MAX)
        return 0;
    return (size_t)n;
}

size_t policy_plan_key(char *out, size_t cap, const struct policy_plan_limit *l,
                       const char *account)
{
    int n = snprintf(out, cap, "plan:%s:%u:%s", metric_key(l->metric), l->window, account);
    return fits_key(n, cap);
}

/* "messages", or "message" for a limit of one. */
static const char *unit_words(const struct policy_plan_limit *l)
{
    switch (l->metric) {
    case POLICY_PLAN_MESSAGES: return l->limit == 1 ? "message" : "messages";
    case POLICY_PLAN_RECIPIENTS: return l->limit == 1 ? "recipient" : "recipients";
    case POLICY_PLAN_BYTES: return l->limit == 1 ? "byte" : "bytes";
    }
    return "units";
}

size_t policy_plan_limit_words(char *out, size_t cap, const struct policy_plan_limit *l)
{
    unsigned long long limit = (unsigned long long)l->limit;
    int n;
    if (l->window == 3600)
        n = snprintf(out, cap, "Hourly limit of %llu %s", limit, unit_words(l));
    else if (l->window == 86400)
        n = snprintf(out, cap, "Daily limit of %llu %s", limit, unit_words(l));
    else
        n = snprintf(out, cap, "Limit of %llu %s per %u seconds", limit, unit_words(l),
                     l->window);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* "14:05" (or "2026-11-27 14:05" beyond a day) in UTC: the first whole minute at or after
 * now + retry_after, so that a client trying at the time named is never refused again for the
 * same count. */
static void retry_time(char *out, size_t cap, time_t now, uint64_t retry_after_ms)
{
    uint64_t secs = (retry_after_ms + 999) / 1000;
    if (secs > 366ull * 86400)
        secs = 366ull * 86400;
    time_t t = now + (time_t)secs;
    if (t % 60 != 0)
        t += 60 - t % 60;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, cap, "a while");
        return;
    }
    strftime(out, cap, secs + 60 >= 86400 ? "%Y-%m-%d %H:%M UTC" : "%H:%M UTC", &tm);
}

enum reply_id policy_plan_refusal(const struct policy_plan *p, const struct policy_plan_limit *l,
                                  uint64_t retry_after_ms, time_t now, char *detail, size_t cap)
{
    char words[96], when[40];
    if (policy_plan_limit_words(words, sizeof words, l) == 0)
        snprintf(words, sizeof words, "Sending limit");
    retry_time(when, sizeof when, now, retry_after_ms);
    if (cap > 0) {
        int n = snprintf(detail, cap, "%s for plan %s reached; try again after %s", words,
                         p->name, when);
        if (n < 0)
            detail[0] = '\0';
    }
    if (p->permanent)
        return REPLY_PLAN_LIMIT_PERMANENT;
    return l->metric == POLICY_PLAN_RECIPIENTS ? REPLY_PLAN_RCPT_LIMIT : REPLY_PLAN_LIMIT;
}

size_t policy_network_text(char *out, size_t cap, const struct sockaddr *sa, unsigned v4_prefix,
                           unsigned v6_prefix)
{
    struct ip ip;
    if (!ip_of(sa, &ip))
        return 0;
    unsigned prefix = ip.family == AF_INET ? v4_prefix : v6_prefix;
    if (prefix > family_bits(ip.family))
        prefix = family_bits(ip.family);
    mask(ip.addr, family_bits(ip.family), prefix);
    return cidr_text(out, cap, ip.family, ip.addr, prefix);
}

/* Appends s lower-cased at out[*len]; false when it does not fit. */
static bool append_lower(char *out, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap - *len)
        return false;
    for (size_t i = 0; i < n; i++)
        out[*len + i] = (char)tolower((unsigned char)s[i]);
    *len += n;
    out[*len] = '\0';
    return true;
}

size_t policy_greylist_key(char *out, size_t cap, const struct policy_greylist_config *g,
                           const struct sockaddr *sa, const char *sender, const char *rcpt)
{
    char net[INET6_ADDRSTRLEN + 8];
    if (cap == 0 || policy_network_text(net, sizeof net, sa, g->v4_prefix, g->v6_prefix) == 0)
        return 0;
    size_t len = 0;
    out[0] = '\0';
    bool ok = append_lower(out, cap, &len, "grey:") && append_lower(out, cap, &len, net) &&
              append_lower(out, cap, &len, ":") && append_lower(out, cap, &len, sender) &&
              append_lower(out, cap, &len, ":") && append_lower(out, cap, &len, rcpt);
    return ok && len <= POLICY_COUNTERS_KEY_MAX ? len : 0;
}

unsigned policy_greylist_wait(const struct policy_greylist_config *g, uint64_t age_ms)
{
    uint64_t delay_ms = (uint64_t)g->delay * 1000;
    if (age_ms >= delay_ms)
        return 0;
    uint64_t wait = (delay_ms - age_ms + 999) / 1000;
    return wait == 0 ? 1 : (unsigned)wait;
}

size_t policy_session_key(char *out, size_t cap, const struct sockaddr *sa)
{
    char net[INET6_ADDRSTRLEN + 8];
    struct ip ip;
    if (!ip_of(sa, &ip))
        return 0;
    int n;
    if (ip.family == AF_INET) { /* one IPv4 address is one client: no prefix shown */
        if (!inet_ntop(AF_INET, ip.addr, net, sizeof net))
            return 0;
        n = snprintf(out, cap, "sess:%s", net);
    } else { /* an IPv6 client owns its /64 and can change addresses within it at will */
        if (policy_network_text(net, sizeof net, sa, 32, 64) == 0)
            return 0;
        n = snprintf(out, cap, "sess:%s", net);
    }
    return fits_key(n, cap);
}

bool policy_parse_address(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        struct ip ip;
        if (ip_of((const struct sockaddr *)ss, &ip) && ip.family == AF_INET) {
            memset(ss, 0, sizeof *ss);
            in->sin_family = AF_INET;
            memcpy(&in->sin_addr, ip.addr, 4);
        }
        return true;
    }
    return false;
}
